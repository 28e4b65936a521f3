#include "broker/broker.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <memory>

#include <nlohmann/json.hpp>

#include "broker/autorun.h"
#include "broker/pattern.h"
#include "util/error.h"
#include "util/log.h"

namespace warden::broker {
namespace {

bool inside(const std::string& path, const std::string& dir) {
  if (dir.empty()) return false;
  if (dir == "/") return true;
  return path == dir || (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 && path[dir.size()] == '/');
}

// I3: effects that need a human whatever the policy file says.
std::string always_ask_reason(Capability c, const std::string& target, bool network, const std::string& workspace) {
  switch (c) {
    case Capability::msg_send: return "sending a message to someone always needs your approval";
    case Capability::remote_llm: return "calling a remote model always needs your approval";
    case Capability::config_change: return "changing warden's configuration or policy always needs your approval";
    case Capability::plugin_install: return "installing a plugin always needs your approval";
    case Capability::fs_write:
      return inside(target, workspace) ? "" : "writing outside the workspace always needs your approval";
    case Capability::exec: return network ? "running a command with network always needs your approval" : "";
    default: return "";
  }
}

// A rule of the user's that denies or asks for file paths below `folder`
// holds for the file tools, one path at a time, but not for an effect on
// the whole folder: a command (its jail holds the whole workspace) or a
// search (it reads all below the folder). Under such a rule these ask, and
// say why ("" when there is none). `reads_only`: rules on fs.read alone.
// The built-in rules (warden's own folders and secrets, which the jail
// masks; workspace writes ask) are not such rules.
std::string rule_below_reason(const Policy& policy, const std::string& folder, bool reads_only,
                              std::string_view held_to) {
  for (const Rule& r : policy.rules()) {
    const bool file_rule =
        r.capability == Capability::fs_read || (!reads_only && r.capability == Capability::fs_write);
    if (!file_rule || r.action == Action::allow || r.origin == "default" || r.origin == "protected") continue;
    // The pattern's fixed start (up to its first wildcard) inside the
    // folder, or a folder the folder is in ("**": the root).
    const std::string fixed = r.pattern.substr(0, r.pattern.find_first_of("*?["));
    const size_t slash = fixed.rfind('/');
    const std::string fixed_dir = slash == std::string::npos || slash == 0 ? "/" : fixed.substr(0, slash);
    if (inside(fixed, folder) || inside(folder, fixed_dir))
      return "the policy " + std::string(r.action == Action::deny ? "denies " : "asks before ") +
             std::string(capability_name(r.capability)) + " " + r.written_pattern + " (" + r.origin +
             "), which " + std::string(held_to);
  }
  return "";
}

// A listing shows the names in a folder. A rule of the user's that denies
// or asks for reading what its wildcards match (`$WORKSPACE/**/*.pem`,
// `$HOME/mail/*`) keeps those names from view too, so a listing that would
// show one asks. The part of a rule before its first wildcard is no secret
// (`locked` of `$WORKSPACE/locked/**`), and without wildcard rules the
// folder is not read at all. A folder too large to check asks.
std::string listed_name_reason(const Policy& policy, const std::string& folder) {
  const auto hides_names = [](const Rule& r) {
    return r.capability == Capability::fs_read && r.action != Action::allow && r.origin != "default" &&
           r.origin != "protected" && r.pattern.find_first_of("*?[") != std::string::npos;
  };
  if (std::none_of(policy.rules().begin(), policy.rules().end(), hides_names)) return "";
  const std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(folder.c_str()), ::closedir);
  if (!dir) return "";  // not a folder: nothing is listed
  constexpr int kMaxEntriesChecked = 100000;
  int entries = 0;
  while (const dirent* e = ::readdir(dir.get())) {
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    if (++entries > kMaxEntriesChecked)
      return "a listing of " + folder + " would show more than " + std::to_string(kMaxEntriesChecked) +
             " names, too many to check against the policy's rules on names";
    const std::string path = folder == "/" ? "/" + name : folder + "/" + name;
    // `ls -la` shows where a link leads, too.
    std::vector<std::string> shown = {path};
    if (e->d_type == DT_LNK || e->d_type == DT_UNKNOWN) {
      char target[4096];
      const ssize_t n = ::readlink(path.c_str(), target, sizeof target);
      if (n > 0 && size_t(n) < sizeof target) {
        const std::string to(target, size_t(n));
        shown.push_back(normalize_path_lexically(to[0] == '/' ? to : folder + "/" + to));
      }
    }
    for (const std::string& name_shown : shown) {
      const PolicyDecision d = policy.evaluate(PolicyQuery{Capability::fs_read, name_shown, false});
      if (d.rule && hides_names(*d.rule) && name_shown.size() > d.rule->pattern.find_first_of("*?["))
        return "a listing of " + folder + " would show the name of a file the policy " +
               (d.action == Action::deny ? "denies" : "asks before") + " reading (fs.read " +
               d.rule->written_pattern + ", " + d.rule->origin + ")";  // not which: the reason reaches the model too
    }
  }
  return "";
}

std::string arguments_json(const EffectRequest& req, const std::string& target) {
  nlohmann::json j = {{"target", target},
                      {"detail", req.detail},
                      {"context_labels", req.context_labels.to_strings()},
                      {"argument_labels", req.argument_labels.to_strings()}};
  if (req.capability == Capability::exec) j["network"] = req.network;
  if (req.whole_tree) j["whole_tree"] = true;
  if (target != req.target) j["requested_target"] = req.target;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

bool is_leaking_sink(Capability c, const std::string& target, bool network, const std::string& workspace) {
  switch (c) {
    case Capability::net:
    case Capability::msg_send:
    case Capability::wallet_spend:
    case Capability::remote_llm: return true;
    case Capability::fs_write: return !inside(target, workspace);
    case Capability::exec: return network;
    default: return false;
  }
}

Assessment assess(const Policy& policy, const EffectRequest& req) {
  Assessment a;
  a.target = normalize_target(req.capability, req.target);
  bool network = req.capability == Capability::exec && req.network;
  a.policy = policy.evaluate(PolicyQuery{req.capability, a.target, network});
  a.action = a.policy.action;
  if (a.action == Action::deny) return a;  // deny stays deny

  const std::string& ws = policy.env().workspace;
  if (auto why = always_ask_reason(req.capability, a.target, network, ws); !why.empty()) {
    a.ask_reasons.push_back(why);
    a.action = Action::ask;
  }
  std::string below;
  if (req.capability == Capability::exec)
    below = rule_below_reason(policy, ws, false, "a command cannot be held to: its jail holds the whole workspace");
  if (req.capability == Capability::fs_read && req.whole_tree)
    below = rule_below_reason(policy, a.target, true,
                              "a search of " + a.target + " cannot be held to: it reads all below it");
  if (req.capability == Capability::fs_read && !req.whole_tree) below = listed_name_reason(policy, a.target);
  // A hard link is the same file under another name, which the rules may
  // name where this one they do not (a command made `notes.txt` a link to
  // a denied file in an earlier session): any path rule of the user's, in
  // the workspace or not, may be that name's.
  struct stat st;
  const bool file_tool = req.capability == Capability::fs_read || req.capability == Capability::fs_write;
  if (below.empty() && file_tool && ::lstat(a.target.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink > 1)
    below = rule_below_reason(policy, "/", req.capability == Capability::fs_read,
                              "cannot be checked against " + a.target + ": it has " + std::to_string(st.st_nlink) +
                                  " names (hard links), and a rule may name another");
  if (!below.empty()) {
    a.ask_reasons.push_back(below);
    a.action = Action::ask;
  }
  // Code planted for later (git hooks, .envrc...) asks even inside the workspace.
  if (req.capability == Capability::fs_write) {
    if (auto why = autorun_reason(a.target, ws); !why.empty()) {
      a.ask_reasons.push_back(why + ": writes there always need your approval");
      a.action = Action::ask;
    }
  }
  if (is_leaking_sink(req.capability, a.target, network, ws)) {
    LabelSet all = req.context_labels;
    all.merge(req.argument_labels);
    for (auto& l : req.context_labels.untrusted())
      a.ask_reasons.push_back(l.describe() + " is in the context");
    for (auto& l : req.argument_labels.untrusted())
      a.ask_reasons.push_back("the arguments are derived from " + l.describe());
    // Fail closed: a request that says nothing of its context (the agent
    // always labels at least the user's task) is treated as tainted.
    if (req.context_labels.empty())
      a.ask_reasons.push_back("the request carries no labels, so where its context came from is unknown");
    if (all.has_untrusted() || req.context_labels.empty()) a.action = Action::ask;
  }
  return a;
}

Broker::Broker(Policy policy, AuditLog& audit, ApprovalQueue& queue)
    : policy_(std::make_shared<const Policy>(std::move(policy))), audit_(audit), queue_(queue) {}

std::shared_ptr<const Policy> Broker::policy() const {
  std::lock_guard lock(policy_mutex_);
  return policy_;
}

void Broker::set_approval_timeout(std::chrono::milliseconds t) {
  std::lock_guard lock(policy_mutex_);
  timeout_override_ = t;
}

std::chrono::milliseconds Broker::approval_timeout() const {
  std::lock_guard lock(policy_mutex_);
  if (timeout_override_) return *timeout_override_;
  return std::chrono::seconds(policy_->approval_timeout_seconds());
}

Decision Broker::finish(const EffectRequest& req, const std::string& target, const std::string& actor,
                        Outcome outcome, std::string reason) {
  AuditEntry e;
  e.actor = actor;
  e.capability = std::string(capability_name(req.capability));
  e.arguments = arguments_json(req, target);
  e.decision = std::string(outcome_text(outcome));
  e.reason = reason;
  auto rec = audit_.append(e);
  return Decision{outcome, std::move(reason), rec.seq};
}

Decision Broker::ask_human(const EffectRequest& req, const std::string& actor, const std::string& policy_reason,
                           const std::vector<std::string>& ask_reasons) {
  PendingApproval p;
  p.request = req;
  p.policy_reason = policy_reason;
  p.ask_reasons = ask_reasons;
  const auto timeout = approval_timeout();
  const std::string id = queue_.submit(std::move(p));
  Resolution r = queue_.wait(id, timeout);
  std::string why = policy_reason;
  for (auto& reason : ask_reasons) why += "; " + reason;
  switch (r.kind) {
    case Resolution::approved:
      return finish(req, req.target, actor, Outcome::approved_by_human, "approved on " + r.channel + " (" + why + ")");
    case Resolution::denied:
      return finish(req, req.target, actor, Outcome::denied, "denied by the human on " + r.channel + " (" + why + ")");
    case Resolution::timed_out: break;
  }
  auto secs = std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count() / 1000.0;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%g", secs);
  return finish(req, req.target, actor, Outcome::denied,
                std::string("nobody approved within ") + buf + " s, denied (fail closed) (" + why + ")");
}

Decision Broker::decide(const EffectRequest& req, const std::string& actor) {
  check_policy_drift();
  const std::shared_ptr<const Policy> policy = this->policy();  // one policy for the whole decision
  Assessment a;
  try {
    a = assess(*policy, req);
  } catch (const Error& e) {
    return finish(req, req.target, actor, Outcome::denied, std::string("bad request: ") + e.what());
  }
  if (a.action == Action::deny) return finish(req, a.target, actor, Outcome::denied, a.policy.explain());

  if (auto limit = policy->rate_limit(req.capability); limit && !limiter_.try_acquire(req.capability, *limit)) {
    return finish(req, a.target, actor, Outcome::denied,
                  "rate limit: more than " + std::to_string(limit->max) + " " +
                      std::string(capability_name(req.capability)) + " requests in " +
                      std::to_string(limit->per_seconds) + " s");
  }
  if (a.action == Action::allow) return finish(req, a.target, actor, Outcome::allowed_by_policy, a.policy.explain());

  EffectRequest normalized = req;
  normalized.target = a.target;
  return ask_human(normalized, actor, a.policy.explain(), a.ask_reasons);
}

void Broker::record_result(int64_t decision_seq, const std::string& result_digest, const std::string& actor) {
  AuditEntry e;
  e.actor = actor;
  e.capability = "result";
  e.arguments = nlohmann::json({{"decision_seq", decision_seq}}).dump();
  e.decision = "result";
  e.reason = "result of record " + std::to_string(decision_seq);
  e.result_digest = result_digest;
  audit_.append(e);
}

void Broker::record_event(const std::string& kind, const std::string& detail, const std::string& actor) {
  AuditEntry e;
  e.actor = actor;
  e.capability = kind;
  e.arguments = detail;
  e.decision = "event";
  audit_.append(e);
}

// ---------------------------------------------------------------- policy file

namespace {

bool same_stat(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino && a.st_size == b.st_size &&
         a.st_mtim.tv_sec == b.st_mtim.tv_sec && a.st_mtim.tv_nsec == b.st_mtim.tv_nsec &&
         a.st_ctim.tv_sec == b.st_ctim.tv_sec && a.st_ctim.tv_nsec == b.st_ctim.tv_nsec;
}

}  // namespace

void Broker::pin_policy_file(PolicyFileState file) {
  std::lock_guard lock(policy_mutex_);
  seen_valid_ = false;  // the first check hashes the file, whatever its stat says
  reported_drift_sha256_.clear();
  pinned_ = std::move(file);
}

std::optional<PolicyFileState> Broker::pinned_policy_file() const {
  std::lock_guard lock(policy_mutex_);
  return pinned_;
}

std::optional<PolicyDrift> Broker::check_policy_drift() {
  std::unique_lock lock(policy_mutex_);
  if (!pinned_) return std::nullopt;
  struct stat st {};
  const bool exists = ::stat(pinned_->path.c_str(), &st) == 0;
  if (seen_valid_ && exists == seen_exists_ && (!exists || same_stat(st, seen_stat_))) {
    // Unchanged since the last look: drifted only if it already was.
    if (reported_drift_sha256_.empty()) return std::nullopt;
  }
  seen_valid_ = true;
  seen_exists_ = exists;
  seen_stat_ = st;
  PolicyDrift d;
  d.path = pinned_->path;
  d.pinned_sha256 = pinned_->sha256;
  d.file_exists = exists;
  try {
    PolicyFileState now = read_policy_file(pinned_->path);
    d.file_exists = now.exists;
    d.file_sha256 = now.sha256;
  } catch (const Error& e) {
    d.file_sha256 = std::string("unreadable: ") + e.what();
  }
  if (d.file_exists == pinned_->exists && d.file_sha256 == pinned_->sha256) {
    reported_drift_sha256_.clear();  // edited back to what is in force
    return std::nullopt;
  }
  if (d.file_sha256 == reported_drift_sha256_) return d;
  reported_drift_sha256_ = d.file_sha256;
  lock.unlock();
  log::warn("broker: " + d.path + " was changed outside `warden policy apply`; the change is NOT in force. " +
            "Review it and apply it with `warden policy apply " + d.path + "`");
  record_event("policy.drift",
               nlohmann::json({{"path", d.path},
                               {"pinned_sha256", d.pinned_sha256},
                               {"file_sha256", d.file_sha256},
                               {"file_exists", d.file_exists},
                               {"in_force", "pinned"}})
                   .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
               "broker");
  return d;
}

PolicyChange Broker::change_policy(const std::string& new_text, const std::string& requested_by) {
  std::lock_guard change_lock(change_mutex_);
  const std::optional<PolicyFileState> pinned = pinned_policy_file();
  if (!pinned) throw Error("this broker has no policy file to change");
  const std::shared_ptr<const Policy> current = policy();

  PolicyChange out;
  out.old_sha256 = pinned->sha256;
  out.new_sha256 = sha256_hex(new_text);
  EffectRequest req;
  req.capability = Capability::config_change;
  req.target = pinned->path;
  req.context_labels.add(Label{Source::user, ""});
  req.argument_labels.add(Label{Source::user, ""});

  // Validate first: a bad policy is refused before anyone is asked, and
  // nothing is written. The attempt is still audited.
  std::optional<Policy> candidate;
  try {
    check_policy_size(new_text, pinned->path);
    candidate = Policy::parse(new_text, pinned->path, current->env());
  } catch (const Error& e) {
    req.detail = "(invalid policy, not shown)";
    out.message = std::string("invalid policy: ") + e.what();
    out.audit_seq = finish(req, req.target, "human", Outcome::denied, out.message).audit_seq;
    return out;
  }

  const auto drift = check_policy_drift();
  if (new_text == pinned->text && !drift) {
    out.message = "the policy in force already has exactly this text; nothing to change";
    return out;
  }
  out.diff = unified_diff(pinned->text, new_text, "a/policy.toml (in force)", "b/policy.toml (proposed)");
  req.detail = out.diff.empty() ? "(no change to the rules in force: the file on disk, edited outside warden, is "
                                  "rewritten to them)"
                                : out.diff;

  std::vector<std::string> reasons{"changing warden's configuration or policy always needs your approval",
                                   "requested with " + requested_by + " (not by the model: no tool can ask this)"};
  if (drift)
    reasons.push_back(pinned->path + " was edited outside warden (SHA-256 " + drift->file_sha256.substr(0, 16) +
                      "...); the diff is against the policy in force, not against that edit");
  // Only an explicit rule can refuse a policy change outright (a user who
  // locks the policy); the fallback deny is for the model's requests.
  PolicyDecision pd = current->evaluate(PolicyQuery{Capability::config_change, pinned->path, false});
  if (pd.rule && pd.action == Action::deny) {
    out.message = "refused: " + pd.explain();
    out.audit_seq = finish(req, req.target, "human", Outcome::denied, out.message).audit_seq;
    return out;
  }
  const std::string policy_reason = pd.rule ? pd.explain() : "no rule for config.change: a human decides";
  Decision d = ask_human(req, "human", policy_reason, reasons);
  out.audit_seq = d.audit_seq;
  if (!d.allowed()) {
    out.message = "not applied: " + d.reason;
    return out;
  }

  try {
    write_file_atomically(pinned->path, new_text);
  } catch (const Error& e) {
    out.message = std::string("approved, but not applied: ") + e.what() + " (the policy in force is unchanged)";
    record_event("policy.apply_failed", out.message, "broker");
    return out;
  }
  PolicyFileState written{pinned->path, true, new_text, out.new_sha256};
  {
    std::lock_guard lock(policy_mutex_);
    policy_ = std::make_shared<const Policy>(std::move(*candidate));
  }
  pin_policy_file(written);
  record_result(d.audit_seq, out.new_sha256, "broker");
  record_event("policy.apply", nlohmann::json({{"path", pinned->path},
                                               {"old_sha256", out.old_sha256},
                                               {"new_sha256", out.new_sha256},
                                               {"requested_by", requested_by}})
                                   .dump(),
               "broker");
  out.applied = true;
  out.message = "applied: " + pinned->path + " replaced and in force (SHA-256 " + out.new_sha256 + ")";
  return out;
}

}  // namespace warden::broker
