#pragma once
// The approval queue: effects waiting for a human's yes or no. Humans answer
// on the terminal (tty_prompt.h) or with `warden approve` over the approval
// socket (server.h); whichever answers first decides. Nobody answering
// within the timeout is a no.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "broker/request.h"

namespace warden::broker {

struct PendingApproval {
  uint64_t id = 0;
  EffectRequest request;                 // target already normalized
  std::string policy_reason;             // what the policy said and why
  std::vector<std::string> ask_reasons;  // why it asks: taint, I3 floor
};

struct Resolution {
  enum Kind { approved, denied, timed_out } kind = timed_out;
  std::string channel;  // "terminal", "warden approve"
};

class ApprovalQueue {
 public:
  uint64_t submit(PendingApproval p);
  // Blocks until `id` is resolved or `timeout` passes; then forgets it.
  Resolution wait(uint64_t id, std::chrono::milliseconds timeout);
  // Answers a pending approval; false when `id` is not pending.
  bool resolve(uint64_t id, bool approve, const std::string& channel);
  std::vector<PendingApproval> list() const;
  std::optional<PendingApproval> get(uint64_t id) const;
  bool is_pending(uint64_t id) const;
  // Denies everything pending, and everything submitted from now on (the
  // broker is shutting down).
  void close(const std::string& channel);
  // For the terminal prompter: the oldest pending approval it has not shown
  // yet, waiting up to `timeout` for one.
  std::optional<PendingApproval> next_unprompted(std::chrono::milliseconds timeout);

 private:
  struct Slot {
    PendingApproval approval;
    std::optional<Resolution> resolution;
    bool prompted = false;
  };
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::map<uint64_t, Slot> slots_;
  uint64_t next_id_ = 1;
  std::optional<std::string> closed_;  // set by close(): its channel
};

}  // namespace warden::broker
