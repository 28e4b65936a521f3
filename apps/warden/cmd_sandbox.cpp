// warden sandbox run: runs one command in a bubblewrap jail (src/sandbox).
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>

#include "command.h"
#include "sandbox/sandbox.h"
#if defined(WARDEN_HAVE_AGENT)
#include "broker/autorun.h"
#endif
#include "util/error.h"

namespace {

using namespace warden::sandbox;

struct RunArgs {
  std::string profile = "default";
  std::string workspace;
  std::vector<std::string> allow_domains;
  std::vector<std::string> readonly_paths;
  double timeout = 0;
  bool json = false;
  bool stdin_input = false;
  std::string proxy_log;
  std::vector<std::string> command;
};

std::string read_stdin() {
  std::ostringstream ss;
  ss << std::cin.rdbuf();
  return ss.str();
}

int run_sandboxed(const RunArgs& a) {
  Profile p = [&] {
    try {
      return named_profile(a.profile);
    } catch (const warden::Error& e) {
      throw warden::UsageError(e.what());  // a --profile value: bad usage
    }
  }();
  p.workspace = a.workspace;
#if defined(WARDEN_HAVE_AGENT)
  // As for the agent's run_command: code other programs run later (.git
  // hooks and config, .envrc, .vscode) stays read-only in a writable workspace.
  for (const auto& entry : warden::broker::kAutorunNames) p.readonly_in_workspace.push_back({entry.name, entry.directory});
#endif
  if (!a.allow_domains.empty()) {
    if (!p.network) throw warden::UsageError("--allow-domain needs a profile with network (--profile network)");
    p.allowed_domains = a.allow_domains;
  }
  p.readonly_binds = a.readonly_paths;
  if (a.timeout > 0) p.limits.wall_seconds = a.timeout;
  RunOptions options;
  options.proxy_log_path = a.proxy_log;
  SandboxResult r = run(p, a.command, a.stdin_input ? read_stdin() : std::string(), options);
  if (a.json) {
    std::printf("%s\n", r.to_json().c_str());
  } else {
    std::fwrite(r.out.data(), 1, r.out.size(), stdout);
    if (r.out_truncated) std::fputs("\n[warden: stdout truncated]\n", stdout);
    std::fflush(stdout);
    std::fwrite(r.err.data(), 1, r.err.size(), stderr);
    if (r.err_truncated) std::fputs("\n[warden: stderr truncated]\n", stderr);
    for (const auto& e : r.proxy_log) std::fprintf(stderr, "warden sandbox: proxy %s\n", e.to_json().c_str());
    std::fprintf(stderr, "warden sandbox: profile %s, exit %d, killed: %s, %.3f s\n", p.name.c_str(), r.exit_code,
                 kill_reason_name(r.killed), r.wall_seconds);
  }
  if (r.killed != KillReason::none) return 1;
  return r.exit_code;
}

WARDEN_COMMAND("sandbox", "Run a command in a bubblewrap jail (sandbox run ... -- CMD ARGS)", [](CLI::App& app) {
  auto args = std::make_shared<RunArgs>();
  app.require_subcommand(1);
  CLI::App* run_cmd = app.add_subcommand(
      "run", "Run one command in a jail and report its result (exit: the command's status, 1 if a limit killed it)");
  run_cmd->add_option("--profile", args->profile, "Profile: default, readonly or network")->capture_default_str();
  run_cmd->add_option("--workspace", args->workspace, "Directory bound at /workspace (rw, ro for 'readonly')");
  // One value per occurrence, so that "--allow-domain a -- cmd -x" ends the
  // list at "--" rather than taking the command's arguments.
  run_cmd->add_option("--allow-domain", args->allow_domains, "Domain the egress proxy allows (exact or *.suffix); repeatable")
      ->allow_extra_args(false);
  run_cmd->add_option("--ro", args->readonly_paths, "Extra host path bound read-only at the same path; repeatable")
      ->allow_extra_args(false);
  run_cmd->add_option("--timeout", args->timeout, "Wall-clock limit in seconds (default 60)")
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            const double seconds = std::strtod(text.c_str(), nullptr);
            // A week at most: far longer limits overflow the supervisor's clock arithmetic.
            return std::isfinite(seconds) && seconds > 0 && seconds <= 604800
                       ? ""
                       : "must be a number of seconds above 0, at most 604800 (a week)";
          },
          "0 < SECONDS <= 604800"));
  run_cmd->add_option("--proxy-log", args->proxy_log, "Append the proxy's JSON log lines to this file");
  run_cmd->add_flag("--stdin", args->stdin_input, "Pass warden's stdin to the command");
  run_cmd->add_flag("--json", args->json, "Print the result as one JSON object");
  run_cmd->add_option("command", args->command, "Command and arguments (after --)")->required();
  return [args]() { return run_sandboxed(*args); };
});

}  // namespace
