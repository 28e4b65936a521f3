// Approvals over the broker's sockets: a second process (`warden approve`)
// approves one request and denies another; nobody answering is a denial;
// the agent socket cannot approve, the approval socket cannot request.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "broker/audit.h"
#include "broker/client.h"
#include "broker_fixture.h"
#include "util/error.h"

namespace wb = warden::broker;
using wb::testing::LiveBroker;

namespace {

wb::EffectRequest write_request(const LiveBroker& b, const std::string& name) {
  wb::EffectRequest r;
  r.capability = wb::Capability::fs_write;
  r.target = b.workspace + "/" + name;
  r.detail = "--- a/" + name + "\n+++ b/" + name + "\n@@ -0,0 +1 @@\n+hello\n";
  r.context_labels = wb::LabelSet::parse({"user"});
  return r;
}

// Waits (bounded) until `warden approve list` shows a request; returns its id.
std::string wait_for_pending(const LiveBroker& b) {
  for (int i = 0; i < 200; ++i) {
    auto res = warden::test::run_warden({"approve", "list", "--json", "--socket", b.sockets.approve});
    if (res.exit_code != 0) ADD_FAILURE() << res.err;
    auto j = nlohmann::json::parse(res.out);
    if (!j["pending"].empty()) return j["pending"][0]["id"].get<std::string>();
    usleep(50000);
  }
  ADD_FAILURE() << "no pending request appeared";
  return "";
}

std::string raw_call(const std::string& socket, const std::string& line) {
  int fd = wb::connect_unix(socket);
  wb::LineSocket s(fd);
  s.write_line(line);
  std::string reply;
  s.read_line(reply);
  close(fd);
  return reply;
}

}  // namespace

TEST(Approvals, SecondProcessApprovesOneAndDeniesOne) {
  LiveBroker b;
  auto first = std::async(std::launch::async, [&] {
    wb::AgentClient agent(b.sockets.agent);
    return agent.request(write_request(b, "approved.txt"));
  });
  std::string id = wait_for_pending(b);
  auto show = warden::test::run_warden({"approve", "show", id, "--socket", b.sockets.approve});
  EXPECT_EQ(show.exit_code, 0) << show.err;
  EXPECT_NE(show.out.find("fs.write " + b.workspace + "/approved.txt"), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("  | +hello"), std::string::npos) << show.out;
  // It ends, as the terminal prompt does, with warden's recap of the effect.
  const size_t recap = show.out.rfind("==== request " + id + " in short");
  ASSERT_NE(recap, std::string::npos) << show.out;
  EXPECT_GT(recap, show.out.find("  | +hello")) << show.out;
  EXPECT_NE(show.out.find("effect:  fs.write " + b.workspace + "/approved.txt\nwhy:     ", recap), std::string::npos)
      << show.out;
  auto yes = warden::test::run_warden({"approve", "approve", id, "--socket", b.sockets.approve});
  EXPECT_EQ(yes.exit_code, 0) << yes.err;
  EXPECT_EQ(yes.out, "request " + id + " approved\n");
  auto d1 = first.get();
  EXPECT_EQ(d1.outcome, wb::Outcome::approved_by_human);
  EXPECT_NE(d1.reason.find("approved on warden approve"), std::string::npos) << d1.reason;

  auto second = std::async(std::launch::async, [&] {
    wb::AgentClient agent(b.sockets.agent);
    wb::EffectRequest r;
    r.capability = wb::Capability::net;
    r.target = "example.com";
    r.detail = "GET https://example.com/?q=secret";
    return agent.request(r);
  });
  id = wait_for_pending(b);
  auto no = warden::test::run_warden({"approve", "deny", id, "--socket", b.sockets.approve});
  EXPECT_EQ(no.exit_code, 0) << no.err;
  auto d2 = second.get();
  EXPECT_EQ(d2.outcome, wb::Outcome::denied);
  EXPECT_NE(d2.reason.find("denied by the human on warden approve"), std::string::npos) << d2.reason;

  // Both decisions are in the audit log, which still verifies.
  auto records = wb::read_audit(b.audit->path());
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].entry.decision, "approved by human");
  EXPECT_EQ(records[1].entry.decision, "denied");
  EXPECT_TRUE(wb::verify_audit(b.audit->path()).ok);

  // Answering something that is no longer pending fails cleanly.
  auto late = warden::test::run_warden({"approve", "approve", id, "--socket", b.sockets.approve});
  EXPECT_EQ(late.exit_code, 1);
  EXPECT_EQ(late.err, "warden approve: error: no pending request " + id + " (answered, timed out, or never made)\n");
}

