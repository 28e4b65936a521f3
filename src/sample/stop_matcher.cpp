#include "sample/stop_matcher.h"

#include <algorithm>

#include "util/error.h"

namespace warden::sample {
namespace {

// Sequence length announced by a UTF-8 lead byte; 0 for a continuation byte
// or a byte that cannot start a sequence, 1 for ASCII.
size_t utf8_sequence_length(unsigned char byte) {
  if (byte < 0x80) return 1;
  if ((byte & 0xE0) == 0xC0) return 2;
  if ((byte & 0xF0) == 0xE0) return 3;
  if ((byte & 0xF8) == 0xF0) return 4;
  return 0;
}

bool is_continuation(unsigned char byte) { return (byte & 0xC0) == 0x80; }

}  // namespace

size_t incomplete_utf8_tail(std::string_view text) {
  // A sequence is at most 4 bytes, so its lead byte is among the last 4.
  const size_t lookback = std::min<size_t>(text.size(), 4);
  for (size_t tail = 1; tail <= lookback; ++tail) {
    const auto byte = static_cast<unsigned char>(text[text.size() - tail]);
    if (is_continuation(byte)) continue;
    const size_t needed = utf8_sequence_length(byte);
    // Invalid bytes are passed through rather than held forever.
    return (needed > tail) ? tail : 0;
  }
  return 0;
}

StopMatcher::StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {
  for (size_t i = 0; i < stops_.size(); ++i)
    if (stops_[i].empty()) throw Error("stop string " + std::to_string(i + 1) + " is empty");
}

size_t StopMatcher::first_complete_stop() const {
  // Generation stops at the first byte that completes any stop string, so
  // the match that ends earliest wins, and of those ending there the longest
  // (earliest start). This keeps the result independent of how the text was
  // split into feeds.
  size_t best_end = std::string::npos;
  size_t best_start = std::string::npos;
  for (const std::string& stop : stops_) {
    const size_t start = pending_.find(stop);
    if (start == std::string::npos) continue;
    const size_t end = start + stop.size();
    if (end < best_end || (end == best_end && start < best_start)) {
      best_end = end;
      best_start = start;
    }
  }
  return best_start;
}

size_t StopMatcher::longest_stop_prefix_tail() const {
  const std::string_view text = pending_;
  size_t longest = 0;
  for (const std::string& stop : stops_) {
    const size_t max_len = std::min(text.size(), stop.size() - 1);
    for (size_t len = max_len; len > longest; --len) {
      if (text.substr(text.size() - len) == std::string_view(stop).substr(0, len)) {
        longest = len;
        break;
      }
    }
  }
  return longest;
}

StopMatcher::Result StopMatcher::feed(std::string_view text) {
  if (stopped_) return {"", true};
  pending_.append(text);

  const size_t stop_at = first_complete_stop();
  if (stop_at != std::string::npos) {
    Result result{pending_.substr(0, stop_at), true};
    pending_.clear();
    stopped_ = true;
    return result;
  }

  const size_t held = std::max(longest_stop_prefix_tail(), incomplete_utf8_tail(pending_));
  const size_t ready = pending_.size() - held;
  Result result{pending_.substr(0, ready), false};
  pending_.erase(0, ready);
  return result;
}

std::string StopMatcher::flush() {
  std::string rest;
  rest.swap(pending_);
  return rest;
}

}  // namespace warden::sample
