#include "broker/policy.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <toml++/toml.h>

#include "broker/pattern.h"
#include "util/ascii.h"
#include "util/error.h"
#include "util/paths.h"

namespace warden::broker {
namespace {

constexpr size_t kMaxTargetBytes = 64 * 1024;

std::string at(const std::string& name, const toml::source_region& where) {
  return name + ":" + std::to_string(where.begin.line);
}

[[noreturn]] void fail(const std::string& name, const toml::node& node, const std::string& what) {
  throw Error(at(name, node.source()) + ": " + what);
}

std::optional<Action> parse_action(std::string_view s) {
  if (s == "allow") return Action::allow;
  if (s == "ask") return Action::ask;
  if (s == "deny") return Action::deny;
  return std::nullopt;
}

// Replaces a leading $WORKSPACE or ~ and normalizes path patterns, so a rule
// compares against normalized targets. Returns an error text or "".
std::string expand_path_pattern(const std::string& written, const PolicyEnv& env, std::string& out) {
  std::string p = written;
  if (p.rfind("$WORKSPACE", 0) == 0) {
    if (env.workspace.empty()) return "pattern uses $WORKSPACE but no workspace is set";
    p = env.workspace + p.substr(10);
  } else if (p == "~" || p.rfind("~/", 0) == 0) {
    p = env.home + p.substr(1);
  }
  if (p == "**") {
    out = p;
    return "";
  }
  if (p.empty() || p[0] != '/') return "path pattern '" + written + "' must be absolute or start with $WORKSPACE or ~";
  // Normalize the literal part; glob characters survive lexical normalization
  // because they never form "." or ".." components on their own.
  bool trailing_globstar = p.size() >= 3 && p.substr(p.size() - 3) == "/**";
  std::string base = trailing_globstar ? p.substr(0, p.size() - 3) : p;
  if (base.empty()) base = "/";
  base = normalize_path_lexically(base);
  out = trailing_globstar ? (base == "/" ? "/**" : base + "/**") : base;
  return "";
}

Rule parse_rule(const toml::table& t, const std::string& name, const PolicyEnv& env) {
  static const std::set<std::string> kKeys = {"capability", "pattern", "action", "network", "note"};
  for (auto& [key, value] : t)
    if (!kKeys.count(std::string(key.str())))
      fail(name, value, "unknown key '" + std::string(key.str()) +
                            "' in [[rule]] (expected capability, pattern, action, network, note)");
  Rule r;
  r.origin = at(name, t.source());
  auto* cap = t.get("capability");
  if (!cap) fail(name, t, "[[rule]] has no capability");
  auto cap_name = cap->value<std::string>();
  if (!cap_name) fail(name, *cap, "capability must be a string");
  auto parsed_cap = parse_capability(*cap_name);
  if (!parsed_cap) fail(name, *cap, "unknown capability '" + *cap_name + "'");
  r.capability = *parsed_cap;

  auto* act = t.get("action");
  if (!act) fail(name, t, "[[rule]] has no action (allow, ask or deny)");
  auto act_name = act->value<std::string>();
  auto parsed_act = act_name ? parse_action(*act_name) : std::nullopt;
  if (!parsed_act) fail(name, *act, "action must be \"allow\", \"ask\" or \"deny\"");
  r.action = *parsed_act;

  if (auto* pat = t.get("pattern")) {
    auto s = pat->value<std::string>();
    if (!s || s->empty()) fail(name, *pat, "pattern must be a non-empty string");
    if (s->size() > 1024) fail(name, *pat, "pattern is longer than 1024 bytes");
    r.written_pattern = *s;
  } else {
    r.written_pattern = target_is_path(r.capability) ? "**" : "*";
  }
  if (target_is_path(r.capability)) {
    std::string err;
    try {
      err = expand_path_pattern(r.written_pattern, env, r.pattern);
    } catch (const Error& e) {
      err = e.what();
    }
    if (!err.empty()) fail(name, *t.get("pattern"), err);
  } else {
    r.pattern = target_is_domain(r.capability)    ? normalize_domain(r.written_pattern)
                : target_is_address(r.capability) ? ascii_lower(r.written_pattern)
                                                  : r.written_pattern;
  }

  if (auto* net = t.get("network")) {
    if (r.capability != Capability::exec) fail(name, *net, "network applies only to exec rules");
    auto b = net->value<bool>();
    if (!b) fail(name, *net, "network must be true or false");
    r.network = *b;
  }
  if (auto* note = t.get("note")) {
    auto s = note->value<std::string>();
    if (!s) fail(name, *note, "note must be a string");
    r.note = *s;
  }
  return r;
}

void parse_limits(const toml::table& t, const std::string& name, std::map<Capability, RateLimit>& out) {
  for (auto& [key, value] : t) {
    auto cap = parse_capability(key.str());
    if (!cap) fail(name, value, "unknown capability '" + std::string(key.str()) + "' in [limits]");
    auto* lt = value.as_table();
    if (!lt) fail(name, value, "[limits] " + std::string(key.str()) + " must be a table { max = N, per_seconds = S }");
    RateLimit rl;
    for (auto& [k, v] : *lt) {
      auto n = v.is_integer() ? v.value<int64_t>() : std::nullopt;  // a float: value<> casts it, UB when huge
      if (k.str() != "max" && k.str() != "per_seconds")
        fail(name, v, "unknown key '" + std::string(k.str()) + "' in limit (expected max, per_seconds)");
      if (!n || *n < (k.str() == "max" ? 0 : 1) || *n > 1000000)
        fail(name, v, std::string(k.str()) + " must be an integer between " + (k.str() == "max" ? "0" : "1") +
                          " and 1000000");
      (k.str() == "max" ? rl.max : rl.per_seconds) = int(*n);
    }
    if (!lt->contains("max") || !lt->contains("per_seconds"))
      fail(name, value, "limit for " + std::string(key.str()) + " needs both max and per_seconds");
    out[*cap] = rl;
  }
}

int parse_approval(const toml::table& t, const std::string& name) {
  int timeout = 120;
  for (auto& [k, v] : t) {
    if (k.str() != "timeout_seconds")
      fail(name, v, "unknown key '" + std::string(k.str()) + "' in [approval] (expected timeout_seconds)");
    auto n = v.is_integer() ? v.value<int64_t>() : std::nullopt;
    if (!n || *n < 1 || *n > 86400) fail(name, v, "timeout_seconds must be an integer between 1 and 86400");
    timeout = int(*n);
  }
  return timeout;
}

Rule builtin(Capability c, std::string pattern, Action a, std::string origin, std::string note,
             bool network = false) {
  Rule r;
  r.capability = c;
  r.written_pattern = pattern;
  r.pattern = pattern;
  r.action = a;
  r.network = network;
  r.origin = std::move(origin);
  r.note = std::move(note);
  return r;
}

// Warden's own files are never reachable by a tool, whatever the file says:
// the policy changes only through config.change, the audit log never.
std::vector<Rule> protected_rules(const PolicyEnv& env) {
  std::vector<Rule> out;
  for (auto& dir : env.protected_dirs)
    for (Capability c : {Capability::fs_read, Capability::fs_write})
      out.push_back(builtin(c, dir + "/**", Action::deny, "protected",
                            "warden's own files (policy, audit log, sockets) are never open to tools"));
  return out;
}

std::vector<Rule> default_rules(const PolicyEnv& env) {
  std::vector<Rule> out;
  if (!env.workspace.empty()) {
    std::string ws = env.workspace == "/" ? "/**" : env.workspace + "/**";
    out.push_back(builtin(Capability::fs_read, ws, Action::allow, "default", "reads inside the workspace"));
    out.push_back(builtin(Capability::fs_write, ws, Action::ask, "default", "writes inside the workspace ask"));
  }
  out.push_back(builtin(Capability::exec, "*", Action::allow, "default",
                        "commands without network run in the sandbox"));
  out.push_back(builtin(Capability::exec, "*", Action::ask, "default", "commands with network ask", true));
  out.push_back(builtin(Capability::net, "*", Action::ask, "default", "any network access asks"));
  return out;
}

// A rule that denies or asks for a path holds for all below it too: a
// user who denies `$HOME/mail/*` means the folders there with what they
// hold, though `*` matches one level (`mail/x`, not `mail/x/y`).
bool rule_matches(const Rule& r, const PolicyQuery& q) {
  if (r.capability != q.capability) return false;
  if (r.capability == Capability::exec && r.network != q.network) return false;
  const bool path = target_is_path(r.capability);
  if (glob_match(r.pattern, q.target, path)) return true;
  if (!path || r.action == Action::allow) return false;
  for (size_t slash = q.target.rfind('/'); slash != std::string::npos && slash > 0;
       slash = q.target.rfind('/', slash - 1))
    if (glob_match(r.pattern, std::string_view(q.target).substr(0, slash), true)) return true;
  return false;
}

std::string resolve_dir(const std::string& dir) { return resolve_path(dir); }

bool is_hostname_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

}  // namespace

std::string_view action_name(Action a) {
  switch (a) {
    case Action::allow: return "allow";
    case Action::ask: return "ask";
    case Action::deny: return "deny";
  }
  return "?";
}

// $WORKSPACE and ~ are spliced into glob patterns, which have no escapes: a
// '*' or '?' in either path would make every rule on it match more.
static std::string without_wildcards(const std::string& path, const std::string& what) {
  if (path.find_first_of("*?") != std::string::npos)
    throw Error(what + " " + path + " contains '*' or '?', which policy patterns read as wildcards; use another folder");
  return path;
}

PolicyEnv PolicyEnv::current(const std::string& workspace) {
  PolicyEnv env;
  if (!workspace.empty()) env.workspace = without_wildcards(resolve_dir(workspace), "the workspace");
  env.home = without_wildcards(resolve_dir(paths::home()), "the home folder");
  for (auto& d : {paths::config_dir(), paths::data_dir(), paths::runtime_dir()})
    env.protected_dirs.push_back(resolve_dir(d));
  return env;
}

std::string PolicyDecision::explain() const {
  std::string s(action_name(action));
  if (!rule) return s + ": no rule matches (everything not granted is denied)";
  s += " by rule " + rule->origin + " (" + std::string(capability_name(rule->capability));
  if (rule->capability == Capability::exec) s += rule->network ? " with network" : " without network";
  s += " " + rule->written_pattern + ")";
  if (!rule->note.empty()) s += ": " + rule->note;
  return s;
}

// The policy must be ASCII: toml++ 3.3 (Debian 12) reaches
// __builtin_unreachable on some non-ASCII characters outside strings, found by
// fuzz_broker_policy. Non-ASCII text in a string is written as \uXXXX.
static void require_ascii(const std::string& text, const std::string& name) {
  int line = 1;
  for (unsigned char c : text) {
    if (c == '\n') ++line;
    if (c >= 0x80)
      throw Error(name + ":" + std::to_string(line) +
                  ": non-ASCII character; write it inside a string as a \\uXXXX escape");
  }
}

Policy Policy::parse(const std::string& text, const std::string& name, const PolicyEnv& env) {
  require_ascii(text, name);
  toml::table root;
  try {
    root = toml::parse(text, name);
  } catch (const toml::parse_error& e) {
    throw Error(name + ":" + std::to_string(e.source().begin.line) + ": " + std::string(e.description()));
  }
  Policy p;
  p.env_ = env;
  p.source_ = name;
  p.rules_ = protected_rules(env);
  for (auto& [key, value] : root) {
    if (key.str() == "rule") {
      auto* arr = value.as_array();
      if (!arr) fail(name, value, "'rule' must be an array of tables: write [[rule]]");
      for (auto& item : *arr) {
        auto* t = item.as_table();
        if (!t) fail(name, item, "each [[rule]] must be a table");
        p.rules_.push_back(parse_rule(*t, name, env));
      }
    } else if (key.str() == "limits") {
      auto* t = value.as_table();
      if (!t) fail(name, value, "'limits' must be a table");
      parse_limits(*t, name, p.limits_);
    } else if (key.str() == "approval") {
      auto* t = value.as_table();
      if (!t) fail(name, value, "'approval' must be a table");
      p.approval_timeout_seconds_ = parse_approval(*t, name);
    } else {
      fail(name, value, "unknown key '" + std::string(key.str()) + "' (expected [[rule]], [limits], [approval])");
    }
  }
  for (auto& r : default_rules(env)) p.rules_.push_back(std::move(r));
  return p;
}

Policy Policy::defaults(const PolicyEnv& env) {
  Policy p = parse("", "(built-in defaults)", env);
  return p;
}

Policy Policy::load(const std::string& path, const PolicyEnv& env) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    if (ec) throw Error("cannot check policy file " + path + ": " + ec.message());
    return defaults(env);
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read policy file " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (!in.good() && !in.eof()) throw Error("cannot read policy file " + path);
  return parse(ss.str(), path, env);
}

