// warden run [--workspace DIR] (-m FILE | --backend URL [--model NAME]
//            [--api-key-file F]) [--max-steps N] "TASK"
//
// One agent task, then exit. The model (an OpenAI-compatible server, or the
// embedded engine run as a `warden serve` child on loopback) proposes tool
// calls; the broker decides each one; allowed effects run in the sandbox.
// When no broker listens on the agent socket, a `warden broker` child is
// started for the run: it prompts on this terminal (or answers only `warden
// approve` with --no-tty) and denies what nobody approves in time.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

#include "agent/agent.h"
#include "agent/backend.h"
#include "agent/tools.h"
#include "broker/server.h"
#include "command.h"
#include "util/error.h"
#include "util/log.h"
#include "util/paths.h"

namespace {
namespace fs = std::filesystem;
using namespace warden;

struct RunOptions {
  std::string task;
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
};

// A child process that is stopped (SIGTERM, then waited for) when the run ends.
class ChildProcess {
 public:
  ChildProcess() = default;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess() { stop(); }

  // Starts this executable with `args`; stdout goes to a pipe when
  // capture_stdout (read it with read_line).
  void start(const std::vector<std::string>& args, bool capture_stdout) {
    int fds[2] = {-1, -1};
    if (capture_stdout && ::pipe2(fds, O_CLOEXEC) != 0) throw Error("cannot create a pipe");
    const std::string self = fs::read_symlink("/proc/self/exe").string();
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(self.c_str()));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ < 0) throw Error("cannot fork");
    if (pid_ == 0) {
      // A broker or engine must not outlive the run, even if it is killed.
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() == 1) _exit(1);
      if (capture_stdout) ::dup2(fds[1], 1);
      ::execv(self.c_str(), argv.data());
      _exit(127);
    }
    if (capture_stdout) {
      ::close(fds[1]);
      out_fd_ = fds[0];
    }
  }

  bool running() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    return true;
  }

  // Reads one line from the child's stdout, waiting at most `timeout`.
  std::string read_line(std::chrono::seconds timeout) {
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{out_fd_, POLLIN, 0};
      if (::poll(&p, 1, 200) <= 0) continue;
      char c;
      ssize_t n = ::read(out_fd_, &c, 1);
      if (n <= 0) break;
      if (c == '\n') return line;
      line += c;
    }
    return line;
  }

  void stop() {
    if (out_fd_ >= 0) ::close(out_fd_), out_fd_ = -1;
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
};

std::unique_ptr<agent::BrokerGate> try_connect(const std::string& socket) {
  try {
    return std::make_unique<agent::BrokerGate>(socket);
  } catch (const std::exception&) {
    return nullptr;
  }
}

// Connects to the broker on `dir`, starting one for this run when none listens.
std::unique_ptr<agent::BrokerGate> connect_broker(const RunOptions& o, const std::string& workspace, ChildProcess& child) {
  const broker::SocketPaths paths = o.socket_dir.empty() ? broker::SocketPaths::defaults()
                                                         : broker::SocketPaths::in(o.socket_dir);
  if (auto gate = try_connect(paths.agent)) {
    log::info("run: using the broker at " + paths.agent);
    return gate;
  }
  std::vector<std::string> args{"broker", "--workspace", workspace, "--socket-dir", paths.dir};
  if (!o.policy.empty()) args.insert(args.end(), {"--policy", o.policy});
  if (!o.audit.empty()) args.insert(args.end(), {"--audit", o.audit});
  if (o.approval_timeout > 0) args.insert(args.end(), {"--approval-timeout", std::to_string(o.approval_timeout)});
  if (o.no_tty) args.push_back("--no-tty");
  child.start(args, false);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (std::chrono::steady_clock::now() < deadline) {
    if (!child.running()) throw Error("the broker did not start (see its error above)");
    if (auto gate = try_connect(paths.agent)) return gate;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  throw Error("the broker did not open " + paths.agent + " within 15 s");
}

std::string read_api_key(const std::string& file) {
  std::ifstream in(file);
  if (!in) throw Error("--api-key-file " + file + ": cannot read it");
  std::string key;
  std::getline(in, key);
  while (!key.empty() && (key.back() == '\r' || key.back() == ' ')) key.pop_back();
  if (key.empty()) throw Error("--api-key-file " + file + ": the first line is empty");
  return key;
}

// Starts `warden serve` for a GGUF file on a loopback port and returns its URL.
std::string start_embedded_server(const std::string& model, ChildProcess& child) {
  if (!fs::is_regular_file(model)) throw Error("-m " + model + ": no such file");
  child.start({"serve", "-m", model, "--host", "127.0.0.1", "--port", "0"}, true);
  const std::string line = child.read_line(std::chrono::seconds(600));
  const std::string prefix = "listening on ";
  if (line.rfind(prefix, 0) != 0) throw Error("-m " + model + ": the engine server did not start");
  return line.substr(prefix.size());
}

std::map<std::string, std::string> parse_resolve(const std::vector<std::string>& specs) {
  std::map<std::string, std::string> out;
  for (const auto& s : specs) {
    const size_t eq = s.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == s.size())
      throw UsageError("--resolve " + s + ": expected HOST=IP");
    std::string host = s.substr(0, eq);
    for (auto& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!sandbox::parse_ip_literal(s.substr(eq + 1))) throw UsageError("--resolve " + s + ": not an IP address");
    out[host] = s.substr(eq + 1);
  }
  return out;
}

