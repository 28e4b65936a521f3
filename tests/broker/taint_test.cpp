// Taint labels, the I3 floor, escalation of leaking sinks, rate limits.
#include <gtest/gtest.h>

#include "broker/broker.h"
#include "common/test_env.h"
#include "util/error.h"

namespace wb = warden::broker;
using wb::Action;
using wb::Capability;

namespace {

wb::PolicyEnv test_env() {
  wb::PolicyEnv env;
  env.workspace = "/ws";
  env.home = "/home/u";
  return env;
}

// A policy that allows every capability, so only the broker's own floor and
// taint can turn a request into "ask".
wb::Policy allow_all() {
  std::string text;
  for (auto c : wb::kAllCapabilities) {
    text += "[[rule]]\ncapability = \"" + std::string(wb::capability_name(c)) + "\"\naction = \"allow\"\n";
    if (c == Capability::exec) text += "[[rule]]\ncapability = \"exec\"\nnetwork = true\naction = \"allow\"\n";
  }
  return wb::Policy::parse(text, "policy.toml", test_env());
}

wb::EffectRequest req(Capability c, std::string target, std::vector<std::string> context = {"user"},
                      std::vector<std::string> args = {}, bool network = false) {
  wb::EffectRequest r;
  r.capability = c;
  r.target = std::move(target);
  r.network = network;
  r.context_labels = wb::LabelSet::parse(context);
  r.argument_labels = wb::LabelSet::parse(args);
  return r;
}

}  // namespace

TEST(Labels, ParseAndDescribe) {
  EXPECT_EQ(wb::parse_label("web:example.com").describe(), "text from example.com");
  EXPECT_EQ(wb::parse_label("message:alice@x.org").to_string(), "message:alice@x.org");
  EXPECT_TRUE(wb::parse_label("user").trusted());
  EXPECT_FALSE(wb::parse_label("workspace:/ws/README").trusted());
  EXPECT_FALSE(wb::parse_label("tool:run_command").trusted());
  EXPECT_THROW(wb::parse_label("web:"), warden::Error);
  EXPECT_THROW(wb::parse_label("user:me"), warden::Error);
  EXPECT_THROW(wb::parse_label("trusted:yes"), warden::Error);
}

TEST(Labels, UnionPropagates) {
  wb::LabelSet a{wb::parse_label("user")};
  wb::LabelSet b{wb::parse_label("web:evil.com"), wb::parse_label("user")};
  EXPECT_FALSE(a.has_untrusted());
  a.merge(b);
  EXPECT_TRUE(a.has_untrusted());
  EXPECT_EQ(a.labels().size(), 2u);
}

TEST(Taint, CleanContextKeepsPolicyAllowOnPlainSinks) {
  auto p = allow_all();
  EXPECT_EQ(wb::assess(p, req(Capability::net, "example.com")).action, Action::allow);
  EXPECT_EQ(wb::assess(p, req(Capability::wallet_spend, "0xabc")).action, Action::allow);
}

TEST(Taint, UntrustedContextEscalatesEveryLeakingSink) {
  auto p = allow_all();
  std::vector<std::string> web = {"user", "web:example.com"};
  for (auto [c, target, network] : std::vector<std::tuple<Capability, std::string, bool>>{
           {Capability::net, "example.com", false},
           {Capability::wallet_spend, "0xabc", false},
           {Capability::exec, "curl x", true},
           {Capability::msg_send, "bob", false},
           {Capability::remote_llm, "provider", false},
           {Capability::fs_write, "/etc/profile", false}}) {
    auto a = wb::assess(p, req(c, target, web, {}, network));
    EXPECT_EQ(a.action, Action::ask) << wb::capability_name(c);
    bool says_why = false;
    for (auto& why : a.ask_reasons) says_why |= why == "text from example.com is in the context";
    EXPECT_TRUE(says_why) << wb::capability_name(c);
  }
}

TEST(Taint, ArgumentsDerivedFromUntrustedDataEscalate) {
  auto p = allow_all();
  auto a = wb::assess(p, req(Capability::net, "example.com", {"user"}, {"workspace:/ws/.env"}));
  EXPECT_EQ(a.action, Action::ask);
  ASSERT_EQ(a.ask_reasons.size(), 1u);
  EXPECT_EQ(a.ask_reasons[0], "the arguments are derived from content of workspace file /ws/.env");
}

