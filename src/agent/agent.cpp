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
// A result the model has not seen yet keeps at least this much of its start.
constexpr size_t kKeptResultBytes = 512;

// A shortened conversation leaves the prompt this share of the context,
// the rest being room for the answer.
constexpr double kPromptShareAfterShortening = 0.6;

// What replaces `what` ("this result", "these arguments") of `bytes` bytes.
std::string removed_note(const char* what, size_t bytes) {
  return "[warden: " + std::string(what) + " (" + std::to_string(bytes) +
         " bytes) was removed to fit the model's context]";
}

// What make_room appends to a result it cut where its line `line` starts
// (or within it): a file read in parts can be read on from there.
std::string cut_note(size_t bytes, size_t line) {
  return "\n[warden: the rest of this output, from its line " + std::to_string(line) + " on (" +
         std::to_string(bytes) + " bytes), did not fit the model's context; ask for a smaller part]";
}

// Replaces a result the model has answered to (of `original_bytes` before
// any cut), or its call's long arguments, by a note; false when there was
// nothing to shorten.
bool shorten(json& message, size_t original_bytes) {
  if (message["role"] == "tool") {
    const std::string& text = message["content"].get_ref<const std::string&>();
    const std::string note = removed_note("this result", original_bytes);
    if (text.size() <= note.size()) return false;
    message["content"] = note;
    return true;
  }
  bool changed = false;
  if (message.contains("tool_calls"))
    for (json& call : message["tool_calls"]) {
      json& arguments = call["function"]["arguments"];
      const size_t n = arguments.get_ref<const std::string&>().size();
      if (n <= kKeptArgumentBytes) continue;
      arguments = json{{"removed", removed_note("these arguments", n)}}.dump();
      changed = true;
    }
  return changed;
}

// Answers that hold a tool call its backend could not read (bad JSON, a
// call cut short) may be nudged this many times in a row.
constexpr int kMaxNudges = 2;

// The tool-call markup of a known chat format in `text` (Qwen and Hermes,
// Llama 3.1, Mistral, DeepSeek, functionary), or a JSON object naming a
// function and its arguments, as Llama 3.2 writes calls; "" for none. The
// backend parses calls out of the text: markup left in it is a call it
// could not read.
std::string tool_call_markup(const std::string& text, const json& tools) {
  for (const char* marker : {"<tool_call>", "<|python_tag|>", "[TOOL_CALLS]", "<｜tool▁calls▁begin｜>",
                             "<｜tool▁call▁begin｜>", "<function="})
    if (text.find(marker) != std::string::npos) return marker;
  // JSON that names one of warden's tools: other JSON is an answer.
  const size_t start = text.find_first_not_of(" \t\r\n");
  if (start == std::string::npos || text[start] != '{' ||
      (text.find("\"arguments\"") == std::string::npos && text.find("\"parameters\"") == std::string::npos))
    return "";
  for (const auto& tool : tools) {
    std::string quoted(1, '"');
    quoted.append(tool["function"]["name"].get<std::string>()).push_back('"');
    if (text.find(quoted) != std::string::npos) return "a JSON tool call";
  }
  return "";
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
  if (messages_.empty() && !config_.system_prompt.empty())
    push({{"role", "system"}, {"content", config_.system_prompt}});
  context_.add(broker::Label{broker::Source::user, ""});
  task_start_ = messages_.size();
  push({{"role", "user"}, {"content", task}});
  const json tools = ToolRunner::schemas();
  gate_.record_event("agent.task", short_text(task, 2000));

  int nudges = 0;  // answers in a row that held unreadable tool-call markup
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
      const bool last_step = step + 1 == config_.max_steps;  // an answer then is the answer, as it is
      if (turn.finish_reason == "length" && !last_step && room_after_cut(turn, tools)) continue;
      if (const std::string marker = tool_call_markup(turn.content, tools);
          !marker.empty() && nudges < kMaxNudges && !last_step) {
        // Small models often write a call the backend cannot read; told so,
        // they mostly write it again correctly. Twice at most in a row: an
        // answer that only talks about such markup still ends the task.
        // The markup goes back broken, as in tool results: a backend may
        // refuse a conversation that spells its control tokens.
        ++nudges;
        push({{"role", "assistant"}, {"content", defang_turn_markers(turn.content)}});
        gate_.record_event("tool.unreadable", "the answer has " + marker + " but no tool call the backend could read");
        push({{"role", "user"},
              {"content", "[warden] Your last message has " + defang_turn_markers(marker) +
                              " in it, but no tool call the server could read, so no tool ran. To use a tool, "
                              "call it again with valid JSON arguments; if you are done, answer without tool-call "
                              "markup."}});
        continue;
      }
      push({{"role", "assistant"}, {"content", turn.content}});
      result.answer = broker::neutralize(turn.content, /*keep_newlines=*/true);
      if (turn.finish_reason == "length") {
        result.cut_off = true;
        gate_.record_event("agent.cut_off", "the model's answer ended at its token limit");
        result.answer += "\n[warden: the answer was cut off at the model's token limit]";
      }
      return result;
    }
    nudges = 0;
    run_tool_calls(turn, result);
  }
  result.step_limit = true;
  return stop(result, "stopped after " + std::to_string(config_.max_steps) + " steps without a final answer");
}

