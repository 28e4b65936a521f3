#include "agent/agent.h"

#include "agent/html_text.h"
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
std::string short_text(const std::string& s, size_t n = 200) {
  std::string t = strip_control_chars(s);
  return t.size() <= n ? t : t.substr(0, n) + "...";
}
}  // namespace

AgentResult Agent::ask(const std::string& task) {
  AgentResult result;
  json& messages = messages_;
  broker::LabelSet& context = context_;
  if (messages.empty() && !config_.system_prompt.empty()) messages.push_back({{"role", "system"}, {"content", config_.system_prompt}});
  context.add(broker::Label{broker::Source::user, ""});
  messages.push_back({{"role", "user"}, {"content", task}});
  const json tools = ToolRunner::schemas();
  gate_.record_event("agent.task", short_text(task, 2000));

  for (int step = 0; step < config_.max_steps; ++step) {
    AssistantTurn turn = model_.complete(messages, tools);
    ++result.steps;
    gate_.record_event("model.call", model_.describe() + ": " + std::to_string(turn.tool_calls.size()) +
                                         " tool call(s), text: " + short_text(turn.content));
    if (turn.tool_calls.empty()) {
      messages.push_back({{"role", "assistant"}, {"content", turn.content}});
      result.answer = strip_control_chars(turn.content);
      return result;
    }
    json assistant{{"role", "assistant"}, {"content", turn.content}, {"tool_calls", json::array()}};
    for (const auto& c : turn.tool_calls)
      assistant["tool_calls"].push_back(
          {{"id", c.id}, {"type", "function"}, {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
    messages.push_back(assistant);
    for (const auto& call : turn.tool_calls) {
      if (config_.on_progress) config_.on_progress("tool " + short_text(call.name, 40) + " " + short_text(call.arguments));
      ToolOutcome out = tools_.execute(call, context);
      ++result.tool_calls;
      if (out.text.rfind("denied: ", 0) == 0) ++result.denied;
      if (config_.on_progress) config_.on_progress("  -> " + short_text(out.text));
      // The result is now in the context: its labels taint every later request.
      context.merge(out.labels);
      messages.push_back({{"role", "tool"}, {"tool_call_id", call.id}, {"content", out.text}});
    }
  }
  result.step_limit = true;
  result.answer = "stopped after " + std::to_string(config_.max_steps) + " steps without a final answer";
  gate_.record_event("agent.stop", result.answer);
  return result;
}

}  // namespace warden::agent
