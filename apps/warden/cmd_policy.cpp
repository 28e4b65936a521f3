// warden policy show | check: what the broker's policy says, and why.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>

#include "broker/broker.h"
#include "broker/policy.h"
#include "broker/taint.h"
#include "command.h"
#include "util/error.h"

namespace {
using namespace warden::broker;

struct PolicyOptions {
  std::string policy_path;
  std::string workspace;
  bool json = false;
};

void add_common(CLI::App* sub, PolicyOptions& o) {
  sub->add_option("--policy", o.policy_path, "Policy file (default $XDG_CONFIG_HOME/warden/policy.toml)");
  sub->add_option("--workspace", o.workspace, "Workspace folder (default: the current folder)");
  sub->add_flag("--json", o.json, "Print JSON");
}

Policy load_policy(const PolicyOptions& o) {
  std::string ws = o.workspace.empty() ? std::filesystem::current_path().string() : o.workspace;
  if (!std::filesystem::is_directory(ws)) throw warden::Error("workspace " + ws + " is not a directory");
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

int show(const PolicyOptions& o) {
  Policy p = load_policy(o);
  if (o.json) {
    nlohmann::json j = {{"source", p.source()},
                        {"workspace", p.env().workspace},
                        {"approval_timeout_seconds", p.approval_timeout_seconds()}};
    j["rules"] = nlohmann::json::array();
    for (auto& r : p.rules())
      j["rules"].push_back({{"capability", std::string(capability_name(r.capability))},
                            {"pattern", r.pattern},
                            {"written_pattern", r.written_pattern},
                            {"action", std::string(action_name(r.action))},
                            {"network", r.network},
                            {"origin", r.origin},
                            {"note", r.note}});
    j["limits"] = nlohmann::json::object();
    for (auto& [c, l] : p.limits())
      j["limits"][std::string(capability_name(c))] = {{"max", l.max}, {"per_seconds", l.per_seconds}};
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("policy: %s\nworkspace: %s\napproval timeout: %d s\n", p.source().c_str(),
              p.env().workspace.c_str(), p.approval_timeout_seconds());
  std::printf("rules (first match wins; nothing matched -> deny):\n");
  int n = 1;
  for (auto& r : p.rules()) std::printf("  %2d. %s\n", n++, rule_line(r).c_str());
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

int check(const PolicyOptions& o, const CheckOptions& c) {
  Policy p = load_policy(o);
  auto [cap, spec_target] = parse_capability_spec(c.capability);
  if (!spec_target.empty() && !c.target.empty())
    throw warden::UsageError("give the target either as " + c.capability + " or as ARG, not both");
  EffectRequest req;
  req.capability = cap;
  req.target = spec_target.empty() ? c.target : spec_target;
  // On the command line a relative path means one under the current folder
  // (the agent's requests must be absolute).
  if (target_is_path(cap) && !req.target.empty() && req.target[0] != '/')
    req.target = (std::filesystem::current_path() / req.target).string();
  req.network = c.network;
  if (c.network && cap != Capability::exec) throw warden::UsageError("--network applies only to exec");
  req.context_labels = LabelSet::parse(c.context_labels);
  req.argument_labels = LabelSet::parse(c.argument_labels);
  Assessment a = assess(p, req);
  auto limit = p.rate_limit(cap);
  if (o.json) {
    nlohmann::json j = {{"capability", std::string(capability_name(cap))},
                        {"target", a.target},
                        {"decision", std::string(action_name(a.action))},
                        {"policy", a.policy.explain()},
                        {"why", a.ask_reasons}};
    if (limit) j["rate_limit"] = {{"max", limit->max}, {"per_seconds", limit->per_seconds}};
    std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
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

std::function<int()> setup_policy(CLI::App& app) {
  auto opts = std::make_shared<PolicyOptions>();
  auto copts = std::make_shared<CheckOptions>();
  app.require_subcommand(1);
  auto* show_cmd = app.add_subcommand("show", "Print every rule in evaluation order, limits and defaults");
  add_common(show_cmd, *opts);
  auto* check_cmd = app.add_subcommand("check", "Explain the decision for CAPABILITY ARG (e.g. net:example.com)");
  add_common(check_cmd, *opts);
  check_cmd->add_option("capability", copts->capability, "fs.read fs.write exec net msg.send wallet.spend "
                                                         "remote.llm config.change plugin.install (or net:DOMAIN)")
      ->required();
  check_cmd->add_option("arg", copts->target, "Path, domain, recipient, command...");
  check_cmd->add_flag("--network", copts->network, "exec: the command would run with network");
  check_cmd->add_option("--label", copts->context_labels, "Taint label in the context (web:DOMAIN, ...)");
  check_cmd->add_option("--arg-label", copts->argument_labels, "Taint label of the arguments");
  return [opts, copts, show_cmd]() -> int {
    if (show_cmd->parsed()) return show(*opts);
    return check(*opts, *copts);
  };
}

WARDEN_COMMAND("policy", "Show the broker's policy, or check what it decides for an effect", setup_policy);

}  // namespace