// A model call that fails (backend down, a reply that is not a valid chat
// completion) ends the task; the log says so before the error goes up. A
// conversation the model's context cannot hold is first shortened, down to
// 60 % of the context where the backend gave the counts (the rest is room
// for the answer), else to half its bytes; it ends the task when nothing
// more can be shortened, or at once when the counts say the prompt fits.
AssistantTurn Agent::complete_audited(const json& tools) {
  for (;;) {
    try {
      return model_.complete(messages_, tools);
    } catch (const ContextOverflow& e) {
      const bool counted = e.prompt_tokens > 0 && e.context_tokens > 0;
      if (counted) known_context_ = e.context_tokens;
      // A prompt that fits, refused all the same: the server keeps more
      // room for the answer than is left. Shortening would not help.
      if (counted && e.prompt_tokens < e.context_tokens)
        fail_model_call(e, ", as the answer's room it reserves does not fit beside it");
      // Here the prompt is at least the context: the fraction is at most 0.6.
      const double fraction =
          counted ? kPromptShareAfterShortening * double(e.context_tokens) / double(e.prompt_tokens) : 0.5;
      if (make_room(fraction, json_bytes(tools), "the conversation does not fit the model's context")) continue;
      fail_model_call(e, ", and nothing more can be shortened; start a new conversation (/reset in chat), or give "
                         "the server a larger context (-c)");
    } catch (const std::exception& e) {
      gate_.record_event("model.error", model_.describe() + ": " + e.what());
      throw;
    }
  }
}

void Agent::fail_model_call(const std::exception& e, const std::string& why) {
  gate_.record_event("model.error", model_.describe() + ": " + e.what());
  throw Error(e.what() + why);
}

// An answer cut at the context's end (llama-server, vLLM and warden serve
// let an answer run that far) while the prompt took most of the context:
// the prompt left it no room, so make some and ask again (where it took
// more than the share a shortened prompt is left). Where the
// context's size is not known (a backend that caps answers, as OpenAI's and
// ollama's may, cuts them before), or the answer was long on its own, it is
// kept, cut.
bool Agent::room_after_cut(const AssistantTurn& turn, const json& tools) {
  if (turn.prompt_tokens <= 0 || turn.completion_tokens < 0) return false;
  const long long context = known_context_ > 0 ? known_context_ : model_.context_size();
  const long long used = turn.prompt_tokens + turn.completion_tokens;
  if (context <= 0 || used + 1 < context || double(turn.prompt_tokens) <= kPromptShareAfterShortening * double(context))
    return false;
  return make_room(kPromptShareAfterShortening * double(context) / double(turn.prompt_tokens), json_bytes(tools),
                   "the model's answer was cut off at its context's end");
}

bool Agent::make_room(double fraction, size_t tools_bytes, const std::string& why) {
  // The tool schemas go with every request but cannot be shortened: the
  // conversation must make up the whole cut.
  const size_t before = conversation_bytes_;
  const auto whole_target = size_t(double(before + tools_bytes) * fraction);
  const size_t target = whole_target > tools_bytes ? whole_target - tools_bytes : 0;
  size_t seen = seen_end();
  size_t shortened = 0;
  const auto replace = [&](json& message, auto change) {
    const size_t old_bytes = json_bytes(message);
    if (!change(message)) return;
    ++shortened;
    conversation_bytes_ = conversation_bytes_ - old_bytes + json_bytes(message);
  };
  // Denials and errors stay in both phases: a model that no longer saw them
  // would ask again, and the human with it.
  for (; first_unshortened_ < seen && conversation_bytes_ > target; ++first_unshortened_) {
    const size_t i = first_unshortened_;
    if (failures_.count(i)) continue;
    const auto was_cut = cuts_.find(i);
    const json& content = messages_[i]["content"];
    const size_t original = was_cut != cuts_.end()    ? was_cut->second.kept + was_cut->second.removed
                            : content.is_string() ? content.get_ref<const std::string&>().size()
                                                  : 0;
    replace(messages_[i], [original](json& m) { return shorten(m, original); });
  }
  // An earlier exchange goes whole before a result of this task is cut: the
  // task needs its results more than the talk before it.
  size_t dropped = 0;
  while (conversation_bytes_ > target)
    if (const size_t n = drop_oldest_exchange(); n > 0)
      dropped += n;
    else
      break;
  seen = seen_end();
  for (size_t i = seen; i < messages_.size() && conversation_bytes_ > target; ++i)
    if (messages_[i]["role"] == "tool" && !failures_.count(i))
      replace(messages_[i], [&](json& m) { return cut(i, m, conversation_bytes_ - target); });
  if (shortened == 0 && dropped == 0) return false;
  std::string what = why + ": " + std::to_string(shortened) + " message(s) shortened, ";
  if (dropped > 0) what.append(std::to_string(dropped)).append(" earlier message(s) dropped, ");
  what.append(std::to_string(before - conversation_bytes_)).append(" bytes removed");
  gate_.record_event("context.shorten", what);
  if (config_.on_progress) config_.on_progress(what);
  return true;
}

