#include "agent/planted_code.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

#include "util/ascii.h"
#include "util/error.h"

namespace warden::agent {
namespace fs = std::filesystem;
namespace {

// Past this many entries the walk refuses rather than leave a tree unchecked.
constexpr size_t kMaxWalkEntries = 500000;

// The entry's identity; false when it does not exist. Any other failure
// (a path too long, a folder the walk may not read) throws: an entry that
// cannot be looked at is not taken as absent.
bool lstat_identity(const fs::path& p, EntryIdentity& id) {
  struct stat st;
  if (::lstat(p.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return false;
    throw Error("cannot check " + p.string() + " for code planted for later: " + std::strerror(errno));
  }
  id.dev = st.st_dev;
  id.ino = st.st_ino;
  if (!S_ISDIR(st.st_mode)) {
    id.mtime_ns = int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    id.ctime_ns = int64_t(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec;
    id.size = int64_t(st.st_size);
  }
  return true;
}

bool exists_no_follow(const fs::path& p) {
  struct stat st;
  return ::lstat(p.c_str(), &st) == 0;
}

// Git takes a folder for a repository when it holds a HEAD file with
// objects and refs it may enter (access X_OK, links followed: an
// executable file passes too, as it does for git), or with a commondir
// file naming where those are (a worktree's folder).
bool is_repository_dir(const fs::path& dir) {
  struct stat st;
  if (::lstat((dir / "HEAD").c_str(), &st) != 0 || S_ISDIR(st.st_mode)) return false;
  return (::access((dir / "objects").c_str(), X_OK) == 0 && ::access((dir / "refs").c_str(), X_OK) == 0) ||
         exists_no_follow(dir / "commondir");
}

// core.hooksPath in a git config file ("" when it sets none): the last
// value in a [core] section, unquoted. Enough of git's format for the key
// husky and others write (a key on the header's line too); include.path
// is not followed.
std::string hooks_path_in(const fs::path& config) {
  std::ifstream in(config);
  std::string line, section, value;
  for (size_t lines = 0; std::getline(in, line) && lines < 100000; ++lines) {
    size_t start = line.find_first_not_of(" \t");
    if (start == std::string::npos || line[start] == '#' || line[start] == ';') continue;
    if (line[start] == '[') {
      const size_t close = line.find(']', start);
      const size_t end = line.find_first_of(" \t\"]", start + 1);
      section = ascii_lower(line.substr(start + 1, end == std::string::npos ? std::string::npos : end - start - 1));
      start = close == std::string::npos ? std::string::npos : line.find_first_not_of(" \t", close + 1);
      if (start == std::string::npos || line[start] == '#' || line[start] == ';') continue;
    }
    const size_t eq = line.find('=', start);
    std::string key = line.substr(start, eq == std::string::npos ? std::string::npos : eq - start);
    key.erase(key.find_last_not_of(" \t") + 1);
    if (section != "core" || ascii_lower(key) != "hookspath" || eq == std::string::npos) continue;
    std::string v = line.substr(eq + 1);
    v.erase(0, v.find_first_not_of(" \t"));
    if (!v.empty() && v.front() == '"')
      v = v.substr(1, v.find('"', 1) == std::string::npos ? std::string::npos : v.find('"', 1) - 1);
    else
      v = v.substr(0, v.find_first_of("#;"));
    v.erase(v.find_last_not_of(" \t\r") + 1);
    value = v;
  }
  return value;
}

// The config file of the repository whose .git is at `dot_git`: inside it,
// or, for a worktree's .git file ("gitdir: ..."), in the common folder its
// commondir names.
fs::path config_of(const fs::path& dot_git) {
  std::error_code ec;
  if (fs::is_directory(fs::symlink_status(dot_git, ec))) return dot_git / "config";
  std::ifstream in(dot_git);
  std::string line;
  if (!std::getline(in, line) || line.rfind("gitdir:", 0) != 0) return {};
  line.erase(0, line.find_first_not_of(" \t", 7));
  line.erase(line.find_last_not_of(" \t\r") + 1);
  fs::path gitdir = fs::path(line).is_absolute() ? fs::path(line) : dot_git.parent_path() / line;
  std::ifstream common(gitdir / "commondir");
  std::string relative;
  if (std::getline(common, relative) && !relative.empty()) {
    relative.erase(relative.find_last_not_of(" \t\r") + 1);
    gitdir = fs::path(relative).is_absolute() ? fs::path(relative) : gitdir / relative;
  }
  return gitdir / "config";
}

// What git reads as code or as a pointer to more of it, in a .git folder or
// a repository-shaped one (submodules' folders under .git/modules included).
// HEAD is not code: inside a .git it changes with every checkout; outside,
// a new one is what makes a folder a new repository.
bool is_git_config_file(const std::string& name) {
  return name == "config" || name == "config.worktree" || name == "commondir";
}

struct Walker {
  fs::path root;
  bool include_git;
  PlantedSnapshot snapshot;

  void record(const fs::path& p) {
    EntryIdentity id;
    if (lstat_identity(p, id)) snapshot[p.lexically_relative(root).string()] = id;
  }

  // Names compare ignoring ASCII case: a case-insensitive filesystem opens
  // .git for .GIT.
  void visit(const fs::path& p) {
    const fs::path relative = p.lexically_relative(root);
    bool in_git = false, in_vscode = false, in_hooks = false;
    fs::path prefix = root;
    for (const auto& part : relative) {
      const std::string name = ascii_lower(part.string());
      // A hooks folder counts where git would run it: under a .git, or in a
      // repository-shaped folder (a bare remote.git in the workspace).
      if (part == "hooks" && (in_git || is_repository_dir(prefix))) in_hooks = true;
      prefix /= part;
      if (name == ".git") in_git = true;
      if (name == ".vscode") in_vscode = true;
    }
    const std::string name = p.filename().string();
    const std::string lower = ascii_lower(name);
    const bool git_entry =
        lower == ".git" || in_hooks ||
        (in_git ? is_git_config_file(name)
                : (is_git_config_file(name) || name == "HEAD") && is_repository_dir(p.parent_path()));
    if (git_entry ? include_git : (lower == ".envrc" || in_vscode)) record(p);
  }
};

// What to move aside for a changed entry: the .envrc or .vscode it is in; a
// whole .git that is new or replaced, or else the one file changed in it
// (a submodule's config, a hook); otherwise the file itself.
std::string planted_unit(const std::string& relative, const PlantedSnapshot& before, const PlantedSnapshot& after) {
  fs::path unit;
  for (const auto& part : fs::path(relative)) {
    unit /= part;
    const std::string name = ascii_lower(part.string());
    if (name == ".envrc" || name == ".vscode") return unit.string();
    if (name == ".git") {
      auto was = before.find(unit.string()), is = after.find(unit.string());
      const bool same_git = was != before.end() && is != after.end() && was->second == is->second;
      return same_git ? relative : unit.string();
    }
  }
  return relative;
}

// core.hooksPath moves a repository's hooks anywhere (husky's .husky): the
// folder it names, where that lies in the workspace, counts as a hooks
// folder. Each repository's own config is read (a worktree's through its
// .git file), else the user's global ones; a relative path is the
// worktree's (the folder of the .git) or, for a repository-shaped folder,
// that folder's, and "~/" is the user's home.
void record_hooks_paths(Walker& w, const std::string& home) {
  std::string global;
  if (!home.empty()) {
    const char* xdg = std::getenv("XDG_CONFIG_HOME");
    for (const fs::path& config : {fs::path(home) / ".gitconfig",
                                   (xdg && *xdg ? fs::path(xdg) : fs::path(home) / ".config") / "git" / "config"})
      if (const std::string h = hooks_path_in(config); !h.empty()) global = h;
  }
  std::vector<std::pair<fs::path, fs::path>> repositories;  // base folder, config file
  for (const auto& [relative, id] : PlantedSnapshot(w.snapshot)) {
    const fs::path entry = w.root / relative;
    if (ascii_lower(entry.filename().string()) == ".git")
      repositories.emplace_back(entry.parent_path(), config_of(entry));
    else if (entry.filename() == "config" && ascii_lower(entry.parent_path().filename().string()) != ".git")
      repositories.emplace_back(entry.parent_path(), entry);
  }
  for (const auto& [base, config] : repositories) {
    std::string hooks = config.empty() ? "" : hooks_path_in(config);
    if (hooks.empty()) hooks = global;
    if (hooks.empty()) continue;
    fs::path folder = hooks.rfind("~/", 0) == 0 && !home.empty() ? fs::path(home) / hooks.substr(2)
                      : fs::path(hooks).is_absolute()             ? fs::path(hooks)
                                                                  : base / hooks;
    folder = folder.lexically_normal();
    const fs::path inside = folder.lexically_relative(w.root);
    if (inside.empty() || *inside.begin() == "..") continue;
    w.record(folder);  // a file or link there is planted too, once it appears
    std::error_code ec;
    if (!fs::is_directory(fs::symlink_status(folder, ec))) continue;
    size_t seen = 0;
    fs::recursive_directory_iterator it(folder, fs::directory_options::none, ec), end;
    for (; !ec && it != end && ++seen <= kMaxWalkEntries; it.increment(ec)) w.record(it->path());
    if (ec)
      throw Error("cannot check " + folder.string() + " (core.hooksPath) for code planted for later: " + ec.message());
  }
}

}  // namespace

PlantedSnapshot snapshot_autorun_entries(const std::string& workspace, bool include_git, const std::string& home) {
  Walker w{fs::path(workspace), include_git, {}};
  std::error_code ec;
  // No workspace, nothing planted (and no jail can start in it either).
  if (!fs::is_directory(fs::symlink_status(w.root, ec))) return {};
  size_t seen = 0;
  // No skip_permission_denied: a folder the command made unreadable could
  // still be entered by git later, so it stops the check (fail closed).
  fs::recursive_directory_iterator it(w.root, fs::directory_options::none, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    if (++seen > kMaxWalkEntries)
      throw Error("the workspace has more than " + std::to_string(kMaxWalkEntries) +
                  " entries; warden cannot check it for code planted for later");
    w.visit(it->path());
  }
  if (ec) throw Error("cannot check the workspace " + workspace + " for code planted for later: " + ec.message());
  if (include_git) record_hooks_paths(w, home);
  return w.snapshot;
}

std::vector<std::string> planted_since(const PlantedSnapshot& before, const PlantedSnapshot& after) {
  std::set<std::string> units;
  for (const auto& [path, id] : after) {
    auto old = before.find(path);
    if (old == before.end() || !(old->second == id)) units.insert(planted_unit(path, before, after));
  }
  std::vector<std::string> ordered(units.begin(), units.end());
  auto depth = [](const std::string& p) { return std::count(p.begin(), p.end(), '/'); };
  std::stable_sort(ordered.begin(), ordered.end(),
                   [&](const std::string& a, const std::string& b) { return depth(a) < depth(b); });
  std::vector<std::string> out;
  for (const auto& p : ordered) {
    const bool inside_earlier = std::any_of(out.begin(), out.end(), [&](const std::string& o) {
      return p.size() > o.size() && p.compare(0, o.size(), o) == 0 && p[o.size()] == '/';
    });
    if (!inside_earlier) out.push_back(p);
  }
  return out;
}

std::vector<std::string> quarantine(const std::string& workspace, const std::vector<std::string>& paths) {
  std::vector<std::string> moved;
  std::string failed;
  for (const auto& relative : paths) {
    const fs::path from = fs::path(workspace) / relative;
    if (!exists_no_follow(from)) continue;
    std::string to = relative + ".warden-quarantine";
    for (int n = 1; exists_no_follow(fs::path(workspace) / to); n++)
      to = relative + ".warden-quarantine." + std::to_string(n);
    if (std::rename(from.c_str(), (fs::path(workspace) / to).c_str()) == 0)
      moved.push_back(relative + " -> " + to);
    else
      failed += (failed.empty() ? "" : ", ") + relative + " (" + std::strerror(errno) + ")";
  }
  // Every path is tried before giving up: what could be moved is moved.
  if (!failed.empty())
    throw Error("could not move aside what a command planted for programs to run later: " + failed +
                (moved.empty() ? "" : "; moved: " + std::to_string(moved.size())));
  return moved;
}

}  // namespace warden::agent
