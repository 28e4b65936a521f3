// What log messages show of the text they carry: what broker::neutralize
// shows (its own tests cover every escape), on one line.
#include "util/log.h"

#include <gtest/gtest.h>

namespace warden::log {
namespace {

TEST(LogPrintable, ControlsAreShownAndTextIsKept) {
  EXPECT_EQ(printable("plain text, a tab\tand caf\xc3\xa9 \xf0\x9f\x99\x82"),
            "plain text, a tab\tand caf\xc3\xa9 \xf0\x9f\x99\x82");
  EXPECT_EQ(printable("\x1b[2J\x1b]0;title\x07"), "\\x1b[2J\\x1b]0;title\\x07");
  // Lines after the first are indented: a newline cannot start a line that
  // passes for warden's own.
  EXPECT_EQ(printable("name\nwarden: model verified\n"), "name\n    warden: model verified\n    ");
  EXPECT_EQ(printable(std::string("a\0b\x7f\r", 5)), "a\\x00b\\x7f\\r");
  // A literal backslash cannot pass for an escape.
  EXPECT_EQ(printable("C:\\x1b"), "C:\\\\x1b");
  // C1 controls (U+009B is CSI to many terminals), as UTF-8 and as bytes;
  // a bidi override.
  EXPECT_EQ(printable("\xc2\x9b" "31m"), "\\u009b31m");
  EXPECT_EQ(printable("\x9b" "31m"), "\\x9b31m");
  EXPECT_EQ(printable("abc\xe2\x80\xaetxt.exe"), "abc\\u202etxt.exe");
  // Not UTF-8: overlong forms, surrogates, a cut sequence.
  EXPECT_EQ(printable("\xc0\xaf"), "\\xc0\\xaf");
  EXPECT_EQ(printable("ok\xe2\x82"), "ok\\xe2\\x82");
}

}  // namespace
}  // namespace warden::log
