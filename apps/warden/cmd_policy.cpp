// warden policy show | check: what the broker's policy says, and why.
// warden policy apply FILE | set CAP PATTERN ACTION: change it, the one way
// it changes while a broker runs: the broker (or, when none runs, the same
// broker code in this process) validates the new text, asks a human to
// approve the unified diff, writes the file atomically, audits the old and
// new SHA-256, and only then puts the new policy in force.
#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>

#include "broker/audit.h"
#include "broker/broker.h"
#include "broker/client.h"
#include "broker/policy.h"
#include "broker/policy_file.h"
#include "broker/server.h"
#include "broker/taint.h"
#include "broker/tty_prompt.h"
#include "command.h"
#include "util/error.h"
#include "util/log.h"

namespace {
using namespace warden::broker;

struct PolicyOptions {
  std::string policy_path;
  std::string workspace;
  std::string socket_dir;
  bool json = false;
};

void add_common(CLI::App* sub, PolicyOptions& o) {
  sub->add_option("--policy", o.policy_path, "Policy file (default $XDG_CONFIG_HOME/warden/policy.toml)");
  sub->add_option("--workspace", o.workspace, "Workspace folder (default: the current folder)");
  sub->add_flag("--json", o.json, "Print JSON");
}

Policy load_policy(const PolicyOptions& o) {
  const std::string ws = warden::cli::workspace_folder(o.workspace);
  if (!o.policy_path.empty()) require_named_policy(read_policy_file(o.policy_path));
  return Policy::load(o.policy_path.empty() ? default_policy_path() : o.policy_path, PolicyEnv::current(ws));
}

std::string rule_line(const Rule& r) {
  std::string s = std::string(action_name(r.action)) + "  " + std::string(capability_name(r.capability));
  if (r.capability == Capability::exec) s += r.network ? " (with network)" : " (no network)";
  s += "  " + r.pattern;
  if (r.pattern != r.written_pattern) s += "  [" + r.written_pattern + "]";
  s += "  <- " + r.origin;
  if (!r.note.empty()) s += "  # " + r.note;
  return s;
}

// A deny rule for exec compares its pattern with the command line as text:
// the same program by its full path, or through `sh -c`, does not match,
// so such a rule is no boundary, and `policy show` says so beside it.
std::string exec_deny_warning(const Rule& r) {
  if (r.capability != Capability::exec || r.action != Action::deny || r.written_pattern == "*") return "";
  return "exec patterns match the command line as text: this rule does not stop the same program run another "
         "way (by its full path, through sh -c, ...); deny exec as a whole, or ask, to be sure";
}

// What a running broker has in force, when one answers and it differs from
// the file shown: edits of the file take effect only through `policy apply`.
std::string in_force_note(const PolicyOptions& o) {
  const SocketPaths paths = o.socket_dir.empty() ? SocketPaths::defaults() : SocketPaths::in(o.socket_dir);
  nlohmann::json status;
  try {
    ApproverClient client(paths.approve);
    status = client.call({{"op", "policy.status"}});
  } catch (const warden::Error&) {
    return "";  // no broker running (or one without a policy file): the file is what will be loaded
  }
  const std::string path = std::filesystem::absolute(o.policy_path.empty() ? default_policy_path() : o.policy_path)
                               .lexically_normal()
                               .string();
  const std::string broker_path = status.value("path", std::string());
  if (broker_path != path) return "note: the running broker's policy is " + broker_path + ", not this file";
  if (status.value("sha256", std::string()) == read_policy_file(path).sha256) return "";
  return "note: this file differs from the policy the running broker has in force (SHA-256 " +
         status.value("sha256", std::string()).substr(0, 16) +
         "...); its edits take effect only after `warden policy apply " + path + "`";
}

int show(const PolicyOptions& o) {
  Policy p = load_policy(o);
  const std::string note = in_force_note(o);
  if (o.json) {
    nlohmann::json j = {{"source", p.source()},
                        {"workspace", p.env().workspace},
                        {"approval_timeout_seconds", p.approval_timeout_seconds()}};
    if (!note.empty()) j["note"] = note;
    j["rules"] = nlohmann::json::array();
    for (auto& r : p.rules())
      j["rules"].push_back({{"capability", std::string(capability_name(r.capability))},
                            {"pattern", r.pattern},
                            {"written_pattern", r.written_pattern},
                            {"action", std::string(action_name(r.action))},
                            {"network", r.network},
                            {"origin", r.origin},
                            {"note", r.note},
                            {"warning", exec_deny_warning(r)}});
    j["limits"] = nlohmann::json::object();
    for (auto& [c, l] : p.limits())
      j["limits"][std::string(capability_name(c))] = {{"max", l.max}, {"per_seconds", l.per_seconds}};
    std::printf("%s\n", j.dump(2, ' ', true, nlohmann::json::error_handler_t::replace).c_str());
    return 0;
  }
  std::printf("policy: %s\nworkspace: %s\napproval timeout: %d s\n", p.source().c_str(),
              p.env().workspace.c_str(), p.approval_timeout_seconds());
  if (!note.empty()) std::printf("%s\n", note.c_str());
  std::printf("rules (first match wins; nothing matched -> deny):\n");
  int n = 1;
  for (auto& r : p.rules()) {
    std::printf("  %2d. %s\n", n++, rule_line(r).c_str());
    if (const std::string warning = exec_deny_warning(r); !warning.empty())
      std::printf("      warning: %s\n", warning.c_str());
  }
  std::printf("rate limits:%s\n", p.limits().empty() ? " none" : "");
  for (auto& [c, l] : p.limits())
    std::printf("  %s: at most %d per %d s\n", std::string(capability_name(c)).c_str(), l.max, l.per_seconds);
  std::printf("always asked whatever the rules say: msg.send, remote.llm, config.change, plugin.install,\n"
              "  fs.write outside the workspace, exec with network; any leaking sink with untrusted\n"
              "  content (web, message, tool, workspace file) in the context or arguments\n");
  return 0;
}

struct CheckOptions {
  std::string capability;
  std::string target;
  bool network = false;
  std::vector<std::string> context_labels;
  std::vector<std::string> argument_labels;
};

// A value from the command line that the broker's parsers refuse (a
// capability, a target, a label) is bad usage: exit 2, not 1.
template <typename Parse>
auto usage_value(Parse&& parse) {
  try {
    return parse();
  } catch (const warden::UsageError&) {
    throw;
  } catch (const warden::Error& e) {
    throw warden::UsageError(e.what());
  }
}

int check(const PolicyOptions& o, const CheckOptions& c) {
  Policy p = load_policy(o);
  auto [cap, spec_target] = usage_value([&] { return parse_capability_spec(c.capability); });
  if (!spec_target.empty() && !c.target.empty())
    throw warden::UsageError("give the target either as " + c.capability + " or as ARG, not both");
  EffectRequest req;
  req.capability = cap;
  req.target = spec_target.empty() ? c.target : spec_target;
  if (req.target.empty() && target_is_path(cap))
    throw warden::UsageError("give the path to check: warden policy check " + c.capability + " PATH");
  // On the command line a relative path means one under the current folder
  // (the agent's requests must be absolute).
  if (target_is_path(cap) && !req.target.empty() && req.target[0] != '/')
    req.target = (std::filesystem::current_path() / req.target).string();
  usage_value([&] { return normalize_target(cap, req.target); });  // only to check it: assess() normalizes too
  req.network = c.network;
  if (c.network && cap != Capability::exec) throw warden::UsageError("--network applies only to exec");
  // As the agent's requests do, the context holds at least the user's task.
  req.context_labels = usage_value([&] {
    return LabelSet::parse(c.context_labels.empty() ? std::vector<std::string>{"user"} : c.context_labels);
  });
  req.argument_labels = usage_value([&] { return LabelSet::parse(c.argument_labels); });
  Assessment a = assess(p, req);
  auto limit = p.rate_limit(cap);
  if (o.json) {
    nlohmann::json j = {{"capability", std::string(capability_name(cap))},
                        {"target", a.target},
                        {"decision", std::string(action_name(a.action))},
                        {"policy", a.policy.explain()},
                        {"why", a.ask_reasons}};
    if (limit) j["rate_limit"] = {{"max", limit->max}, {"per_seconds", limit->per_seconds}};
    std::printf("%s\n", j.dump(2, ' ', true, nlohmann::json::error_handler_t::replace).c_str());
    return 0;
  }
  std::printf("decision: %s\n", std::string(action_name(a.action)).c_str());
  std::printf("effect:   %s%s %s\n", std::string(capability_name(cap)).c_str(),
              cap == Capability::exec ? (c.network ? " (with network)" : " (no network)") : "", a.target.c_str());
  std::printf("policy:   %s\n", a.policy.explain().c_str());
  for (auto& why : a.ask_reasons) std::printf("why:      %s\n", why.c_str());
  if (limit) std::printf("limit:    at most %d per %d s\n", limit->max, limit->per_seconds);
  return 0;
}

// ---------------------------------------------------------------- changes

struct ChangeOptions {
  std::string file;         // apply: the new policy
  std::string capability;   // set: CAP (or CAP:PATTERN)
  std::vector<std::string> pattern_action;  // set: [PATTERN] ACTION (allow | ask | deny)
  bool network = false;     // set: exec with network
  std::string note;         // set
  std::string socket_dir;
  std::string audit;
  int approval_timeout = 0;
};

std::string policy_path_of(const PolicyOptions& o) {
  return std::filesystem::absolute(o.policy_path.empty() ? default_policy_path() : o.policy_path)
      .lexically_normal()
      .string();
}

// A TOML basic string. Policies are ASCII (policy.h); anything else is
// refused here with a clear error rather than written and refused later.
std::string toml_string(const std::string& s, const char* what) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c >= 0x80) throw warden::UsageError(std::string(what) + " must be ASCII");
    if (c == '"' || c == '\\') {
      out += '\\';
      out += char(c);
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += char(c);
    }
  }
  return out + "\"";
}

