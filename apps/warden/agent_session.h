#pragma once
// One agent session for the CLI, shared by `warden run` (one task) and
// `warden chat --agent` (interactive): it connects to the broker (or starts a
// `warden broker` child that prompts on this terminal), starts the backend
// (a `warden serve` child on loopback for -m FILE, or an OpenAI-compatible
// --backend URL), and holds the agent::Agent whose conversation and taint
// labels last until reset().
#include <sys/types.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "agent/agent.h"
#include "agent/backend.h"
#include "agent/tools.h"
#include "command.h"
#include "engine/lookup.h"

namespace warden::cli {

struct AgentSessionOptions {
  std::string workspace;
  std::string model_file;
  std::string backend_url;
  std::string model_name;
  std::string api_key_file;
  int max_steps = 20;
  std::string socket_dir;
  std::string policy;
  std::string audit;
  int approval_timeout = 0;
  bool no_tty = false;
  std::vector<std::string> resolve;
  engine::LookupParams lookup;  // the embedded engine's lookup decoding (-m only)
  // The embedded engine's sampling flags (-m only; a backend samples as it
  // was started), passed on to its `warden serve` as given; `sampling` only
  // holds what CLI11 parsed.
  sample::SamplerParams sampling;
  SamplingFlags sampling_flags;
};

// Adds the options above to `app` (the same flags for run and chat --agent)
// and returns them, so a command can tell which were given. `-m,--model-file`
// and the lookup decoding and sampling flags are left out when
// with_model_file is false (chat registers its own).
std::vector<CLI::Option*> add_agent_session_options(CLI::App& app, AgentSessionOptions& o, bool with_model_file = true);

// A child process (this executable) stopped with SIGTERM (SIGKILL 5 s
// later), then waited for, when the session ends.
class ChildProcess {
 public:
  ChildProcess() = default;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess() { stop(); }
  // Starts this executable with `args`; stdout goes to a pipe when
  // capture_stdout (read it with read_line). An `untrusted` child (the
  // engine server, which parses hostile text) gets /dev/null for stdin, a
  // few environment variables (HOME, XDG_CACHE_HOME, TZ, LANG, LC_*,
  // WARDEN_*), and its stderr reaches the terminal only line by line through
  // broker::neutralize, each line marked "engine: ": it can neither read
  // what the user types, nor the tokens in the environment, nor write escape
  // sequences over an approval prompt or lines that pass for warden's own.
  // No child inherits a descriptor beyond 0, 1 and 2.
  void start(const std::vector<std::string>& args, bool capture_stdout, bool untrusted = false);
  bool running();
  // One line of the child's stdout, waiting at most `timeout`.
  std::string read_line(std::chrono::seconds timeout);
  void stop();

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::thread stderr_forwarder_;
  std::atomic<bool> child_gone_{false};
};

// Totals over every message of a session.
struct AgentSessionTotals {
  int steps = 0;
  int tool_calls = 0;
  int denied = 0;
};

class AgentSession {
 public:
  // Validates the options, checks the sandbox, connects the broker and starts
  // the backend. `log_prefix` (e.g. "run") prefixes the progress lines on
  // stderr. Throws warden::Error / UsageError.
  AgentSession(const AgentSessionOptions& o, std::string log_prefix);
  ~AgentSession();
  AgentSession(const AgentSession&) = delete;
  AgentSession& operator=(const AgentSession&) = delete;

  // One user message (trusted, labelled `user`) into the ongoing
  // conversation; returns when the model answers without a tool call or the
  // step limit is reached. Throws warden::Error when the backend fails.
  agent::AgentResult ask(const std::string& message);
  // Drops the conversation and its taint labels: the next ask starts fresh.
  void reset();
  // Records the session's end (totals) in the audit log; call once.
  void finish();

  const AgentSessionTotals& totals() const { return totals_; }
  const std::string& workspace() const { return workspace_; }

 private:
  agent::AgentConfig agent_config() const;

  std::string log_prefix_;
  std::string workspace_;
  int max_steps_;
  agent::ToolConfig tool_config_;
  // Declaration order is teardown order reversed: the agent goes first, the
  // broker and engine children last.
  ChildProcess broker_child_;
  ChildProcess engine_child_;
  std::unique_ptr<agent::BrokerGate> gate_;
  std::unique_ptr<agent::OpenAIBackend> backend_;
  std::unique_ptr<agent::ToolRunner> tools_;
  std::unique_ptr<agent::Agent> agent_;
  AgentSessionTotals totals_;
  bool finished_ = false;
};

}  // namespace warden::cli
