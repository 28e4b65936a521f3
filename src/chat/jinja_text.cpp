#include "chat/jinja_text.h"

#include <locale.h>
#include <string.h>
#include <wctype.h>

#include <algorithm>

#include "chat/jinja_error.h"

namespace warden::chat::jinja::text {

namespace {

constexpr char32_t kEscapedByteBase = 0xDC80;

// Length of a valid UTF-8 sequence starting at s[i], or 0 if invalid.
size_t valid_sequence_length(std::string_view s, size_t i, char32_t& out) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  size_t n;
  char32_t cp;
  if (c < 0x80) { out = c; return 1; }
  if ((c & 0xE0) == 0xC0) { n = 2; cp = c & 0x1F; }
  else if ((c & 0xF0) == 0xE0) { n = 3; cp = c & 0x0F; }
  else if ((c & 0xF8) == 0xF0) { n = 4; cp = c & 0x07; }
  else return 0;
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    unsigned char cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3F);
  }
  // Reject overlong forms, surrogates and values past U+10FFFF.
  if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000)) return 0;
  if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  out = cp;
  return n;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp >= kEscapedByteBase && cp <= kEscapedByteBase + 0x7F) {
    out.push_back(static_cast<char>(0x80 + (cp - kEscapedByteBase)));
  } else if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// A UTF-8 C locale for Unicode case mapping, created once, never global.
locale_t utf8_locale() {
  static locale_t loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(0));
  return loc;
}

}  // namespace

char32_t to_upper(char32_t c) {
  if (c < 0x80) return (c >= 'a' && c <= 'z') ? c - 32 : c;
  if (c >= kEscapedByteBase && c <= kEscapedByteBase + 0x7F) return c;
  locale_t loc = utf8_locale();
  return loc ? static_cast<char32_t>(towupper_l(static_cast<wint_t>(c), loc)) : c;
}

char32_t to_lower(char32_t c) {
  if (c < 0x80) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
  if (c >= kEscapedByteBase && c <= kEscapedByteBase + 0x7F) return c;
  locale_t loc = utf8_locale();
  return loc ? static_cast<char32_t>(towlower_l(static_cast<wint_t>(c), loc)) : c;
}

namespace {

bool is_cased_letter(char32_t c) { return to_upper(c) != c || to_lower(c) != c; }

}  // namespace

std::u32string decode(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    char32_t cp;
    size_t n = valid_sequence_length(s, i, cp);
    if (n == 0) {
      out.push_back(kEscapedByteBase + (static_cast<unsigned char>(s[i]) - 0x80));
      i += 1;
    } else {
      out.push_back(cp);
      i += n;
    }
  }
  return out;
}

std::string encode(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) append_utf8(out, c);
  return out;
}

size_t length(std::string_view s) {
  size_t count = 0;
  for (size_t i = 0; i < s.size();) {
    char32_t cp;
    size_t n = valid_sequence_length(s, i, cp);
    i += n ? n : 1;
    ++count;
  }
  return count;
}

bool is_space(char32_t c) {
  switch (c) {
    case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D:
    case 0x1C: case 0x1D: case 0x1E: case 0x1F: case 0x20:
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029:
    case 0x202F: case 0x205F: case 0x3000:
      return true;
    default:
      return c >= 0x2000 && c <= 0x200A;
  }
}

std::string strip(std::string_view s, bool left, bool right) {
  std::u32string u = decode(s);
  size_t b = 0, e = u.size();
  if (left) while (b < e && is_space(u[b])) ++b;
  if (right) while (e > b && is_space(u[e - 1])) --e;
  return encode(std::u32string_view(u).substr(b, e - b));
}

std::string strip_chars(std::string_view s, std::string_view chars, bool left, bool right) {
  std::u32string u = decode(s);
  std::u32string set = decode(chars);
  auto in_set = [&](char32_t c) { return set.find(c) != std::u32string::npos; };
  size_t b = 0, e = u.size();
  if (left) while (b < e && in_set(u[b])) ++b;
  if (right) while (e > b && in_set(u[e - 1])) --e;
  return encode(std::u32string_view(u).substr(b, e - b));
}

std::string upper(std::string_view s) {
  std::u32string u = decode(s);
  for (auto& c : u) c = to_upper(c);
  return encode(u);
}

std::string lower(std::string_view s) {
  std::u32string u = decode(s);
  for (auto& c : u) c = to_lower(c);
  return encode(u);
}

std::string capitalize(std::string_view s) {
  std::u32string u = decode(s);
  for (size_t i = 0; i < u.size(); ++i) u[i] = i == 0 ? to_upper(u[i]) : to_lower(u[i]);
  return encode(u);
}

