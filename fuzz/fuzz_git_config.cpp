// Fuzzes the git config reader that planted_code runs on config files a
// jailed command may have written. It must never crash, and what it returns
// must hold what git's format allows: section and key names of letters,
// digits and '-' (a key starting with a letter), in lower case; and the
// words taken from a value never empty, never an option or a variable.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "agent/git_config.h"

namespace {
bool is_name(const std::string& s, bool dots) {
  for (unsigned char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || (dots && c == '.'))) return false;
  return true;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  for (const auto& e : warden::agent::parse_git_config(input)) {
    if (e.section.empty() || !is_name(e.section, false)) std::abort();
    if (e.name.empty() || e.name[0] < 'a' || e.name[0] > 'z' || !is_name(e.name, false)) std::abort();
    if (!e.has_value && !e.value.empty()) std::abort();
    if (warden::agent::runs_as_command(e)) (void)warden::agent::path_words(warden::agent::command_of(e));
    (void)warden::agent::names_a_destination(e);
    for (const std::string& w : warden::agent::path_words(e.value))
      if (w.empty() || w[0] == '-' || w[0] == '$' || w[0] == '%') std::abort();
  }
  for (const std::string& w : warden::agent::path_words(input))
    if (w.empty()) std::abort();
  for (const std::string& p : warden::agent::command_pieces(input))
    if (p.empty() || p[0] == '-' || p[0] == '%') std::abort();
  return 0;
}
