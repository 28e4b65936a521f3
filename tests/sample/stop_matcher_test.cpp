#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "sample/stop_matcher.h"
#include "util/error.h"

namespace warden::sample {
namespace {

struct Outcome {
  std::vector<std::string> chunks;  // what each feed emitted
  std::string text;                 // all emitted text, flush included when not stopped
  bool stopped = false;
  int stopped_at_feed = -1;
};

Outcome feed_all(StopMatcher& matcher, const std::vector<std::string>& pieces) {
  Outcome outcome;
  for (size_t i = 0; i < pieces.size(); ++i) {
    StopMatcher::Result r = matcher.feed(pieces[i]);
    outcome.chunks.push_back(r.emit);
    outcome.text += r.emit;
    if (r.stopped && !outcome.stopped) {
      outcome.stopped = true;
      outcome.stopped_at_feed = static_cast<int>(i);
    }
  }
  if (!outcome.stopped) outcome.text += matcher.flush();
  return outcome;
}

TEST(StopMatcher, WithoutStopsEverythingPassesThrough) {
  StopMatcher matcher({});
  StopMatcher::Result r = matcher.feed("hello ");
  EXPECT_EQ(r.emit, "hello ");
  EXPECT_FALSE(r.stopped);
  EXPECT_EQ(matcher.feed("world").emit, "world");
  EXPECT_EQ(matcher.flush(), "");
}

TEST(StopMatcher, StopInsideOneFeedEmitsTheTextBeforeIt) {
  StopMatcher matcher({"\nUser:"});
  StopMatcher::Result r = matcher.feed("Sure.\nUser: next question");
  EXPECT_EQ(r.emit, "Sure.");
  EXPECT_TRUE(r.stopped);
  EXPECT_TRUE(matcher.stopped());
}

TEST(StopMatcher, StopSplitAcrossFeedsIsNeverShownInPart) {
  StopMatcher matcher({"<|im_end|>"});
  EXPECT_EQ(matcher.feed("Done").emit, "Done");
  StopMatcher::Result r = matcher.feed("<|im");
  EXPECT_EQ(r.emit, "");
  EXPECT_FALSE(r.stopped);
  r = matcher.feed("_en");
  EXPECT_EQ(r.emit, "");
  EXPECT_FALSE(r.stopped);
  r = matcher.feed("d|>trailing");
  EXPECT_EQ(r.emit, "");
  EXPECT_TRUE(r.stopped);
}

TEST(StopMatcher, HeldTextIsReleasedWhenItStopsLookingLikeAStop) {
  StopMatcher matcher({"<|im_end|>"});
  EXPECT_EQ(matcher.feed("a <|im").emit, "a ");
  EXPECT_EQ(matcher.feed("portant").emit, "<|important");
}

TEST(StopMatcher, OverlappingPrefixesStillFindTheStop) {
  // "abab" then "c": the stop "abc" starts at the second "ab".
  StopMatcher matcher({"abc"});
  Outcome o = feed_all(matcher, {"ab", "ab", "c"});
  EXPECT_EQ(o.text, "ab");
  EXPECT_TRUE(o.stopped);
  EXPECT_EQ(o.stopped_at_feed, 2);

  StopMatcher self_overlap({"aab"});
  o = feed_all(self_overlap, {"a", "a", "a", "b"});
  EXPECT_EQ(o.text, "a");
  EXPECT_TRUE(o.stopped);
}

TEST(StopMatcher, StopsSharingAPrefixAreAllConsidered) {
  StopMatcher matcher({"</s>", "</stop>"});
  EXPECT_EQ(matcher.feed("x</st").emit, "x");
  StopMatcher::Result r = matcher.feed("op> y");
  EXPECT_EQ(r.emit, "");
  EXPECT_TRUE(r.stopped);

  StopMatcher other({"</s>", "</stop>"});
  EXPECT_EQ(other.feed("</st").emit, "");
  EXPECT_EQ(other.feed("x").emit, "</stx");
}

TEST(StopMatcher, TheStopCompletedFirstWinsWhateverTheSplit) {
  // In "abab", "b" is complete at byte 2, before "aba" at byte 3.
  for (const std::vector<std::string>& pieces :
       {std::vector<std::string>{"abab"}, {"a", "b", "a", "b"}, {"ab", "ab"}, {"a", "bab"}}) {
    StopMatcher matcher({"aba", "b"});
    Outcome o = feed_all(matcher, pieces);
    EXPECT_EQ(o.text, "a");
    EXPECT_TRUE(o.stopped);
  }
  // Two stops ending at the same byte: the longer one is cut.
  for (const std::vector<std::string>& pieces : {std::vector<std::string>{"xab"}, {"x", "a", "b"}}) {
    StopMatcher matcher({"b", "ab"});
    EXPECT_EQ(feed_all(matcher, pieces).text, "x");
  }
}

TEST(StopMatcher, EarliestStopWins) {
  StopMatcher matcher({"world", "o"});
  StopMatcher::Result r = matcher.feed("hello world");
  EXPECT_EQ(r.emit, "hell");
  EXPECT_TRUE(r.stopped);
}

TEST(StopMatcher, AShortStopEndsGenerationEvenWhileALongerOneCouldStillMatch) {
  // "c" is complete; "abcd" could still complete but generation is over.
  StopMatcher matcher({"abcd", "c"});
  StopMatcher::Result r = matcher.feed("xabc");
  EXPECT_EQ(r.emit, "xab");
  EXPECT_TRUE(r.stopped);
}

TEST(StopMatcher, AfterStoppingNothingMoreIsEmitted) {
  StopMatcher matcher({"END"});
  EXPECT_TRUE(matcher.feed("fooEND").stopped);
  StopMatcher::Result r = matcher.feed("more text");
  EXPECT_EQ(r.emit, "");
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(matcher.flush(), "");
}

TEST(StopMatcher, FlushReturnsTheHeldBackTail) {
  StopMatcher matcher({"###"});
  EXPECT_EQ(matcher.feed("answer ##").emit, "answer ");
  EXPECT_EQ(matcher.flush(), "##");
  EXPECT_FALSE(matcher.stopped());
}

TEST(StopMatcher, MultiByteCharactersAreNotSplit) {
  StopMatcher matcher({});
  const std::string e_acute = "\xC3\xA9";                 // é
  const std::string snowman = "\xE2\x98\x83";             // ☃
  const std::string emoji = "\xF0\x9F\x98\x80";           // 😀
  EXPECT_EQ(matcher.feed("caf" + e_acute.substr(0, 1)).emit, "caf");
  EXPECT_EQ(matcher.feed(e_acute.substr(1)).emit, e_acute);
  EXPECT_EQ(matcher.feed(snowman.substr(0, 2)).emit, "");
  EXPECT_EQ(matcher.feed(snowman.substr(2) + emoji.substr(0, 3)).emit, snowman);
  EXPECT_EQ(matcher.feed(emoji.substr(3)).emit, emoji);
}

TEST(StopMatcher, InvalidUtf8IsPassedThroughNotHeldForever) {
  StopMatcher matcher({});
  EXPECT_EQ(matcher.feed("a\x80\x80").emit, "a\x80\x80");  // stray continuation bytes
  EXPECT_EQ(matcher.feed("\xFF").emit, "\xFF");            // never a lead byte
}

TEST(StopMatcher, MultiByteStopSplitInsideACharacter) {
  const std::string full_stop = "\xE3\x80\x82";  // 。
  StopMatcher matcher({full_stop + "\n"});
  EXPECT_EQ(matcher.feed("\xE6\x97\xA5\xE3").emit, "\xE6\x97\xA5");  // 日 then a partial 。
  StopMatcher::Result r = matcher.feed("\x80");
  EXPECT_EQ(r.emit, "");
  EXPECT_FALSE(r.stopped);
  r = matcher.feed("\x82\n");
  EXPECT_EQ(r.emit, "");
  EXPECT_TRUE(r.stopped);

  // Same character without the newline: released once it cannot be the stop.
  StopMatcher other({full_stop + "\n"});
  EXPECT_EQ(other.feed(full_stop).emit, "");
  EXPECT_EQ(other.feed("x").emit, full_stop + "x");
}

TEST(StopMatcher, EmptyStopStringIsRejected) {
  EXPECT_THROW(StopMatcher({"ok", ""}), Error);
}

// Random texts, stop sets and split points: the emitted text must always be
// the whole-text answer (text before the stop completed first, or all of
// it), whatever the split; no emitted chunk may end inside a character; and
// the stop must be reported on the very feed that completes it.
TEST(StopMatcher, RandomSplitsAgreeWithAWholeTextSearch) {
  std::mt19937 rng(99);
  const std::vector<std::string> alphabet = {"a", "b", "<", "|", "\xC3\xA9", "\xE2\x98\x83"};
  auto random_string = [&](int max_symbols) {
    std::string s;
    const int n = 1 + static_cast<int>(rng() % static_cast<unsigned>(max_symbols));
    for (int i = 0; i < n; ++i) s += alphabet[rng() % alphabet.size()];
    return s;
  };
  for (int round = 0; round < 20000; ++round) {
    std::vector<std::string> stops;
    const int n_stops = static_cast<int>(rng() % 4);
    for (int i = 0; i < n_stops; ++i) stops.push_back(random_string(4));
    const std::string text = random_string(30);

    // The stop completed first (earliest end; the longest of those).
    size_t stop_start = std::string::npos;
    size_t stop_end = std::string::npos;
    for (const std::string& stop : stops) {
      const size_t at = text.find(stop);
      if (at == std::string::npos) continue;
      if (at + stop.size() < stop_end || (at + stop.size() == stop_end && at < stop_start)) {
        stop_start = at;
        stop_end = at + stop.size();
      }
    }
    const std::string expected = stop_start == std::string::npos ? text : text.substr(0, stop_start);

    std::vector<std::string> pieces;
    std::vector<size_t> piece_ends;
    for (size_t pos = 0; pos < text.size();) {
      const size_t len = std::min(text.size() - pos, size_t{1} + rng() % 5);  // may cut characters
      pieces.push_back(text.substr(pos, len));
      pos += len;
      piece_ends.push_back(pos);
    }

    StopMatcher matcher(stops);
    Outcome o = feed_all(matcher, pieces);
    ASSERT_EQ(o.text, expected) << "round " << round;
    ASSERT_EQ(o.stopped, stop_start != std::string::npos) << "round " << round;
    if (o.stopped) {
      size_t completing_feed = 0;
      while (piece_ends[completing_feed] < stop_end) ++completing_feed;
      ASSERT_EQ(o.stopped_at_feed, static_cast<int>(completing_feed)) << "round " << round;
    }
    for (const std::string& chunk : o.chunks) ASSERT_EQ(incomplete_utf8_tail(chunk), 0u) << "round " << round;
  }
}

}  // namespace
}  // namespace warden::sample
