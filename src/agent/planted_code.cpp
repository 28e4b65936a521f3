#include "agent/planted_code.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <set>

#include "util/error.h"

namespace warden::agent {
namespace fs = std::filesystem;
namespace {

// Past this many entries the walk refuses rather than leave a tree unchecked.
constexpr size_t kMaxWalkEntries = 500000;

// ASCII case is ignored: a case-insensitive filesystem opens .git for .GIT.
std::string lower_ascii(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
  return s;
}
bool is_git_name(const std::string& name) { return lower_ascii(name) == ".git"; }
bool is_autorun_name(const std::string& name) {
  const std::string n = lower_ascii(name);
  return n == ".git" || n == ".envrc" || n == ".vscode";
}

bool lstat_identity(const fs::path& p, EntryIdentity& id) {
  struct stat st;
  if (::lstat(p.c_str(), &st) != 0) return false;
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

bool is_real_dir(const fs::path& p) {
  struct stat st;
  return ::lstat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

struct Walker {
  fs::path root;
  bool include_git;
  PlantedSnapshot snapshot;

  void record(const fs::path& p) {
    EntryIdentity id;
    if (lstat_identity(p, id)) snapshot[p.lexically_relative(root).string()] = id;
  }

  // Returns whether the walk should not descend into `p`.
  bool visit(const fs::path& p, bool inside_vscode) {
    const std::string name = p.filename().string();
    if (is_git_name(name)) {
      if (!include_git) return true;
      record(p);
      // What git reads as code or as a pointer to another git folder; the
      // jail masks hooks and config of repositories that existed before.
      for (const char* inner : {"config", "commondir", "hooks"}) record(p / inner);
      return true;
    }
    if ((is_autorun_name(name) && !is_git_name(name)) || inside_vscode) record(p);
    // A folder holding HEAD with objects/ and refs/, or HEAD with a
    // commondir file (naming the folder that holds them, as a worktree's
    // does), is a repository to git.
    const fs::path dir = p.parent_path();
    if (include_git && name == "HEAD" && !is_real_dir(p) &&
        ((is_real_dir(dir / "objects") && is_real_dir(dir / "refs")) || exists_no_follow(dir / "commondir"))) {
      record(p);
      for (const char* inner : {"config", "config.worktree", "commondir"}) record(dir / inner);
    }
    return false;
  }
};

// The path through the first .git/.envrc/.vscode component of `relative`, or
// `relative` itself when it has none (a repository-shaped folder's file).
std::string planted_unit(const std::string& relative) {
  fs::path unit;
  for (const auto& part : fs::path(relative)) {
    unit /= part;
    if (is_autorun_name(part.string())) return unit.string();
  }
  return relative;
}

}  // namespace

PlantedSnapshot snapshot_autorun_entries(const std::string& workspace, bool include_git) {
  Walker w{fs::path(workspace), include_git, {}};
  std::error_code ec;
  // No workspace, nothing planted (and no jail can start in it either).
  if (!fs::is_directory(fs::symlink_status(w.root, ec))) return {};
  size_t seen = 0;
  fs::recursive_directory_iterator it(w.root, fs::directory_options::skip_permission_denied, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    if (++seen > kMaxWalkEntries)
      throw Error("the workspace has more than " + std::to_string(kMaxWalkEntries) +
                  " entries; warden cannot check it for code planted for later");
    const fs::path& p = it->path();
    bool inside_vscode = false;
    for (const auto& part : p.lexically_relative(w.root).parent_path())
      inside_vscode |= lower_ascii(part.string()) == ".vscode";
    if (w.visit(p, inside_vscode)) it.disable_recursion_pending();
  }
  if (ec) throw Error("cannot walk the workspace " + workspace + ": " + ec.message());
  return w.snapshot;
}

std::vector<std::string> planted_since(const PlantedSnapshot& before, const PlantedSnapshot& after) {
  std::set<std::string> units;
  for (const auto& [path, id] : after) {
    auto old = before.find(path);
    if (old == before.end() || !(old->second == id)) units.insert(planted_unit(path));
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
  for (const auto& relative : paths) {
    const fs::path from = fs::path(workspace) / relative;
    if (!exists_no_follow(from)) continue;
    std::string to = relative + ".warden-quarantine";
    for (int n = 1; exists_no_follow(fs::path(workspace) / to); n++)
      to = relative + ".warden-quarantine." + std::to_string(n);
    if (std::rename(from.c_str(), (fs::path(workspace) / to).c_str()) != 0)
      throw Error("cannot move aside " + from.string() + ", which a command planted for programs to run later");
    moved.push_back(relative + " -> " + to);
  }
  return moved;
}

}  // namespace warden::agent
