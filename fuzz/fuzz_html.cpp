// Fuzzes the HTML-to-text reducer that fetch_url runs on any page the web
// returns. It must never crash, and its output must hold what it promises:
// no control bytes but newline and tab, no more than one blank line in a
// row (but inside a <pre>, whose text is kept as it is), no newline at
// either end.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "agent/html_text.h"

namespace {
void check_no_controls(const std::string& text) {
  for (unsigned char c : text)
    if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7F) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::string text = warden::agent::html_to_text(input);
  check_no_controls(text);
  std::string lower(input);
  for (char& c : lower) c = char(c >= 'A' && c <= 'Z' ? c + 32 : c);
  if (lower.find("<pre") == std::string::npos && text.find("\n\n\n") != std::string::npos) std::abort();
  if (!text.empty() && (text.front() == '\n' || text.back() == '\n')) std::abort();
  check_no_controls(warden::agent::strip_control_chars(input));
  (void)warden::agent::looks_like_html(input.substr(0, size / 2), input.substr(size / 2));
  return 0;
}
