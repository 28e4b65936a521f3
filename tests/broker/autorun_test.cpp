// Writes that plant code for later (git hooks and config, .envrc, .vscode)
// always ask the human, even where the policy allows workspace writes, and
// the prompt says why.
#include <gtest/gtest.h>

#include <filesystem>

#include "broker/autorun.h"
#include "broker/broker.h"
#include "broker/pattern.h"
#include "util/error.h"
#include "common/test_env.h"

namespace wb = warden::broker;

namespace {

TEST(Autorun, RecognisesGitEnvrcAndVscodeInsideTheWorkspace) {
  const std::string ws = "/home/u/proj";
  EXPECT_NE(wb::autorun_reason(ws + "/.git/hooks/pre-commit", ws).find("hooks"), std::string::npos);
  EXPECT_NE(wb::autorun_reason(ws + "/.git/config", ws), "");
  EXPECT_NE(wb::autorun_reason(ws + "/.git", ws), "");
  EXPECT_NE(wb::autorun_reason(ws + "/sub/repo/.git/hooks/post-checkout", ws), "");  // nested repositories too
  EXPECT_NE(wb::autorun_reason(ws + "/.envrc", ws).find("direnv"), std::string::npos);
  EXPECT_NE(wb::autorun_reason(ws + "/sub/.envrc", ws), "");
  EXPECT_NE(wb::autorun_reason(ws + "/.vscode/tasks.json", ws).find("VS Code"), std::string::npos);
  // A case-insensitive filesystem opens .git for .GIT.
  EXPECT_NE(wb::autorun_reason(ws + "/.GIT/hooks/pre-commit", ws), "");
  EXPECT_NE(wb::autorun_reason(ws + "/sub/.EnvRC", ws), "");
}

TEST(Autorun, LeavesOrdinaryFilesAlone) {
  const std::string ws = "/home/u/proj";
  EXPECT_EQ(wb::autorun_reason(ws + "/src/main.c", ws), "");
  EXPECT_EQ(wb::autorun_reason(ws + "/.gitignore", ws), "");
  EXPECT_EQ(wb::autorun_reason(ws + "/.github/workflows/ci.yml", ws), "");
  EXPECT_EQ(wb::autorun_reason(ws + "/docs/.git-notes", ws), "");
  EXPECT_EQ(wb::autorun_reason(ws + "/.envrc.d/x", ws), "");   // .envrc is a file name, not a folder
  EXPECT_EQ(wb::autorun_reason(ws + "/.envrc/x", ws), "");
  // A workspace that itself lies under such a folder is not special.
  EXPECT_EQ(wb::autorun_reason("/home/u/.vscode/ext/ws/file.txt", "/home/u/.vscode/ext/ws"), "");
}

TEST(Autorun, WritesThereAskEvenWhenThePolicyAllowsWorkspaceWrites) {
  std::string ws = std::filesystem::canonical(warden::test::make_temp_dir("ws")).string();
  auto policy =
      wb::Policy::parse("[[rule]]\ncapability = \"fs.write\"\npattern = \"$WORKSPACE/**\"\naction = \"allow\"\n",
                        "policy.toml", wb::PolicyEnv::current(ws));
  wb::EffectRequest r;
  r.capability = wb::Capability::fs_write;
  r.context_labels = wb::LabelSet::parse({"user"});
  r.target = ws + "/notes.txt";
  EXPECT_EQ(wb::assess(policy, r).action, wb::Action::allow);
  for (const char* rel : {"/.git/hooks/pre-commit", "/.envrc", "/.vscode/tasks.json"}) {
    r.target = ws + rel;
    wb::Assessment a = wb::assess(policy, r);
    EXPECT_EQ(a.action, wb::Action::ask) << rel;
    ASSERT_FALSE(a.ask_reasons.empty()) << rel;
    EXPECT_NE(a.ask_reasons.back().find("writes there always need your approval"), std::string::npos);
  }
  // Deny stays deny.
  auto deny =
      wb::Policy::parse("[[rule]]\ncapability = \"fs.write\"\npattern = \"$WORKSPACE/.git/**\"\naction = \"deny\"\n",
                        "policy.toml", wb::PolicyEnv::current(ws));
  r.target = ws + "/.git/config";
  EXPECT_EQ(wb::assess(deny, r).action, wb::Action::deny);
}

// A deny rule on paths inside the workspace binds the file tools; a
// command's jail holds the whole workspace, so under such a rule every
// command asks, saying why. Warden's own denials (secrets, its folders),
// which the jail masks, and rules outside the workspace change nothing.
TEST(Autorun, CommandsAskWhereThePolicyDeniesPathsInTheWorkspace) {
  const std::string ws = std::filesystem::canonical(warden::test::make_temp_dir("ws")).string();
  wb::EffectRequest r;
  r.capability = wb::Capability::exec;
  r.target = "cat locked/private.txt";
  r.context_labels = wb::LabelSet::parse({"user"});
  const auto policy = [&](const std::string& pattern) {
    return wb::Policy::parse("[[rule]]\ncapability = \"fs.read\"\npattern = \"" + pattern + "\"\naction = \"deny\"\n",
                             "policy.toml", wb::PolicyEnv::current(ws));
  };
  for (const char* pattern : {"$WORKSPACE/locked/**", "$WORKSPACE/**/secret*", "$WORKSPACE/../**", "/**", "**"}) {
    const wb::Assessment a = wb::assess(policy(pattern), r);
    EXPECT_EQ(a.action, wb::Action::ask) << pattern;
    ASSERT_FALSE(a.ask_reasons.empty()) << pattern;
    EXPECT_NE(a.ask_reasons.back().find("which a command cannot be held to: its jail holds the whole workspace"),
              std::string::npos);
    EXPECT_NE(a.ask_reasons.back().find("(policy.toml:1)"), std::string::npos) << a.ask_reasons.back();
  }
  EXPECT_EQ(wb::assess(policy("/opt/elsewhere/**"), r).action, wb::Action::allow);
  // A rule that asks for a path binds commands the same way.
  const wb::Assessment asks = wb::assess(
      wb::Policy::parse("[[rule]]\ncapability = \"fs.read\"\npattern = \"$WORKSPACE/secret.txt\"\naction = \"ask\"\n",
                        "policy.toml", wb::PolicyEnv::current(ws)),
      r);
  EXPECT_EQ(asks.action, wb::Action::ask);
  ASSERT_FALSE(asks.ask_reasons.empty());
  EXPECT_NE(asks.ask_reasons.back().find("the policy asks before fs.read $WORKSPACE/secret.txt"), std::string::npos)
      << asks.ask_reasons.back();
  EXPECT_EQ(wb::assess(wb::Policy::parse("", "policy.toml", wb::PolicyEnv::current(ws)), r).action,
            wb::Action::allow);
}

// A search reads all below its folder: a rule on a path below binds it as
// it binds a command; a search beside the rule, or one read, does not ask.
TEST(Autorun, ASearchAsksWhereThePolicyDeniesPathsBelowIt) {
  const std::string ws = std::filesystem::canonical(warden::test::make_temp_dir("ws")).string();
  const wb::Policy policy = wb::Policy::parse(
      "[[rule]]\ncapability = \"fs.read\"\npattern = \"$WORKSPACE/locked/**\"\naction = \"deny\"\n"
      "[[rule]]\ncapability = \"fs.write\"\npattern = \"$WORKSPACE/src/gen/**\"\naction = \"deny\"\n",
      "policy.toml", wb::PolicyEnv::current(ws));
  wb::EffectRequest search;
  search.capability = wb::Capability::fs_read;
  search.whole_tree = true;
  search.context_labels = wb::LabelSet::parse({"user"});
  search.target = ws;
  const wb::Assessment a = wb::assess(policy, search);
  EXPECT_EQ(a.action, wb::Action::ask);
  ASSERT_FALSE(a.ask_reasons.empty());
  EXPECT_EQ(a.ask_reasons.back(), "the policy denies fs.read $WORKSPACE/locked/** (policy.toml:1), which a search of " +
                                       ws + " cannot be held to: it reads all below it");
  search.target = ws + "/src";  // beside the read rule; the write rule does not bind reads
  EXPECT_EQ(wb::assess(policy, search).action, wb::Action::allow);
  search.target = ws + "/locked";
  EXPECT_EQ(wb::assess(policy, search).action, wb::Action::deny);
  wb::EffectRequest one_file = search;
  one_file.whole_tree = false;
  one_file.target = ws + "/README.md";
  EXPECT_EQ(wb::assess(policy, one_file).action, wb::Action::allow);
}

// A listing shows names: where a rule's wildcards keep names from view, a
// listing that would show one asks; the names a rule spells out, and
// folders holding none that match, do not.
TEST(Autorun, AListingAsksWhereItWouldShowANameARuleHides) {
  namespace fs = std::filesystem;
  const std::string ws = fs::canonical(warden::test::make_temp_dir("ws")).string();
  warden::test::write_file(ws + "/keys/server.pem", "KEY\n");
  warden::test::write_file(ws + "/locked/plan.txt", "PLAN\n");
  warden::test::write_file(ws + "/mail/to-lawyer.eml", "MAIL\n");
  warden::test::write_file(ws + "/src/main.c", "int main;\n");
  const wb::Policy policy = wb::Policy::parse(
      "[[rule]]\ncapability = \"fs.read\"\npattern = \"$WORKSPACE/**/*.pem\"\naction = \"deny\"\n"
      "[[rule]]\ncapability = \"fs.read\"\npattern = \"$WORKSPACE/locked/**\"\naction = \"deny\"\n"
      "[[rule]]\ncapability = \"fs.read\"\npattern = \"$WORKSPACE/mail/*\"\naction = \"ask\"\n",
      "policy.toml", wb::PolicyEnv::current(ws));
  wb::EffectRequest list;
  list.capability = wb::Capability::fs_read;
  list.context_labels = wb::LabelSet::parse({"user"});
  const auto action = [&](const std::string& folder) {
    list.target = folder;
    return wb::assess(policy, list).action;
  };
  EXPECT_EQ(action(ws), wb::Action::allow);  // shows keys, locked, mail: the rules spell those out
  EXPECT_EQ(action(ws + "/src"), wb::Action::allow);
  EXPECT_EQ(action(ws + "/locked"), wb::Action::deny);
  EXPECT_EQ(action(ws + "/mail"), wb::Action::ask);
  list.target = ws + "/keys";
  const wb::Assessment keys = wb::assess(policy, list);
  EXPECT_EQ(keys.action, wb::Action::ask);
  ASSERT_FALSE(keys.ask_reasons.empty());
  EXPECT_EQ(keys.ask_reasons.back(), "a listing of " + ws +
                                         "/keys would show the name of a file the policy denies reading (fs.read "
                                         "$WORKSPACE/**/*.pem, policy.toml:1)");
  // `ls -la` shows where a link leads: a link to a hidden name is one.
  fs::create_symlink("../mail/to-lawyer.eml", ws + "/src/current");
  EXPECT_EQ(action(ws + "/src"), wb::Action::ask);
  fs::remove(ws + "/src/current");
  EXPECT_EQ(action(ws + "/src"), wb::Action::allow);
  warden::test::write_file(ws + "/src/leaked.pem", "KEY\n");
  EXPECT_EQ(action(ws + "/src"), wb::Action::ask);
  EXPECT_EQ(wb::assess(wb::Policy::parse("", "policy.toml", wb::PolicyEnv::current(ws)), list).action,
            wb::Action::allow);
}

// A hard link is the denied file under an allowed name: where the policy
// has such rules in the workspace, reading or writing a file with more than
// one name asks.
TEST(Autorun, AFileWithMoreThanOneNameAsksWhereThePolicyHasPathRules) {
  namespace fs = std::filesystem;
  const std::string ws = fs::canonical(warden::test::make_temp_dir("ws")).string();
  warden::test::write_file(ws + "/locked/private.txt", "PRIVATE\n");
  fs::create_hard_link(ws + "/locked/private.txt", ws + "/notes.txt");
  warden::test::write_file(ws + "/plain.txt", "x\n");
  const auto policy = [&](const std::string& rules) {
    return wb::Policy::parse(rules, "policy.toml", wb::PolicyEnv::current(ws));
  };
  const wb::Policy denies =
      policy("[[rule]]\ncapability = \"fs.read\"\npattern = \"$WORKSPACE/locked/**\"\naction = \"deny\"\n");
  wb::EffectRequest r;
  r.capability = wb::Capability::fs_read;
  r.context_labels = wb::LabelSet::parse({"user"});
  r.target = ws + "/notes.txt";
  const wb::Assessment a = wb::assess(denies, r);
  EXPECT_EQ(a.action, wb::Action::ask);
  ASSERT_FALSE(a.ask_reasons.empty());
  EXPECT_NE(a.ask_reasons.back().find("cannot be checked against " + ws + "/notes.txt: it has 2 names (hard links)"),
            std::string::npos)
      << a.ask_reasons.back();
  r.target = ws + "/plain.txt";
  EXPECT_EQ(wb::assess(denies, r).action, wb::Action::allow);
  r.target = ws + "/notes.txt";  // no path rules: nothing for another name to get past
  EXPECT_EQ(wb::assess(policy(""), r).action, wb::Action::allow);
  // A rule on a folder outside the workspace may name the other name too.
  EXPECT_EQ(
      wb::assess(policy("[[rule]]\ncapability = \"fs.read\"\npattern = \"/srv/secrets/**\"\naction = \"deny\"\n"), r)
          .action,
      wb::Action::ask);
}

}  // namespace

