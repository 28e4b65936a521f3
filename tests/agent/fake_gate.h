#pragma once
// A broker gate for the agent's tests: records every request and event,
// allows what `allow` says (everything by default; the predicate may also act
// while "the broker decides"), and can lose the audit log after N events.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "agent/tools.h"

namespace warden::agent::fakes {

using warden::broker::Decision;
using warden::broker::EffectRequest;
using warden::broker::Outcome;

class FakeGate : public Gate {
 public:
  std::function<bool(const EffectRequest&)> allow = [](const EffectRequest&) { return true; };
  std::string denial = "policy says no";  // the reason a denial gives
  std::vector<EffectRequest> requests;
  std::vector<std::string> events;
  Decision request(const EffectRequest& r) override {
    requests.push_back(r);
    Decision d;
    d.outcome = allow(r) ? Outcome::allowed_by_policy : Outcome::denied;
    d.reason = d.allowed() ? "ok" : denial;
    d.audit_seq = static_cast<int64_t>(requests.size());
    return d;
  }
  void report_result(int64_t, const std::string&) override {}
  void record_event(const std::string& kind, const std::string& detail) override {
    events.push_back(kind + " " + detail);
    if (fail_after_events && events.size() >= fail_after_events) failure = "connection lost";
  }
  std::string audit_failure() const override { return failure; }
  size_t fail_after_events = 0;  // 0: never
  std::string failure;
};

}  // namespace warden::agent::fakes
