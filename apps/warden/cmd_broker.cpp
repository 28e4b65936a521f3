// warden broker: the daemon that holds the policy, the approval queue and the
// audit log, serving the agent socket and the approval socket until SIGINT
// or SIGTERM. Start it in the terminal where you want approval prompts.
#include <signal.h>

#include <chrono>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "broker/audit.h"
#include "broker/broker.h"
#include "broker/pattern.h"  // resolve_path
#include "broker/policy_file.h"
#include "broker/server.h"
#include "broker/tty_prompt.h"
#include "command.h"
#include "util/error.h"
#include "util/log.h"

namespace {
using namespace warden::broker;

struct BrokerOptions {
  std::string workspace;
  std::string policy;
  std::string audit;
  std::string socket_dir;
  bool no_tty = false;
  int approval_timeout = 0;
};

// warden's own state at paths given on the command line (policy file, audit
// database and its companions, socket folder): the broker protects them like
// its default folders, and refuses to start with any inside the workspace,
// where a jailed command could rewrite the policy, delete the log or
// connect to the approval socket and answer its own request.
void protect_state_paths(PolicyEnv& env, const BrokerOptions& o) {
  std::vector<std::pair<std::string, std::string>> state;  // flag, path
  if (!o.policy.empty()) state.emplace_back("--policy", o.policy);
  if (!o.audit.empty())
    for (const char* suffix : {"", "-wal", "-shm", ".head", ".lock"}) state.emplace_back("--audit", o.audit + suffix);
  if (!o.socket_dir.empty()) state.emplace_back("--socket-dir", o.socket_dir);
  for (const auto& [flag, path] : state) {
    const std::string real = resolve_path(std::filesystem::absolute(path).string());
    const std::string& ws = env.workspace;
    if (ws == "/" || real == ws || real.rfind(ws + "/", 0) == 0)
      throw warden::Error(flag + " " + path + " is inside the workspace " + env.workspace +
                          ": commands run there could change it; put it outside the workspace");
    env.protected_dirs.push_back(real);
  }
}

int run_broker(const BrokerOptions& o) {
  const std::string ws = warden::cli::workspace_folder(o.workspace);
  // Fail closed: a bad policy or a tampered log stops the broker here. The
  // exact bytes parsed are pinned: later edits of the file take effect only
  // through `warden policy apply` (with a human's approval of the diff).
  const std::string policy_path =
      std::filesystem::absolute(o.policy.empty() ? default_policy_path() : o.policy).lexically_normal().string();
  PolicyFileState policy_file = read_policy_file(policy_path);
  // Absolute, as the policy's: `warden run` compares them from another folder.
  const std::string audit_path =
      std::filesystem::absolute(o.audit.empty() ? default_audit_path() : o.audit).lexically_normal().string();
  PolicyEnv env = PolicyEnv::current(ws);
  protect_state_paths(env, o);
  if (!o.policy.empty()) require_named_policy(policy_file);
  Policy policy = policy_file.exists ? Policy::parse(policy_file.text, policy_path, env) : Policy::defaults(env);
  VerifyReport rep = verify_audit(audit_path);
  if (!rep.ok)
    throw warden::Error("audit log " + audit_path + " fails verification (" + rep.problems.front() +
                        "); run `warden audit verify`, and move the log aside to start a new one");

  // Signals are taken synchronously by this thread only.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  AuditLog audit(audit_path);
  ApprovalQueue queue;
  Broker broker(std::move(policy), audit, queue);
  broker.pin_policy_file(policy_file);
  if (o.approval_timeout > 0) broker.set_approval_timeout(std::chrono::seconds(o.approval_timeout));
  SocketPaths paths = o.socket_dir.empty() ? SocketPaths::defaults() : SocketPaths::in(o.socket_dir);
  Server server(broker, queue, paths);
  server.start();
  TerminalPrompter prompter(queue);
  if (!o.no_tty) prompter.start();
  broker.record_event("broker.start", "workspace " + broker.policy()->env().workspace + ", policy " +
                                          broker.policy()->source(), "broker");
  broker.record_event("policy.load", nlohmann::json({{"path", policy_path},
                                                     {"exists", policy_file.exists},
                                                     {"sha256", policy_file.sha256}})
                                         .dump(),
                      "broker");
  warden::log::info("broker: agent socket " + paths.agent + ", approval socket " + paths.approve);
  int sig = 0;
  sigwait(&signals, &sig);
  warden::log::info("broker: stopping");
  prompter.stop();
  server.stop();
  broker.record_event("broker.stop", "signal " + std::to_string(sig), "broker");
  return 0;
}

std::function<int()> setup_broker(CLI::App& app) {
  auto o = std::make_shared<BrokerOptions>();
  app.add_option("--workspace", o->workspace, "Workspace folder (default: the current folder)");
  app.add_option("--policy", o->policy, "Policy file (default $XDG_CONFIG_HOME/warden/policy.toml)");
  app.add_option("--audit", o->audit, "Audit database (default $XDG_DATA_HOME/warden/audit.db)");
  app.add_option("--socket-dir", o->socket_dir, "Socket folder (default $XDG_RUNTIME_DIR/warden)");
  app.add_flag("--no-tty", o->no_tty, "Do not prompt on the terminal (only `warden approve`)");
  app.add_option("--approval-timeout", o->approval_timeout, "Seconds to wait for a human (default: policy, 120)")
      ->check(CLI::Range(1, 86400));
  return [o]() -> int { return run_broker(*o); };
}

WARDEN_COMMAND("broker", "Run the broker: policy, approvals, taint and audit for the agent", setup_broker);

}  // namespace