// The current text with one rule put first (first match wins), before the
// first table of the file so comments at its top stay there.
std::string text_with_rule_first(const std::string& current, const ChangeOptions& c) {
  auto [cap, spec_pattern] = usage_value([&] { return parse_capability_spec(c.capability); });
  // CLI11 fills positionals in order, so PATTERN and ACTION come as one list.
  const std::string given_pattern = c.pattern_action.size() == 2 ? c.pattern_action[0] : "";
  const std::string action = c.pattern_action.back();
  if (!spec_pattern.empty() && !given_pattern.empty())
    throw warden::UsageError("give the pattern either as " + c.capability + " or as PATTERN, not both");
  std::string pattern = spec_pattern.empty() ? given_pattern : spec_pattern;
  if (action != "allow" && action != "ask" && action != "deny")
    throw warden::UsageError("action must be allow, ask or deny, not '" + action + "'");
  if (c.network && cap != Capability::exec) throw warden::UsageError("--network applies only to exec");
  std::string rule = "[[rule]]\ncapability = " + toml_string(std::string(capability_name(cap)), "capability") + "\n";
  if (!pattern.empty()) rule += "pattern = " + toml_string(pattern, "the pattern") + "\n";
  rule += "action = \"" + action + "\"\n";
  if (c.network) rule += "network = true\n";
  rule += "note = " + toml_string(c.note.empty() ? "added with warden policy set" : c.note, "the note") + "\n\n";
  size_t at = 0;
  while (at < current.size()) {
    size_t first = current.find_first_not_of(" \t", at);
    if (first != std::string::npos && first < current.size() && current[first] == '[') break;
    size_t nl = current.find('\n', at);
    at = nl == std::string::npos ? current.size() : nl + 1;
  }
  std::string before = current.substr(0, at);
  if (!before.empty() && before.back() != '\n') before += '\n';
  return before + rule + current.substr(at);
}