TEST(Approvals, IdsNameTheirBroker) {
  // Two brokers, one after the other in real use: an id copied from the
  // first one's list must not answer the second one's request.
  LiveBroker first, second;
  ASSERT_NE(first.queue.tag(), second.queue.tag());
  EXPECT_EQ(first.queue.tag().size(), 5u);
  auto pending = std::async(std::launch::async, [&] {
    wb::AgentClient agent(second.sockets.agent);
    return agent.request(write_request(second, "x.txt"));
  });
  const std::string id = wait_for_pending(second);
  EXPECT_EQ(id, second.queue.tag() + "-1");
  const std::string old_id = first.queue.tag() + "-1";
  auto wrong = warden::test::run_warden({"approve", "approve", old_id, "--socket", second.sockets.approve});
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_EQ(wrong.err, "warden approve: error: request " + old_id + " is not from this broker (its requests are " +
                           second.queue.tag() + "-N; see warden approve list)\n");
  // A bare count, as ids were once written, names no request at all.
  auto bare = warden::test::run_warden({"approve", "approve", "1", "--socket", second.sockets.approve});
  EXPECT_EQ(bare.exit_code, 2);
  EXPECT_NE(bare.err.find("'1' is not a request ID; IDs look like k7qm2-3"), std::string::npos) << bare.err;
  // One spelling per request: no leading zeros.
  auto zeros = warden::test::run_warden({"approve", "deny", second.queue.tag() + "-01", "--socket", second.sockets.approve});
  EXPECT_EQ(zeros.exit_code, 2) << zeros.err;
  EXPECT_TRUE(second.queue.is_pending(id));
  for (const std::string& near : {second.queue.tag() + "-2", second.queue.tag() + "-1x", second.queue.tag() + "-01",
                                  second.queue.tag() + "1",
                                  second.queue.tag(), std::string("-1")})
    EXPECT_FALSE(second.queue.resolve(near, true, "test")) << near;
  ASSERT_TRUE(second.queue.resolve(id, false, "test"));
  EXPECT_FALSE(pending.get().allowed());
}

TEST(Approvals, NobodyAnsweringIsADenial) {
  LiveBroker b;
  b.broker->set_approval_timeout(std::chrono::milliseconds(300));
  wb::AgentClient agent(b.sockets.agent);
  auto d = agent.request(write_request(b, "x.txt"));
  EXPECT_EQ(d.outcome, wb::Outcome::denied);
  EXPECT_EQ(d.reason.rfind("nobody approved within 0.3 s, denied (fail closed)", 0), 0u) << d.reason;
  EXPECT_TRUE(b.queue.list().empty());
}

TEST(Approvals, PolicyTimeoutIsUsed) {
  LiveBroker b("[approval]\ntimeout_seconds = 1\n");
  wb::AgentClient agent(b.sockets.agent);
  auto d = agent.request(write_request(b, "x.txt"));
  EXPECT_EQ(d.reason.rfind("nobody approved within 1 s", 0), 0u) << d.reason;
}

TEST(Approvals, AgentSocketCannotApprove) {
  LiveBroker b;
  b.broker->set_approval_timeout(std::chrono::seconds(5));
  auto pending = std::async(std::launch::async, [&] {
    wb::AgentClient agent(b.sockets.agent);
    return agent.request(write_request(b, "x.txt"));
  });
  std::string id = wait_for_pending(b);
  for (const char* op : {"approve", "list", "show", "deny", "policy.apply", "policy.status"}) {
    auto reply = nlohmann::json::parse(
        raw_call(b.sockets.agent, nlohmann::json({{"op", op}, {"id", id}, {"text", ""}}).dump()));
    EXPECT_FALSE(reply["ok"].get<bool>());
    EXPECT_EQ(reply["error"], "approval and policy verbs are refused on the agent socket");
  }
  EXPECT_TRUE(b.queue.is_pending(id));
  // A request cannot smuggle an approval either: unknown fields are refused.
  auto smuggled = nlohmann::json::parse(raw_call(
      b.sockets.agent, R"({"op":"request","capability":"net","target":"x.com","approved":true})"));
  EXPECT_EQ(smuggled["error"], "unknown field 'approved' in request");
  ASSERT_TRUE(b.queue.resolve(id, false, "test"));
  EXPECT_FALSE(pending.get().allowed());
}

