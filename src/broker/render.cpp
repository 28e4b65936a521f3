#include "broker/render.h"

#include <cstdio>

namespace warden::broker {
namespace {

void append_hex_byte(std::string& out, unsigned char b) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "\\x%02x", b);
  out += buf;
}

void append_codepoint_escape(std::string& out, uint32_t cp) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "\\u%04x", unsigned(cp));
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

// Characters that change how surrounding text is displayed without being
// visible themselves: C1 controls, bidi embeddings/overrides/isolates,
// zero-width characters, line/paragraph separators, BOM.
bool is_invisible_format(uint32_t cp) {
  return (cp >= 0x80 && cp <= 0x9f) || (cp >= 0x200b && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202e) ||
         (cp >= 0x2060 && cp <= 0x2069) || cp == 0xfeff || cp == 0x061c;
}

}  // namespace

std::string neutralize(std::string_view text, bool keep_newlines) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      if (c == '\n') out += keep_newlines ? "\n" : "\\n";
      else if (c == '\t') out += '\t';
      else if (c == '\r') out += "\\r";
      else if (c < 0x20 || c == 0x7f) append_hex_byte(out, c);
      else out += char(c);
      ++i;
      continue;
    }
    uint32_t cp = 0;
    size_t len = decode_utf8(text, i, cp);
    if (len == 0) {
      append_hex_byte(out, c);
      ++i;
    } else {
      if (is_invisible_format(cp)) append_codepoint_escape(out, cp);
      else out.append(text.substr(i, len));
      i += len;
    }
  }
  return out;
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

}  // namespace warden::broker
