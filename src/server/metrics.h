#pragma once
// Counters and gauges for GET /metrics (Prometheus text exposition format).
// Written by the HTTP threads and the scheduler thread; all lock-free except
// the recent-throughput window.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>

namespace warden::server {

class Metrics {
 public:
  std::atomic<uint64_t> requests_total{0};          // HTTP requests handled
  std::atomic<uint64_t> request_errors_total{0};    // answered with 4xx/5xx
  std::atomic<uint64_t> completions_total{0};       // generations finished
  std::atomic<uint64_t> cancelled_total{0};         // stopped because the client left
  std::atomic<uint64_t> prompt_tokens_total{0};     // prompt tokens evaluated (after cache reuse)
  std::atomic<uint64_t> cached_prompt_tokens_total{0};  // prompt tokens reused from a slot's cache
  std::atomic<uint64_t> generated_tokens_total{0};
  std::atomic<uint64_t> forward_passes_total{0};
  std::atomic<uint64_t> batch_tokens_total{0};
  std::atomic<uint64_t> draft_tokens_total{0};      // lookup decoding: tokens drafted
  std::atomic<uint64_t> draft_accepted_total{0};    // and confirmed by the model
  std::atomic<uint64_t> grammar_masks_total{0};     // constrained sampling steps
  std::atomic<uint64_t> grammar_mask_ns_total{0};   // time spent computing those masks
  std::atomic<int64_t> slots_busy{0};
  std::atomic<int64_t> slots_total{0};
  std::atomic<int64_t> queue_depth{0};
  // The connection gate's (connection.h).
  std::atomic<int64_t> connections_open{0};
  std::atomic<uint64_t> gate_refusals_total{0};  // answered by the gate itself: 408, 431, 503
  std::atomic<uint64_t> connections_closed_for_room_total{0};

  // Records tokens generated now, for the recent tokens/s gauge.
  void note_generated(uint64_t tokens);
  // Generated tokens per second over the last few seconds.
  double recent_tokens_per_second();

  std::string prometheus_text();

 private:
  using Clock = std::chrono::steady_clock;
  std::mutex window_mutex_;
  std::deque<std::pair<Clock::time_point, uint64_t>> window_;
};

}  // namespace warden::server
