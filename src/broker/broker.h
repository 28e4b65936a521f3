#pragma once
// The broker's decision: policy, then the I3 floor and taint escalation,
// then rate limits, then (for "ask") a human through the approval queue.
// Every decision lands in the audit log before it is returned.
//
//   policy deny                      -> denied (deny stays deny)
//   rate limit exceeded              -> denied
//   policy allow, sensitive effect   -> ask  (I3: messages, remote model,
//                                            config/plugin changes, writes
//                                            outside the workspace, exec
//                                            with network always need a human)
//   policy allow, leaking sink with
//   untrusted labels in context/args -> ask  (I6: the prompt says which)
//   ask, nobody answers in time      -> denied (fail closed)
#include <chrono>
#include <mutex>
#include <string>
#include <vector>

#include "broker/approvals.h"
#include "broker/audit.h"
#include "broker/policy.h"
#include "broker/rate_limit.h"
#include "broker/request.h"

namespace warden::broker {

// What policy and taint say about a request, before rate limits and humans.
struct Assessment {
  std::string target;          // normalized
  PolicyDecision policy;
  Action action = Action::deny;         // after the I3 floor and taint escalation
  std::vector<std::string> ask_reasons;  // why it asks although policy said allow, or in addition
};

// Whether an effect can carry data out: network, message, wallet, remote
// model, a write outside the workspace, exec with network.
bool is_leaking_sink(Capability c, const std::string& normalized_target, bool network, const std::string& workspace);

// Pure: policy + I3 floor + taint. Throws warden::Error for a bad target.
Assessment assess(const Policy& policy, const EffectRequest& req);

class Broker {
 public:
  Broker(Policy policy, AuditLog& audit, ApprovalQueue& queue);

  // Decides one request and audits the decision. Blocks while a human is
  // asked (up to the approval timeout). Never throws for a bad request: it
  // is denied, and the denial says why.
  Decision decide(const EffectRequest& req, const std::string& actor = "agent");

  // Audits the digest of an effect's result (SHA-256 hex) for the decision
  // `decision_seq`.
  void record_result(int64_t decision_seq, const std::string& result_digest, const std::string& actor = "agent");
  // Audits something that is not an effect: a model call, a session start.
  void record_event(const std::string& kind, const std::string& detail, const std::string& actor = "agent");

  const Policy& policy() const { return policy_; }
  void set_approval_timeout(std::chrono::milliseconds t) { approval_timeout_ = t; }

 private:
  Decision finish(const EffectRequest& req, const std::string& target, const std::string& actor, Outcome outcome,
                  std::string reason);
  Policy policy_;
  AuditLog& audit_;
  ApprovalQueue& queue_;
  RateLimiter limiter_;
  std::chrono::milliseconds approval_timeout_;
};

}  // namespace warden::broker
