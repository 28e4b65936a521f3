// Fuzzes the parsers of an OpenAI-compatible backend's answers (the agent's
// model may be any server on the network): any body either parses into a
// turn or throws warden::Error naming what is wrong (a ContextOverflow for
// a context-length error, with whatever counts it gave). ASan/UBSan catch the
// rest.
#include <cstdint>
#include <string>

#include "agent/backend.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const warden::agent::AssistantTurn turn =
        warden::agent::parse_chat_completion(std::string(reinterpret_cast<const char*>(data), size));
    for (const auto& call : turn.tool_calls) (void)(call.name.size() + call.arguments.size() + call.id.size());
    (void)(turn.finish_reason.size() + turn.prompt_tokens + turn.completion_tokens);
  } catch (const warden::Error&) {
  }
  try {  // the same bytes as a /v1/models answer
    (void)warden::agent::parse_context_size(std::string(reinterpret_cast<const char*>(data), size));
  } catch (const warden::Error&) {
  }
  return 0;
}
