#include "broker/tty_prompt.h"

#include <fcntl.h>
#include <poll.h>
#include <termios.h>
#include <unistd.h>

#include "broker/render.h"
#include "util/fd_io.h"
#include "util/log.h"

namespace warden::broker {
namespace {

std::string lower_trimmed(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r");
  size_t e = s.find_last_not_of(" \t\r");
  std::string out = b == std::string::npos ? "" : s.substr(b, e - b + 1);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
  return out;
}

}  // namespace

// One labelled line; appended piece by piece (no temporaries to concatenate).
static void add_line(std::string& out, std::string_view label, std::string_view value) {
  out.append(label);
  out.append(value);
  out.push_back('\n');
}

std::string render_effect(const PendingApproval& p) {
  const auto& r = p.request;
  std::string out = "==== warden: approval needed (request " + std::to_string(p.id) + ") ====\n";
  std::string effect(capability_name(r.capability));
  if (r.capability == Capability::exec) effect += r.network ? " (with network)" : " (no network)";
  effect += ' ';
  effect += neutralize(r.target, false);
  add_line(out, "effect:  ", effect);
  add_line(out, "policy:  ", neutralize(p.policy_reason, false));
  for (auto& why : p.ask_reasons) add_line(out, "why:     ", neutralize(why, false));
  if (!r.detail.empty()) {
    out += "exact effect (model-made text; control characters shown as \\xNN):\n";
    out += quote_block(r.detail);
  }
  return out;
}

std::string render_prompt(const PendingApproval& p) {
  std::string out = "\n";
  out += render_effect(p);
  out += "Approve request ";
  out += std::to_string(p.id);
  out += "? Type yes to approve; anything else denies: ";
  return out;
}

std::optional<bool> ask_on_terminal(int tty_fd, const PendingApproval& p, const std::function<bool()>& still_pending) {
  // Drop anything typed before the prompt, so no answer is pre-filled. The
  // flush comes first: after the prompt is out, every key is a real answer.
  ::tcflush(tty_fd, TCIFLUSH);
  if (!write_all(tty_fd, render_prompt(p))) return std::nullopt;
  std::string line;
  while (still_pending()) {
    pollfd pfd{tty_fd, POLLIN, 0};
    int n = ::poll(&pfd, 1, 200);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::nullopt;
    if (n == 0) continue;
    char buf[256];
    ssize_t got = ::read(tty_fd, buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return std::nullopt;  // terminal hung up
    line.append(buf, size_t(got));
    // '\r' too: a terminal left in raw mode sends it for Enter.
    if (auto nl = line.find_first_of("\r\n"); nl != std::string::npos) {
      std::string answer = lower_trimmed(line.substr(0, nl));
      bool yes = answer == "y" || answer == "yes";
      write_all(tty_fd, yes ? "approved.\n" : "denied.\n");
      return yes;
    }
    if (line.size() > 1024) return false;  // nobody types this much to say yes
  }
  write_all(tty_fd, "\n(request " + std::to_string(p.id) + " was answered elsewhere or timed out)\n");
  return std::nullopt;
}

void TerminalPrompter::start() {
  stop_ = false;
  thread_ = std::thread([this] { loop(); });
}

void TerminalPrompter::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void TerminalPrompter::loop() {
  bool warned = false;
  while (!stop_) {
    auto next = queue_.next_unprompted(std::chrono::milliseconds(200));
    if (!next) continue;
    int fd = ::open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
      if (!warned) log::warn("broker: no controlling terminal; approvals only through `warden approve`");
      warned = true;
      continue;
    }
    uint64_t id = next->id;
    auto answer = ask_on_terminal(fd, *next, [&] { return !stop_ && queue_.is_pending(id); });
    ::close(fd);
    if (answer) queue_.resolve(id, *answer, "terminal");
  }
}

}  // namespace warden::broker
