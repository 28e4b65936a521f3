#pragma once
// Streaming a forced tool call the way OpenAI streams it: a first delta with
// the call's index and function name (arguments ""), then the arguments'
// JSON text in fragments as the model generates it.
//
// Only for output under a tool-call grammar (tool_choice "required" or a
// named function): the grammar guarantees the text is nothing but calls in
// the template's format, so a call, once its name and the start of its
// arguments are out, cannot turn out to be content -- nothing sent has to be
// taken back. Free-form output (tool_choice "auto") cannot promise that; its
// calls are sent whole once grammar::ToolCallParser has seen them complete.
//
// The scan is format-agnostic: in forced output every '{' outside a call is
// the start of the next call object {"name": ..., "arguments"|"parameters":
// VALUE}, whatever scaffolding (<tool_call>, [TOOL_CALLS][, "; ") is around
// it. A ToolCallParser reads the same text alongside and stays the authority:
// at the end its calls are compared with what was streamed.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "grammar/toolcall.h"
#include "util/json_nesting.h"

namespace warden::server {

struct ToolCallFragment {
  size_t index = 0;       // the call, in order of appearance
  bool opens = false;     // the call's first fragment: carries its name
  std::string name;       // when opens
  std::string arguments;  // the next piece of the arguments' JSON text
};

// Finds where a JSON object or array ends by bracket matching outside
// strings, one character at a time, so a value that is still being
// generated can be scanned as it grows.
struct JsonValueScanner {
  JsonBrackets brackets;
  // Takes the next character; true when it closes the value.
  bool step(char c) { return brackets.step(c) < 0 && brackets.depth == 0; }
};

class ToolCallStreamer {
 public:
  explicit ToolCallStreamer(grammar::ToolCallFormat format);

  // Feeds generated text (whole UTF-8 characters); returns the fragments it
  // completes. Fragments split the text only where the model's chunks or
  // JSON punctuation do, never inside a character.
  std::vector<ToolCallFragment> feed(std::string_view text);

  struct Final {
    std::vector<ToolCallFragment> fragments;  // calls the parser found that were not streamed
    std::string content;                      // text the parser did not take as calls
    std::vector<std::string> mismatches;      // streamed calls the parser disagrees with
  };
  // End of generation. Mismatches are expected only when generation was cut
  // short (max_tokens, a full context) in the middle of a call.
  Final finish();

  size_t calls_started() const { return names_.size(); }

 private:
  enum class State { kSeekCall, kHeader, kArguments, kCallEnd, kWholeCall };
  void step(std::vector<ToolCallFragment>& out);
  void read_header(std::vector<ToolCallFragment>& out);
  void stream_arguments(std::vector<ToolCallFragment>& out);
  void read_whole_call(std::vector<ToolCallFragment>& out);

  grammar::ToolCallParser parser_;
  std::string text_;            // everything generated so far
  State state_ = State::kSeekCall;
  size_t pos_ = 0;              // kSeekCall: where to look for the next '{'
  size_t call_start_ = 0;       // the '{' of the current call
  size_t args_scanned_ = 0;     // kArguments: first byte not yet scanned/sent
  JsonValueScanner args_value_;  // kArguments: where the value stands so far
  std::vector<std::string> names_;      // per streamed call
  std::vector<std::string> arguments_;  // per streamed call: the raw text sent
};

}  // namespace warden::server
