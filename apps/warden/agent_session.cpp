#include "agent_session.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <filesystem>
#include <map>
#include <thread>

#include "broker/client.h"
#include "broker/render.h"
#include "broker/server.h"
#include "command.h"
#include "util/error.h"
#include "util/log.h"
#include "util/paths.h"

namespace warden::cli {
namespace fs = std::filesystem;

namespace {

// Writes one line of the engine's stderr to ours: in printable ASCII (so
// that bytes are columns), marked "engine: ", and on a terminal cut into
// rows that fit its width, each marked again, so that no text of the
// engine's can start a row of the terminal unmarked by wrapping there.
void show_engine_line(std::string_view line) {
  static constexpr std::string_view kMark = "engine: ";
  const std::string text = broker::neutralize_ascii(line);
  winsize ws{};
  const size_t width = ::ioctl(2, TIOCGWINSZ, &ws) == 0 && ws.ws_col > kMark.size() + 20 ? ws.ws_col : 0;
  const size_t row = width ? width - kMark.size() : std::max<size_t>(text.size(), 1);
  std::string shown;
  for (size_t at = 0; at == 0 || at < text.size(); at += row) {
    shown += kMark;
    shown += text.substr(at, row);
    shown += '\n';
  }
  [[maybe_unused]] ssize_t w = ::write(2, shown.data(), shown.size());
}

// Copies a child's stderr to ours one line at a time (show_engine_line); a
// line longer than 4 KiB is passed on in pieces. Ends at the end of the
// stream, or once `child_gone` is set and nothing more is waiting: a
// descendant or a passed-on copy of the pipe must not keep the session from
// ending.
void forward_engine_stderr(int from, const std::atomic<bool>& child_gone) {
  std::string line;
  bool just_cut = false;
  char buf[4096];
  while (true) {
    pollfd p{from, POLLIN, 0};
    const int ready = ::poll(&p, 1, 100);
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0) {
      if (child_gone.load()) break;
      continue;
    }
    const ssize_t n = ::read(from, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (ssize_t i = 0; i < n; i++) {
      if (buf[i] == '\n') {
        if (!line.empty() || !just_cut) show_engine_line(line);  // an empty line, not the end of a cut one
        line.clear();
        just_cut = false;
        continue;
      }
      line += buf[i];
      just_cut = line.size() == sizeof buf;
      if (just_cut) {
        show_engine_line(line);
        line.clear();
      }
    }
  }
  if (!line.empty()) show_engine_line(line);
  ::close(from);
}

// What an untrusted child may know of our environment: where its cache is,
// the time zone and language, and warden's own settings. API keys and
// tokens in the rest stay here.
std::vector<std::string> environment_for_untrusted_child() {
  std::vector<std::string> kept;
  for (char** e = environ; *e; e++) {
    const std::string var(*e);
    const std::string name = var.substr(0, var.find('='));
    if (name == "HOME" || name == "XDG_CACHE_HOME" || name == "TZ" || name == "LANG" || name.rfind("LC_", 0) == 0 ||
        name.rfind("WARDEN_", 0) == 0)
      kept.push_back(var);
  }
  return kept;
}

}  // namespace

void ChildProcess::start(const std::vector<std::string>& args, bool capture_stdout, bool untrusted) {
  int out[2] = {-1, -1}, err[2] = {-1, -1};
  if (capture_stdout && ::pipe2(out, O_CLOEXEC) != 0) throw Error("cannot create a pipe");
  if (untrusted && ::pipe2(err, O_CLOEXEC) != 0) throw Error("cannot create a pipe");
  const std::string self = fs::read_symlink("/proc/self/exe").string();
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(self.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<std::string> env_text = untrusted ? environment_for_untrusted_child() : std::vector<std::string>{};
  std::vector<char*> envp;
  for (auto& v : env_text) envp.push_back(v.data());
  envp.push_back(nullptr);
  pid_ = ::fork();
  if (pid_ < 0) throw Error("cannot fork");
  if (pid_ == 0) {
    // A broker or engine must not outlive the session, even if it is killed.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() == 1) _exit(1);
    if (capture_stdout) ::dup2(out[1], 1);
    if (untrusted) {
      const int null = ::open("/dev/null", O_RDONLY);
      if (null < 0 || ::dup2(null, 0) < 0 || ::dup2(err[1], 2) < 0) _exit(127);
    }
    // Nothing this process inherited or opened goes along but 0, 1 and 2.
    if (::syscall(SYS_close_range, 3u, ~0u, 0u) != 0) _exit(127);
    ::execve(self.c_str(), argv.data(), untrusted ? envp.data() : environ);
    _exit(127);
  }
  if (capture_stdout) {
    ::close(out[1]);
    out_fd_ = out[0];
  }
  if (untrusted) {
    ::close(err[1]);
    child_gone_ = false;
    stderr_forwarder_ = std::thread(forward_engine_stderr, err[0], std::cref(child_gone_));
  }
}

bool ChildProcess::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) == pid_) {
    pid_ = -1;
    return false;
  }
  return true;
}