std::string title(std::string_view s) {
  std::u32string u = decode(s);
  bool previous_cased = false;
  for (auto& c : u) {
    bool cased = is_cased_letter(c);
    if (cased) c = previous_cased ? to_lower(c) : to_upper(c);
    previous_cased = cased;
  }
  return encode(u);
}

size_t find(std::string_view s, std::string_view needle, size_t from) {
  if (from > s.size()) return std::string_view::npos;
  if (needle.empty()) return from;
  const void* at = ::memmem(s.data() + from, s.size() - from, needle.data(), needle.size());
  return at ? size_t(static_cast<const char*>(at) - s.data()) : std::string_view::npos;
}

size_t rfind(std::string_view s, std::string_view needle) {
  if (needle.size() > s.size()) return std::string_view::npos;
  // The first occurrence in the reversed text is the last one here.
  std::string rs(s.rbegin(), s.rend()), rn(needle.rbegin(), needle.rend());
  const size_t at = find(rs, rn);
  return at == std::string_view::npos ? at : s.size() - at - needle.size();
}

std::vector<std::string> split(std::string_view s, bool sep_given, std::string_view sep, int64_t maxsplit) {
  std::vector<std::string> parts;
  if (sep_given) {
    if (sep.empty()) throw TemplateError("split(): empty separator");
    size_t start = 0;
    while (maxsplit < 0 || static_cast<int64_t>(parts.size()) < maxsplit) {
      size_t at = find(s, sep, start);
      if (at == std::string_view::npos) break;
      parts.emplace_back(s.substr(start, at - start));
      start = at + sep.size();
    }
    parts.emplace_back(s.substr(start));
    return parts;
  }
  std::u32string u = decode(s);
  size_t i = 0;
  while (i < u.size()) {
    while (i < u.size() && is_space(u[i])) ++i;
    if (i >= u.size()) break;
    if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) >= maxsplit) {
      parts.push_back(encode(std::u32string_view(u).substr(i)));  // the rest, as is
      break;
    }
    size_t j = i;
    while (j < u.size() && !is_space(u[j])) ++j;
    parts.push_back(encode(std::u32string_view(u).substr(i, j - i)));
    i = j;
  }
  return parts;
}

std::vector<std::string> rsplit(std::string_view s, bool sep_given, std::string_view sep, int64_t maxsplit) {
  if (maxsplit < 0) return split(s, sep_given, sep, maxsplit);
  std::vector<std::string> reversed;
  if (sep_given) {
    if (sep.empty()) throw TemplateError("rsplit(): empty separator");
    // Splitting from the right is splitting the reversed text from the
    // left (one linear search each), each part reversed back.
    const std::string rs(s.rbegin(), s.rend()), rsep(sep.rbegin(), sep.rend());
    reversed = split(rs, true, rsep, maxsplit);
    for (auto& part : reversed) std::reverse(part.begin(), part.end());
  } else {
    std::u32string u = decode(s);
    size_t e = u.size();
    while (e > 0) {
      while (e > 0 && is_space(u[e - 1])) --e;
      if (e == 0) break;
      if (static_cast<int64_t>(reversed.size()) >= maxsplit) {
        reversed.push_back(encode(std::u32string_view(u).substr(0, e)));  // the rest, as is
        break;
      }
      size_t b = e;
      while (b > 0 && !is_space(u[b - 1])) --b;
      reversed.push_back(encode(std::u32string_view(u).substr(b, e - b)));
      e = b;
    }
  }
  return {reversed.rbegin(), reversed.rend()};
}

std::string replace(std::string_view s, std::string_view from, std::string_view to, int64_t count, size_t limit) {
  std::string out;
  auto check = [&] {
    if (out.size() > limit) throw TemplateError("replace(): result exceeds the template size limit");
  };
  if (from.empty()) {
    // Python inserts `to` before every code point and at the end.
    std::u32string u = decode(s);
    int64_t done = 0;
    for (char32_t c : u) {
      if (count < 0 || done < count) { out += to; ++done; }
      std::u32string one(1, c);
      out += encode(one);
      check();
    }
    if (count < 0 || done < count) out += to;
    check();
    return out;
  }
  size_t start = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    size_t at = find(s, from, start);
    if (at == std::string_view::npos) break;
    out.append(s.substr(start, at - start));
    out.append(to);
    check();
    start = at + from.size();
    ++done;
  }
  out.append(s.substr(start));
  check();
  return out;
}

}  // namespace warden::chat::jinja::text
