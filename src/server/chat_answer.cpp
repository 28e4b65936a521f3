#include "server/chat_answer.h"

#include <utility>

#include "util/log.h"

namespace warden::server {
namespace {

void append(grammar::ToolCallDelta& to, grammar::ToolCallDelta&& more) {
  to.content += more.content;
  to.tool_calls.insert(to.tool_calls.end(), std::make_move_iterator(more.tool_calls.begin()),
                       std::make_move_iterator(more.tool_calls.end()));
}

}  // namespace

ChatOutput::ChatOutput(bool parse_tools, grammar::ToolCallFormat format, std::optional<ReasoningSplitter> reasoning)
    : reasoning_(std::move(reasoning)) {
  if (parse_tools) parser_.emplace(format);
}

ChatDelta ChatOutput::feed(const std::string& text) {
  ChatDelta d;
  if (!reasoning_) {
    answer(text, d);
    return d;
  }
  ReasoningSplitter::Parts parts = reasoning_->feed(text);
  d.reasoning = std::move(parts.reasoning);
  answer(parts.content, d);
  return d;
}

ChatDelta ChatOutput::finish() {
  ChatDelta d;
  if (reasoning_) {
    ReasoningSplitter::Parts parts = reasoning_->finish();
    d.reasoning = std::move(parts.reasoning);
    answer(parts.content, d);
  }
  if (parser_) append(d.answer, parser_->finish());
  return d;
}

void ChatOutput::answer(const std::string& text, ChatDelta& d) {
  if (parser_) append(d.answer, parser_->feed(text));
  else d.answer.content += text;
}

bool has_text(const std::string& text) { return text.find_first_not_of(" \n\t\r") != std::string::npos; }

void log_mismatches(const ToolCallStreamer::Final& f, Finish finish) {
  for (const auto& m : f.mismatches) {
    if (finish == Finish::Length || finish == Finish::Cancelled) log::debug(m + " (generation was cut short)");
    else log::error(m);
  }
}

ForcedAnswer forced_answer(const std::string& text, grammar::ToolCallFormat format, Finish finish) {
  ToolCallStreamer streamer(format);
  std::vector<ToolCallFragment> fragments = streamer.feed(text);
  ToolCallStreamer::Final f = streamer.finish();
  log_mismatches(f, finish);
  fragments.insert(fragments.end(), f.fragments.begin(), f.fragments.end());
  ForcedAnswer a;
  for (const auto& fragment : fragments) {
    if (fragment.index >= a.calls.size()) a.calls.resize(fragment.index + 1);
    if (fragment.opens) a.calls[fragment.index].name = fragment.name;
    a.calls[fragment.index].arguments += fragment.arguments;
  }
  if (a.calls.empty() && has_text(f.content)) a.content = f.content;
  return a;
}

}  // namespace warden::server
