// The warden policy / audit / approve subcommands, run as the real binary.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <filesystem>

#include "broker/audit.h"
#include "broker/policy.h"
#include "common/test_env.h"

namespace wb = warden::broker;
using warden::test::run_warden;

namespace {
std::string workspace() {
  std::string ws = std::filesystem::canonical(warden::test::make_temp_dir("ws")).string();
  return ws;
}
}  // namespace

TEST(PolicyCli, CheckExplainsTheDecision) {
  std::string ws = workspace();
  auto r = run_warden({"policy", "check", "fs.write", ws + "/sub/../a.txt", "--workspace", ws});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "decision: ask\neffect:   fs.write " + ws + "/a.txt\npolicy:   ask by rule default (fs.write " +
                       ws + "/**): writes inside the workspace ask\n");
  r = run_warden({"policy", "check", "net:example.com", "--workspace", ws, "--label", "web:evil.example"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("why:      text from evil.example is in the context"), std::string::npos) << r.out;
  r = run_warden({"policy", "check", "msg.send", "bob@example.com", "--workspace", ws, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\"decision\": \"deny\""), std::string::npos) << r.out;
}

TEST(PolicyCli, UsesThePolicyFileAndShowsItsRules) {
  std::string ws = workspace();
  std::string policy = std::string(getenv("XDG_CONFIG_HOME")) + "/warden/policy.toml";
  warden::test::write_file(policy, "[[rule]]\ncapability = \"net\"\npattern = \"*.wikipedia.org\"\naction = \"allow\"\n");
  auto r = run_warden({"policy", "check", "net", "en.wikipedia.org", "--workspace", ws});
  EXPECT_EQ(r.out.rfind("decision: allow\n", 0), 0u) << r.out << r.err;
  EXPECT_NE(r.out.find("allow by rule " + policy + ":1 (net *.wikipedia.org)"), std::string::npos) << r.out;
  r = run_warden({"policy", "show", "--workspace", ws});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("allow  net  *.wikipedia.org  <- " + policy + ":1"), std::string::npos) << r.out;
  // A relative --workspace is read from the current folder; a missing one
  // is a usage error naming the flag.
  r = warden::test::run({"/bin/sh", "-c", "cd \"$1\" && exec \"$0\" policy show --workspace .",
                         warden::test::warden_binary(), ws});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("workspace: " + ws + "\n"), std::string::npos) << r.out;
  r = run_warden({"policy", "show", "--workspace", ws + "/none"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--workspace " + ws + "/none is not a folder"), std::string::npos) << r.err;
  std::filesystem::remove(policy);
}

// A deny rule on a command names a command line, not a program: `policy
// show` says so beside it (and only there).
TEST(PolicyCli, ShowWarnsThatExecDenyPatternsAreNoBoundary) {
  std::string ws = workspace();
  std::string policy = warden::test::make_temp_dir("p") + "/policy.toml";
  warden::test::write_file(policy,
                           "[[rule]]\ncapability = \"exec\"\npattern = \"rm *\"\naction = \"deny\"\n"
                           "[[rule]]\ncapability = \"exec\"\npattern = \"ls *\"\naction = \"allow\"\n"
                           "[[rule]]\ncapability = \"exec\"\naction = \"deny\"\nnetwork = true\n");
  auto r = run_warden({"policy", "show", "--workspace", ws, "--policy", policy});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const size_t rule = r.out.find("deny  exec (no network)  rm *  <- " + policy + ":1\n");
  ASSERT_NE(rule, std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("      warning: exec patterns match the command line as text", rule), r.out.find('\n', rule) + 1)
      << r.out;
  size_t warnings = 0;
  for (size_t at = 0; (at = r.out.find("warning:", at)) != std::string::npos; at++) warnings++;
  EXPECT_EQ(warnings, 1u) << r.out;  // not for the allow rule, nor for exec denied whole
  r = run_warden({"policy", "show", "--workspace", ws, "--policy", policy, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto rules = nlohmann::json::parse(r.out)["rules"];
  size_t warned = 0;
  for (const auto& j : rules) warned += !j["warning"].get<std::string>().empty();
  EXPECT_EQ(warned, 1u);
}

TEST(PolicyCli, MalformedPolicyFailsClosedNamingFileAndLine) {
  std::string ws = workspace();
  std::string policy = warden::test::make_temp_dir("p") + "/policy.toml";
  warden::test::write_file(policy, "[[rule]]\ncapability = \"net\"\naction = \"allow\"\npattern = 5\n");
  auto r = run_warden({"policy", "check", "net", "x.com", "--workspace", ws, "--policy", policy});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "warden policy: error: " + policy + ":4: pattern must be a non-empty string\n");
  r = run_warden({"broker", "--workspace", ws, "--policy", policy, "--no-tty"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "warden broker: error: " + policy + ":4: pattern must be a non-empty string\n");
}

// A --policy that names no file is an error, not the built-in defaults: a
// mistyped path to a stricter policy would otherwise go unnoticed.
TEST(PolicyCli, ANamedPolicyFileMustExist) {
  std::string ws = workspace();
  const std::string missing = warden::test::make_temp_dir("p") + "/tpyo.toml";
  const std::string expected =
      "--policy " + missing + ": no such file (the built-in defaults apply only without --policy)";
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"policy", "show"}, {"policy", "check", "net", "x.com"}, {"broker", "--no-tty"}}) {
    std::vector<std::string> all = args;
    all.insert(all.end(), {"--workspace", ws, "--policy", missing});
    auto r = run_warden(all);
    EXPECT_EQ(r.exit_code, 1) << args[0] << ": " << r.err;
    EXPECT_NE(r.err.find(expected), std::string::npos) << r.err;
  }
  EXPECT_EQ(run_warden({"policy", "show", "--workspace", ws}).exit_code, 0);  // the default path may be missing
}

