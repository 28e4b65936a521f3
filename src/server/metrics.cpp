#include "server/metrics.h"

#include <algorithm>
#include <cstdio>

namespace warden::server {

namespace {
constexpr auto kWindow = std::chrono::seconds(10);

void add_metric(std::string& out, const char* name, const char* type, const char* help, double value) {
  char line[96];
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
  std::snprintf(line, sizeof line, "%s %.17g\n", name, value);
  out += line;
}
}  // namespace

void Metrics::note_generated(uint64_t tokens) {
  generated_tokens_total += tokens;
  std::lock_guard lock(window_mutex_);
  auto now = Clock::now();
  window_.emplace_back(now, tokens);
  while (!window_.empty() && now - window_.front().first > kWindow) window_.pop_front();
}

double Metrics::recent_tokens_per_second() {
  std::lock_guard lock(window_mutex_);
  auto now = Clock::now();
  while (!window_.empty() && now - window_.front().first > kWindow) window_.pop_front();
  if (window_.empty()) return 0.0;
  uint64_t tokens = 0;
  for (const auto& [when, n] : window_) tokens += n;
  // Over the span actually covered (at least one second, so a single burst
  // does not read as an absurd rate).
  double span = std::chrono::duration<double>(now - window_.front().first).count();
  return double(tokens) / std::max(1.0, span);
}

std::string Metrics::prometheus_text() {
  std::string out;
  add_metric(out, "warden_requests_total", "counter", "HTTP requests received.", double(requests_total));
  add_metric(out, "warden_request_errors_total", "counter", "HTTP requests answered with an error status.",
             double(request_errors_total));
  add_metric(out, "warden_completions_total", "counter", "Generations finished.", double(completions_total));
  add_metric(out, "warden_cancelled_total", "counter", "Generations stopped because the client disconnected.",
             double(cancelled_total));
  add_metric(out, "warden_prompt_tokens_total", "counter", "Prompt tokens evaluated.", double(prompt_tokens_total));
  add_metric(out, "warden_cached_prompt_tokens_total", "counter", "Prompt tokens reused from a slot's cache.",
             double(cached_prompt_tokens_total));
  add_metric(out, "warden_generated_tokens_total", "counter", "Tokens generated.", double(generated_tokens_total));
  add_metric(out, "warden_tokens_per_second", "gauge", "Generated tokens per second over the last 10 seconds.",
             recent_tokens_per_second());
  add_metric(out, "warden_forward_passes_total", "counter", "Batched forward passes.", double(forward_passes_total));
  add_metric(out, "warden_batch_tokens_total", "counter", "Tokens evaluated in forward passes.",
             double(batch_tokens_total));
  add_metric(out, "warden_draft_tokens_total", "counter", "Tokens drafted by lookup decoding.",
             double(draft_tokens_total));
  add_metric(out, "warden_draft_accepted_total", "counter", "Drafted tokens the model confirmed.",
             double(draft_accepted_total));
  add_metric(out, "warden_grammar_masks_total", "counter", "Token masks computed for constrained decoding.",
             double(grammar_masks_total));
  add_metric(out, "warden_grammar_mask_seconds_total", "counter", "Time spent computing grammar token masks.",
             double(grammar_mask_ns_total) * 1e-9);
  add_metric(out, "warden_slots_busy", "gauge", "Slots generating or prefilling.", double(slots_busy));
  add_metric(out, "warden_slots_total", "gauge", "Slots (parallel sequences).", double(slots_total));
  add_metric(out, "warden_queue_depth", "gauge", "Requests waiting for a free slot.", double(queue_depth));
  add_metric(out, "warden_connections_open", "gauge", "HTTP connections open.", double(connections_open));
  add_metric(out, "warden_gate_refusals_total", "counter",
             "Requests refused before any worker saw them: too slow (408), head too large (431), no worker or "
             "room (503).",
             double(gate_refusals_total));
  add_metric(out, "warden_connections_closed_for_room_total", "counter",
             "Connections closed, or turned away, to keep the number open within the limit.", double(connections_closed_for_room_total));
  return out;
}

}  // namespace warden::server
