#pragma once
// The policy: which effects are allowed, which ask the human, which are
// denied, plus per-capability rate limits and the approval timeout.
//
// File format ($XDG_CONFIG_HOME/warden/policy.toml):
//
//   [[rule]]
//   capability = "net"              # fs.read fs.write exec net msg.send wallet.spend
//                                   # remote.llm config.change plugin.install
//   pattern    = "*.wikipedia.org"  # optional; default matches everything
//   action     = "allow"            # allow | ask | deny
//   network    = true               # exec only: rule is for exec WITH network
//   note       = "docs lookups"     # optional, shown by `policy check`
//
//   [limits]
//   net = { max = 30, per_seconds = 60 }
//
//   [approval]
//   timeout_seconds = 120
//
// Rules are tried in file order and the first match decides. After the
// file's rules come the built-in paranoid defaults, and finally "deny".
// Before the file's rules come the protected paths (warden's own config,
// data and runtime folders), which no rule can open to tools: changing the
// policy goes through config.change, which needs approval.
//
// Path patterns are absolute, or start with $WORKSPACE or ~. In paths '*'
// stays in one component and '**' crosses them; domains compare
// case-insensitively; other targets match as plain globs.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "broker/capability.h"

namespace warden::broker {

enum class Action { allow, ask, deny };
std::string_view action_name(Action a);

struct Rule {
  Capability capability = Capability::fs_read;
  std::string pattern;        // expanded ($WORKSPACE, ~ replaced)
  std::string written_pattern;  // as in the file, for explanations
  Action action = Action::deny;
  bool network = false;       // exec only
  std::string note;
  std::string origin;         // "policy.toml:12", "default", "protected"
};

struct RateLimit {
  int max = 0;
  int per_seconds = 0;
};

// Where $WORKSPACE, ~ and warden's own folders are; all absolute.
struct PolicyEnv {
  std::string workspace;
  std::string home;
  std::vector<std::string> protected_dirs;  // config, data, runtime dirs of warden

  // The real environment: paths::home(), paths::config_dir() ... and the
  // given workspace, all resolved (symlinks followed).
  static PolicyEnv current(const std::string& workspace);
};

// What one effect looks like to the policy (labels are the broker's job).
struct PolicyQuery {
  Capability capability = Capability::fs_read;
  std::string target;    // already normalized (see normalize_target)
  bool network = false;  // exec only
};

struct PolicyDecision {
  Action action = Action::deny;
  const Rule* rule = nullptr;  // null: no rule matched (fallback deny)
  std::string explain() const;  // "deny by policy.toml:4 (fs.write /etc/**)"
};

class Policy {
 public:
  // Parses TOML text; `name` is used in error messages ("policy.toml:3: ...").
  // Throws warden::Error naming file and line for anything malformed or
  // unknown: a bad policy never degrades to a permissive one.
  static Policy parse(const std::string& text, const std::string& name, const PolicyEnv& env);
  // Loads `path`; a missing file gives the defaults alone.
  static Policy load(const std::string& path, const PolicyEnv& env);
  static Policy defaults(const PolicyEnv& env);

  PolicyDecision evaluate(const PolicyQuery& q) const;
  std::optional<RateLimit> rate_limit(Capability c) const;
  int approval_timeout_seconds() const { return approval_timeout_seconds_; }

  // Every rule in evaluation order: protected, file, defaults.
  const std::vector<Rule>& rules() const { return rules_; }
  const std::map<Capability, RateLimit>& limits() const { return limits_; }
  const std::string& source() const { return source_; }  // file path or "(built-in defaults)"
  const PolicyEnv& env() const { return env_; }

 private:
  PolicyEnv env_;
  std::vector<Rule> rules_;
  std::map<Capability, RateLimit> limits_;
  int approval_timeout_seconds_ = 120;
  std::string source_;
};

// Normalizes a target the way rules see it: paths resolved (symlinks
// followed, see pattern.h), domains lower-cased. Throws warden::Error for a
// target the capability cannot take (relative path, empty domain...).
std::string normalize_target(Capability c, const std::string& target);

// The default policy file: $XDG_CONFIG_HOME/warden/policy.toml.
std::string default_policy_path();

}  // namespace warden::broker
