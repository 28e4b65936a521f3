#include "broker/rate_limit.h"

namespace warden::broker {

bool RateLimiter::try_acquire(Capability c, const RateLimit& limit, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  auto& times = history_[c];
  auto window_start = now - std::chrono::seconds(limit.per_seconds);
  while (!times.empty() && times.front() <= window_start) times.pop_front();
  if (int(times.size()) >= limit.max) return false;
  times.push_back(now);
  return true;
}

}  // namespace warden::broker