int report_change(bool applied, const std::string& message) {
  if (!applied) throw warden::Error(message);
  std::printf("%s\n", message.c_str());
  return 0;
}

// A running broker does the change itself: it holds the policy in force.
int apply_through_broker(const std::string& socket, const std::string& text, const PolicyOptions& o) {
  ApproverClient client(socket);
  nlohmann::json req = {{"op", "policy.apply"}, {"text", text}};
  if (!o.policy_path.empty()) req["path"] = policy_path_of(o);
  warden::log::info("policy: asking the running broker; approve the diff on its terminal or with `warden approve`");
  nlohmann::json reply = client.call(req);
  return report_change(reply.value("applied", false), reply.value("message", std::string("malformed broker reply")));
}

// No broker runs: the same broker code, in this process, asks on this
// terminal. Without a terminal nobody could approve, so nothing is asked.
int apply_in_process(const std::string& text, const PolicyOptions& o, const ChangeOptions& c) {
  int tty = ::open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (tty < 0) throw warden::Error("no broker is running and there is no terminal here to approve the change on");
  ::close(tty);
  const std::string path = policy_path_of(o);
  PolicyFileState current = read_policy_file(path);
  const PolicyEnv env = PolicyEnv::current(warden::cli::workspace_folder(o.workspace));
  // The policy in force is the file; one that no longer parses is replaced
  // by the defaults for deciding (the diff still starts from its text).
  Policy in_force = Policy::defaults(env);
  if (current.exists) {
    try {
      in_force = Policy::parse(current.text, path, env);
    } catch (const warden::Error& e) {
      warden::log::warn(std::string("policy: the current file does not parse (") + e.what() + ")");
    }
  }
  const std::string audit_path = c.audit.empty() ? default_audit_path() : c.audit;
  VerifyReport rep = verify_audit(audit_path);
  if (!rep.ok) throw warden::Error("audit log " + audit_path + " fails verification (" + rep.problems.front() + ")");
  AuditLog audit(audit_path);
  ApprovalQueue queue;
  Broker broker(std::move(in_force), audit, queue);
  broker.pin_policy_file(current);
  if (c.approval_timeout > 0) broker.set_approval_timeout(std::chrono::seconds(c.approval_timeout));
  TerminalPrompter prompter(queue);
  prompter.start();
  PolicyChange change = broker.change_policy(text, "warden policy apply (no broker running)");
  prompter.stop();
  return report_change(change.applied, change.message);
}

