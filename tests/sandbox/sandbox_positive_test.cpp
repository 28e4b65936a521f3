// What a jail must still do: reach a listed domain through the proxy, write
// the workspace, run ordinary programs.
#include <gtest/gtest.h>

#include <filesystem>

#include "sandbox/sandbox.h"
#include "sandbox/sandbox_test_util.h"
#include "sandbox/test_servers.h"
#include "util/error.h"

namespace warden::sandbox {
namespace {

using namespace test;
namespace fs = std::filesystem;

RunOptions map_allowed_test() {
  RunOptions o;
  o.allowed_ports = {};
  o.resolver = [](const std::string& host) {
    std::vector<IpAddress> out;
    if (host == "allowed.test") out.push_back(*parse_ip_literal("127.0.0.1"));
    return out;
  };
  return o;
}

TEST(JailPositive, ListedDomainReachableThroughProxy) {
  LoopbackServer server("ALLOWED-CONTENT\n");
  TlsLoopbackServer tls("allowed.test", "ALLOWED-CONTENT\n");
  Profile p = test_profile("network", warden::test::make_temp_dir("ws"));
  p.allowed_domains = {"allowed.test"};
  p.private_destinations = {"allowed.test"};
  const std::string url = "http://allowed.test:" + std::to_string(server.port()) + "/file";
  const std::string https = "https://allowed.test:" + std::to_string(tls.port()) + "/file";
  RunOptions o = map_allowed_test();
  o.proxy_log_path = warden::test::make_temp_dir("log") + "/proxy.jsonl";
  // Plain HTTP through the proxy three ways, and HTTPS through a CONNECT
  // tunnel (the certificate is self-signed, hence -k).
  auto r = sh(p, "curl -sS -m 10 " + url + "; curl -sS -m 10 -k " + https + "; wget -q -T 10 -t 1 -O - " + url +
                     "; python3 -c 'import urllib.request,sys; print(urllib.request.urlopen(sys.argv[1]).read().decode())' " +
                     url,
              o);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  size_t hits = 0;
  for (size_t pos = 0; (pos = r.out.find("ALLOWED-CONTENT", pos)) != std::string::npos; pos++) hits++;
  EXPECT_EQ(hits, 4u) << r.out << r.err;
  EXPECT_EQ(server.connections(), 3);
  ASSERT_EQ(r.proxy_log.size(), 4u);
  bool saw_connect = false;
  for (const auto& e : r.proxy_log) {
    EXPECT_TRUE(e.allowed) << e.to_json();
    EXPECT_EQ(e.host, "allowed.test");
    EXPECT_GT(e.bytes_down, 0u);
    saw_connect |= e.method == "CONNECT";
  }
  EXPECT_TRUE(saw_connect);
  EXPECT_NE(warden::test::read_file(o.proxy_log_path).find("\"allowed\":true"), std::string::npos);
}

TEST(JailPositive, WorkspaceWritesWork) {
  const std::string ws = warden::test::make_temp_dir("ws");
  auto r = sh(test_profile("default", ws), "pwd; echo hello > out.txt; mkdir -p d/e && echo deep > d/e/f");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "/workspace\n");
  EXPECT_EQ(warden::test::read_file(ws + "/out.txt"), "hello\n");
  EXPECT_EQ(warden::test::read_file(ws + "/d/e/f"), "deep\n");
}

TEST(JailPositive, ReadonlyProfileCannotWriteButCanRead) {
  const std::string ws = warden::test::make_temp_dir("ws");
  warden::test::write_file(ws + "/in.txt", "input\n");
  auto r = sh(test_profile("readonly", ws), "cat in.txt; echo x > out.txt && echo WROTE");
  EXPECT_EQ(r.out, "input\n");
  EXPECT_FALSE(fs::exists(ws + "/out.txt"));
}

TEST(JailPositive, ExtraReadOnlyBind) {
  const std::string data = warden::test::make_temp_dir("data");
  warden::test::write_file(data + "/ref.txt", "reference\n");
  Profile p = test_profile("default", warden::test::make_temp_dir("ws"));
  p.readonly_binds = {data};
  auto r = sh(p, "cat " + data + "/ref.txt; echo x > " + data + "/new && echo WROTE");
  EXPECT_EQ(r.out, "reference\n");
  EXPECT_FALSE(fs::exists(data + "/new"));
}

TEST(JailPositive, OrdinaryProgramsWork) {
  const std::string ws = warden::test::make_temp_dir("ws");
  warden::test::write_file(ws + "/notes.txt", "alpha\nbeta\ngamma\n");
  auto r = sh(test_profile("default", ws),
              "grep -n beta notes.txt && python3 -c 'print(6*7)' && "
              "git init -q repo && cd repo && echo a > a && git add a && "
              "git -c user.name=t -c user.email=t@t commit -qm first && git log --oneline | wc -l && "
              "sed s/a/b/ a && awk 'BEGIN{print \"awk\"}' && ls /usr/bin/env >/dev/null && whoami");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "2:beta\n42\n1\nb\nawk\nuser\n");
  EXPECT_TRUE(fs::exists(ws + "/repo/.git"));
}

