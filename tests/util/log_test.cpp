// What log messages show of the text they carry.
#include "util/log.h"

#include <gtest/gtest.h>

namespace warden::log {
namespace {

TEST(LogPrintable, ControlsAreShownAndTextIsKept) {
  EXPECT_EQ(printable("plain text, tab\tand\nnewline"), "plain text, tab\tand\nnewline");
  EXPECT_EQ(printable("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x99\x82"), "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x99\x82");
  EXPECT_EQ(printable("\x1b[2J\x1b]0;title\x07"), "\\x1b[2J\\x1b]0;title\\x07");
  EXPECT_EQ(printable(std::string("a\0b\x7f", 4)), "a\\x00b\\x7f");
  EXPECT_EQ(printable("\r"), "\\x0d");
  // C1 controls (U+009B is CSI to many terminals), as UTF-8 and as bytes.
  EXPECT_EQ(printable("\xc2\x9b" "31m"), "\\xc2\\x9b31m");
  EXPECT_EQ(printable("\x9b" "31m"), "\\x9b31m");
  // Not UTF-8: overlong forms, surrogates, a cut sequence.
  EXPECT_EQ(printable("\xc0\xaf"), "\\xc0\\xaf");
  EXPECT_EQ(printable("\xed\xa0\x80"), "\\xed\\xa0\\x80");
  EXPECT_EQ(printable("ok\xe2\x82"), "ok\\xe2\\x82");
}

}  // namespace
}  // namespace warden::log