// Validates `text` here first (one clear error, nothing asked or written),
// then hands it to the running broker, or to the in-process one.
int apply_text(const std::string& text, const std::string& name, const PolicyOptions& o, const ChangeOptions& c) {
  check_policy_size(text, name);
  Policy::parse(text, name, PolicyEnv::current(warden::cli::workspace_folder(o.workspace)));
  const SocketPaths paths = c.socket_dir.empty() ? SocketPaths::defaults() : SocketPaths::in(c.socket_dir);
  int probe = -1;
  try {
    probe = connect_unix(paths.approve);
  } catch (const warden::Error&) {
    return apply_in_process(text, o, c);
  }
  ::close(probe);
  return apply_through_broker(paths.approve, text, o);
}

int apply(const PolicyOptions& o, const ChangeOptions& c) {
  PolicyFileState f = read_policy_file(c.file);
  if (!f.exists) throw warden::Error(c.file + ": no such file");
  return apply_text(f.text, c.file, o, c);
}

int set_rule(const PolicyOptions& o, const ChangeOptions& c) {
  PolicyFileState current = read_policy_file(policy_path_of(o));
  return apply_text(text_with_rule_first(current.text, c), "the policy with the new rule", o, c);
}

void add_change_options(CLI::App* sub, ChangeOptions& c) {
  sub->add_option("--socket-dir", c.socket_dir, "The running broker's socket folder (default $XDG_RUNTIME_DIR/warden)");
  sub->add_option("--audit", c.audit, "Audit database when no broker runs (default $XDG_DATA_HOME/warden/audit.db)");
  sub->add_option("--approval-timeout", c.approval_timeout, "Seconds to wait for the approval when no broker runs")
      ->check(CLI::Range(1, 86400));
}

