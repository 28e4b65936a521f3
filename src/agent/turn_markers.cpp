#include "agent/turn_markers.h"

#include <array>

namespace warden::agent {
namespace {

constexpr std::string_view kZeroWidthSpace = "\u200b";

// Markers broken after their first byte. `<|` and DeepSeek's `<｜` (a
// full-width bar) open every token of their families, whatever the name.
constexpr std::array<std::string_view, 23> kMarkers = {
    "<|", "<\uff5c", "<s>", "</s>", "<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>",
    "<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>", "<think>", "</think>",
    "[INST]", "[/INST]", "[TOOL_CALLS]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]", "[TOOL_RESULTS]",
    "[/TOOL_RESULTS]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]"};

}  // namespace

std::string defang_turn_markers(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    out += text[i];
    if (text[i] != '<' && text[i] != '[') continue;
    for (std::string_view marker : kMarkers)
      if (text.substr(i, marker.size()) == marker) {
        out += kZeroWidthSpace;
        break;
      }
  }
  return out;
}

}  // namespace warden::agent
