#pragma once
// The approval queue: effects waiting for a human's yes or no. Humans answer
// on the terminal (tty_prompt.h) or with `warden approve` over the approval
// socket (server.h); whichever answers first decides. Nobody answering
// within the timeout is a no.
//
// A request's id names its broker too ("k7qm2-3": the broker's random tag,
// then a count), so an id copied from an earlier broker's `warden approve
// list` never names a request of the broker running now.
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
  std::string id;  // "<broker tag>-<n>", set by ApprovalQueue::submit
  EffectRequest request;                 // target already normalized
  std::string policy_reason;             // what the policy said and why
  std::vector<std::string> ask_reasons;  // why it asks: taint, I3 floor
};

struct Resolution {
  enum Kind { approved, denied, timed_out } kind = timed_out;
  std::string channel;  // "terminal", "warden approve"
};

// Five characters from an alphabet without look-alikes (no 0/o, 1/l/i),
// from getrandom(2): 31^5, about 28.6 million tags.
std::string random_broker_tag();

class ApprovalQueue {
 public:
  explicit ApprovalQueue(std::string broker_tag = random_broker_tag()) : tag_(std::move(broker_tag)) {}
  const std::string& tag() const { return tag_; }
  // Returns the new approval's id.
  std::string submit(PendingApproval p);
  // Blocks until `id` is resolved or `timeout` passes; then forgets it.
  Resolution wait(const std::string& id, std::chrono::milliseconds timeout);
  // Answers a pending approval; false when `id` is not pending here.
  bool resolve(const std::string& id, bool approve, const std::string& channel);
  std::vector<PendingApproval> list() const;
  std::optional<PendingApproval> get(const std::string& id) const;
  bool is_pending(const std::string& id) const;
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
  // The count in an id of this broker; 0 (never a count) for any other id.
  uint64_t count_of(const std::string& id) const;

  const std::string tag_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::map<uint64_t, Slot> slots_;  // by count: list() in submission order
  uint64_t next_id_ = 1;
  std::optional<std::string> closed_;  // set by close(): its channel
};

}  // namespace warden::broker