TEST(PolicyCli, BadUsage) {
  // Values the command line got wrong are bad usage (2), like a missing one.
  auto r = run_warden({"policy", "check", "teleport", "x"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("unknown capability 'teleport'"), std::string::npos) << r.err;
  EXPECT_EQ(run_warden({"policy", "check", "net"}).exit_code, 2);  // no target
  EXPECT_EQ(run_warden({"policy", "check", "net", "x.com", "--label", "bogus"}).exit_code, 2);
  EXPECT_EQ(run_warden({"policy", "set", "teleport", "x", "allow"}).exit_code, 2);
  r = run_warden({"policy", "check", "net:a.com", "b.com"});
  EXPECT_EQ(r.exit_code, 2);
  r = run_warden({"policy", "check", "fs.read"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("give the path to check: warden policy check fs.read PATH"), std::string::npos) << r.err;
  r = run_warden({"audit", "bogus"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("unknown subcommand 'bogus'; it takes show, verify, export"), std::string::npos) << r.err;
}

TEST(AuditCli, ShowVerifyExportAndTamper) {
  std::string db = warden::test::make_temp_dir("a") + "/audit.db";
  {
    wb::AuditLog log(db);
    log.append({"agent", "net", "{\"target\":\"\\u001b[2Jevil.com\"}", "denied", "deny by rule x", ""});
    log.append({"agent", "fs.read", "{\"target\":\"/ws/a\"}", "allowed by policy", "allow", ""});
  }
  auto r = run_warden({"audit", "verify", "--db", db});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("ok: 2 records, chain intact, head ", 0), 0u) << r.out;
  r = run_warden({"audit", "show", "--db", db});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("#1 "), std::string::npos);
  r = run_warden({"audit", "show", "--db", db, "--json", "--since", "1h"});
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 2) << r.out;
  r = run_warden({"audit", "show", "--db", db, "--since", "2999-01-01"});
  EXPECT_EQ(r.out, "");
  r = run_warden({"audit", "show", "--db", db, "--since", "yesterday"});
  EXPECT_EQ(r.exit_code, 2);
  r = run_warden({"audit", "show", "--db", db, "--since", "2026-13-45"});  // no such month
  EXPECT_EQ(r.exit_code, 2);
  // An age longer than the time since 1970 (or than a number holds) is all.
  for (const char* age : {"999999999999999d", "99999999999999999999d"}) {
    r = run_warden({"audit", "show", "--db", db, "--json", "--since", age});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 2) << age;
  }
  r = run_warden({"audit", "export", "--json", "--db", db});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("\"prev_hash\""), std::string::npos);

  // Truncate the tail behind warden's back: verify fails with exit 1.
  auto head = wb::read_head(wb::head_path_for(db)).value();
  head.seq = 3;
  wb::write_head(wb::head_path_for(db), head);
  r = run_warden({"audit", "verify", "--db", db});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("TAMPERED: log truncated"), std::string::npos) << r.out;
  EXPECT_EQ(r.err, "warden audit: error: audit log " + db + " failed verification (1 problem)\n");
  // And the broker refuses to run on a tampered log.
  std::string ws = workspace();
  r = run_warden({"broker", "--workspace", ws, "--audit", db, "--no-tty"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("fails verification"), std::string::npos) << r.err;
}

// No log at the path is an error, never an intact empty log.
TEST(AuditCli, AMissingLogIsAnError) {
  const std::string db = warden::test::make_temp_dir("a") + "/nowhere.db";
  for (const char* sub : {"verify", "show", "export"}) {
    auto r = run_warden({"audit", sub, "--db", db});
    EXPECT_EQ(r.exit_code, 1) << sub;
    EXPECT_EQ(r.out, "") << sub;
    EXPECT_NE(r.err.find("no audit log at " + db), std::string::npos) << r.err;
  }
}

TEST(ApproveCli, UsageAndNoBroker) {
  auto r = run_warden({"approve", "frobnicate"});
  EXPECT_EQ(r.exit_code, 2);
  r = run_warden({"approve", "approve"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("needs a request ID"), std::string::npos);
  r = run_warden({"approve", "list", "--socket", warden::test::make_temp_dir("s") + "/none.sock"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("cannot reach the broker"), std::string::npos) << r.err;
}