std::string ChildProcess::read_line(std::chrono::seconds timeout) {
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

void ChildProcess::stop() {
  if (out_fd_ >= 0) ::close(out_fd_), out_fd_ = -1;
  if (pid_ > 0) {
    // SIGTERM, and SIGKILL after 5 s: an engine that ignores the first must
    // not hold the session open.
    ::kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() >= deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    pid_ = -1;
  }
  child_gone_ = true;
  if (stderr_forwarder_.joinable()) stderr_forwarder_.join();
}

std::vector<CLI::Option*> add_agent_session_options(CLI::App& app, AgentSessionOptions& o, bool with_model_file) {
  std::vector<CLI::Option*> added;
  added.push_back(
      app.add_option("--workspace", o.workspace, "Project folder the tools work in (default: the current folder)"));
  CLI::Option* backend =
      app.add_option("--backend", o.backend_url, "OpenAI-compatible server, e.g. http://127.0.0.1:8080");
  if (with_model_file) {
    added.push_back(app.add_option("-m,--model-file", o.model_file, "GGUF model for the embedded engine"));
    // A backend decodes as it was started: its lookup flags are a usage error.
    for (auto* option : add_lookup_options(app, o.lookup)) added.push_back(option->excludes(backend));
    o.sampling_flags = add_sampling_options(app, o.sampling);
    for (auto* option : o.sampling_flags.options) added.push_back(option->excludes(backend));
  }
  added.push_back(backend);
  added.push_back(app.add_option("--model", o.model_name, "Model name sent to the backend"));
  added.push_back(app.add_option("--api-key-file", o.api_key_file, "File whose first line is the backend's API key"));
  added.push_back(app.add_option("--max-steps", o.max_steps, "Most model calls per task (per message in chat)")
                      ->capture_default_str()
                      ->check(CLI::Range(1, 1000)));
  added.push_back(
      app.add_option("--socket-dir", o.socket_dir, "Broker socket folder (default $XDG_RUNTIME_DIR/warden)"));
  added.push_back(app.add_option("--policy", o.policy, "Policy file for a broker started by this session"));
  added.push_back(app.add_option("--audit", o.audit, "Audit database for a broker started by this session"));
  added.push_back(app.add_option("--approval-timeout", o.approval_timeout,
                                 "Seconds a broker started by this session waits for a human")
                      ->check(CLI::Range(1, 86400)));
  added.push_back(
      app.add_flag("--no-tty", o.no_tty, "A broker started by this session does not prompt here (only `warden approve`)"));
  added.push_back(
      app.add_option("--resolve", o.resolve, "HOST=IP: fetch HOST at IP (e.g. a local service); may repeat"));
  return added;
}

namespace {

std::unique_ptr<agent::BrokerGate> try_connect(const std::string& socket) {
  try {
    return std::make_unique<agent::BrokerGate>(socket);
  } catch (const std::exception&) {
    return nullptr;
  }
}

bool same_path(const std::string& a, const std::string& b) {
  std::error_code ec1, ec2;
  return fs::weakly_canonical(a, ec1) == fs::weakly_canonical(b, ec2) && !ec1 && !ec2;
}

// A broker this session did not start must serve what the session was told:
// its workspace, and the policy and audit log when they were named.
// Otherwise the user would believe a policy in force that is not.
void check_running_broker(agent::BrokerGate& gate, const AgentSessionOptions& o, const std::string& workspace,
                          const std::string& socket) {
  const broker::BrokerAbout about = gate.about();
  const std::string fix = "; stop that broker, or give --socket-dir for one of this run's own";
  if (!same_path(about.workspace, workspace))
    throw Error("the broker at " + socket + " serves the workspace " + about.workspace + ", not " + workspace + fix);
  if (!o.policy.empty() && !same_path(about.policy, o.policy))
    throw Error("the broker at " + socket + " uses the policy " + about.policy + ", not --policy " + o.policy + fix);
  if (!o.audit.empty() && !same_path(about.audit, o.audit))
    throw Error("the broker at " + socket + " writes the audit log " + about.audit + ", not --audit " + o.audit + fix);
  if (o.approval_timeout > 0 || o.no_tty)
    log::warn("--approval-timeout and --no-tty set up a broker this run starts; the one at " + socket +
              " keeps its own settings");
}

// Connects to the broker listening in the socket folder, starting one for
// this session when none listens.
std::unique_ptr<agent::BrokerGate> connect_broker(const AgentSessionOptions& o, const std::string& workspace,
                                                  const std::string& log_prefix, ChildProcess& child) {
  const broker::SocketPaths paths = o.socket_dir.empty() ? broker::SocketPaths::defaults()
                                                         : broker::SocketPaths::in(o.socket_dir);
  if (auto gate = try_connect(paths.agent)) {
    check_running_broker(*gate, o, workspace, paths.agent);
    log::info(log_prefix + ": using the broker at " + paths.agent);
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
  std::string key = read_text_file(file, "--api-key-file");
  key.resize(std::min(key.size(), key.find('\n')));  // the first line
  while (!key.empty() && (key.back() == '\r' || key.back() == ' ')) key.pop_back();
  if (key.empty()) throw Error("--api-key-file " + file + ": the first line is empty");
  return key;
}

// Starts `warden serve` for a GGUF file on a loopback port and returns its URL.
std::string start_embedded_server(const AgentSessionOptions& o, ChildProcess& child) {
  std::vector<std::string> args{"serve", "-m", o.model_file, "--host", "127.0.0.1", "--port", "0"};
  const std::vector<std::string> sampling = o.sampling_flags.given_args();
  args.insert(args.end(), sampling.begin(), sampling.end());
  if (o.lookup.on)
    args.insert(args.end(), {"--spec-type", "ngram-simple", "--draft-max", std::to_string(o.lookup.draft_max),
                             "--spec-ngram-size-n", std::to_string(o.lookup.ngram)});
  child.start(args, true, true);
  const std::string line = child.read_line(std::chrono::seconds(600));
  const std::string prefix = "listening on ";
  if (line.rfind(prefix, 0) != 0) throw Error("-m " + o.model_file + ": the engine server did not start");
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

std::string resolve_workspace(const std::string& given) {
  std::error_code ec;
  const fs::path ws = fs::canonical(given.empty() ? fs::current_path() : fs::path(given), ec);
  if (ec || !fs::is_directory(ws)) throw Error("--workspace " + given + ": not a directory");
  return ws.string();
}

}  // namespace

AgentSession::AgentSession(const AgentSessionOptions& o, std::string log_prefix)
    : log_prefix_(std::move(log_prefix)), max_steps_(o.max_steps) {
  if (o.model_file.empty() == o.backend_url.empty()) throw UsageError("give exactly one of -m FILE or --backend URL");
  // Every option is checked before a broker or engine child is started.
  if (!o.model_file.empty() && !fs::is_regular_file(o.model_file)) throw Error("-m " + o.model_file + ": no such file");
  workspace_ = resolve_workspace(o.workspace);
  tool_config_.workspace = workspace_;
  tool_config_.home = paths::home();
  tool_config_.resolve = parse_resolve(o.resolve);
  sandbox::check_prerequisites();  // fail closed before the model says anything

  agent::OpenAIBackendConfig backend_config;
  backend_config.model = o.model_name;
  if (!o.api_key_file.empty()) backend_config.api_key = read_api_key(o.api_key_file);

  gate_ = connect_broker(o, workspace_, log_prefix_, broker_child_);
  backend_config.base_url =
      o.model_file.empty() ? o.backend_url : start_embedded_server(o, engine_child_);
  backend_ = std::make_unique<agent::OpenAIBackend>(backend_config);
  tools_ = std::make_unique<agent::ToolRunner>(tool_config_, *gate_);
  agent_ = std::make_unique<agent::Agent>(*backend_, *tools_, *gate_, agent_config());
  gate_->record_event("agent.start", "backend " + backend_->describe() + ", workspace " + workspace_);
}

AgentSession::~AgentSession() {
  if (finished_) return;
  try {
    finish();
  } catch (const std::exception&) {
    // The broker may already be gone (e.g. it was stopped): nothing to record.
  }
}

agent::AgentConfig AgentSession::agent_config() const {
  agent::AgentConfig config;
  config.max_steps = max_steps_;
  config.system_prompt = agent::default_system_prompt(workspace_);
  const std::string prefix = log_prefix_;
  // Progress lines come neutralized (agent.cpp's progress_text): printed as
  // they are, or each escape would show its backslash doubled.
  config.on_progress = [prefix](const std::string& line) { log::write_shown(log::Level::info, prefix + ": " + line); };
  return config;
}

agent::AgentResult AgentSession::ask(const std::string& message) {
  agent::AgentResult r = agent_->ask(message);
  totals_.steps += r.steps;
  totals_.tool_calls += r.tool_calls;
  totals_.denied += r.denied;
  log::info(log_prefix_ + ": " + std::to_string(r.steps) + " model calls, " + std::to_string(r.tool_calls) +
            " tool calls, " + std::to_string(r.denied) + " denied");
  return r;
}

void AgentSession::reset() {
  // A new Agent has an empty conversation and an empty label set: nothing the
  // old conversation read can taint what comes next.
  agent_ = std::make_unique<agent::Agent>(*backend_, *tools_, *gate_, agent_config());
  gate_->record_event("agent.reset", "conversation and taint labels cleared by the user");
}

void AgentSession::finish() {
  finished_ = true;
  gate_->record_event("agent.end", std::to_string(totals_.steps) + " model calls, " +
                                       std::to_string(totals_.tool_calls) + " tool calls, " +
                                       std::to_string(totals_.denied) + " denied");
}

}  // namespace warden::cli