std::function<int()> setup_policy(CLI::App& app) {
  auto opts = std::make_shared<PolicyOptions>();
  auto copts = std::make_shared<CheckOptions>();
  auto chopts = std::make_shared<ChangeOptions>();
  app.require_subcommand(1);
  auto* show_cmd = app.add_subcommand("show", "Print every rule in evaluation order, limits and defaults");
  add_common(show_cmd, *opts);
  show_cmd->add_option("--socket-dir", opts->socket_dir, "A running broker's socket folder, to compare with");
  auto* check_cmd = app.add_subcommand("check", "Explain the decision for CAPABILITY ARG (e.g. net:example.com)");
  add_common(check_cmd, *opts);
  check_cmd->add_option("capability", copts->capability, "fs.read fs.write exec net msg.send wallet.spend "
                                                         "remote.llm config.change plugin.install (or net:DOMAIN)")
      ->required();
  check_cmd->add_option("arg", copts->target, "Path, domain, recipient, command...");
  check_cmd->add_flag("--network", copts->network, "exec: the command would run with network");
  check_cmd->add_option("--label", copts->context_labels, "Taint label in the context (web:DOMAIN, ...; default: user)");
  check_cmd->add_option("--arg-label", copts->argument_labels, "Taint label of the arguments");

  auto* apply_cmd = app.add_subcommand(
      "apply", "Replace the policy with FILE after a human approves the diff (through the running broker if any)");
  apply_cmd->add_option("--policy", opts->policy_path, "Policy file to replace (default $XDG_CONFIG_HOME/warden/policy.toml)");
  apply_cmd->add_option("--workspace", opts->workspace, "Workspace folder for $WORKSPACE (default: the current folder)");
  apply_cmd->add_option("file", chopts->file, "The new policy (TOML)")->required();
  add_change_options(apply_cmd, *chopts);

  auto* set_cmd = app.add_subcommand("set", "Put one rule first in the policy, after a human approves the diff");
  set_cmd->add_option("--policy", opts->policy_path, "Policy file to change (default $XDG_CONFIG_HOME/warden/policy.toml)");
  set_cmd->add_option("--workspace", opts->workspace, "Workspace folder for $WORKSPACE (default: the current folder)");
  set_cmd->add_option("capability", chopts->capability, "fs.read fs.write exec net ... (or net:DOMAIN)")->required();
  set_cmd
      ->add_option("pattern_action", chopts->pattern_action,
                    "[PATTERN] ACTION: the path, domain or glob the rule matches (none with CAP:PATTERN), then "
                    "allow | ask | deny")
      ->expected(1, 2)
      ->required();
  set_cmd->add_flag("--network", chopts->network, "exec: the rule is for commands with network");
  set_cmd->add_option("--note", chopts->note, "Note shown by policy check");
  add_change_options(set_cmd, *chopts);

  return [opts, copts, chopts, show_cmd, apply_cmd, set_cmd]() -> int {
    if (show_cmd->parsed()) return show(*opts);
    if (apply_cmd->parsed()) return apply(*opts, *chopts);
    if (set_cmd->parsed()) return set_rule(*opts, *chopts);
    return check(*opts, *copts);
  };
}

WARDEN_COMMAND("policy", "Show or check the broker's policy, or change it with a human's approval", setup_policy);

}  // namespace
