// Fuzzes the Jinja chat-template engine: any template text must either
// render or fail with TemplateError/warden::Error, within tight limits on
// steps, output, allocation and nesting (no crash, hang or memory blow-up).
// ASan/UBSan catch the rest.
#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "chat/chat_template.h"
#include "util/error.h"

namespace {

const warden::chat::ChatInputs& fixed_inputs() {
  static const warden::chat::ChatInputs inputs = [] {
    warden::chat::ChatInputs in;
    in.messages = nlohmann::ordered_json::parse(R"([
      {"role": "system", "content": "You are terse."},
      {"role": "user", "content": "Weather in Paris? Ünïcödé ✓"},
      {"role": "assistant", "content": "", "tool_calls": [{"id": "call_1", "type": "function",
        "function": {"name": "get_weather", "arguments": {"city": "Paris", "n": 1.5}}}]},
      {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\": 18}"}])");
    in.tools = nlohmann::ordered_json::parse(R"([{"type": "function", "function": {"name": "get_weather",
      "description": "Get weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
      "required": ["city"]}}}])");
    in.bos_token = "<s>";
    in.eos_token = "</s>";
    in.now = 1700000000;
    return in;
  }();
  return inputs;
}

warden::chat::TemplateLimits fuzz_limits() {
  warden::chat::TemplateLimits limits;
  limits.max_output_bytes = 1 << 16;
  limits.max_allocated_bytes = 1 << 22;
  limits.max_collection_items = 1 << 12;
  limits.max_steps = 20000;
  limits.max_call_depth = 16;
  limits.max_nesting = 64;
  return limits;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 1 << 16) return 0;
  std::string source(reinterpret_cast<const char*>(data), size);
  try {
    warden::chat::ChatTemplate tmpl(source, fuzz_limits());
    std::string out = tmpl.render(fixed_inputs());
    if (out.size() > fuzz_limits().max_output_bytes) __builtin_trap();
  } catch (const warden::Error&) {
  }
  return 0;
}
