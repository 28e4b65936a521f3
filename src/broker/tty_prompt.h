#pragma once
// The terminal approval channel. The prompt goes to the controlling terminal
// (/dev/tty) and the answer is read from it, never from stdin, which the
// model's side might feed. Input typed before the prompt appeared is thrown
// away (tcflush), so nothing can pre-fill an answer.
#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <thread>

#include "broker/approvals.h"

namespace warden::broker {

// The effect as the human sees it: capability, target, why it asks, and the
// exact detail with every model-made byte neutralized and quoted behind a
// gutter. Used by the prompt and by `warden approve show`.
std::string render_effect(const PendingApproval& p);
// render_effect plus the question.
std::string render_prompt(const PendingApproval& p);

// Shows the prompt on `tty_fd` and reads one line. "y" or "yes" approves,
// anything else denies. Returns nullopt, without an answer, when
// `still_pending` turns false (answered on another channel) or the terminal
// goes away.
std::optional<bool> ask_on_terminal(int tty_fd, const PendingApproval& p, const std::function<bool()>& still_pending);

// Runs a thread that prompts on /dev/tty for each new pending approval.
class TerminalPrompter {
 public:
  explicit TerminalPrompter(ApprovalQueue& queue) : queue_(queue) {}
  ~TerminalPrompter() { stop(); }
  void start();
  void stop();

 private:
  void loop();
  ApprovalQueue& queue_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace warden::broker
