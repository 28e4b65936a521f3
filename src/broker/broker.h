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
#include <sys/stat.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "broker/approvals.h"
#include "broker/audit.h"
#include "broker/policy.h"
#include "broker/policy_file.h"
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

// The outcome of Broker::change_policy.
struct PolicyChange {
  bool applied = false;
  std::string message;     // what happened, for the human who asked
  std::string old_sha256;  // of the policy text in force before
  std::string new_sha256;  // of the proposed text
  std::string diff;        // in force -> proposed (what the human was shown)
  int64_t audit_seq = 0;   // the config.change decision record (0: none)
};

// The pinned policy file and what is on disk now, when they differ.
struct PolicyDrift {
  std::string path;
  std::string pinned_sha256;
  std::string file_sha256;  // of the file now (SHA-256 of "" when it is gone)
  bool file_exists = false;
};

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

  // The policy in force now (a snapshot: a later change does not alter it).
  std::shared_ptr<const Policy> policy() const;
  const std::string& audit_path() const { return audit_.path(); }
  // Overrides the policy's [approval] timeout for as long as the broker runs.
  void set_approval_timeout(std::chrono::milliseconds t);

  // Pins the file the policy was loaded from, with the exact bytes that were
  // parsed. From then on the broker never re-reads it by itself: it only
  // notices edits (check_policy_drift) and replaces it through change_policy.
  void pin_policy_file(PolicyFileState file);
  // The pinned file's state (nullopt when none is pinned).
  std::optional<PolicyFileState> pinned_policy_file() const;

  // Compares the pinned file with the file on disk (a stat, and a hash only
  // when the stat changed). An edit made outside change_policy is audited
  // (policy.drift) and logged once per distinct content, and has no effect:
  // the pinned policy stays in force. Called before every decision.
  std::optional<PolicyDrift> check_policy_drift();

  // The one way a policy changes while the broker runs (`warden policy
  // apply`): `new_text` is validated first (a bad policy is refused with the
  // parser's error, nothing asked, nothing written), then a human approves
  // the unified diff from the policy in force (config.change, always asked;
  // an explicit config.change deny rule refuses it outright), then the file
  // is replaced atomically, the new policy is pinned and takes effect, and
  // the audit log records the old and new SHA-256. Blocks while the human is
  // asked. `requested_by` names the channel ("warden policy apply").
  PolicyChange change_policy(const std::string& new_text, const std::string& requested_by);

 private:
  Decision finish(const EffectRequest& req, const std::string& target, const std::string& actor, Outcome outcome,
                  std::string reason);
  // Queues `req` (target normalized) for a human and audits the answer.
  Decision ask_human(const EffectRequest& req, const std::string& actor, const std::string& policy_reason,
                     const std::vector<std::string>& ask_reasons);
  std::chrono::milliseconds approval_timeout() const;

  mutable std::mutex policy_mutex_;  // guards the members below it up to audit_
  std::shared_ptr<const Policy> policy_;
  std::optional<PolicyFileState> pinned_;
  struct stat seen_stat_ {};              // the file as last checked
  bool seen_exists_ = false;
  bool seen_valid_ = false;               // seen_* hold a real observation
  std::string reported_drift_sha256_;     // last drift already audited
  std::optional<std::chrono::milliseconds> timeout_override_;

  std::mutex change_mutex_;  // one policy change at a time
  AuditLog& audit_;
  ApprovalQueue& queue_;
  RateLimiter limiter_;
};

}  // namespace warden::broker
