#include "util/log.h"

#include <atomic>
#include <cstdio>
#include <mutex>
#include <string>

namespace warden::log {
namespace {
std::atomic<Level> g_level{Level::info};
std::mutex g_mutex;

const char* prefix(Level l) {
  switch (l) {
    case Level::debug: return "debug: ";
    case Level::info: return "";
    case Level::warn: return "warning: ";
    case Level::error: return "error: ";
    default: return "";
  }
}

// Length of the well-formed UTF-8 sequence at the start of `s` (shortest
// form, no surrogates, at most U+10FFFF), or 0.
size_t utf8_length(std::string_view s) {
  const auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char lead = b(0);
  size_t n = lead < 0x80 ? 1 : lead >= 0xC2 && lead <= 0xDF ? 2 : lead >= 0xE0 && lead <= 0xEF ? 3
                                                              : lead >= 0xF0 && lead <= 0xF4 ? 4 : 0;
  if (n == 0 || n > s.size()) return 0;
  for (size_t i = 1; i < n; i++)
    if ((b(i) & 0xC0) != 0x80) return 0;
  if ((lead == 0xE0 && b(1) < 0xA0) || (lead == 0xED && b(1) > 0x9F) || (lead == 0xF0 && b(1) < 0x90) ||
      (lead == 0xF4 && b(1) > 0x8F))
    return 0;
  return n;
}

}  // namespace

std::string printable(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    const size_t n = utf8_length(text.substr(i));
    const bool c1 = n == 2 && c == 0xC2 && static_cast<unsigned char>(text[i + 1]) <= 0x9F;
    if (n == 0 || c1 || (c < 0x20 && c != '\t' && c != '\n') || c == 0x7F) {
      const size_t bytes = n == 0 ? 1 : n;
      for (size_t k = 0; k < bytes; k++) {
        char hex[5];
        std::snprintf(hex, sizeof hex, "\\x%02x", static_cast<unsigned char>(text[i + k]));
        out += hex;
      }
      i += bytes;
      continue;
    }
    out.append(text.substr(i, n));
    i += n;
  }
  return out;
}

void set_level(Level level) { g_level = level; }
Level level() { return g_level; }

void write(Level l, std::string_view message) {
  if (l < g_level.load()) return;
  const std::string shown = printable(message);
  std::lock_guard lock(g_mutex);
  std::fprintf(stderr, "warden: %s%s\n", prefix(l), shown.c_str());
}

}  // namespace warden::log