int run_agent(const RunOptions& o) {
  if (o.model_file.empty() == o.backend_url.empty())
    throw UsageError("give exactly one of -m FILE or --backend URL");
  if (o.task.empty()) throw UsageError("the task is empty");
  std::error_code ec;
  const fs::path ws = fs::canonical(o.workspace.empty() ? fs::current_path() : fs::path(o.workspace), ec);
  if (ec || !fs::is_directory(ws)) throw Error("--workspace " + o.workspace + ": not a directory");
  agent::ToolConfig tool_config;
  tool_config.workspace = ws.string();
  tool_config.home = paths::home();
  tool_config.resolve = parse_resolve(o.resolve);
  sandbox::check_prerequisites();  // fail closed before the model says anything

  ChildProcess broker_child, engine_child;
  auto gate = connect_broker(o, ws.string(), broker_child);

  agent::OpenAIBackendConfig backend_config;
  backend_config.base_url = o.model_file.empty() ? o.backend_url : start_embedded_server(o.model_file, engine_child);
  backend_config.model = o.model_name;
  if (!o.api_key_file.empty()) backend_config.api_key = read_api_key(o.api_key_file);
  agent::OpenAIBackend backend(backend_config);

  agent::ToolRunner tools(tool_config, *gate);
  agent::AgentConfig config;
  config.max_steps = o.max_steps;
  config.system_prompt = agent::default_system_prompt(ws.string());
  config.on_progress = [](const std::string& line) { log::info("run: " + line); };
  agent::Agent a(backend, tools, *gate, config);
  gate->record_event("agent.start", "backend " + backend.describe() + ", workspace " + ws.string());
  agent::AgentResult r = a.run(o.task);
  gate->record_event("agent.end", std::to_string(r.steps) + " model calls, " + std::to_string(r.tool_calls) +
                                      " tool calls, " + std::to_string(r.denied) + " denied");
  std::printf("%s\n", r.answer.c_str());
  log::info("run: " + std::to_string(r.steps) + " model calls, " + std::to_string(r.tool_calls) + " tool calls, " +
            std::to_string(r.denied) + " denied");
  return 0;
}

std::function<int()> setup_run(CLI::App& app) {
  auto o = std::make_shared<RunOptions>();
  app.add_option("task", o->task, "What the agent should do")->required();
  app.add_option("--workspace", o->workspace, "Project folder the tools work in (default: the current folder)");
  app.add_option("-m,--model-file", o->model_file, "GGUF model for the embedded engine");
  app.add_option("--backend", o->backend_url, "OpenAI-compatible server, e.g. http://127.0.0.1:8080");
  app.add_option("--model", o->model_name, "Model name sent to the backend");
  app.add_option("--api-key-file", o->api_key_file, "File whose first line is the backend's API key");
  app.add_option("--max-steps", o->max_steps, "Most model calls for this task")->capture_default_str()->check(
      CLI::Range(1, 1000));
  app.add_option("--socket-dir", o->socket_dir, "Broker socket folder (default $XDG_RUNTIME_DIR/warden)");
  app.add_option("--policy", o->policy, "Policy file for a broker started by this run");
  app.add_option("--audit", o->audit, "Audit database for a broker started by this run");
  app.add_option("--approval-timeout", o->approval_timeout, "Seconds a broker started by this run waits for a human")
      ->check(CLI::Range(1, 86400));
  app.add_flag("--no-tty", o->no_tty, "A broker started by this run does not prompt here (only `warden approve`)");
  app.add_option("--resolve", o->resolve, "HOST=IP: fetch HOST at IP (e.g. a local service); may repeat");
  return [o]() -> int { return run_agent(*o); };
}

WARDEN_COMMAND("run", "Run one agent task: the model proposes, the broker decides, the sandbox executes", setup_run);

}  // namespace
