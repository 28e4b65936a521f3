#pragma once
// What generated text becomes in a chat answer: the reasoning split off
// (reasoning.h), then content, and tool calls when tools are in play. Free
// output is read by grammar::ToolCallParser; a forced call (tool_choice
// "required" or a named function) by the ToolCallStreamer that streams it
// (tool_stream.h), so that the streamed and the whole answer agree.
#include <optional>
#include <string>
#include <vector>

#include "grammar/toolcall.h"
#include "server/reasoning.h"
#include "server/scheduler.h"
#include "server/tool_stream.h"

namespace warden::server {

// What a piece of generated text adds to a chat answer.
struct ChatDelta {
  std::string reasoning;          // reasoning_content (split off by a ReasoningSplitter)
  grammar::ToolCallDelta answer;  // content, and tool calls when tools are in play
};

// Free output, piece by piece.
class ChatOutput {
 public:
  // parse_tools: look for tool calls in the content; reasoning: split a
  // <think> block off first (none: no splitting).
  ChatOutput(bool parse_tools, grammar::ToolCallFormat format, std::optional<ReasoningSplitter> reasoning);
  ChatDelta feed(const std::string& text);
  ChatDelta finish();  // what was held back

 private:
  void answer(const std::string& text, ChatDelta& d);

  std::optional<ReasoningSplitter> reasoning_;
  std::optional<grammar::ToolCallParser> parser_;
};

// Whether `text` holds anything but whitespace.
bool has_text(const std::string& text);

// Streamed calls the parser disagrees with: expected when generation was
// cut short in the middle of a call (logged for debugging), a bug otherwise.
void log_mismatches(const ToolCallStreamer::Final& f, Finish finish);

// A forced call's whole answer, read as a stream of it is, so that both
// agree: a call cut short keeps its name and the arguments generated so
// far, and output that never became a call is content.
struct ForcedAnswer {
  std::string content;
  std::vector<grammar::ToolCall> calls;
};
ForcedAnswer forced_answer(const std::string& text, grammar::ToolCallFormat format, Finish finish);

}  // namespace warden::server
