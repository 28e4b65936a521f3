#include "broker/render.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <vector>

namespace warden::broker {
namespace {

struct Style {
  bool keep_newlines = false;
  bool ascii_only = false;  // escape every non-ASCII code point too
};

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

// Appends the display form of the character (or invalid byte) at text[i];
// returns how many input bytes it covered.
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
  if (style.ascii_only || is_hidden_codepoint(cp)) append_codepoint_escape(out, cp);
  else out.append(text.substr(i, len));
  return len;
}

std::string render(std::string_view text, const Style& style) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) i += render_unit(text, i, style, out);
  return out;
}

// Renders text[from, end) unit by unit into `out` while it stays within
// `budget` output bytes; returns the input offset where it stopped.
size_t render_head(std::string_view text, size_t from, size_t budget, const Style& style, std::string& out) {
  std::string unit;
  size_t i = from;
  while (i < text.size()) {
    unit.clear();
    size_t n = render_unit(text, i, style, unit);
    if (out.size() + unit.size() > budget) break;
    out += unit;
    i += n;
  }
  return i;
}

// The last whole units of text[from, end) that fit in `budget` output bytes;
// `start` gets the input offset where they begin. A unit's display form is
// never shorter than its input, so the last `budget` input bytes suffice.
std::string render_tail(std::string_view text, size_t from, size_t budget, const Style& style, size_t& start) {
  size_t s = std::max(from, text.size() - std::min(budget, text.size()));
  for (int k = 0; k < 3 && s > from && s < text.size() && (text[s] & 0xc0) == 0x80; ++k) ++s;  // a char's start
  std::vector<std::pair<size_t, size_t>> units;  // (input offset, output offset)
  std::string out;
  for (size_t i = s; i < text.size();) {
    units.emplace_back(i, out.size());
    i += render_unit(text, i, style, out);
  }
  size_t k = 0;
  while (k < units.size() && out.size() - units[k].second > budget) ++k;
  start = k < units.size() ? units[k].first : text.size();
  return k < units.size() ? out.substr(units[k].second) : std::string();
}

void append_line(std::string& out, std::string_view gutter, std::string_view text) {
  out.append(gutter);
  out.append(text);
  out.push_back('\n');
}

}  // namespace

std::string neutralize(std::string_view text, bool keep_newlines) { return render(text, Style{keep_newlines, false}); }

std::string neutralize_ascii(std::string_view text) { return render(text, Style{false, true}); }

bool has_non_ascii(std::string_view text) {
  return std::any_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
}

CappedText neutralize_capped(std::string_view text, size_t head_bytes, size_t tail_bytes, bool ascii_only) {
  const Style style{false, ascii_only};
  CappedText r;
  size_t cut = render_head(text, 0, head_bytes + tail_bytes, style, r.text);
  if (cut == text.size()) return r;  // all of it fits
  r.text.clear();
  cut = render_head(text, 0, head_bytes, style, r.text);
  size_t tail_start = text.size();
  std::string tail = tail_bytes ? render_tail(text, cut, tail_bytes, style, tail_start) : std::string();
  r.hidden_bytes = tail_start - cut;
  r.text += " ...(" + std::to_string(r.hidden_bytes) + " more bytes)";
  if (!tail.empty()) r.text += "... " + tail;
  return r;
}

std::string quote_block(std::string_view text, std::string_view gutter) {
  std::string safe = neutralize(text, true);
  if (!safe.empty() && safe.back() == '\n') safe.pop_back();  // the block ends the line itself
  std::string out(gutter);
  for (char c : safe) {
    out += c;
    if (c == '\n') out += gutter;
  }
  return out + "\n";
}

std::string quote_excerpt(std::string_view text, const ExcerptLimits& limits, std::string_view where_to_see_all,
                          std::string_view gutter) {
  std::string_view body = text;
  if (!body.empty() && body.back() == '\n') body.remove_suffix(1);  // as quote_block: no empty last line
  const size_t lines = size_t(std::count(body.begin(), body.end(), '\n')) + 1;
  const bool cut = lines > limits.head_lines + limits.tail_lines;
  const size_t tail_from = lines - limits.tail_lines;  // first line of the tail, when cut
  std::string out;
  size_t pos = 0;
  for (size_t k = 0; k < lines; ++k) {
    size_t end = std::min(body.find('\n', pos), body.size());
    std::string_view line = body.substr(pos, end - pos);
    pos = end + 1;
    if (!cut || k < limits.head_lines || k >= tail_from) {
      append_line(out, gutter, neutralize_capped(line, limits.line_bytes, 0, false).text);
    } else if (k == limits.head_lines) {
      out += "... " + std::to_string(tail_from - limits.head_lines) + " lines not shown; ";
      out.append(where_to_see_all);
      out += " ...\n";
    }
  }
  return out;
}

}  // namespace warden::broker
