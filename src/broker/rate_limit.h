#pragma once
// Sliding-window rate limits per capability (policy [limits]).
#include <chrono>
#include <deque>
#include <map>
#include <mutex>
#include <optional>

#include "broker/capability.h"
#include "broker/policy.h"

namespace warden::broker {

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  // Counts one request for `c` at `now` when it is within `limit`; returns
  // false (and counts nothing) when `limit.max` requests already happened in
  // the last `limit.per_seconds`.
  bool try_acquire(Capability c, const RateLimit& limit, Clock::time_point now = Clock::now());

 private:
  std::mutex mutex_;
  std::map<Capability, std::deque<Clock::time_point>> history_;
};

}  // namespace warden::broker
