#include "broker/broker.h"

#include <nlohmann/json.hpp>

#include "broker/pattern.h"
#include "util/error.h"

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

std::string arguments_json(const EffectRequest& req, const std::string& target) {
  nlohmann::json j = {{"target", target},
                      {"detail", req.detail},
                      {"context_labels", req.context_labels.to_strings()},
                      {"argument_labels", req.argument_labels.to_strings()}};
  if (req.capability == Capability::exec) j["network"] = req.network;
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
  if (is_leaking_sink(req.capability, a.target, network, ws)) {
    LabelSet all = req.context_labels;
    all.merge(req.argument_labels);
    for (auto& l : req.context_labels.untrusted())
      a.ask_reasons.push_back(l.describe() + " is in the context");
    for (auto& l : req.argument_labels.untrusted())
      a.ask_reasons.push_back("the arguments are derived from " + l.describe());
    if (all.has_untrusted()) a.action = Action::ask;
  }
  return a;
}

Broker::Broker(Policy policy, AuditLog& audit, ApprovalQueue& queue)
    : policy_(std::move(policy)),
      audit_(audit),
      queue_(queue),
      approval_timeout_(std::chrono::seconds(policy_.approval_timeout_seconds())) {}

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

Decision Broker::decide(const EffectRequest& req, const std::string& actor) {
  Assessment a;
  try {
    a = assess(policy_, req);
  } catch (const Error& e) {
    return finish(req, req.target, actor, Outcome::denied, std::string("bad request: ") + e.what());
  }
  if (a.action == Action::deny) return finish(req, a.target, actor, Outcome::denied, a.policy.explain());

  if (auto limit = policy_.rate_limit(req.capability); limit && !limiter_.try_acquire(req.capability, *limit)) {
    return finish(req, a.target, actor, Outcome::denied,
                  "rate limit: more than " + std::to_string(limit->max) + " " +
                      std::string(capability_name(req.capability)) + " requests in " +
                      std::to_string(limit->per_seconds) + " s");
  }
  if (a.action == Action::allow) return finish(req, a.target, actor, Outcome::allowed_by_policy, a.policy.explain());

  PendingApproval p;
  p.request = req;
  p.request.target = a.target;
  p.policy_reason = a.policy.explain();
  p.ask_reasons = a.ask_reasons;
  uint64_t id = queue_.submit(std::move(p));
  Resolution r = queue_.wait(id, approval_timeout_);
  std::string why = a.policy.explain();
  for (auto& reason : a.ask_reasons) why += "; " + reason;
  switch (r.kind) {
    case Resolution::approved:
      return finish(req, a.target, actor, Outcome::approved_by_human, "approved on " + r.channel + " (" + why + ")");
    case Resolution::denied:
      return finish(req, a.target, actor, Outcome::denied, "denied by the human on " + r.channel + " (" + why + ")");
    case Resolution::timed_out: break;
  }
  auto secs = std::chrono::duration_cast<std::chrono::milliseconds>(approval_timeout_).count() / 1000.0;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%g", secs);
  return finish(req, a.target, actor, Outcome::denied,
                std::string("nobody approved within ") + buf + " s, denied (fail closed) (" + why + ")");
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

}  // namespace warden::broker
