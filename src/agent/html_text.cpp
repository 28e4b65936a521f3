#include "agent/html_text.h"

#include <algorithm>
#include <cctype>

namespace warden::agent {
namespace {

char lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

bool starts_with_ci(std::string_view s, size_t pos, std::string_view prefix) {
  if (pos + prefix.size() > s.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i)
    if (lower(s[pos + i]) != prefix[i]) return false;
  return true;
}

// Finds "</name" case-insensitively from pos; npos when absent.
size_t find_close_tag(std::string_view s, size_t pos, std::string_view name) {
  for (size_t i = pos; i + 2 + name.size() <= s.size(); ++i)
    if (s[i] == '<' && s[i + 1] == '/' && starts_with_ci(s, i + 2, name)) return i;
  return std::string_view::npos;
}

std::string tag_name(std::string_view s, size_t lt) {
  size_t i = lt + 1;
  if (i < s.size() && s[i] == '/') ++i;
  std::string name;
  while (i < s.size() && std::isalnum(static_cast<unsigned char>(s[i]))) name += lower(s[i++]);
  return name;
}

bool is_block(const std::string& t) {
  static const char* kBlocks[] = {"p", "div", "br", "li", "ul", "ol", "tr", "table", "h1", "h2", "h3", "h4",
                                  "h5", "h6", "pre", "section", "article", "header", "footer", "blockquote", "hr",
                                  "title", "body", "html", "nav", "main"};
  for (const char* b : kBlocks)
    if (t == b) return true;
  return false;
}

void append_utf8(std::string& out, unsigned long cp) {
  if ((cp < 0x20 && cp != '\n' && cp != '\t') || cp == 0x7F || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Decodes the entity at s[pos] == '&'; returns the characters consumed (0
// when it is not a recognized entity).
size_t decode_entity(std::string_view s, size_t pos, std::string& out) {
  static const std::pair<const char*, const char*> kNamed[] = {
      {"amp;", "&"}, {"lt;", "<"}, {"gt;", ">"}, {"quot;", "\""}, {"apos;", "'"}, {"nbsp;", " "}, {"#39;", "'"}};
  for (const auto& [name, text] : kNamed) {
    std::string_view n(name);
    if (s.substr(pos + 1, n.size()) == n) {
      out += text;
      return n.size() + 1;
    }
  }
  if (pos + 2 < s.size() && s[pos + 1] == '#') {
    size_t i = pos + 2;
    const bool hex = i < s.size() && (s[i] == 'x' || s[i] == 'X');
    if (hex) ++i;
    unsigned long cp = 0;
    size_t digits = 0;
    while (i < s.size() && digits < 8 && std::isxdigit(static_cast<unsigned char>(s[i]))) {
      if (!hex && !std::isdigit(static_cast<unsigned char>(s[i]))) break;
      cp = cp * (hex ? 16 : 10) + static_cast<unsigned long>(std::isdigit(static_cast<unsigned char>(s[i]))
                                                                 ? s[i] - '0'
                                                                 : lower(s[i]) - 'a' + 10);
      ++i, ++digits;
    }
    if (digits > 0 && i < s.size() && s[i] == ';') {
      append_utf8(out, cp);
      return i + 1 - pos;
    }
  }
  return 0;
}

// Collapses runs of spaces and more than one blank line.
std::string collapse_whitespace(const std::string& in) {
  std::string out;
  int newlines = 0;
  bool space = false;
  for (char c : in) {
    if (c == '\n') {
      space = false;
      if (++newlines <= 2) out += '\n';
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\r') {
      space = true;
      continue;
    }
    if (space && !out.empty() && out.back() != '\n') out += ' ';
    space = false;
    newlines = 0;
    out += c;
  }
  size_t start = out.find_first_not_of('\n');
  if (start == std::string::npos) return "";
  size_t end = out.find_last_not_of('\n');
  return out.substr(start, end - start + 1);
}

}  // namespace

std::string strip_control_chars(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (c == '\n' || c == '\t') out += static_cast<char>(c);
    else if (c < 0x20 || c == 0x7F) continue;
    else out += static_cast<char>(c);
  }
  return out;
}

bool looks_like_html(std::string_view content_type, std::string_view body) {
  // A type the server named is believed: a Python file served as text/plain
  // may well hold "<div>" in a string.
  if (!content_type.empty()) return content_type.find("html") != std::string_view::npos;
  size_t i = 0;
  while (i < body.size() && std::isspace(static_cast<unsigned char>(body[i]))) ++i;
  if (starts_with_ci(body, i, "<!doctype html") || starts_with_ci(body, i, "<html")) return true;
  // Fragments without <html>: a known tag near the start.
  const size_t window = std::min<size_t>(body.size(), 1024);
  for (size_t k = 0; k < window; ++k)
    if (body[k] == '<')
      for (std::string_view tag : {"<body", "<p>", "<div", "<head", "<title", "<h1"})
        if (starts_with_ci(body, k, tag)) return true;
  return false;
}

// Inside <pre>, whitespace is the text's own (code's indentation): it is
// kept as these stand-ins, which collapse_whitespace leaves alone, and put
// back after it. The input's own control characters are dropped first, so
// the stand-ins can only be ours.
constexpr char kPreSpace = '\x01', kPreTab = '\x02', kPreNewline = '\x03';

std::string html_to_text(std::string_view s) {
  std::string text;
  int pre_depth = 0;
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] == '<') {
      if (s.substr(i, 4) == "<!--") {
        size_t end = s.find("-->", i + 4);
        i = end == std::string_view::npos ? s.size() : end + 3;
        continue;
      }
      const std::string name = tag_name(s, i);
      size_t gt = s.find('>', i);
      if (gt == std::string_view::npos) break;
      if ((name == "script" || name == "style" || name == "noscript") && s[i + 1] != '/') {
        size_t close = find_close_tag(s, gt + 1, name);
        size_t close_gt = close == std::string_view::npos ? std::string_view::npos : s.find('>', close);
        i = close_gt == std::string_view::npos ? s.size() : close_gt + 1;
        continue;
      }
      if (name == "pre") pre_depth = s[i + 1] == '/' ? std::max(0, pre_depth - 1) : pre_depth + 1;
      if (is_block(name)) text += '\n';
      if ((name == "td" || name == "th") && s[i + 1] != '/') text += ' ';  // a table's cells stay apart
      i = gt + 1;
      continue;
    }
    if (s[i] == '&') {
      size_t used = decode_entity(s, i, text);
      if (used > 0) {
        i += used;
        continue;
      }
    }
    const char c = s[i++];
    if ((static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') || c == 0x7F) continue;
    if (pre_depth > 0 && (c == ' ' || c == '\t' || c == '\n'))
      text += c == ' ' ? kPreSpace : c == '\t' ? kPreTab : kPreNewline;
    else
      text += c;
  }
  std::string out = collapse_whitespace(text);
  for (char& c : out) c = c == kPreSpace ? ' ' : c == kPreTab ? '\t' : c == kPreNewline ? '\n' : c;
  // A <pre> may start or end with a newline of its own: none at the ends.
  const size_t start = out.find_first_not_of('\n');
  if (start == std::string::npos) return "";
  return out.substr(start, out.find_last_not_of('\n') - start + 1);
}

}  // namespace warden::agent
