#pragma once
// The agent loop: the model proposes, the broker decides, the sandbox runs.
// The loop holds the conversation and the taint labels of everything in it;
// it has no authority of its own (every effect goes through Gate and the
// sandbox in ToolRunner).
#include <functional>
#include <map>
#include <set>
#include <string>

#include "agent/backend.h"
#include "agent/tools.h"

namespace warden::agent {

struct AgentConfig {
  int max_steps = 20;          // model calls at most
  // A hostile model decides how much it asks for: caps on the tool calls
  // run per model turn (the rest get an error result) and on the bytes of
  // the conversation sent to the backend (over it, the task stops).
  size_t max_tool_calls_per_turn = 16;
  size_t max_conversation_bytes = 8u << 20;
  std::string system_prompt;   // empty: no system message (see default_system_prompt)
  // Called for each step, for progress on stderr (already sanitized text).
  std::function<void(const std::string&)> on_progress;
};

// Tool names and call ids longer than this are invalid: the call is not run.
constexpr size_t kMaxToolNameBytes = 128;

struct AgentResult {
  std::string answer;   // the model's last message, neutralized for a terminal (broker::neutralize)
  int steps = 0;        // model calls made
  int tool_calls = 0;
  int denied = 0;       // tool calls the broker refused
  bool step_limit = false;
  bool cut_off = false;  // the last answer ended at the model's token limit
};

std::string default_system_prompt(const std::string& workspace);

class Agent {
 public:
  Agent(ModelBackend& model, ToolRunner& tools, Gate& gate, AgentConfig config);
  // Runs one task to its end. Throws warden::Error when the backend fails,
  // or when the audit log became unreachable (Gate::audit_failure): then
  // every later call throws too, before the model is asked anything.
  AgentResult run(const std::string& task) { return ask(task); }
  // Adds one user message to the ongoing conversation and works on it until
  // the model answers without a tool call (or the step limit): the building
  // block of an interactive `chat --agent`. The conversation and its taint
  // labels persist between calls: once untrusted content was seen, it stays.
  AgentResult ask(const std::string& user_message);

 private:
  void push(nlohmann::json message);  // appends to the conversation, counting its bytes
  void check_audit() const;           // throws Error once the gate cannot audit
  AgentResult& stop(AgentResult& result, const std::string& why);
  AssistantTurn complete_audited(const nlohmann::json& tools);
  // Makes room in a conversation the model's context cannot hold, until
  // it and the tool schemas are at most `fraction` of their bytes: the
  // results and long call arguments the model has answered to, oldest
  // first, are replaced by a short note; then the results it has not seen
  // yet are cut, keeping their start. Between the two, whole exchanges
  // before the current task go, oldest first (an interactive chat). Denials
  // and errors stay. Returns false when nothing was left to shorten.
  bool make_room(double fraction, size_t tools_bytes, const std::string& why);
  // Removes the oldest exchange before the current task (a user message and
  // all that answered it); returns the messages removed, 0 when none is left.
  size_t drop_oldest_exchange();
  size_t seen_end() const;  // where the messages the model has not seen yet start
  bool room_after_cut(const AssistantTurn& turn, const nlohmann::json& tools);
  bool cut(size_t index, nlohmann::json& message, size_t excess);
  [[noreturn]] void fail_model_call(const std::exception& e, const std::string& why);
  // Why a call is refused before any tool sees it ("" when it may run).
  std::string refusal(const ToolCall& call, size_t index) const;
  void run_tool_calls(const AssistantTurn& turn, AgentResult& result);

  nlohmann::json messages_ = nlohmann::json::array();
  size_t conversation_bytes_ = 0;
  size_t first_unshortened_ = 0;  // make_room has shortened what it could before this message
  size_t task_start_ = 0;         // the current task's user message
  long long known_context_ = -1;  // the context's tokens, once a backend's error gave them
  struct Cut {
    size_t kept = 0;     // bytes of the result's start still in the conversation
    size_t removed = 0;  // bytes cut off its end
  };
  std::map<size_t, Cut> cuts_;  // results make_room cut, by message index
  std::set<size_t> failures_;   // results that are denials or errors, which make_room keeps
  broker::LabelSet context_;  // labels of everything the model has seen
  ModelBackend& model_;
  ToolRunner& tools_;
  Gate& gate_;
  AgentConfig config_;
};

}  // namespace warden::agent
