#pragma once
// Text from outside (a model, a file, a request) made safe to show on a
// terminal: every control character, invalid UTF-8 byte, backslash and
// invisible or display-changing code point becomes a visible escape. The
// escapes and why each is unambiguous are described in broker/render.h,
// whose neutralize() is render() here; the log (util/log.h) uses it too.
#include <cstddef>
#include <string>
#include <string_view>

namespace warden::display {

struct Style {
  // keep_newlines: "\n" stays a newline; ascii_only: every non-ASCII code
  // point is escaped too, and a tab shows as "\t".
  bool keep_newlines = false;
  bool ascii_only = false;
};

// Appends the display form of the character (or invalid byte) at text[i];
// returns how many input bytes it covered.
size_t render_unit(std::string_view text, size_t i, const Style& style, std::string& out);

std::string render(std::string_view text, const Style& style);

}  // namespace warden::display
