#include "agent/agent.h"

#include <algorithm>

#include "agent/html_text.h"
#include "agent/turn_markers.h"
#include "broker/render.h"
#include "util/display.h"
#include "util/error.h"

namespace warden::agent {
using nlohmann::json;

std::string default_system_prompt(const std::string& workspace) {
  return "You are warden, a careful assistant working in the project folder " + workspace +
         ". Use the tools to inspect and change files there, run commands and fetch web pages. Paths are relative "
         "to the project folder. Every action is checked by a policy and may need the user's approval; when a tool "
         "result says \"denied\", do not retry the same action: explain what you needed instead. When the task is "
         "done, answer with a short summary and no tool call.";
}

Agent::Agent(ModelBackend& model, ToolRunner& tools, Gate& gate, AgentConfig config)
    : model_(model), tools_(tools), gate_(gate), config_(std::move(config)) {
  if (config_.max_steps < 1) throw Error("--max-steps must be at least 1");
}

namespace {
using display::utf8_prefix;

// Model-made text for the audit log (control characters removed).
std::string short_text(const std::string& s, size_t n = 200) {
  std::string t = strip_control_chars(s);
  return t.size() <= n ? t : std::string(utf8_prefix(t, n)) + "...";
}

// Model-made text for one progress line on the human's terminal: escapes,
// C1 controls, bidi and zero-width characters, even newlines, are shown
// visibly (broker::neutralize), so it cannot restyle the terminal or print a
// line that passes for one of warden's own.
std::string progress_text(const std::string& s, size_t n = 200) {
  return broker::neutralize(utf8_prefix(s, n), /*keep_newlines=*/false) + (s.size() > n ? "..." : "");
}

size_t json_bytes(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace).size(); }

// Arguments of an old tool call up to this size stay when make_room
// shortens the conversation (a path, a command); longer ones (a file's new
// content) go.
constexpr size_t kKeptArgumentBytes = 1024;

std::string removed_note(size_t bytes) {
  return "[warden: " + std::to_string(bytes) +
         " bytes were removed here to fit the model's context; run the tool again if you need them]";
}

// Shortens one message in place; false when there was nothing to shorten.
bool shorten(json& message) {
  if (message["role"] == "tool") {
    const size_t n = message["content"].get_ref<const std::string&>().size();
    const std::string note = removed_note(n);
    if (n <= note.size()) return false;
    message["content"] = note;
    return true;
  }
  bool changed = false;
  if (message.contains("tool_calls"))
    for (json& call : message["tool_calls"]) {
      json& arguments = call["function"]["arguments"];
      const size_t n = arguments.get_ref<const std::string&>().size();
      if (n <= kKeptArgumentBytes) continue;
      arguments = json{{"removed", removed_note(n)}}.dump();
      changed = true;
    }
  return changed;
}
}  // namespace

void Agent::push(json message) {
  conversation_bytes_ += json_bytes(message);
  messages_.push_back(std::move(message));
}

void Agent::check_audit() const {
  const std::string why = gate_.audit_failure();
  if (!why.empty())
    throw Error("the agent stopped: the audit log is unreachable (" + why + "), and nothing may go on unaudited");
}

AgentResult Agent::ask(const std::string& task) {
  AgentResult result;
  check_audit();
  if (messages_.empty() && !config_.system_prompt.empty()) push({{"role", "system"}, {"content", config_.system_prompt}});
  context_.add(broker::Label{broker::Source::user, ""});
  push({{"role", "user"}, {"content", task}});
  const json tools = ToolRunner::schemas();
  gate_.record_event("agent.task", short_text(task, 2000));

  for (int step = 0; step < config_.max_steps; ++step) {
    check_audit();
    // Every tool result stays in the conversation and is sent again on each
    // step: a cap keeps a hostile model from growing it without end.
    if (conversation_bytes_ > config_.max_conversation_bytes)
      return stop(result, "stopped: the conversation has grown past " + std::to_string(config_.max_conversation_bytes) +
                              " bytes; start a new one");
    AssistantTurn turn = complete_audited(tools);
    ++result.steps;
    gate_.record_event("model.call", model_.describe() + ": " + std::to_string(turn.tool_calls.size()) +
                                         " tool call(s), text: " + short_text(turn.content));
    check_audit();
    if (turn.tool_calls.empty()) {
      if (turn.finish_reason == "length" && room_after_cut(turn)) continue;
      push({{"role", "assistant"}, {"content", turn.content}});
      result.answer = broker::neutralize(turn.content, /*keep_newlines=*/true);
      if (turn.finish_reason == "length") {
        result.cut_off = true;
        gate_.record_event("agent.cut_off", "the model's answer ended at its token limit");
        result.answer += "\n[warden: the answer was cut off at the model's token limit]";
      }
      return result;
    }
    run_tool_calls(turn, result);
  }
  result.step_limit = true;
  return stop(result, "stopped after " + std::to_string(config_.max_steps) + " steps without a final answer");
}

