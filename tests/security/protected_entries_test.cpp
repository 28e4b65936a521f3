// run_command's jail keeps the workspace's autorun entries (.git, .envrc,
// .vscode: code other programs run later, outside every sandbox) read-only:
// sandbox::Profile::readonly_in_workspace, with the list the agent uses
// (broker/autorun.h). An existing entry cannot be written, removed or
// renamed away; a missing one cannot be created, and leaves nothing behind.
#include <gtest/gtest.h>

#include <filesystem>

#include "broker/autorun.h"
#include "common/test_env.h"
#include "sandbox/sandbox.h"
#include "util/error.h"

namespace fs = std::filesystem;
using warden::test::make_temp_dir;
using warden::test::read_file;
using warden::test::write_file;

namespace {

warden::sandbox::Profile protected_profile(const std::string& ws, bool git_writable = false) {
  warden::sandbox::Profile p = warden::sandbox::named_profile("default");
  p.workspace = ws;
  p.limits.wall_seconds = 30;
  for (const auto& e : warden::broker::kAutorunNames)
    if (!(git_writable && std::string(e.name) == ".git")) p.readonly_in_workspace.push_back({e.name, e.directory});
  return p;
}

warden::sandbox::SandboxResult sh(const warden::sandbox::Profile& p, const std::string& script) {
  return warden::sandbox::run(p, {"sh", "-c", script}, "");
}

std::vector<std::string> entries(const std::string& dir) {
  std::vector<std::string> out;
  for (auto& e : fs::recursive_directory_iterator(dir)) out.push_back(fs::relative(e.path(), dir).string());
  std::sort(out.begin(), out.end());
  return out;
}

class ProtectedEntries : public ::testing::Test {
 protected:
  void SetUp() override {
    ws_ = fs::canonical(make_temp_dir("ws")).string();
  }
  std::string ws_;
};

TEST_F(ProtectedEntries, AnExistingGitCannotBeWrittenRemovedOrRenamedAway) {
  write_file(ws_ + "/.git/HEAD", "ref: refs/heads/main\n");
  write_file(ws_ + "/.git/description", "demo\n");
  write_file(ws_ + "/.envrc", "export A=1\n");
  const auto before = entries(ws_);
  auto r = sh(protected_profile(ws_),
              "mv .git .git-old; rm -rf .git; echo x >> .git/description; mkdir .git/hooks2; "
              "echo evil > .envrc; mv .envrc envrc.old; cat .git/HEAD; echo ok > notes.txt; echo done");
  EXPECT_NE(r.out.find("ref: refs/heads/main"), std::string::npos) << r.out << r.err;  // still readable
  EXPECT_NE(r.out.find("done"), std::string::npos);
  EXPECT_NE(r.err.find("Device or resource busy"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("Read-only file system"), std::string::npos) << r.err;
  EXPECT_EQ(read_file(ws_ + "/.git/description"), "demo\n");
  EXPECT_EQ(read_file(ws_ + "/.envrc"), "export A=1\n");
  EXPECT_EQ(read_file(ws_ + "/notes.txt"), "ok\n");  // the rest of the workspace stays writable
  auto after = entries(ws_);
  after.erase(std::remove(after.begin(), after.end(), "notes.txt"), after.end());
  EXPECT_EQ(after, before);
}

TEST_F(ProtectedEntries, MissingEntriesCannotBeCreatedAndLeaveNothingBehind) {
  write_file(ws_ + "/main.c", "int main(void) { return 0; }\n");
  auto r = sh(protected_profile(ws_),
              "git init -q . ; mkdir -p .git/hooks; echo evil > .git/hooks/pre-commit; echo evil > .envrc; "
              "mkdir -p .vscode; echo '{}' > .vscode/tasks.json; ls -a; echo done");
  EXPECT_NE(r.out.find("done"), std::string::npos) << r.err;
  EXPECT_EQ(entries(ws_), std::vector<std::string>{"main.c"}) << r.out << r.err;
}

TEST_F(ProtectedEntries, AGitWriteThatWasApprovedWorks) {
  // Positive control: with .git left out of the list (write_git approved),
  // the same command creates the repository.
  auto r = sh(protected_profile(ws_, true), "git init -q . && echo inited; echo evil > .envrc; echo done");
  EXPECT_NE(r.out.find("inited"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::exists(ws_ + "/.git/HEAD"));
  EXPECT_FALSE(fs::exists(ws_ + "/.envrc"));  // the others stay protected
}

TEST_F(ProtectedEntries, ASymlinkedEntryRefusesToRun) {
  fs::create_symlink("elsewhere", ws_ + "/.envrc");
  EXPECT_THROW(sh(protected_profile(ws_), "echo hi"), warden::Error);
  EXPECT_TRUE(fs::is_symlink(fs::symlink_status(ws_ + "/.envrc")));
}

}  // namespace
