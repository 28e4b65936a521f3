// Neutralizing model-made text for the terminal.
#include <gtest/gtest.h>

#include "broker/render.h"

namespace wb = warden::broker;

TEST(Neutralize, EscapesAndControlsBecomeVisible) {
  EXPECT_EQ(wb::neutralize("\x1b[2Jhi\x07", true), "\\x1b[2Jhi\\x07");
  EXPECT_EQ(wb::neutralize("a\rb", true), "a\\rb");
  EXPECT_EQ(wb::neutralize("a\nb", true), "a\nb");
  EXPECT_EQ(wb::neutralize("a\nb", false), "a\\nb");
  EXPECT_EQ(wb::neutralize("tab\there", false), "tab\there");
  EXPECT_EQ(wb::neutralize("\x7f", false), "\\x7f");
  EXPECT_EQ(wb::neutralize(std::string("a\0b", 3), false), "a\\x00b");
}

TEST(Neutralize, C1BidiAndInvalidUtf8) {
  EXPECT_EQ(wb::neutralize("\xc2\x9b" "31m", false), "\\u009b31m");      // C1 CSI
  EXPECT_EQ(wb::neutralize("\x9b" "31m", false), "\\x9b31m");            // raw 8-bit CSI
  EXPECT_EQ(wb::neutralize("abc\xe2\x80\xae" "cba", false), "abc\\u202ecba");  // RLO
  EXPECT_EQ(wb::neutralize("\xc0\xaf", false), "\\xc0\\xaf");            // overlong '/'
  EXPECT_EQ(wb::neutralize("caf\xc3\xa9 \xe2\x9c\x93", false), "caf\xc3\xa9 \xe2\x9c\x93");  // real UTF-8 kept
}

TEST(Neutralize, OutputHasNoControlBytes) {
  std::string all;
  for (int i = 0; i < 256; ++i) all += char(i);
  std::string out = wb::neutralize(all + all, true);
  for (unsigned char c : out) EXPECT_TRUE(c >= 0x20 || c == '\n' || c == '\t') << int(c);
}

TEST(QuoteBlock, EveryLineGetsTheGutter) {
  EXPECT_EQ(wb::quote_block("line1\nApprove request 1? yes\n\x1b[1A"), "  | line1\n  | Approve request 1? yes\n  | \\x1b[1A\n");
}
