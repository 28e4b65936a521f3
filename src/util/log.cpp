#include "util/log.h"

#include <atomic>
#include <cstdio>
#include <mutex>
#include <string>

#include "util/display.h"

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
}  // namespace

std::string printable(std::string_view text) {
  // Lines after the first are indented: none can pass for a line of its own.
  std::string shown = display::render(text, display::Style{true, false});
  for (size_t at = shown.find('\n'); at != std::string::npos; at = shown.find('\n', at + 1)) shown.insert(at + 1, "    ");
  return shown;
}

void set_level(Level level) { g_level = level; }
Level level() { return g_level; }

void write(Level l, std::string_view message) {
  if (l < g_level.load()) return;
  write_shown(l, printable(message));
}

void write_shown(Level l, std::string_view shown) {
  if (l < g_level.load()) return;
  std::lock_guard lock(g_mutex);
  std::fprintf(stderr, "warden: %s%.*s\n", prefix(l), int(shown.size()), shown.data());
}

}  // namespace warden::log
