// warden run [--workspace DIR] (-m FILE | --backend URL [--model NAME]
//            [--api-key-file F]) [--max-steps N] "TASK"
//
// One agent task, then exit. The model (an OpenAI-compatible server, or the
// embedded engine run as a `warden serve` child on loopback) proposes tool
// calls; the broker decides each one; allowed effects run in the sandbox.
// When no broker listens on the agent socket, a `warden broker` child is
// started for the run: it prompts on this terminal (or answers only `warden
// approve` with --no-tty) and denies what nobody approves in time. The setup
// is shared with `warden chat --agent` (agent_session.h).
#include <cstdio>
#include <memory>

#include "agent_session.h"
#include "command.h"
#include "util/error.h"

namespace {
using namespace warden;

struct RunOptions {
  std::string task;
  cli::AgentSessionOptions session;
};

int run_agent(const RunOptions& o) {
  if (o.task.empty()) throw UsageError("the task is empty");
  cli::AgentSession session(o.session, "run");
  agent::AgentResult r = session.ask(o.task);
  session.finish();
  std::printf("%s\n", r.answer.c_str());
  return 0;
}

std::function<int()> setup_run(CLI::App& app) {
  auto o = std::make_shared<RunOptions>();
  app.add_option("task", o->task, "What the agent should do")->required();
  cli::add_agent_session_options(app, o->session);
  return [o]() -> int { return run_agent(*o); };
}

WARDEN_COMMAND("run", "Run one agent task: the model proposes, the broker decides, the sandbox executes", setup_run);

}  // namespace
