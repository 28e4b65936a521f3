#pragma once
// What JavaScript package managers run from a package.json, for the check
// for code planted for later (planted_code.h).
//
// A hook that runs `npm test`, `yarn lint` or `npx lint-staged` runs what
// the workspace's package.json says: its "scripts", and the settings hook
// runners read there (husky 4's "husky", lint-staged's "lint-staged",
// yorkie's "gitHooks", ...). The model edits package.json for ordinary
// work (a dependency, a new script), so the check watches only those
// parts: the scripts a hook runs, the scripts they run in turn, and the
// hook runners' settings.
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
  std::set<std::string> names;       // each with its pre- and post- script
  void merge(const ScriptsRun& other);
  bool operator==(const ScriptsRun&) const = default;
};

// `npm run lint`, `npm test`, `yarn lint`, `pnpm -C web build`, `run-s
// lint test`, `npm install` (its lifecycle scripts): the scripts a line
// runs. Options and their values are skipped; an npm command this does
// not know runs all scripts, for all it can tell.
ScriptsRun scripts_a_line_runs(std::string_view line);

// What in a package.json's text runs, given what is asked of it: the
// scripts named (and the scripts those run, followed in the file), and
// every hook runner's settings. `watched` is that part, written out
// canonically ("" when nothing runs, as for no file at all): it changes
// exactly when what runs changes. Text that is no JSON object is watched
// whole. `commands` are the command lines found
// (the scripts' and lint-staged's), for what they name.
struct ManifestRuns {
  std::string watched;
  std::vector<std::string> commands;
};
ManifestRuns what_a_manifest_runs(const std::string& text, const ScriptsRun& asked);

// Files beside a package.json that its tools read as code or as settings
// that say what runs (`.npmrc`'s script-shell and node-options, yarn's
// yarnPath, lint-staged's and husky 4's own config files).
const std::vector<std::string>& package_tool_files();

}  // namespace warden::agent