TEST(Taint, AContextWithoutLabelsCountsAsUntrusted) {
  // Fail closed: a client that says nothing of where its context came from
  // is not taken as clean.
  auto p = allow_all();
  auto a = wb::assess(p, req(Capability::net, "example.com", {}));
  EXPECT_EQ(a.action, Action::ask);
  ASSERT_EQ(a.ask_reasons.size(), 1u);
  EXPECT_EQ(a.ask_reasons[0], "the request carries no labels, so where its context came from is unknown");
  EXPECT_EQ(wb::assess(p, req(Capability::fs_read, "/ws/a", {})).action, Action::allow);  // not a sink
}

TEST(Taint, NonSinksAreNotEscalated) {
  auto p = allow_all();
  std::vector<std::string> web = {"web:evil.com"};
  EXPECT_EQ(wb::assess(p, req(Capability::fs_read, "/ws/a", web)).action, Action::allow);
  EXPECT_EQ(wb::assess(p, req(Capability::exec, "make", web)).action, Action::allow);
  EXPECT_EQ(wb::assess(p, req(Capability::fs_write, "/ws/a", web)).action, Action::allow);
}

TEST(Taint, DenyStaysDeny) {
  auto p = wb::Policy::defaults(test_env());
  auto a = wb::assess(p, req(Capability::msg_send, "bob", {"web:evil.com"}));
  EXPECT_EQ(a.action, Action::deny);
}

TEST(Floor, SensitiveEffectsAlwaysAsk) {
  auto p = allow_all();
  for (auto [c, target, network] : std::vector<std::tuple<Capability, std::string, bool>>{
           {Capability::msg_send, "bob", false},
           {Capability::remote_llm, "provider", false},
           {Capability::config_change, "policy.toml", false},
           {Capability::plugin_install, "x", false},
           {Capability::fs_write, "/home/u/.bashrc", false},
           {Capability::exec, "curl x", true}})
    EXPECT_EQ(wb::assess(p, req(c, target, {"user"}, {}, network)).action, Action::ask) << wb::capability_name(c);
}

TEST(Broker, RateLimitDeniesAndAudits) {
  auto p = wb::Policy::parse(
      "[[rule]]\ncapability = \"net\"\naction = \"allow\"\n[limits]\nnet = { max = 2, per_seconds = 3600 }\n",
      "policy.toml", test_env());
  wb::AuditLog audit(warden::test::make_temp_dir("rl") + "/audit.db");
  wb::ApprovalQueue queue;
  wb::Broker broker(p, audit, queue);
  EXPECT_TRUE(broker.decide(req(Capability::net, "a.com")).allowed());
  EXPECT_TRUE(broker.decide(req(Capability::net, "b.com")).allowed());
  auto third = broker.decide(req(Capability::net, "c.com"));
  EXPECT_FALSE(third.allowed());
  EXPECT_EQ(third.reason, "rate limit: more than 2 net requests in 3600 s");
  EXPECT_EQ(third.audit_seq, 3);
  auto records = wb::read_audit(audit.path());
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[2].entry.decision, "denied");
  EXPECT_EQ(records[0].entry.decision, "allowed by policy");
}

TEST(Broker, RateLimiterWindowSlides) {
  wb::RateLimiter rl;
  auto t0 = wb::RateLimiter::Clock::time_point{} + std::chrono::hours(1);
  wb::RateLimit lim{2, 10};
  EXPECT_TRUE(rl.try_acquire(Capability::net, lim, t0));
  EXPECT_TRUE(rl.try_acquire(Capability::net, lim, t0 + std::chrono::seconds(1)));
  EXPECT_FALSE(rl.try_acquire(Capability::net, lim, t0 + std::chrono::seconds(9)));
  EXPECT_TRUE(rl.try_acquire(Capability::exec, lim, t0 + std::chrono::seconds(9)));
  EXPECT_TRUE(rl.try_acquire(Capability::net, lim, t0 + std::chrono::seconds(10)));
}

TEST(Broker, BadTargetIsDeniedNotThrown) {
  wb::AuditLog audit(warden::test::make_temp_dir("bad") + "/audit.db");
  wb::ApprovalQueue queue;
  wb::Broker broker(wb::Policy::defaults(test_env()), audit, queue);
  auto d = broker.decide(req(Capability::fs_read, "relative/path"));
  EXPECT_FALSE(d.allowed());
  EXPECT_EQ(d.reason, "bad request: path 'relative/path' is not absolute");
}
