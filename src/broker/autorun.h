#pragma once
// Workspace files that other programs run as code later, without the user
// opening them: git's hooks and config (a hook runs on commit or checkout,
// core.fsmonitor on every `git status`), direnv's .envrc (runs when you cd
// in), VS Code's .vscode (tasks with runOn: folderOpen, settings naming
// programs it starts), git-lfs's .lfsconfig (where a push uploads to). A write there is code planted for later, so it always
// asks the human, even where the policy allows workspace writes, and
// run_command's jail gets these paths read-only unless such a write was
// approved for that command.
//
// The list is short on purpose: each entry is a well-known trigger that
// runs without the user choosing to run that file. Build files (Makefile,
// package.json scripts) run only when the user asks for a build, and stay
// ordinary workspace files.
#include <string>
#include <string_view>

namespace warden::broker {

struct AutorunName {
  const char* name;  // a path component
  bool directory;    // true: anything below it too
  const char* why;   // the reason the approval prompt gives
};

inline constexpr AutorunName kAutorunNames[] = {
    {".git", true, "git runs files under .git as code (hooks on commit and checkout; config such as core.fsmonitor "
                   "on every git status)"},
    {".envrc", false, "direnv runs .envrc as shell code when you enter its folder"},
    {".vscode", true, "VS Code runs tasks from .vscode (runOn: folderOpen) and starts programs its settings name"},
    {".lfsconfig", false, "git-lfs reads .lfsconfig on every push and pull: it names the server your files are "
                          "uploaded to"},
};

// Why a write to `path` plants code for later, or "" when it does not. Only
// the part of `path` below `workspace` is looked at when the path is inside
// it (a workspace that itself lies under such a folder is not special);
// otherwise the whole path. Both absolute and normalized.
std::string autorun_reason(std::string_view path, std::string_view workspace);

}  // namespace warden::broker
