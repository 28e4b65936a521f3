#pragma once
// The agent loop: the model proposes, the broker decides, the sandbox runs.
// The loop holds the conversation and the taint labels of everything in it;
// it has no authority of its own (every effect goes through Gate and the
// sandbox in ToolRunner).
#include <functional>
#include <string>

#include "agent/backend.h"
#include "agent/tools.h"

namespace warden::agent {

struct AgentConfig {
  int max_steps = 20;          // model calls at most
  std::string system_prompt;   // empty: no system message (see default_system_prompt)
  // Called for each step, for progress on stderr (already sanitized text).
  std::function<void(const std::string&)> on_progress;
};

struct AgentResult {
  std::string answer;   // the model's last message, control characters removed
  int steps = 0;        // model calls made
  int tool_calls = 0;
  int denied = 0;       // tool calls the broker refused
  bool step_limit = false;
};

std::string default_system_prompt(const std::string& workspace);

class Agent {
 public:
  Agent(ModelBackend& model, ToolRunner& tools, Gate& gate, AgentConfig config);
  // Runs one task to its end. Throws warden::Error when the backend fails.
  AgentResult run(const std::string& task) { return ask(task); }
  // Adds one user message to the ongoing conversation and works on it until
  // the model answers without a tool call (or the step limit): the building
  // block of an interactive `chat --agent`. The conversation and its taint
  // labels persist between calls: once untrusted content was seen, it stays.
  AgentResult ask(const std::string& user_message);

 private:
  nlohmann::json messages_ = nlohmann::json::array();
  broker::LabelSet context_;  // labels of everything the model has seen
  ModelBackend& model_;
  ToolRunner& tools_;
  Gate& gate_;
  AgentConfig config_;
};

}  // namespace warden::agent