namespace {

TEST(NormalizePath, FollowsDanglingSymlinksToWhereAWriteWouldLand) {
  namespace fs = std::filesystem;
  std::string ws = fs::canonical(warden::test::make_temp_dir("ws")).string();
  fs::create_symlink(".envrc", ws + "/notes");                      // dangling, relative
  fs::create_symlink("sub/deeper", ws + "/d");                      // dangling folder in the middle of a path
  fs::create_symlink(ws + "/.git/hooks/pre-commit", ws + "/hook");  // dangling, absolute
  fs::create_symlink("loop2", ws + "/loop1");
  fs::create_symlink("loop1", ws + "/loop2");
  EXPECT_EQ(wb::resolve_path(ws + "/notes"), ws + "/.envrc");
  EXPECT_EQ(wb::resolve_path(ws + "/d/x.txt"), ws + "/sub/deeper/x.txt");
  EXPECT_EQ(wb::resolve_path(ws + "/hook"), ws + "/.git/hooks/pre-commit");
  // ".." after a link goes up from where the link points, as in the kernel.
  EXPECT_EQ(wb::resolve_path(ws + "/d/../a"), ws + "/sub/a");
  fs::create_directories(ws + "/real/inner");
  fs::create_symlink(ws + "/real/inner", ws + "/cfg");
  EXPECT_EQ(wb::resolve_path(ws + "/cfg/../.envrc"), ws + "/real/.envrc");
  EXPECT_EQ(wb::resolve_path(ws + "/./x/.././/y/"), ws + "/y");
  EXPECT_THROW(wb::resolve_path(ws + "/loop1"), warden::Error);
  // And the broker asks for such a write, with the reason.
  auto policy =
      wb::Policy::parse("[[rule]]\ncapability = \"fs.write\"\npattern = \"$WORKSPACE/**\"\naction = \"allow\"\n",
                        "policy.toml", wb::PolicyEnv::current(ws));
  wb::EffectRequest r;
  r.capability = wb::Capability::fs_write;
  r.target = ws + "/notes";
  wb::Assessment a = wb::assess(policy, r);
  EXPECT_EQ(a.target, ws + "/.envrc");
  EXPECT_EQ(a.action, wb::Action::ask);
}

}  // namespace