PolicyDecision Policy::evaluate(const PolicyQuery& q) const {
  for (auto& r : rules_)
    if (rule_matches(r, q)) return PolicyDecision{r.action, &r};
  return PolicyDecision{Action::deny, nullptr};
}

std::optional<RateLimit> Policy::rate_limit(Capability c) const {
  auto it = limits_.find(c);
  if (it == limits_.end()) return std::nullopt;
  return it->second;
}

std::string normalize_target(Capability c, const std::string& target) {
  if (target.size() > kMaxTargetBytes) throw Error("target is longer than 64 KiB");
  if (target.find('\0') != std::string::npos) throw Error("target contains a NUL byte");
  if (target_is_path(c)) return resolve_path(target);
  if (target.empty()) throw Error(std::string(capability_name(c)) + " needs a target");
  if (target_is_domain(c)) {
    std::string d = normalize_domain(target);
    bool bracketed_ip6 = d.size() > 2 && d.front() == '[' && d.back() == ']' &&
                         d.find_first_not_of("0123456789abcdef:.", 1) == d.size() - 1;
    if (!bracketed_ip6)
      for (char ch : d)
        if (!is_hostname_char(ch)) throw Error("'" + target + "' is not a domain name (no scheme, port or path)");
    if (d.empty()) throw Error("empty domain");
    return d;
  }
  if (target_is_address(c)) return ascii_lower(target);
  return target;
}

std::string default_policy_path() { return paths::config_dir() + "/policy.toml"; }

}  // namespace warden::broker
