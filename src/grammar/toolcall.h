#pragma once
// Tool calls in generated text: a streaming parser for the formats chat
// templates use, and grammars that force a well-formed call.
//
// Formats:
//   kHermes  (Qwen, Hermes, many others):
//            <tool_call>\n{"name": "f", "arguments": {...}}\n</tool_call>
//            (several blocks allowed, content around them)
//   kLlama3  {"name": "f", "parameters": {...}} as the whole reply, possibly
//            after <|python_tag|>; several separated by ';' or whitespace
//   kMistral [TOOL_CALLS][{"name": "f", "arguments": {...}, "id": "..."}]
//            and the newer [TOOL_CALLS]f[ARGS]{...} / f[CALL_ID]id[ARGS]{...}
//
// Streaming: feed() takes text deltas and returns the content that is
// certainly not part of a call; text that might be the start of a marker is
// held back until it is decided. Text that looks like a call but does not
// parse is given back as content, with an entry in errors(); nothing throws.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "grammar/grammar.h"
#include "grammar/json_schema.h"

namespace warden::grammar {

enum class ToolCallFormat { kHermes, kLlama3, kMistral };

// "hermes"/"qwen", "llama3", "mistral"; nullopt for anything else.
std::optional<ToolCallFormat> tool_call_format_from_name(std::string_view name);
// Guesses the format a chat template emits (by the markers it mentions);
// Hermes when nothing matches.
ToolCallFormat detect_tool_call_format(std::string_view chat_template);

struct ToolCall {
  std::string id;         // as written by the model (Mistral); empty otherwise
  std::string name;
  std::string arguments;  // JSON text (an object for well-behaved models)
};

struct ToolCallDelta {
  std::string content;
  std::vector<ToolCall> tool_calls;
};

class ToolCallParser {
 public:
  explicit ToolCallParser(ToolCallFormat format);

  // Feeds the next piece of generated text.
  ToolCallDelta feed(std::string_view text);
  // End of generation: flushes held text, parses pending calls.
  ToolCallDelta finish();

  // Everything so far (all deltas together).
  const std::string& content() const { return content_; }
  const std::vector<ToolCall>& tool_calls() const { return calls_; }
  const std::vector<std::string>& errors() const { return errors_; }

 private:
  enum class State { kStart, kContent, kInCall, kHeld, kDone };
  void emit_content(ToolCallDelta& d, std::string_view text);
  void emit_call(ToolCallDelta& d, ToolCall call);
  void scan(ToolCallDelta& d);
  void scan_content_for(ToolCallDelta& d, std::string_view marker, State next);
  void parse_hermes_block(ToolCallDelta& d, const std::string& body, bool closed);
  void parse_held(ToolCallDelta& d);

  ToolCallFormat format_;
  State state_;
  std::string buffer_;
  std::string content_;
  std::vector<ToolCall> calls_;
  std::vector<std::string> errors_;
};

// One-shot convenience: parses a complete text.
struct ParsedToolCalls {
  std::string content;
  std::vector<ToolCall> tool_calls;
  std::vector<std::string> errors;
};
ParsedToolCalls parse_tool_calls(ToolCallFormat format, std::string_view text);

struct ToolGrammarOptions {
  bool parallel = false;            // allow several calls
  std::string only_tool;            // tool_choice naming one function
  bool include_marker = true;       // Mistral: emit "[TOOL_CALLS]" as text
  SchemaOptions schema;
};

// A grammar for "a call in `format` to one of `tools`" whose arguments always
// validate against that tool's parameters schema. `tools` is the OpenAI
// array ([{"type":"function","function":{"name","parameters"}}] or bare
// {"name","parameters"} entries). Throws warden::Error naming the bad tool.
Grammar tool_call_grammar(ToolCallFormat format, const nlohmann::ordered_json& tools,
                          const ToolGrammarOptions& options = {});

}  // namespace warden::grammar