// What the model has answered to ends at its last turn; after it come the
// results of that turn's calls, which it has not seen yet.
size_t Agent::seen_end() const {
  size_t end = messages_.size();
  while (end > 0 && messages_[end - 1]["role"] != "assistant") --end;
  return end > 0 ? end - 1 : 0;
}

size_t Agent::drop_oldest_exchange() {
  const size_t begin = !messages_.empty() && messages_[0]["role"] == "system" ? 1 : 0;
  if (begin >= task_start_) return 0;
  size_t end = begin + 1;
  while (end < task_start_ && messages_[end]["role"] != "user") ++end;
  const size_t n = end - begin;
  for (size_t i = begin; i < end; ++i) conversation_bytes_ -= json_bytes(messages_[i]);
  messages_.erase(messages_.begin() + long(begin), messages_.begin() + long(end));
  // The indices kept about messages after the exchange move down with them.
  std::map<size_t, Cut> cuts;
  for (const auto& [i, c] : cuts_)
    if (i >= end) cuts[i - n] = c;
  cuts_.swap(cuts);
  std::set<size_t> failures;
  for (const size_t i : failures_)
    if (i >= end) failures.insert(i - n);
  failures_.swap(failures);
  first_unshortened_ = first_unshortened_ >= end ? first_unshortened_ - n : std::min(first_unshortened_, begin);
  task_start_ -= n;
  return n;
}

// Cuts a result the model has not seen yet by about `excess` bytes, keeping
// its start and saying how much went; false when it is as short as it may
// get. What was cut is kept here, not read back from the text, which the
// result's own source may have written to look like a cut.
bool Agent::cut(size_t index, json& message, size_t excess) {
  Cut& done = cuts_[index];
  const std::string& content = message["content"].get_ref<const std::string&>();
  const std::string text = content.substr(0, done.removed > 0 ? done.kept : content.size());
  if (text.size() <= kKeptResultBytes) return false;
  const size_t keep = std::max(kKeptResultBytes, text.size() > excess ? text.size() - excess : 0);
  std::string_view kept = display::utf8_prefix(text, keep);
  // At the end of a line where one ends in what is kept.
  if (const size_t newline = kept.rfind('\n'); newline != std::string_view::npos && newline + 1 >= kKeptResultBytes)
    kept = kept.substr(0, newline + 1);
  const std::string note =
      cut_note(done.removed + text.size() - kept.size(), size_t(std::count(kept.begin(), kept.end(), '\n')) + 1);
  if (kept.size() + note.size() >= content.size()) return false;  // no shorter with the note
  done.removed += text.size() - kept.size();
  done.kept = kept.size();
  message["content"] = std::string(kept) + note;
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
    ToolOutcome out{refused[i], {broker::Label{broker::Source::tool, "agent"}}, true};
    if (refused[i].empty()) {
      if (config_.on_progress)
        config_.on_progress("tool " + progress_text(call.name, 40) + " " + progress_text(call.arguments));
      out = tools_.execute(call, context_);
      ++result.tool_calls;
      if (out.failed && out.text.rfind("denied: ", 0) == 0) ++result.denied;
      if (config_.on_progress) config_.on_progress("  -> " + progress_text(out.text));
      check_audit();
      if (!tools_.fatal_error().empty()) throw Error("the agent stopped: " + tools_.fatal_error());
    }
    // The result is now in the context: its labels taint every later request.
    context_.merge(out.labels);
    if (out.failed) failures_.insert(messages_.size());  // make_room keeps these
    push({{"role", "tool"}, {"tool_call_id", call.id}, {"content", defang_turn_markers(out.text)}});
  }
}

}  // namespace warden::agent
