// warden sandbox run, end to end through the binary.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "common/test_env.h"

namespace {

using warden::test::run_warden;

TEST(SandboxCli, RunsCommandAndPassesExitCode) {
  std::string ws = warden::test::make_temp_dir("ws");
  auto r = run_warden({"sandbox", "run", "--workspace", ws, "--", "sh", "-c", "echo out; echo err >&2; echo f > f; exit 3"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.out, "out\n");
  EXPECT_NE(r.err.find("err\n"), std::string::npos);
  EXPECT_NE(r.err.find("exit 3, killed: none"), std::string::npos) << r.err;
  EXPECT_EQ(warden::test::read_file(ws + "/f"), "f\n");
}

TEST(SandboxCli, JsonResult) {
  auto r = run_warden({"sandbox", "run", "--json", "--", "echo", "hi"});
  EXPECT_EQ(r.exit_code, 0);
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["stdout"], "hi\n");
  EXPECT_EQ(j["exit_code"], 0);
  EXPECT_EQ(j["killed"], "none");
}

TEST(SandboxCli, KilledCommandExitsOne) {
  auto r = run_warden({"sandbox", "run", "--timeout", "1", "--", "sleep", "30"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("killed: timeout"), std::string::npos) << r.err;
}

TEST(SandboxCli, ErrorsAreOneLine) {
  auto unknown = run_warden({"sandbox", "run", "--profile", "none", "--", "true"});
  EXPECT_EQ(unknown.exit_code, 2);  // a bad --profile value: usage
  EXPECT_NE(unknown.err.find("warden sandbox: unknown sandbox profile 'none'"), std::string::npos) << unknown.err;
  warden::test::write_file(warden::test::temp_root() + "/home/.ssh/id_ed25519", "k");
  auto denied = run_warden({"sandbox", "run", "--ro", warden::test::temp_root() + "/home/.ssh", "--", "true"});
  EXPECT_EQ(denied.exit_code, 1);
  EXPECT_NE(denied.err.find("is denied"), std::string::npos) << denied.err;
  EXPECT_EQ(std::count(denied.err.begin(), denied.err.end(), '\n'), 1) << denied.err;
  auto usage = run_warden({"sandbox", "run", "--allow-domain", "example.com", "--", "true"});
  EXPECT_EQ(usage.exit_code, 2);
  auto no_command = run_warden({"sandbox", "run"});
  EXPECT_EQ(no_command.exit_code, 2);
  for (const char* timeout : {"0", "-1", "nan", "inf", "1e10"}) {  // no limit at all is not a choice
    auto bad = run_warden({"sandbox", "run", "--timeout", timeout, "--", "true"});
    EXPECT_EQ(bad.exit_code, 2) << timeout << ": " << bad.err;
  }
}

TEST(SandboxCli, RepeatableOptionBeforeDoubleDash) {
  // A list option right before "--" must not swallow the command's flags.
  auto r = run_warden({"sandbox", "run", "--ro", "/usr/share", "--ro", "/usr/lib", "--", "ls", "-d", "/usr/share"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "/usr/share\n");
}

TEST(SandboxCli, NetworkProfileRefusesUnlistedDomain) {
  std::string log = warden::test::make_temp_dir("log") + "/proxy.jsonl";
  auto r = run_warden({"sandbox", "run", "--profile", "network", "--proxy-log", log, "--allow-domain", "example.com",
                       "--", "curl", "-fsS", "-m", "5", "http://not-listed.invalid/"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(warden::test::read_file(log).find("\"reason\":\"domain not in allowlist\""), std::string::npos);
}

}  // namespace
