#pragma once
// What JavaScript package managers run from a package.json, for the check
// for code planted for later (planted_code.h).
//
// A hook that runs `npm test`, `yarn lint` or `npx lint-staged` runs what
// the workspace's package.json says: the scripts it names, and what the
// tools they start read from the file (lint-staged's, husky 4's and
// jest's settings, "type", "main", ...). The model edits package.json for
// ordinary work (a dependency, a new script), so the check watches only
// what runs: every member but a short list of inert ones, the scripts a
// hook runs and those they run in turn, and the dependencies where a hook
// installs them.
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace warden::agent {

// What one command line makes a package manager run from the package.json
// of the folder it runs in.
struct ScriptsRun {
  bool runs_a_package_tool = false;  // npm, yarn, pnpm, bun, npx, node or a hook runner named
  bool all_scripts = false;          // which scripts cannot be told (an npm command not known here)
  bool installs = false;             // an install: dependencies' own scripts and build files run
  bool lint_staged = false;          // lint-staged or nano-staged: their configs at any depth count
  std::set<std::string> names;       // each with its pre- and post- script
  void merge(const ScriptsRun& other);
  bool operator==(const ScriptsRun&) const = default;
};

// `npm run lint`, `npm test`, `yarn lint`, `pnpm -C web build`, `run-s
// lint test`, `concurrently npm:lint`, `node --run lint`, `npm install`
// (its lifecycle scripts): the scripts a line runs. Options and their
// values are skipped; a package manager with no command (a hook manager's
// `entry: npm` whose arguments are on another line) or an npm command not
// known here runs all scripts, for all this can tell.
ScriptsRun scripts_a_line_runs(std::string_view line);

// What in a package.json's text runs, given what is asked of it: every
// member but the inert ones (name, version, license, ...; the dependency
// maps unless `asked.installs`), the scripts named and those they run,
// followed in the file. `watched` is that part, written out canonically
// ("" when nothing runs, as for no file at all): it changes exactly when
// what runs changes. Text that is no JSON object is watched whole.
// `commands` are the strings found there, for the files they name;
// `local_packages` the folders of `file:` and `link:` dependencies, whose
// own scripts an install runs.
struct ManifestRuns {
  std::string watched;
  std::vector<std::string> commands;
  std::vector<std::string> local_packages;
};
ManifestRuns what_a_manifest_runs(const std::string& text, const ScriptsRun& asked);

// Files beside a package.json that its tools read as code or as settings
// that say what runs (`.npmrc`'s script-shell and node-options, yarn's
// yarnPath and .pnp.cjs, pnpm's settings, `binding.gyp`, husky 4's own
// config files).
const std::vector<std::string>& package_tool_files();

// Whether a file name is one of lint-staged's or nano-staged's configs,
// which they look for anywhere in the repository.
bool is_lint_staged_config(const std::string& name);

}  // namespace warden::agent
