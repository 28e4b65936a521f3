#pragma once
// One effect the agent asks for, and the broker's answer.
#include <cstdint>
#include <string>

#include "broker/capability.h"
#include "broker/taint.h"

namespace warden::broker {

struct EffectRequest {
  Capability capability = Capability::fs_read;
  std::string target;      // path, domain, recipient, command, ...
  bool network = false;    // exec only: the command runs with network
  bool whole_tree = false;  // fs.read only: everything below target is read (a search)
  std::string detail;      // the exact effect for the human: diff, full text, URL, transaction
  LabelSet context_labels;   // labels of everything in the model's context
  LabelSet argument_labels;  // labels of the data the arguments were derived from
};

enum class Outcome { allowed_by_policy, approved_by_human, denied };
std::string_view outcome_text(Outcome o);  // "allowed by policy", "approved by human", "denied"

struct Decision {
  Outcome outcome = Outcome::denied;
  std::string reason;     // told to the model and written to the audit log
  int64_t audit_seq = 0;  // the audit record of this decision
  bool allowed() const { return outcome != Outcome::denied; }
};

}  // namespace warden::broker
