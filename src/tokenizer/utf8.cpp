#include "tokenizer/utf8.h"

#include <algorithm>

namespace warden::tokenizer::utf8 {
namespace {

bool is_continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// Expected total length from the lead byte, 0 for bytes that never start a
// sequence (continuations, C0/C1 overlong leads, F5..FF).
size_t length_from_lead(unsigned char c) {
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return 2;
  if (c >= 0xE0 && c <= 0xEF) return 3;
  if (c >= 0xF0 && c <= 0xF4) return 4;
  return 0;
}

// The allowed range of the second byte depends on the lead byte; this is what
// rules out overlongs (E0, F0), surrogates (ED) and code points > U+10FFFF (F4).
bool second_byte_ok(unsigned char lead, unsigned char second) {
  switch (lead) {
    case 0xE0: return second >= 0xA0 && second <= 0xBF;
    case 0xED: return second >= 0x80 && second <= 0x9F;
    case 0xF0: return second >= 0x90 && second <= 0xBF;
    case 0xF4: return second >= 0x80 && second <= 0x8F;
    default: return is_continuation(second);
  }
}

}  // namespace

size_t sequence_length(std::string_view text, size_t pos) {
  if (pos >= text.size()) return 0;
  const auto lead = static_cast<unsigned char>(text[pos]);
  const size_t len = length_from_lead(lead);
  if (len == 0 || pos + len > text.size()) return 0;
  if (len == 1) return 1;
  if (!second_byte_ok(lead, static_cast<unsigned char>(text[pos + 1]))) return 0;
  for (size_t i = 2; i < len; i++)
    if (!is_continuation(static_cast<unsigned char>(text[pos + i]))) return 0;
  return len;
}

bool is_incomplete_prefix(std::string_view text, size_t pos) {
  if (pos >= text.size()) return false;
  const auto lead = static_cast<unsigned char>(text[pos]);
  const size_t len = length_from_lead(lead);
  const size_t have = text.size() - pos;
  if (len <= 1 || have >= len) return false;
  if (have >= 2 && !second_byte_ok(lead, static_cast<unsigned char>(text[pos + 1]))) return false;
  for (size_t i = 2; i < have; i++)
    if (!is_continuation(static_cast<unsigned char>(text[pos + i]))) return false;
  return true;
}

size_t invalid_length(std::string_view text, size_t pos) {
  const auto lead = static_cast<unsigned char>(text[pos]);
  const size_t len = length_from_lead(lead);
  if (len <= 1) return 1;  // a stray continuation byte or a byte that never starts a sequence
  size_t n = 1;
  if (pos + 1 < text.size() && second_byte_ok(lead, static_cast<unsigned char>(text[pos + 1]))) {
    n = 2;
    while (n < len && pos + n < text.size() && is_continuation(static_cast<unsigned char>(text[pos + n]))) n++;
  }
  return n;
}

bool is_valid(std::string_view text) {
  for (size_t pos = 0; pos < text.size();) {
    const size_t len = sequence_length(text, pos);
    if (len == 0) return false;
    pos += len;
  }
  return true;
}

std::string sanitize(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 8);
  for (size_t pos = 0; pos < text.size();) {
    const size_t len = sequence_length(text, pos);
    if (len > 0) {
      out.append(text.substr(pos, len));
      pos += len;
    } else {
      out.append(kReplacement);
      pos += invalid_length(text, pos);
    }
  }
  return out;
}

void append(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

uint32_t decode(std::string_view text, size_t pos, size_t length) {
  const auto byte = [&](size_t i) { return uint32_t(static_cast<unsigned char>(text[pos + i])); };
  switch (length) {
    case 1: return byte(0);
    case 2: return ((byte(0) & 0x1F) << 6) | (byte(1) & 0x3F);
    case 3: return ((byte(0) & 0x0F) << 12) | ((byte(1) & 0x3F) << 6) | (byte(2) & 0x3F);
    default:
      return ((byte(0) & 0x07) << 18) | ((byte(1) & 0x3F) << 12) | ((byte(2) & 0x3F) << 6) | (byte(3) & 0x3F);
  }
}

}  // namespace warden::tokenizer::utf8
