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

// How much of the model-made detail render_effect shows. The terminal prompt
// shows an excerpt so it fits on a screen and the real effect (the recap)
// stays next to the question; `warden approve show` prints all of it.
enum class DetailView { excerpt, full };

// The effect as the human sees it: capability, target, why it asks, and the
// exact detail with every model-made byte neutralized and quoted behind a
// gutter. A target with non-ASCII characters gets a note spelling it in
// ASCII. In the excerpt view the target, the reasons and the detail are
// capped (ExcerptLimits), each cut said so on a line the model cannot forge.
std::string render_effect(const PendingApproval& p, DetailView view = DetailView::excerpt);
// The lines that must come last before any answer: capability, the target
// in ASCII (capped) and the first reason, so whatever the detail above ends
// with, the last thing the human reads is the real effect.
std::string render_recap(const PendingApproval& p);
// The terminal prompt: render_effect (excerpt), the recap, the question.
std::string render_prompt(const PendingApproval& p);
// `warden approve show`: render_effect (full), then the recap.
std::string render_show(const PendingApproval& p);

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
