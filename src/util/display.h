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

// Whether the locale (LC_ALL, else LC_CTYPE, else LANG) names UTF-8, which
// is all warden knows of what the terminal takes.
bool locale_is_utf8();

struct Style {
  // keep_newlines: "\n" stays a newline; ascii_only: every non-ASCII code
  // point is escaped too, and a tab shows as "\t".
  bool keep_newlines = false;
  bool ascii_only = false;
  // Every character whose UTF-8 bytes include one of 0x80-0x9f is escaped
  // too: a terminal in an 8-bit mode reads those bytes as C1 controls
  // (0x9b as CSI, which ESC [ also is), and many characters carry one (the
  // second byte of "Û" is 0x9b). On wherever the locale names no UTF-8.
  bool eight_bit_terminal = !locale_is_utf8();
};

// Appends the display form of the character (or invalid byte) at text[i];
// returns how many input bytes it covered.
size_t render_unit(std::string_view text, size_t i, const Style& style, std::string& out);

std::string render(std::string_view text, const Style& style);

// How many characters UTF-8 text holds: its bytes that do not continue one.
size_t utf8_length(std::string_view text);

// `text` with each byte that is not part of valid UTF-8 replaced by U+FFFD
// (a token's piece may hold part of a character; JSON text may not).
std::string utf8_or_replacement(std::string_view text);

// The longest start of `text` of at most `max_bytes` that cuts no UTF-8
// character in two.
std::string_view utf8_prefix(std::string_view text, size_t max_bytes);

}  // namespace warden::display
