#pragma once
// Code planted for later by a jailed command, found after it ran.
//
// run_command's jail protects the workspace's top-level .git, .envrc and
// .vscode, but a command may write anywhere else in the workspace, and git,
// direnv and VS Code look for their files at any depth: a new `sub/.git`
// whose config sets core.fsmonitor runs on the next `git status` in `sub`,
// and a folder holding HEAD, objects/ and refs/ is a repository to git even
// without a .git name (the workspace root included). None of this runs in the
// jail; it runs later, on the host, when the user or a shell prompt's git
// integration looks there. So the agent takes a snapshot of such entries
// before the command and after it, and moves aside whatever is new or
// changed (renamed to NAME.warden-quarantine, nothing deleted).
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace warden::agent {

struct EntryIdentity {
  dev_t dev = 0;
  ino_t ino = 0;
  // Files only (a folder's times change with every file git writes in it).
  // ctime too: a command can restore mtime with touch, never ctime.
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  int64_t size = 0;
  // A file watched by part of its text alone (a package.json's scripts that
  // hooks run): that part, the fields above left 0.
  std::string watched_text;
  // A git config watched so, where a command may write git metadata: where
  // it sends the repository (a remote's URL). Compared only for a config
  // that was there before: a new clone's own origin is no plant.
  std::string destinations;
  bool operator==(const EntryIdentity&) const = default;
};

// Workspace-relative path -> identity of every entry that programs run as
// code later: anything named .git, and inside any .git every config,
// config.worktree and commondir (submodules' too); every hooks folder of a
// .git or of a repository-shaped folder, with all in it; the HEAD, config,
// config.worktree and commondir of every repository-shaped folder outside a
// .git; .gitmodules; .envrc; .vscode and all below it; and what git's
// configs, hooks, hook managers and .envrc files run (with include_git, the
// part of a package.json a hook's package manager runs: package_scripts.h).
// Names compare ignoring ASCII case where git's would on a case-insensitive
// filesystem (.git, .envrc, .vscode). `include_git` false leaves git's
// entries out (a command the
// human allowed to write git metadata). Throws warden::Error when an entry
// cannot be looked at (unreadable folder, path too long, too many entries).
using PlantedSnapshot = std::map<std::string, EntryIdentity>;
// `home`: the user's home, for git's global configs (a core.hooksPath set
// there applies to every repository) and "~/" in a hooks path.
PlantedSnapshot snapshot_autorun_entries(const std::string& workspace, bool include_git, const std::string& home = "");

// What to move aside: for each entry new or changed since `before` (one
// watched by part of its text only where that part runs something), the
// workspace-relative path of its .envrc/.vscode component, of its .git when
// that .git is new or replaced (else the changed file inside it), or the
// entry itself; outermost first, nothing inside another.
std::vector<std::string> planted_since(const PlantedSnapshot& before, const PlantedSnapshot& after);

// The workspace-relative paths of the repositories in a snapshot below the
// workspace's top: every `.git` (a folder, or a worktree's file) and every
// repository-shaped folder outside a .git (a bare clone, the separate git
// folder a `.git` file names). Links are left out: the jail binds no path
// through one.
std::vector<std::string> nested_repository_entries(const PlantedSnapshot& snapshot, const std::string& workspace);

// Renames each path to PATH.warden-quarantine (or .warden-quarantine.N when
// taken); returns "OLD -> NEW" lines, relative to the workspace. Tries every
// path, then throws warden::Error naming those it could not rename.
std::vector<std::string> quarantine(const std::string& workspace, const std::vector<std::string>& paths);

}  // namespace warden::agent