TEST(JailPositive, StdinAndExitStatusPassThrough) {
  Profile p = test_profile("default", "");
  auto r = run(p, {"sh", "-c", "tr a-z A-Z; exit 7"}, "quiet input\n");
  EXPECT_EQ(r.out, "QUIET INPUT\n");
  EXPECT_EQ(r.exit_code, 7);
  EXPECT_EQ(r.killed, KillReason::none);
  auto sig = run(p, {"sh", "-c", "kill -TERM $$"}, "");
  EXPECT_EQ(sig.exit_code, 128 + 15);
}

TEST(JailPositive, ResultAsJson) {
  auto r = run(test_profile("default", ""), {"echo", "hi"}, "");
  EXPECT_NE(r.to_json().find("\"stdout\":\"hi\\n\""), std::string::npos) << r.to_json();
  EXPECT_NE(r.to_json().find("\"killed\":\"none\""), std::string::npos);
}

TEST(JailProfiles, NamedProfiles) {
  EXPECT_FALSE(named_profile("default").network);
  EXPECT_TRUE(named_profile("default").workspace_writable);
  EXPECT_FALSE(named_profile("readonly").workspace_writable);
  EXPECT_TRUE(named_profile("network").network);
  EXPECT_THROW(named_profile("unsandboxed"), Error);
}

TEST(JailProfiles, MissingCommandIsAnError) {
  auto r = run(test_profile("default", ""), {"/no/such/program"}, "");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THROW(run(test_profile("default", ""), {}, ""), Error);
}

}  // namespace
}  // namespace warden::sandbox

namespace warden::sandbox {
namespace {

TEST(JailFailsClosed, MissingBwrapRefuses) {
  RunOptions o;
  o.bwrap = "/nonexistent/bwrap";
  try {
    run(test::test_profile("default", ""), {"true"}, "", o);
    FAIL() << "ran without bwrap";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bubblewrap is missing"), std::string::npos) << e.what();
  }
}

TEST(JailFailsClosed, BwrapThatCannotSetUpRefuses) {
  // A "bwrap" that never reports a started jail: the command must not be
  // considered run, and nothing runs unsandboxed instead.
  const std::string marker = warden::test::make_temp_dir("m") + "/ran";
  RunOptions o;
  o.bwrap = "/bin/false";
  EXPECT_THROW(run(test::test_profile("default", ""), {"touch", marker}, "", o), Error);
  EXPECT_FALSE(std::filesystem::exists(marker));
}

TEST(JailFailsClosed, MissingRelayRefusesNetworkProfile) {
  RunOptions o;
  o.relay_binary = "/nonexistent/warden-netrelay";
  EXPECT_THROW(run(test::test_profile("network", ""), {"true"}, "", o), Error);
}

}  // namespace
}  // namespace warden::sandbox
