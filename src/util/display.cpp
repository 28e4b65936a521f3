#include "util/display.h"

#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace warden::display {
namespace {

void append_hex_byte(std::string& out, unsigned char b) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "\\x%02x", b);
  out += buf;
}

// \uXXXX up to U+FFFF, \UXXXXXXXX above: a fixed number of digits for each,
// so "\u00e9" followed by a literal "1" can never read as U+00E91.
void append_codepoint_escape(std::string& out, uint32_t cp) {
  char buf[16];
  if (cp <= 0xffff) std::snprintf(buf, sizeof buf, "\\u%04x", unsigned(cp));
  else std::snprintf(buf, sizeof buf, "\\U%08x", unsigned(cp));
  out += buf;
}

// Decodes one UTF-8 sequence at text[i]; returns its length, or 0 when the
// bytes are not valid UTF-8 (overlong forms and surrogates included).
size_t decode_utf8(std::string_view text, size_t i, uint32_t& cp) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(text[i + k]); };
  unsigned char b0 = b(0);
  size_t len;
  uint32_t min;
  if (b0 < 0x80) { cp = b0; return 1; }
  if ((b0 & 0xe0) == 0xc0) { len = 2; cp = b0 & 0x1f; min = 0x80; }
  else if ((b0 & 0xf0) == 0xe0) { len = 3; cp = b0 & 0x0f; min = 0x800; }
  else if ((b0 & 0xf8) == 0xf0) { len = 4; cp = b0 & 0x07; min = 0x10000; }
  else return 0;
  if (i + len > text.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    if ((b(k) & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (b(k) & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return len;
}

// Code points that are invisible, change how the text around them looks, or
// draw whatever the font decides: shown raw, they let two different strings
// look the same (a tag character inside "notes.txt", a filler that looks
// like a space). Mostly Unicode's Default_Ignorable_Code_Point set.
bool is_hidden_codepoint(uint32_t cp) {
  struct Range {
    uint32_t lo, hi;
  };
  static constexpr Range kHidden[] = {
      {0x0080, 0x009f},    // C1 controls (CSI, NEL...)
      {0x00a0, 0x00a0},    // no-break space: a shell does not split words on it
      {0x00ad, 0x00ad},    // soft hyphen
      {0x034f, 0x034f},    // combining grapheme joiner
      {0x061c, 0x061c},    // Arabic letter mark
      {0x115f, 0x1160},    // Hangul choseong/jungseong fillers
      {0x1680, 0x1680},    // Ogham space mark
      {0x17b4, 0x17b5},    // Khmer inherent vowels
      {0x180b, 0x180f},    // Mongolian variation selectors, vowel separator
      {0x2000, 0x200a},    // en/em/thin/hair... spaces: look like ' ', are not
      {0x200b, 0x200f},    // zero-width space/joiners, LRM, RLM
      {0x2028, 0x202e},    // line/paragraph separators, bidi embeddings/overrides
      {0x202f, 0x202f},    // narrow no-break space
      {0x205f, 0x205f},    // medium mathematical space
      {0x2060, 0x206f},    // word joiner, invisible operators, isolates, deprecated formats
      {0x2800, 0x2800},    // Braille blank: looks like a space
      {0x3000, 0x3000},    // ideographic space
      {0x3164, 0x3164},    // Hangul filler
      {0xe000, 0xf8ff},    // private use: the glyph is the font's choice
      {0xfdd0, 0xfdef},    // noncharacters
      {0xfe00, 0xfe0f},    // variation selectors
      {0xfeff, 0xfeff},    // BOM / zero-width no-break space
      {0xffa0, 0xffa0},    // halfwidth Hangul filler
      {0xfff0, 0xfffb},    // unassigned specials, interlinear annotation controls
      {0x1bca0, 0x1bca3},  // shorthand format controls
      {0x1d173, 0x1d17a},  // musical symbol format controls
      {0xe0000, 0xe0fff},  // tag characters, variation selectors supplement
      {0xf0000, 0x10ffff}, // supplementary private use planes
  };
  if ((cp & 0xfffe) == 0xfffe) return true;  // noncharacters U+xFFFE, U+xFFFF
  for (const Range& r : kHidden)
    if (cp >= r.lo && cp <= r.hi) return true;
  return false;
}

void render_ascii_byte(std::string& out, unsigned char c, const Style& style) {
  if (c == '\n') out += style.keep_newlines ? "\n" : "\\n";
  else if (c == '\t') out += style.ascii_only ? "\\t" : "\t";  // one line in ASCII: no gap of unknown width
  else if (c == '\r') out += "\\r";
  else if (c == '\\') out += "\\\\";  // so every lone backslash starts a warden escape
  else if (c < 0x20 || c == 0x7f) append_hex_byte(out, c);
  else out += char(c);
}

// Whether a byte of this encoded character would be a C1 control to an
// 8-bit terminal.
bool has_c1_byte(std::string_view encoded) {
  for (char c : encoded)
    if (static_cast<unsigned char>(c) >= 0x80 && static_cast<unsigned char>(c) <= 0x9f) return true;
  return false;
}

}  // namespace

bool locale_is_utf8() {
  const char* value = nullptr;
  for (const char* name : {"LC_ALL", "LC_CTYPE", "LANG"})
    if (const char* v = std::getenv(name); v && *v) {
      value = v;
      break;
    }
  if (!value) return false;
  std::string lower;
  for (const char* p = value; *p; ++p) lower += char(std::tolower(static_cast<unsigned char>(*p)));
  return lower.find("utf-8") != std::string::npos || lower.find("utf8") != std::string::npos;
}

size_t render_unit(std::string_view text, size_t i, const Style& style, std::string& out) {
  unsigned char c = static_cast<unsigned char>(text[i]);
  if (c < 0x80) {
    render_ascii_byte(out, c, style);
    return 1;
  }
  uint32_t cp = 0;
  size_t len = decode_utf8(text, i, cp);
  if (len == 0) {
    append_hex_byte(out, c);
    return 1;
  }
  if (style.ascii_only || is_hidden_codepoint(cp) || (style.eight_bit_terminal && has_c1_byte(text.substr(i, len))))
    append_codepoint_escape(out, cp);
  else out.append(text.substr(i, len));
  return len;
}

std::string render(std::string_view text, const Style& style) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) i += render_unit(text, i, style, out);
  return out;
}

size_t utf8_length(std::string_view text) {
  size_t n = 0;
  for (char c : text) n += (static_cast<unsigned char>(c) & 0xc0) != 0x80;
  return n;
}

std::string utf8_or_replacement(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    uint32_t cp;
    const size_t len = decode_utf8(text, i, cp);
    if (len == 0) out += "\xEF\xBF\xBD";
    else out.append(text.substr(i, len));
    i += len == 0 ? 1 : len;
  }
  return out;
}

std::string_view utf8_prefix(std::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  // Back to the start of the character cut at the end; a character has at
  // most three continuation bytes, so text that is not UTF-8 (a run of
  // them) loses at most three bytes, not everything.
  size_t n = max_bytes;
  while (n > 0 && n + 3 > max_bytes && (static_cast<unsigned char>(text[n]) & 0xc0) == 0x80) --n;
  return text.substr(0, n);
}

}  // namespace warden::display
