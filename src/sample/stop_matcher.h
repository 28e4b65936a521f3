#pragma once
// Streams generated text and stops at the first stop string.
//
// feed() returns the text that is safe to show now. It holds back
//  * the longest tail that could still become a stop string (a proper prefix
//    of one), so a stop string split across tokens is never shown in part;
//  * an incomplete UTF-8 sequence at the very end, so emitted chunks never
//    split a character.
// Generation stops at the first byte that completes any stop string (of
// matches ending there, the longest counts). Everything before that match is
// emitted, the match and anything after it are dropped, and the matcher stays
// stopped. The result does not depend on how the text is split into feeds.
// Matching is byte-exact.
#include <string>
#include <string_view>
#include <vector>

namespace warden::sample {

class StopMatcher {
 public:
  struct Result {
    std::string emit;
    bool stopped = false;
  };

  // Throws warden::Error if a stop string is empty (it would match at once).
  explicit StopMatcher(std::vector<std::string> stops);

  Result feed(std::string_view text);
  // Generation ended without a stop: returns everything held back (empty once
  // stopped) and starts over with an empty buffer.
  std::string flush();

  bool stopped() const { return stopped_; }
  const std::vector<std::string>& stops() const { return stops_; }

 private:
  // Where in pending_ the stop that ends generation starts, or npos.
  size_t first_complete_stop() const;
  // Length of the longest tail of pending_ that is a proper prefix of a stop.
  size_t longest_stop_prefix_tail() const;

  std::vector<std::string> stops_;
  std::string pending_;  // received but not yet emitted
  bool stopped_ = false;
};

// Length of an incomplete UTF-8 sequence at the end of `text` (a lead byte
// followed by fewer continuation bytes than it announces), else 0.
size_t incomplete_utf8_tail(std::string_view text);

}  // namespace warden::sample
