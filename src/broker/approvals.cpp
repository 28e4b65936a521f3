#include "broker/approvals.h"

#include <sys/random.h>

#include <cerrno>
#include <cstring>

#include "util/error.h"

namespace warden::broker {

std::string_view outcome_text(Outcome o) {
  switch (o) {
    case Outcome::allowed_by_policy: return "allowed by policy";
    case Outcome::approved_by_human: return "approved by human";
    case Outcome::denied: return "denied";
  }
  return "?";
}

std::string random_broker_tag() {
  static constexpr char kAlphabet[] = "23456789abcdefghjkmnpqrstuvwxyz";
  static constexpr unsigned kLetters = sizeof kAlphabet - 1;
  std::string tag;
  while (tag.size() < 5) {
    unsigned char byte;
    ssize_t got = getrandom(&byte, 1, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got != 1) throw Error(std::string("cannot draw the broker's random tag: ") + std::strerror(errno));
    if (byte >= 256 / kLetters * kLetters) continue;  // keeps every letter equally likely
    tag += kAlphabet[byte % kLetters];
  }
  return tag;
}

uint64_t ApprovalQueue::count_of(const std::string& id) const {
  if (id.size() <= tag_.size() + 1 || id.size() > tag_.size() + 1 + 19) return 0;
  if (id.compare(0, tag_.size(), tag_) != 0 || id[tag_.size()] != '-') return 0;
  if (id[tag_.size() + 1] == '0') return 0;  // one spelling per request: no leading zeros
  uint64_t n = 0;
  for (size_t i = tag_.size() + 1; i < id.size(); ++i) {
    if (id[i] < '0' || id[i] > '9') return 0;
    n = n * 10 + uint64_t(id[i] - '0');
  }
  return n;
}

std::string ApprovalQueue::submit(PendingApproval p) {
  std::lock_guard lock(mutex_);
  const uint64_t n = next_id_++;
  p.id = tag_ + "-" + std::to_string(n);
  std::string id = p.id;
  std::optional<Resolution> resolution;
  if (closed_) resolution = Resolution{Resolution::denied, *closed_};
  slots_[n] = Slot{std::move(p), resolution, false};
  changed_.notify_all();
  return id;
}

Resolution ApprovalQueue::wait(const std::string& id, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  const uint64_t n = count_of(id);
  if (!slots_.count(n)) return Resolution{Resolution::denied, "unknown approval"};
  changed_.wait_until(lock, deadline, [&] { return slots_.at(n).resolution.has_value(); });
  Resolution r = slots_.at(n).resolution.value_or(Resolution{Resolution::timed_out, ""});
  slots_.erase(n);
  changed_.notify_all();  // a prompter waiting on this id stops
  return r;
}

bool ApprovalQueue::resolve(const std::string& id, bool approve, const std::string& channel) {
  std::lock_guard lock(mutex_);
  auto it = slots_.find(count_of(id));
  if (it == slots_.end() || it->second.resolution) return false;
  it->second.resolution = Resolution{approve ? Resolution::approved : Resolution::denied, channel};
  changed_.notify_all();
  return true;
}

void ApprovalQueue::close(const std::string& channel) {
  std::lock_guard lock(mutex_);
  closed_ = channel;
  for (auto& [id, slot] : slots_)
    if (!slot.resolution) slot.resolution = Resolution{Resolution::denied, channel};
  changed_.notify_all();
}

std::vector<PendingApproval> ApprovalQueue::list() const {
  std::lock_guard lock(mutex_);
  std::vector<PendingApproval> out;
  for (auto& [id, slot] : slots_)
    if (!slot.resolution) out.push_back(slot.approval);
  return out;
}

std::optional<PendingApproval> ApprovalQueue::get(const std::string& id) const {
  std::lock_guard lock(mutex_);
  auto it = slots_.find(count_of(id));
  if (it == slots_.end() || it->second.resolution) return std::nullopt;
  return it->second.approval;
}

bool ApprovalQueue::is_pending(const std::string& id) const {
  std::lock_guard lock(mutex_);
  auto it = slots_.find(count_of(id));
  return it != slots_.end() && !it->second.resolution;
}

std::optional<PendingApproval> ApprovalQueue::next_unprompted(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  auto find = [&]() -> Slot* {
    for (auto& [id, slot] : slots_)
      if (!slot.prompted && !slot.resolution) return &slot;
    return nullptr;
  };
  Slot* s = nullptr;
  changed_.wait_for(lock, timeout, [&] { return (s = find()) != nullptr; });
  if (!s) return std::nullopt;
  s->prompted = true;
  return s->approval;
}

}  // namespace warden::broker
