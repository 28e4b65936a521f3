#include "broker/approvals.h"

namespace warden::broker {

std::string_view outcome_text(Outcome o) {
  switch (o) {
    case Outcome::allowed_by_policy: return "allowed by policy";
    case Outcome::approved_by_human: return "approved by human";
    case Outcome::denied: return "denied";
  }
  return "?";
}

uint64_t ApprovalQueue::submit(PendingApproval p) {
  std::lock_guard lock(mutex_);
  p.id = next_id_++;
  uint64_t id = p.id;
  std::optional<Resolution> resolution;
  if (closed_) resolution = Resolution{Resolution::denied, *closed_};
  slots_[id] = Slot{std::move(p), resolution, false};
  changed_.notify_all();
  return id;
}

Resolution ApprovalQueue::wait(uint64_t id, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto it = slots_.find(id);
  if (it == slots_.end()) return Resolution{Resolution::denied, "unknown approval"};
  changed_.wait_until(lock, deadline, [&] { return slots_.at(id).resolution.has_value(); });
  Resolution r = slots_.at(id).resolution.value_or(Resolution{Resolution::timed_out, ""});
  slots_.erase(id);
  changed_.notify_all();  // a prompter waiting on this id stops
  return r;
}

bool ApprovalQueue::resolve(uint64_t id, bool approve, const std::string& channel) {
  std::lock_guard lock(mutex_);
  auto it = slots_.find(id);
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

std::optional<PendingApproval> ApprovalQueue::get(uint64_t id) const {
  std::lock_guard lock(mutex_);
  auto it = slots_.find(id);
  if (it == slots_.end() || it->second.resolution) return std::nullopt;
  return it->second.approval;
}

bool ApprovalQueue::is_pending(uint64_t id) const {
  std::lock_guard lock(mutex_);
  auto it = slots_.find(id);
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