TEST(Approvals, ApprovalSocketCannotRequestEffects) {
  LiveBroker b;
  auto reply = nlohmann::json::parse(
      raw_call(b.sockets.approve, R"({"op":"request","capability":"fs.read","target":"/etc/passwd"})"));
  EXPECT_FALSE(reply["ok"].get<bool>());
  EXPECT_EQ(reply["error"], "agent verbs are refused on the approval socket");
  EXPECT_TRUE(wb::read_audit(b.audit->path()).empty());
}

TEST(Server, AllowedByPolicyAndResultsAreAudited) {
  LiveBroker b;
  wb::AgentClient agent(b.sockets.agent);
  wb::EffectRequest r;
  r.capability = wb::Capability::fs_read;
  r.target = b.workspace + "/notes.txt";
  auto d = agent.request(r);
  EXPECT_EQ(d.outcome, wb::Outcome::allowed_by_policy);
  agent.report_result(d.audit_seq, "file contents");
  agent.record_event("model.call", "{\"tokens\":12}");
  auto records = wb::read_audit(b.audit->path());
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[1].entry.result_digest, wb::sha256_hex("file contents"));
  EXPECT_EQ(records[2].entry.capability, "model.call");
}

TEST(Server, GarbageGetsAnErrorAndTheConnectionSurvives) {
  LiveBroker b;
  int fd = wb::connect_unix(b.sockets.agent);
  wb::LineSocket s(fd);
  std::string reply;
  s.write_line("{{{{");
  ASSERT_TRUE(s.read_line(reply));
  EXPECT_EQ(nlohmann::json::parse(reply)["error"], "request is not valid JSON");
  s.write_line(R"({"op":"request","capability":"fs.read","target":"/etc/shadow"})");
  ASSERT_TRUE(s.read_line(reply));
  EXPECT_FALSE(nlohmann::json::parse(reply)["allowed"].get<bool>());
  close(fd);
}

TEST(Server, AConnectionEndedByAnOversizedLineIsAudited) {
  // What that side sends afterwards is not heard: the log must say so.
  LiveBroker b;
  int fd = wb::connect_unix(b.sockets.agent);
  // No newline: the broker gives up on the line past its limit. (Its send
  // fails once the broker has closed; that is expected.)
  const std::string junk(wb::kMaxLineBytes + 100000, 'x');
  for (size_t done = 0; done < junk.size();) {
    ssize_t w = ::send(fd, junk.data() + done, junk.size() - done, MSG_NOSIGNAL);
    if (w <= 0) break;
    done += size_t(w);
  }
  wb::LineSocket s(fd);
  std::string reply;
  while (s.read_line(reply)) {  // the error reply, if it arrives, then the close
  }
  close(fd);
  bool audited = false;
  for (int i = 0; i < 100 && !audited; ++i, usleep(20000))
    for (const auto& r : wb::read_audit(b.root + "/audit.db"))
      audited |= r.entry.capability == "broker.disconnect" && r.entry.arguments.find("agent connection closed") == 0;
  EXPECT_TRUE(audited);
}

TEST(Server, SocketsArePrivate) {
  LiveBroker b;
  struct stat st {};
  ASSERT_EQ(stat(b.sockets.dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(stat(b.sockets.agent.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(stat(b.sockets.approve.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // A second broker on the same folder refuses to start.
  wb::Server second(*b.broker, b.queue, b.sockets);
  EXPECT_THROW(second.start(), warden::Error);
}

TEST(Server, RefusesAnUnsafeSocketFolder) {
  std::string dir = warden::test::make_temp_dir("open");
  chmod(dir.c_str(), 0755);
  EXPECT_THROW(wb::ensure_private_dir(dir), warden::Error);
  std::string link = warden::test::make_temp_dir("l") + "/link";
  std::string target = warden::test::make_temp_dir("target");
  chmod(target.c_str(), 0700);
  symlink(target.c_str(), link.c_str());
  EXPECT_THROW(wb::ensure_private_dir(link), warden::Error);
}
