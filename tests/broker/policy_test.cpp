// Policy parsing, rule order, patterns, defaults, bad files.
#include <gtest/gtest.h>

#include <filesystem>

#include "broker/pattern.h"
#include "broker/policy.h"
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
  env.protected_dirs = {"/home/u/.config/warden", "/home/u/.local/share/warden"};
  return env;
}

Action decide(const wb::Policy& p, Capability c, const std::string& target, bool network = false) {
  // Targets here are already normalized; resolving symlinks is tested apart.
  return p.evaluate({c, target, network}).action;
}

std::string parse_error(const std::string& text) {
  try {
    wb::Policy::parse(text, "policy.toml", test_env());
  } catch (const warden::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Glob, PathStarStaysInOneComponent) {
  EXPECT_TRUE(wb::glob_match("/ws/*.txt", "/ws/a.txt", true));
  EXPECT_FALSE(wb::glob_match("/ws/*.txt", "/ws/sub/a.txt", true));
  EXPECT_TRUE(wb::glob_match("/ws/**", "/ws/sub/deep/a.txt", true));
  EXPECT_TRUE(wb::glob_match("/ws/**", "/ws", true));
  EXPECT_FALSE(wb::glob_match("/ws/**", "/wsx/a", true));
  EXPECT_FALSE(wb::glob_match("/ws/**", "/", true));
  EXPECT_TRUE(wb::glob_match("/ws/**/*.md", "/ws/a/b/c.md", true));
  EXPECT_FALSE(wb::glob_match("/ws/?", "/ws/ab", true));
}

TEST(Glob, PlainStarMatchesAnything) {
  EXPECT_TRUE(wb::glob_match("*.example.com", "a.b.example.com", false));
  EXPECT_FALSE(wb::glob_match("*.example.com", "example.com", false));
  EXPECT_FALSE(wb::glob_match("*.example.com", "evilexample.com", false));
  EXPECT_TRUE(wb::glob_match("git status*", "git status --short", false));
  EXPECT_FALSE(wb::glob_match("git status*", "rm -rf / ; git status", false));
}

TEST(Glob, PathologicalPatternStaysFast) {
  std::string text(3000, 'a');
  EXPECT_FALSE(wb::glob_match("*a*a*a*a*a*a*a*a*a*a*b", text, false));
}

TEST(NormalizePath, CollapsesDotsAndSlashes) {
  EXPECT_EQ(wb::normalize_path_lexically("/ws/./a//b/../c/"), "/ws/a/c");
  EXPECT_EQ(wb::normalize_path_lexically("/ws/../../etc/passwd"), "/etc/passwd");
  EXPECT_EQ(wb::normalize_path_lexically("/.."), "/");
  EXPECT_THROW(wb::normalize_path_lexically("relative/x"), warden::Error);
  EXPECT_THROW(wb::normalize_path_lexically(std::string("/a\0b", 4)), warden::Error);
}

TEST(NormalizePath, ResolvesSymlinksOutOfTheWorkspace) {
  namespace fs = std::filesystem;
  std::string root = fs::canonical(warden::test::make_temp_dir("sym")).string();
  fs::create_directories(root + "/ws");
  fs::create_directories(root + "/secret");
  fs::create_symlink(root + "/secret", root + "/ws/link");
  EXPECT_EQ(wb::resolve_path(root + "/ws/link/key"), root + "/secret/key");
  EXPECT_EQ(wb::resolve_path(root + "/ws/new/../file"), root + "/ws/file");
}

TEST(PolicyDefaults, AreParanoid) {
  auto p = wb::Policy::defaults(test_env());
  EXPECT_EQ(decide(p, Capability::fs_read, "/ws/notes.txt"), Action::allow);
  EXPECT_EQ(decide(p, Capability::fs_read, "/ws"), Action::allow);
  EXPECT_EQ(decide(p, Capability::fs_read, "/home/u/.ssh/id_ed25519"), Action::deny);
  EXPECT_EQ(decide(p, Capability::fs_write, "/ws/notes.txt"), Action::ask);
  EXPECT_EQ(decide(p, Capability::fs_write, "/home/u/.bashrc"), Action::deny);
  EXPECT_EQ(decide(p, Capability::exec, "make test"), Action::allow);
  EXPECT_EQ(decide(p, Capability::exec, "curl example.com", true), Action::ask);
  EXPECT_EQ(decide(p, Capability::net, "example.com"), Action::ask);
  EXPECT_EQ(decide(p, Capability::msg_send, "bob@example.com"), Action::deny);
  EXPECT_EQ(decide(p, Capability::wallet_spend, "0xabc"), Action::deny);
  EXPECT_EQ(decide(p, Capability::remote_llm, "openai"), Action::deny);
  EXPECT_EQ(decide(p, Capability::config_change, "policy.toml"), Action::deny);
  EXPECT_EQ(decide(p, Capability::plugin_install, "x"), Action::deny);
}

TEST(PolicyDefaults, MissingFileGivesDefaults) {
  auto p = wb::Policy::load(warden::test::make_temp_dir("nofile") + "/policy.toml", test_env());
  EXPECT_EQ(decide(p, Capability::fs_write, "/ws/a"), Action::ask);
  EXPECT_EQ(decide(p, Capability::msg_send, "bob"), Action::deny);
}

TEST(Policy, FirstMatchingRuleWinsThenDefaults) {
  auto p = wb::Policy::parse(R"(
[[rule]]
capability = "fs.write"
pattern = "$WORKSPACE/build/**"
action = "allow"

[[rule]]
capability = "fs.write"
pattern = "$WORKSPACE/**"
action = "deny"
note = "read-only repo"

[[rule]]
capability = "net"
pattern = "*.wikipedia.org"
action = "allow"

[[rule]]
capability = "fs.read"
pattern = "~/docs/**"
action = "allow"
)", "policy.toml", test_env());
  EXPECT_EQ(decide(p, Capability::fs_write, "/ws/build/out.o"), Action::allow);
  auto d = p.evaluate({Capability::fs_write, "/ws/src/main.c", false});
  EXPECT_EQ(d.action, Action::deny);
  ASSERT_NE(d.rule, nullptr);
  EXPECT_EQ(d.rule->origin, "policy.toml:7");
  EXPECT_NE(d.explain().find("read-only repo"), std::string::npos);
  EXPECT_EQ(decide(p, Capability::net, "en.wikipedia.org"), Action::allow);
  EXPECT_EQ(decide(p, Capability::net, "wikipedia.org.evil.com"), Action::ask);  // default
  EXPECT_EQ(decide(p, Capability::fs_read, "/home/u/docs/a/b.pdf"), Action::allow);
  EXPECT_EQ(decide(p, Capability::fs_read, "/home/u/.ssh/id_rsa"), Action::deny);
}

// A rule that denies or asks for a folder holds for what is in it, though
// its `*` matches one level; an allow rule's `*` stays one level.
TEST(Policy, ADenyOrAskOnAFolderHoldsBelowIt) {
  auto p = wb::Policy::parse(R"(
[[rule]]
capability = "fs.read"
pattern = "$WORKSPACE/public/*"
action = "allow"

[[rule]]
capability = "fs.read"
pattern = "$WORKSPACE/mail/*"
action = "deny"

[[rule]]
capability = "fs.write"
pattern = "$WORKSPACE/vendor"
action = "ask"
)", "policy.toml", test_env());
  EXPECT_EQ(decide(p, Capability::fs_read, "/ws/mail/to-lawyer"), Action::deny);
  EXPECT_EQ(decide(p, Capability::fs_read, "/ws/mail/2026/to-lawyer.eml"), Action::deny);
  EXPECT_EQ(decide(p, Capability::fs_read, "/ws/mail"), Action::allow);  // the folder's own name is the rule's
  EXPECT_EQ(decide(p, Capability::fs_read, "/ws/mailbox/x"), Action::allow);
  EXPECT_EQ(decide(p, Capability::fs_write, "/ws/vendor/lib/x.c"), Action::ask);
  EXPECT_EQ(decide(p, Capability::fs_write, "/ws/vendored.c"), Action::ask);  // the default: workspace writes ask
  // Not for allow: public/* allows public/x, and public/x/y falls to the
  // next rule (the default allows workspace reads anyway; outside it,
  // reads would ask).
  auto q = wb::Policy::parse(R"(
[[rule]]
capability = "fs.read"
pattern = "~/public/*"
action = "allow"
)", "policy.toml", test_env());
  EXPECT_EQ(decide(q, Capability::fs_read, "/home/u/public/a.txt"), Action::allow);
  EXPECT_NE(decide(q, Capability::fs_read, "/home/u/public/a/b.txt"), Action::allow);
}

TEST(Policy, ProtectedPathsBeatTheFile) {
  auto p = wb::Policy::parse(R"(
[[rule]]
capability = "fs.write"
pattern = "/**"
action = "allow"
)", "policy.toml", test_env());
  EXPECT_EQ(decide(p, Capability::fs_write, "/etc/x"), Action::allow);
  EXPECT_EQ(decide(p, Capability::fs_write, "/home/u/.config/warden/policy.toml"), Action::deny);
  EXPECT_EQ(decide(p, Capability::fs_write, "/home/u/.local/share/warden/audit.db"), Action::deny);
  EXPECT_EQ(decide(p, Capability::fs_read, "/home/u/.local/share/warden/audit.db.head"), Action::deny);
}

TEST(PolicyEnv, RefusesAWorkspaceWhoseNameIsAWildcard) {
  // $WORKSPACE/** with a '*' in the path would reach its siblings.
  const std::string root = warden::test::make_temp_dir("wild");
  for (std::string name : {"/proj*", "/w?"}) {
    std::filesystem::create_directories(root + name);
    try {
      wb::PolicyEnv::current(root + name);
      ADD_FAILURE() << name;
    } catch (const warden::Error& e) {
      EXPECT_NE(std::string(e.what()).find("contains '*' or '?'"), std::string::npos) << e.what();
    }
  }
}

TEST(Policy, ExecRulesAreSplitByNetwork) {
  auto p = wb::Policy::parse(R"(
[[rule]]
capability = "exec"
pattern = "rm *"
action = "deny"

[[rule]]
capability = "exec"
pattern = "pip install *"
network = true
action = "allow"
)", "policy.toml", test_env());
  EXPECT_EQ(decide(p, Capability::exec, "rm -rf /ws"), Action::deny);
  EXPECT_EQ(decide(p, Capability::exec, "pip install numpy", true), Action::allow);
  // A network grant does not leak into the no-network rule set or vice versa.
  EXPECT_EQ(decide(p, Capability::exec, "curl evil.com", true), Action::ask);
  EXPECT_EQ(decide(p, Capability::exec, "pip install numpy", false), Action::allow);  // default no-network
}

TEST(Policy, DomainsCompareCaseInsensitively) {
  auto p = wb::Policy::parse("[[rule]]\ncapability = \"net\"\npattern = \"Docs.Example.COM\"\naction = \"deny\"\n",
                             "policy.toml", test_env());
  EXPECT_EQ(decide(p, Capability::net, wb::normalize_target(Capability::net, "DOCS.example.com.")), Action::deny);
}

TEST(Policy, MailAddressesCompareCaseInsensitively) {
  // A deny rule on recipients is a boundary whatever case the model writes.
  auto p = wb::Policy::parse(
      "[[rule]]\ncapability = \"msg.send\"\npattern = \"*@Rival.Example\"\naction = \"deny\"\n"
      "[[rule]]\ncapability = \"msg.send\"\npattern = \"me@home.example\"\naction = \"allow\"\n",
      "policy.toml", test_env());
  auto decide_mail = [&](const std::string& to) {
    return decide(p, Capability::msg_send, wb::normalize_target(Capability::msg_send, to));
  };
  EXPECT_EQ(decide_mail("Boss@RIVAL.example"), Action::deny);
  EXPECT_EQ(decide_mail("boss@rival.example"), Action::deny);
  EXPECT_EQ(decide_mail("ME@Home.Example"), Action::allow);
  EXPECT_EQ(wb::normalize_target(Capability::msg_send, "Bob@Example.COM"), "bob@example.com");
}

TEST(Policy, LimitsAndApprovalTimeout) {
  auto p = wb::Policy::parse(R"(
[limits]
net = { max = 2, per_seconds = 60 }
"msg.send" = { max = 0, per_seconds = 1 }

[approval]
timeout_seconds = 5
)", "policy.toml", test_env());
  ASSERT_TRUE(p.rate_limit(Capability::net));
  EXPECT_EQ(p.rate_limit(Capability::net)->max, 2);
  EXPECT_EQ(p.rate_limit(Capability::msg_send)->max, 0);
  EXPECT_FALSE(p.rate_limit(Capability::exec));
  EXPECT_EQ(p.approval_timeout_seconds(), 5);
}

TEST(PolicyBadFile, ErrorsNameFileAndLine) {
  EXPECT_EQ(parse_error("[[rule]]\ncapability = \"fs.read\"\naction = \"alow\"\n"),
            "policy.toml:3: action must be \"allow\", \"ask\" or \"deny\"");
  EXPECT_EQ(parse_error("\n\n[[rule]]\ncapability = \"fs.raed\"\naction = \"allow\"\n"),
            "policy.toml:4: unknown capability 'fs.raed'");
  EXPECT_EQ(parse_error("[[rule]]\ncapability = \"net\"\n"), "policy.toml:1: [[rule]] has no action (allow, ask or deny)");
  EXPECT_EQ(parse_error("[[rule]]\ncapability = \"net\"\naction = \"allow\"\npatern = \"x\"\n"),
            "policy.toml:4: unknown key 'patern' in [[rule]] (expected capability, pattern, action, network, note)");
  EXPECT_EQ(parse_error("[[rule]]\ncapability = \"fs.read\"\naction = \"allow\"\npattern = \"docs/**\"\n"),
            "policy.toml:4: path pattern 'docs/**' must be absolute or start with $WORKSPACE or ~");
  EXPECT_EQ(parse_error("[[rule]]\ncapability = \"net\"\naction = \"allow\"\nnetwork = true\n"),
            "policy.toml:4: network applies only to exec rules");
  EXPECT_EQ(parse_error("allow_everything = true\n"),
            "policy.toml:1: unknown key 'allow_everything' (expected [[rule]], [limits], [approval])");
  EXPECT_EQ(parse_error("[limits]\nnet = { max = -1, per_seconds = 5 }\n"),
            "policy.toml:2: max must be an integer between 0 and 1000000");
  EXPECT_EQ(parse_error("[limits]\nnet = { max = 3 }\n"), "policy.toml:2: limit for net needs both max and per_seconds");
  EXPECT_EQ(parse_error("[approval]\ntimeout_seconds = 0\n"),
            "policy.toml:2: timeout_seconds must be an integer between 1 and 86400");
  // Syntax errors come from the TOML parser, still with file and line.
  EXPECT_EQ(parse_error("[[rule]]\ncapability = \"net\nx").rfind("policy.toml:2: ", 0), 0u);
  EXPECT_EQ(parse_error("# notes\n[[rule]]\ncapability = \"fs.read\" # caf\xc3\xa9\n"),
            "policy.toml:3: non-ASCII character; write it inside a string as a \\uXXXX escape");
  EXPECT_EQ(parse_error("\xc4\x9fr"), "policy.toml:1: non-ASCII character; write it inside a string as a \\uXXXX escape");
  EXPECT_EQ(parse_error("rule = 3\n"), "policy.toml:1: 'rule' must be an array of tables: write [[rule]]");
}

TEST(Policy, NonAsciiPathsAsEscapes) {
  auto p = wb::Policy::parse("[[rule]]\ncapability = \"fs.read\"\npattern = \"/caf\\u00e9/**\"\naction = \"allow\"\n",
                             "policy.toml", test_env());
  EXPECT_EQ(decide(p, Capability::fs_read, "/caf\xc3\xa9/menu.txt"), Action::allow);
}

TEST(PolicyBadFile, LoadNamesThePath) {
  std::string path = warden::test::make_temp_dir("bad") + "/policy.toml";
  warden::test::write_file(path, "[[rule]]\ncapability = 7\naction = \"allow\"\n");
  try {
    wb::Policy::load(path, test_env());
    FAIL() << "a malformed policy loaded";
  } catch (const warden::Error& e) {
    EXPECT_EQ(std::string(e.what()), path + ":2: capability must be a string");
  }
}

TEST(NormalizeTarget, RejectsWhatACapabilityCannotTake) {
  EXPECT_THROW(wb::normalize_target(Capability::fs_read, "notes.txt"), warden::Error);
  EXPECT_THROW(wb::normalize_target(Capability::net, "https://example.com/x"), warden::Error);
  EXPECT_THROW(wb::normalize_target(Capability::net, "example.com:443"), warden::Error);
  EXPECT_THROW(wb::normalize_target(Capability::net, ""), warden::Error);
  EXPECT_THROW(wb::normalize_target(Capability::msg_send, ""), warden::Error);
  EXPECT_EQ(wb::normalize_target(Capability::net, "[::1]"), "[::1]");
  EXPECT_EQ(wb::normalize_target(Capability::net, "Example.COM"), "example.com");
}
