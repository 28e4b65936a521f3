// util/display.h's UTF-8 helpers (render() is tested as the broker's
// neutralize, tests/broker/render_test.cpp).
#include "util/display.h"

#include <gtest/gtest.h>

namespace warden::display {
namespace {

TEST(Utf8, InvalidBytesBecomeReplacementCharacters) {
  EXPECT_EQ(utf8_or_replacement("plain é ✓ 😀"), "plain é ✓ 😀");
  EXPECT_EQ(utf8_or_replacement("\xe2\x9c"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // a character cut short: each byte
  EXPECT_EQ(utf8_or_replacement("a\xff" "b"), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(utf8_or_replacement("\xc0\xaf"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong '/'
  EXPECT_EQ(utf8_or_replacement("\xed\xa0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // a surrogate
  EXPECT_EQ(utf8_or_replacement(""), "");
}

TEST(Utf8, LengthCountsCharacters) {
  EXPECT_EQ(utf8_length(""), 0u);
  EXPECT_EQ(utf8_length("abc"), 3u);
  EXPECT_EQ(utf8_length("é✓😀"), 3u);
  EXPECT_EQ(utf8_length("\xe2\x9c"), 1u);  // a character cut short counts where it starts
}

TEST(Utf8, APrefixNeverCutsACharacter) {
  EXPECT_EQ(utf8_prefix("ab✓", 3), "ab");
  EXPECT_EQ(utf8_prefix("ab✓", 5), "ab✓");
  EXPECT_EQ(utf8_prefix("ab", 1), "a");
  EXPECT_EQ(utf8_prefix("a\U0001F600b", 4), "a");  // a four-byte character cut after its third byte
  // Bytes that are no UTF-8 (a run of continuation bytes) lose at most three.
  EXPECT_EQ(utf8_prefix(std::string(100, '\x80'), 50).size(), 47u);
}

}  // namespace
}  // namespace warden::display