// A model call that fails (backend down, a reply that is not a valid chat
// completion) ends the task; the log says so before the error goes up. A
// conversation the model's context cannot hold is first shortened, down to
// 60 % of the context where the backend gave the counts (the rest is room
// for the answer), else to half its bytes; it ends the task only when
// nothing is left to shorten.
AssistantTurn Agent::complete_audited(const json& tools) {
  for (;;) {
    try {
      return model_.complete(messages_, tools);
    } catch (const ContextOverflow& e) {
      const double fraction = e.prompt_tokens > 0 && e.context_tokens > 0
                                  ? 0.6 * double(e.context_tokens) / double(e.prompt_tokens)
                                  : 0.5;
      if (make_room(std::min(fraction, 0.9), "the conversation does not fit the model's context")) continue;
      gate_.record_event("model.error", model_.describe() + ": " + e.what());
      throw Error(std::string(e.what()) +
                  ", even with every earlier tool result removed; start a new conversation (/reset in chat), or "
                  "give the server a larger context (-c)");
    } catch (const std::exception& e) {
      gate_.record_event("model.error", model_.describe() + ": " + e.what());
      throw;
    }
  }
}

// An answer cut at the token limit while the prompt took most of the
// context (llama-server, vLLM and warden serve let an answer run to the
// context's end): the prompt left it no room, so make some and ask again.
// An answer that was long on its own is kept, cut.
bool Agent::room_after_cut(const AssistantTurn& turn) {
  if (turn.prompt_tokens <= 0 || turn.completion_tokens < 0 || turn.prompt_tokens < 3 * turn.completion_tokens)
    return false;
  const double context = double(turn.prompt_tokens + turn.completion_tokens);
  return make_room(0.6 * context / double(turn.prompt_tokens), "the model's answer was cut off at its context's end");
}

bool Agent::make_room(double fraction, const std::string& why) {
  const size_t before = conversation_bytes_;
  const auto target = size_t(double(before) * fraction);
  size_t shortened = 0;
  for (; first_unshortened_ < messages_.size() && conversation_bytes_ > target; ++first_unshortened_) {
    json& message = messages_[first_unshortened_];
    const size_t old_bytes = json_bytes(message);
    if (!shorten(message)) continue;
    ++shortened;
    conversation_bytes_ = conversation_bytes_ - old_bytes + json_bytes(message);
  }
  if (shortened == 0) return false;
  const std::string what = why + ": " + std::to_string(shortened) + " earlier message(s) shortened, " +
                           std::to_string(before - conversation_bytes_) + " bytes removed";
  gate_.record_event("context.shorten", what);
  if (config_.on_progress) config_.on_progress(what);
  return true;
}

AgentResult& Agent::stop(AgentResult& result, const std::string& why) {
  result.answer = why;
  gate_.record_event("agent.stop", why);
  return result;
}

std::string Agent::refusal(const ToolCall& call, size_t index) const {
  if (index >= config_.max_tool_calls_per_turn)
    return "error: more than " + std::to_string(config_.max_tool_calls_per_turn) +
           " tool calls in one turn; this one was not run";
  if (call.name.size() > kMaxToolNameBytes)
    return "error: a tool name longer than " + std::to_string(kMaxToolNameBytes) + " bytes is invalid; not run";
  if (call.id.size() > kMaxToolNameBytes)
    return "error: a tool call id longer than " + std::to_string(kMaxToolNameBytes) + " bytes is invalid; not run";
  return "";
}

void Agent::run_tool_calls(const AssistantTurn& turn, AgentResult& result) {
  // Calls refused here are echoed back with a short name and id, so neither
  // can flood the conversation, the audit log or the terminal.
  std::vector<ToolCall> calls = turn.tool_calls;
  std::vector<std::string> refused(calls.size());
  for (size_t i = 0; i < calls.size(); ++i) {
    refused[i] = refusal(calls[i], i);
    if (refused[i].empty()) continue;
    calls[i].name = std::string(utf8_prefix(calls[i].name, kMaxToolNameBytes));
    if (calls[i].id.size() > kMaxToolNameBytes) calls[i].id = "warden_call_" + std::to_string(i);
    if (i < config_.max_tool_calls_per_turn) gate_.record_event("tool.invalid", calls[i].name + ": " + refused[i]);
  }
  if (calls.size() > config_.max_tool_calls_per_turn)
    gate_.record_event("tool.invalid", std::to_string(calls.size()) + " tool calls in one turn; only the first " +
                                           std::to_string(config_.max_tool_calls_per_turn) + " may run");
  json assistant{{"role", "assistant"}, {"content", turn.content}, {"tool_calls", json::array()}};
  for (const auto& c : calls)
    assistant["tool_calls"].push_back(
        {{"id", c.id}, {"type", "function"}, {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
  push(std::move(assistant));
  for (size_t i = 0; i < calls.size(); ++i) {
    const ToolCall& call = calls[i];
    ToolOutcome out{refused[i], {broker::Label{broker::Source::tool, "agent"}}};
    if (refused[i].empty()) {
      if (config_.on_progress) config_.on_progress("tool " + progress_text(call.name, 40) + " " + progress_text(call.arguments));
      out = tools_.execute(call, context_);
      ++result.tool_calls;
      if (out.text.rfind("denied: ", 0) == 0) ++result.denied;
      if (config_.on_progress) config_.on_progress("  -> " + progress_text(out.text));
      check_audit();
      if (!tools_.fatal_error().empty()) throw Error("the agent stopped: " + tools_.fatal_error());
    }
    // The result is now in the context: its labels taint every later request.
    context_.merge(out.labels);
    push({{"role", "tool"}, {"tool_call_id", call.id}, {"content", defang_turn_markers(out.text)}});
  }
}

}  // namespace warden::agent
