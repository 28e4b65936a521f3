#include "agent/planted_code.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "agent/git_config.h"
#include "agent/package_scripts.h"
#include "util/ascii.h"
#include "util/error.h"

namespace warden::agent {
namespace fs = std::filesystem;
namespace {

// Past this many entries the walk refuses rather than leave a tree unchecked.
constexpr size_t kMaxWalkEntries = 500000;

// A path for a message: a very long one (made to be) is cut.
std::string shown(const fs::path& p) {
  const std::string s = p.string();
  return s.size() <= 300 ? s : s.substr(0, 300) + "... (" + std::to_string(s.size()) + " bytes)";
}

// The entry's identity; false when it does not exist. Any other failure
// (a path too long, a folder the walk may not read) throws: an entry that
// cannot be looked at is not taken as absent.
bool lstat_identity(const fs::path& p, EntryIdentity& id) {
  struct stat st;
  if (::lstat(p.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return false;
    throw Error("cannot check " + shown(p) + " for code planted for later: " + std::strerror(errno));
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
// executable file passes too), or with a commondir file naming where those
// are (a worktree's folder). Any objects and refs entry counts here, a
// link that leads nowhere included: git follows a link from where it runs
// (`objects -> /proc/self/cwd/o` leads elsewhere for warden than for git
// in that folder), and a link may lead somewhere later.
bool is_repository_dir(const fs::path& dir) {
  struct stat st;
  if (::lstat((dir / "HEAD").c_str(), &st) != 0 || S_ISDIR(st.st_mode)) return false;
  return (exists_no_follow(dir / "objects") && exists_no_follow(dir / "refs")) || exists_no_follow(dir / "commondir");
}

// A folder listing's error, where the folder exists: what is in it is
// unknown, so the check stops (fail closed).
void check_listed(const std::error_code& ec, const fs::path& folder) {
  if (ec && ec != std::errc::no_such_file_or_directory && ec != std::errc::not_a_directory)
    throw Error("cannot check " + shown(folder) + " for code planted for later: " + ec.message());
}

// A regular file's text, spent from the check's budget.
std::string read_for_check(const fs::path& file, size_t max_bytes, ReadBudget& budget) {
  std::string text = read_regular_file(file, max_bytes);
  budget.spend(text.size());
  return text;
}

// The path a pointer file of git's holds, as git reads it: the whole file
// with its trailing CRs and LFs taken off (after "gitdir: " in a .git
// file), relative to the file's folder. Empty where it holds none.
fs::path git_pointer(const fs::path& file, bool dot_git_file, ReadBudget& budget) {
  std::string text = read_for_check(file, 64 * 1024, budget);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (dot_git_file) {
    if (text.rfind("gitdir: ", 0) != 0) return {};
    text.erase(0, 8);
  }
  if (text.empty()) return {};
  return fs::path(text).is_absolute() ? fs::path(text) : file.parent_path() / text;
}

// The config files of the repository whose .git is at `dot_git`: inside
// it, or, for a worktree's .git file ("gitdir: ..."), in the common folder
// its commondir names (the worktree's own config.worktree beside its
// gitdir). Empty when a .git file names nothing.
std::vector<fs::path> configs_of(const fs::path& dot_git, ReadBudget& budget) {
  std::error_code ec;
  // (A link to a folder is followed, as git follows it.)
  if (fs::is_directory(fs::status(dot_git, ec))) return {dot_git / "config", dot_git / "config.worktree"};
  const fs::path gitdir = git_pointer(dot_git, true, budget);
  if (gitdir.empty()) return {};
  fs::path common = git_pointer(gitdir / "commondir", false, budget);
  if (common.empty()) common = gitdir;
  return {common / "config", gitdir / "config.worktree"};
}

// What git reads as code or as a pointer to more of it, in a .git folder or
// a repository-shaped one (submodules' folders under .git/modules included).
// HEAD is not code: inside a .git it changes with every checkout; outside,
// a new one is what makes a folder a new repository.
bool is_git_config_file(const std::string& name) {
  return name == "config" || name == "config.worktree" || name == "commondir";
}

// Files programs read as code or as where to send data, at any depth:
// direnv's .envrc, git-lfs's .lfsconfig (its lfs.url receives every push).
bool is_autorun_file(const std::string& lower_name) { return lower_name == ".envrc" || lower_name == ".lfsconfig"; }

// Whether `p` lies below `root` (lexically; both normalized).
bool within(const fs::path& root, const fs::path& p) {
  const fs::path inside = p.lexically_relative(root);
  return !inside.empty() && inside != "." && *inside.begin() != "..";
}

fs::path expand_home(const std::string& path, const fs::path& base, const std::string& home) {
  if (path.rfind("~/", 0) == 0 && !home.empty()) return fs::path(home) / path.substr(2);
  return fs::path(path).is_absolute() ? fs::path(path) : base / path;
}

struct Walker {
  fs::path root;
  bool include_git;
  std::string home;  // the user's, for "~/" in a config's include
  PlantedSnapshot snapshot;
  // Beyond the walk of the workspace: the folders walked again for what
  // configs, hooks and .envrc files name (each once: links may loop), and
  // how many more entries may be looked at there.
  std::set<std::pair<dev_t, ino_t>> folders_walked;
  size_t entries_left = kMaxWalkEntries;
  ReadBudget budget;  // what the files read there may hold
  // package.json files that hooks' package managers read, and what of them
  // is run (see package_scripts.h); the lint-staged configs and manifests
  // anywhere in the workspace, which lint-staged reads where a hook runs it.
  std::map<fs::path, ScriptsRun> manifests;
  std::vector<fs::path> lint_staged_files;
  bool lint_staged = false;  // a hook runs lint-staged or nano-staged

  void count_entry() {
    if (entries_left-- == 0)
      throw Error("what the workspace's configs, hooks and .envrc files name holds more than " +
                  std::to_string(kMaxWalkEntries) + " entries; warden cannot check it for code planted for later");
  }
  // False when the folder was walked before (or is no folder).
  bool first_walk(const fs::path& folder) {
    struct stat st;
    return ::stat(folder.c_str(), &st) == 0 && S_ISDIR(st.st_mode) &&
           folders_walked.insert({st.st_dev, st.st_ino}).second;
  }

  // An entry and, for a link, where it leads in the workspace: what is read
  // through a watched link (`.git/hooks/pre-commit -> ../../scripts/hook`,
  // `.gitconfig -> config/shared.gitconfig`) is watched too.
  void record(const fs::path& p) {
    EntryIdentity id;
    if (!lstat_identity(p, id)) return;
    snapshot[p.lexically_relative(root).string()] = id;
    if (const fs::path target = link_target(p); !target.empty() && lstat_identity(target, id))
      snapshot[target.lexically_relative(root).string()] = id;
  }

  // Where a link leads, when that is in the workspace ("" otherwise).
  fs::path link_target(const fs::path& p) const {
    std::error_code ec;
    if (!fs::is_symlink(fs::symlink_status(p, ec))) return {};
    const fs::path target = fs::weakly_canonical(p, ec);
    return !ec && within(root, target) ? target : fs::path();
  }
  // The entry itself, or where it leads when it is a link into the workspace.
  fs::path resolved(const fs::path& p) const {
    const fs::path target = link_target(p);
    return target.empty() ? p : target;
  }

  // What the folders an entry lies in are, taken from its folder's (the
  // walk goes depth first: one per depth of the folder it is in), so an
  // entry costs the same however deep it lies.
  struct Within {
    bool git = false, vscode = false, hooks = false, node_modules = false;
  };
  std::vector<Within> folders_within;

  // Names compare ignoring ASCII case: a case-insensitive filesystem opens
  // .git for .GIT.
  void visit(const fs::path& p, int depth) {
    const std::string name = p.filename().string();
    const std::string lower = ascii_lower(name);
    const Within outer = depth == 0 ? Within{} : folders_within.at(size_t(depth - 1));
    Within here = outer;
    // A hooks folder counts where git would run it: under a .git, or in a
    // repository-shaped folder (a bare remote.git in the workspace).
    here.hooks = outer.hooks || (name == "hooks" && (outer.git || is_repository_dir(p.parent_path())));
    here.git = outer.git || lower == ".git";
    here.vscode = outer.vscode || lower == ".vscode";
    here.node_modules = outer.node_modules || name == "node_modules";
    folders_within.resize(size_t(depth) + 1);
    folders_within[size_t(depth)] = here;
    // (lint-staged reads the files git does not ignore: not node_modules.)
    if (!here.git && !here.node_modules && (name == "package.json" || is_lint_staged_config(name)))
      lint_staged_files.push_back(p);
    // A .git's own commondir and config.worktree point git at more config
    // (no git command a human approves writes them there): watched even
    // where the human let a command write git metadata, whose jail masks
    // only hooks and config.
    const bool pointer = here.git && ascii_lower(p.parent_path().filename().string()) == ".git" &&
                         (name == "commondir" || name == "config.worktree");
    // .gitmodules names where `git submodule update` fetches from: a URL
    // there can carry workspace data out, and git submodule add (write_git)
    // is what writes it.
    const bool git_entry =
        lower == ".git" || lower == ".gitmodules" || here.hooks ||
        (here.git ? is_git_config_file(name)
                  : (is_git_config_file(name) || name == "HEAD") && is_repository_dir(p.parent_path()));
    if (git_entry ? include_git || pointer : (is_autorun_file(lower) || here.vscode))
      record(p);
    else if (git_entry && here.hooks)
      record_hook_git_would_not_write(p);
    else if (git_entry && (name == "config" || name == "config.worktree"))
      record_what_a_config_runs(p);
    if (!include_git && (name == "commondir" || lower == ".git")) record_where_git_is_sent(p, name == "commondir");
  }

  // Under write_git, where a `.git` file or a `commondir` sends git: the
  // config and hooks of that folder, which needs no HEAD (nor any name) to
  // be a repository's common part. Where that folder is not plainly in
  // the workspace (outside it, through a link, or not a path at all:
  // git resolves links and /proc/self/... its own way), the pointer
  // itself is watched whole instead.
  void record_where_git_is_sent(const fs::path& p, bool commondir) {
    struct stat st;
    if (::lstat(p.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return;
    const fs::path raw = git_pointer(p, !commondir, budget);
    if (!plainly_in_workspace(p.parent_path(), raw)) {
      record(p);
      return;
    }
    const fs::path target = raw.lexically_normal();
    for (const char* name : {"config", "config.worktree"}) record_what_a_config_runs(target / name);
    record_hooks_in(target / "hooks");
  }
  // Whether a pointer's path (`raw`, from the pointer's `folder`) leads to
  // the workspace or below it with no link on the way, as git walks it
  // (`lnk/../common` is the folder above where lnk leads).
  bool plainly_in_workspace(const fs::path& folder, const fs::path& raw) const {
    const fs::path normal = raw.lexically_normal();
    if (raw.empty() || raw.string().find('\n') != std::string::npos || !(normal == root || within(root, normal)))
      return false;
    fs::path at = folder, rest = raw;
    if (raw.is_absolute()) {  // from the workspace on, as written
      if (raw.string().rfind(root.string(), 0) != 0) return false;
      at = root;
      rest = fs::path(raw.string().substr(root.string().size())).relative_path();
    }
    for (const auto& part : rest) {
      if (part == "." || part.empty()) continue;
      at = part == ".." ? at.parent_path() : at / part;
      struct stat st;
      if (::lstat(at.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) return false;
    }
    return true;
  }

  // Where a command may write git metadata (write_git), git writes hooks
  // only as the *.sample copies of a new repository's template, and
  // config without the keys that make it run anything: a hook file that is
  // no sample, and what a config (with what it includes) makes git run,
  // are still watched; so are the remotes of a config that was there
  // (`git remote set-url origin` sends the next push elsewhere). A
  // submodule's repository under .git/modules and a nested clone are
  // writable there, unlike the top's masked hooks and config.
  void record_hook_git_would_not_write(const fs::path& p) {
    struct stat st;
    if (::lstat(p.c_str(), &st) == 0 && !S_ISDIR(st.st_mode) && p.extension() != ".sample") record(p);
  }
  // Those in a hooks folder and below it.
  void record_hooks_in(const fs::path& folder) {
    std::error_code ec;
    fs::recursive_directory_iterator it(folder, fs::directory_options::none, ec), end;
    for (; !ec && it != end; it.increment(ec)) {
      count_entry();
      record_hook_git_would_not_write(it->path());
    }
    check_listed(ec, folder);
  }
  void record_what_a_config_runs(const fs::path& p) {
    GitRunConfig runs;
    read_git_config(p, home, runs, budget);
    // The hook files in the folders core.hooksPath names (husky's
    // `.husky/_`, git-ignored: no checkout changes them), relative to the
    // worktree of a .git's config, or to a repository-shaped folder's own.
    const fs::path base = ascii_lower(p.parent_path().filename().string()) == ".git" ? p.parent_path().parent_path()
                                                                                      : p.parent_path();
    for (const std::string& hooks : runs.hooks_paths) {
      const fs::path folder = expand_home(hooks, base, home).lexically_normal();
      if (!hooks.empty() && within(root, folder)) record_hooks_in(folder);
    }
    EntryIdentity id;
    for (const std::string& hooks : runs.hooks_paths) id.watched_text.append("hooks ").append(hooks) += '\n';
    for (const std::string& command : runs.commands) id.watched_text.append("runs ").append(command) += '\n';
    for (const fs::path& file : runs.files)
      if (file != p.lexically_normal()) id.watched_text.append("includes ").append(file.string()) += '\n';
    for (const std::string& destination : runs.destinations) id.destinations.append(destination) += '\n';
    snapshot[p.lexically_relative(root).string()] = id;
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
    if (is_autorun_file(name) || name == ".vscode") return unit.string();
    if (name == ".git") {
      auto was = before.find(unit.string()), is = after.find(unit.string());
      if (was == before.end() && is == after.end()) return relative;  // .git itself not watched: the file alone
      const bool same_git = was != before.end() && is != after.end() && was->second == is->second;
      return same_git ? relative : unit.string();
    }
  }
  return relative;
}


// An entry, where it lies in the workspace (a file or link there is
// planted too, once it appears).
void watch(Walker& w, const fs::path& p) {
  const fs::path normal = p.lexically_normal();
  if (within(w.root, normal)) w.record(normal);
}

// An entry where it lies in the workspace and, for a folder (or a link to
// one), what is in it: all below it, or the entries directly in it. Links
// in it are followed where they lead in the workspace; each folder is
// walked once (links may loop), within the walker's budget.
void watch_tree(Walker& w, const fs::path& top, bool recursive, int link_depth = 0) {
  if (!within(w.root, top)) return;
  if (link_depth > 40) throw Error("cannot check " + shown(top) + " for code planted for later: links lead too deep");
  w.record(top);
  const fs::path folder = w.resolved(top);
  if (!w.first_walk(folder)) return;
  std::error_code ec;
  fs::recursive_directory_iterator it(folder, fs::directory_options::none, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    w.count_entry();
    w.record(it->path());
    if (!w.link_target(it->path()).empty()) watch_tree(w, it->path(), recursive, link_depth + 1);
    std::error_code kind;
    if (!recursive || (it->is_directory(kind) && !w.first_walk(it->path()))) it.disable_recursion_pending();
  }
  if (ec) throw Error("cannot check " + shown(folder) + " for code planted for later: " + ec.message());
}

// A hooks folder named by core.hooksPath and all in it. Husky 9's
// `.husky/_` holds stubs that run the scripts beside the folder
// (`.husky/pre-commit`): those are watched too.
void watch_hooks_folder(Walker& w, const fs::path& folder) {
  watch_tree(w, folder, true);
  if (folder.filename() == "_") watch_tree(w, folder.parent_path(), false);
}

// What the configs git reads for a repository make it run, where that lies
// in the workspace: a hooks folder (core.hooksPath; a relative one is the
// worktree's, the folder of the .git, or a repository-shaped folder's own),
// a file they include, a program or script a command names (git runs
// them from the top of the worktree). `base` empty: the user's and the
// system's configs on their own, whose relative paths have no repository.
void watch_what_configs_run(Walker& w, const GitRunConfig& configs, const fs::path& base, const std::string& home) {
  for (const fs::path& file : configs.files) watch(w, file);
  const auto resolvable = [&](const std::string& path) {
    return !base.empty() || fs::path(path).is_absolute() || (path.rfind("~/", 0) == 0 && !home.empty());
  };
  for (const std::string& hooks : configs.hooks_paths)
    if (!hooks.empty() && resolvable(hooks)) watch_hooks_folder(w, expand_home(hooks, base, home).lexically_normal());
  for (const std::string& command : configs.commands)
    for (const std::string& word : path_words(command))
      if (resolvable(word)) watch(w, expand_home(word, base, home));
}

// Whether the system has a program of this name (the distribution's
// folders: git, ls, ssh, sudo...): one of that name in a folder put before
// them on the PATH runs instead. Tools installed elsewhere (npm's global
// eslint in /usr/local/bin) are left out: a project's own copy of such a
// tool is what its node_modules/.bin is for.
bool shadows_a_system_command(const std::string& name) {
  for (const char* dir : {"/usr/bin", "/bin", "/usr/sbin", "/sbin"})
    if (::access((fs::path(dir) / name).c_str(), X_OK) == 0) return true;
  return false;
}

// A folder an .envrc puts on the PATH: it, and each program in it named
// like a system command (`bin/ls`, `node_modules/.bin/git`), which the
// user's shell would run instead. Its other programs run only when named,
// like the project's own scripts (npm changes node_modules/.bin with every
// install); so do a Python virtual environment's own python and pip,
// which are there to stand in for the system's.
void watch_path_folder(Walker& w, const fs::path& folder) {
  if (!within(w.root, folder)) return;
  w.record(folder);
  const fs::path real = w.resolved(folder);
  const bool virtual_env = exists_no_follow(real.parent_path() / "pyvenv.cfg");
  std::error_code ec;
  fs::directory_iterator it(real, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    w.count_entry();
    const std::string name = it->path().filename().string();
    const bool venvs_own = virtual_env && (name.rfind("python", 0) == 0 || name.rfind("pip", 0) == 0);
    if (!venvs_own && shadows_a_system_command(name)) w.record(it->path());
  }
  check_listed(ec, real);
}

// The folders direnv's `layout` functions put on the PATH: each
// `.direnv/*/bin` (python, ruby, go...), `.venv/bin` (poetry, pipenv, uv)
// and node_modules/.bin (node).
std::vector<std::string> layout_folders(const fs::path& envrc_dir) {
  std::vector<std::string> folders = {".venv/bin", "node_modules/.bin"};
  std::error_code ec;
  fs::directory_iterator it(envrc_dir / ".direnv", ec), end;
  for (size_t seen = 0; !ec && it != end && ++seen <= 100; it.increment(ec)) {
    const std::string layout = ".direnv/" + it->path().filename().string();
    folders.push_back(layout + "/bin");
    folders.push_back(layout + "/go/bin");
  }
  check_listed(ec, envrc_dir / ".direnv");
  return folders;
}

bool is_variable_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// The line with `$NAME` and `${NAME}` of the variables set before it
// replaced by their values.
std::string with_variables(std::string line, const std::map<std::string, std::string>& variables) {
  for (size_t at = line.find('$'); at != std::string::npos && at + 1 < line.size(); at = line.find('$', at + 1)) {
    const bool braced = line[at + 1] == '{';
    size_t end = at + 1 + braced;
    while (end < line.size() && is_variable_char(line[end])) ++end;
    const auto it = variables.find(line.substr(at + 1 + braced, end - at - 1 - braced));
    if (it == variables.end() || (braced && (end == line.size() || line[end] != '}'))) continue;
    if (line.size() + it->second.size() > 64 * 1024) break;  // bounded: `A=$A$A` on every line doubles
    line.replace(at, end + braced - at, it->second);
    at += it->second.size() - 1;
  }
  return line;
}

// `NAME=VALUE` or `export NAME=VALUE` (quotes taken off the value).
void remember_assignment(const std::string& line, std::map<std::string, std::string>& variables) {
  size_t start = line.find_first_not_of(" \t");
  if (start != std::string::npos && line.compare(start, 7, "export ") == 0)
    start = line.find_first_not_of(" \t", start + 7);
  if (start == std::string::npos) return;
  size_t eq = start;
  while (eq < line.size() && is_variable_char(line[eq])) ++eq;
  if (eq == start || eq == line.size() || line[eq] != '=') return;
  std::string value = line.substr(eq + 1);
  value.erase(std::remove(value.begin(), value.end(), '"'), value.end());
  value.erase(std::remove(value.begin(), value.end(), '\''), value.end());
  value.erase(value.find_last_not_of(" \t\r") + 1);
  if (value.size() <= 4096) variables[line.substr(start, eq - start)] = value;
}

// direnv runs more than an .envrc: the files it sources (source_env,
// source_env_if_exists, dotenv and the like name them; `dotenv` alone
// loads .env, `use nix` shell.nix or default.nix, `use flake` flake.nix),
// and what it puts on the PATH (PATH_add DIR, an `export PATH=...`, a
// `layout`'s folder, a sourced virtual environment's `activate`). Those an
// .envrc in the workspace names are watched.
void watch_what_envrcs_load(Walker& w, const std::string& home) {
  for (const auto& [relative, id] : PlantedSnapshot(w.snapshot)) {
    const fs::path envrc = w.root / relative;
    if (ascii_lower(envrc.filename().string()) != ".envrc") continue;
    std::istringstream in(read_for_check(envrc, 4 << 20, w.budget));
    std::map<std::string, std::string> variables;  // set by earlier lines: `export GOBIN="$PWD/bin"`
    std::string line;
    for (size_t lines = 0; std::getline(in, line) && lines < 100000; ++lines) {
      line = with_variables(line, variables);
      w.budget.spend(line.size());  // expanded lines are parsed too: `A=$A$A` grows them
      remember_assignment(line, variables);
      const auto mentions = [&](std::string_view what) { return line.find(what) != std::string::npos; };
      std::vector<std::string> files = path_words(line), folders;
      if (mentions("dotenv")) files.push_back(".env");
      if (mentions("nix") || mentions("flake"))
        files.insert(files.end(), {"shell.nix", "default.nix", "flake.nix", "flake.lock"});
      if (mentions("PATH")) {
        const std::vector<std::string> pieces = command_pieces(line);
        if (!pieces.empty()) folders.assign(pieces.begin() + 1, pieces.end());  // past PATH_add, export...
      }
      if (mentions("layout")) {
        const std::vector<std::string> layouts = layout_folders(envrc.parent_path());
        folders.insert(folders.end(), layouts.begin(), layouts.end());
      }
      // `source .venv/bin/activate` puts the activate script's folder first.
      for (const std::string& file : files)
        if (fs::path(file).filename() == "activate") folders.push_back(fs::path(file).parent_path().string());
      const auto named = [&](const std::string& word) {
        return expand_home(word, envrc.parent_path(), home).lexically_normal();
      };
      for (const std::string& file : files) watch(w, named(file));
      for (const std::string& folder : folders) watch_path_folder(w, named(folder));
    }
  }
}

// Hook managers installed as a repository's git hooks run what a file at
// the top of its worktree says, on every commit: pre-commit, overcommit,
// lefthook (its configs in any of its formats, `.config/` too, and the
// scripts in its script folders). Those are watched in every repository.
std::vector<fs::path> hook_manager_files() {
  std::vector<fs::path> files = {".pre-commit-config.yaml", ".overcommit.yml", ".lefthook", ".lefthook-local"};
  for (const char* folder : {"", ".config/"})
    for (const char* dot : {"", "."})
      for (const char* name : {"lefthook", "lefthook-local"})
        for (const char* type : {".yml", ".yaml", ".json", ".jsonc", ".toml"})
          files.push_back(std::string(folder) + dot + name + type);
  return files;
}

// A script's own folder, as its lines write it (`. "$(dirname "$0")/_/husky.sh"`).
std::string with_script_folder(const std::string& line, const fs::path& script) {
  const std::string folder = script.parent_path().string();
  return with_forms_replaced(line, {{"$(dirname \"$0\")", folder},
                                    {"$(dirname -- \"$0\")", folder},
                                    {"$(dirname $0)", folder},
                                    {"`dirname \"$0\"`", folder},
                                    {"`dirname $0`", folder},
                                    {"${0%/*}", folder}});
}

// The words of a line that may name a folder a command runs in, as a
// shell would pass them (quotes off, `$PWD` as "."): `-Cweb` gives web,
// `--prefix=web` web, and `"$ROOT/web"` web (the variable most likely
// names the top of the worktree, as path_words reads it; `"$ROOT"` alone
// the top itself).
std::vector<std::string> folder_words(const std::string& line) {
  std::vector<std::string> words;
  std::string word;
  const auto finish = [&] {
    if (word.rfind("-C", 0) == 0) word.erase(0, 2);
    if (word.rfind("--", 0) == 0 && word.find('=') != std::string::npos) word.erase(0, word.find('=') + 1);
    if (!word.empty() && word[0] == '$') word = word.find('/') == std::string::npos ? "." : word.substr(word.find('/') + 1);
    if (!word.empty() && word[0] != '-') words.push_back(word);
    word.clear();
  };
  for (const char c : with_known_folders(line)) {
    if (c == '"' || c == '\'') continue;
    if (std::string_view(" \t\r;&|()").find(c) != std::string_view::npos)
      finish();
    else
      word.push_back(c);
  }
  finish();
  return words;
}

// Whether `p` is `root` or lies below it.
bool at_or_within(const fs::path& root, const fs::path& p) { return p == root || within(root, p); }

// A line that runs a package manager (`npm test`, `cd web && yarn lint`,
// `npx lint-staged`) runs what the package.json of the folder it runs in
// says: one of `folders` (the base folder, and those a script's earlier
// lines went to), or one the line names (`--prefix web`, `-Cweb`). Where
// that folder has none, npm looks up for the nearest folder with a
// package.json or node_modules: those folders' manifests count too.
void ask_of_manifests(Walker& w, const std::string& line, const std::vector<fs::path>& folders) {
  const ScriptsRun run = scripts_a_line_runs(line);
  if (!run.runs_a_package_tool) return;
  // Each folder looked at counts against the walk's budget: a hook's text
  // is the command's to write, and it is read to take the snapshot after.
  const auto ask_from = [&](fs::path folder) {
    for (; at_or_within(w.root, folder); folder = folder.parent_path()) {
      w.count_entry();
      w.manifests[folder / "package.json"].merge(run);
      if (exists_no_follow(folder / "package.json") || exists_no_follow(folder / "node_modules")) break;
    }
  };
  std::vector<std::string> named = command_pieces(line);
  const std::vector<std::string> words = folder_words(line);
  named.insert(named.end(), words.begin(), words.end());
  for (const fs::path& base : folders) {
    ask_from(base);
    for (const std::string& piece : named) {
      const fs::path folder = (base / piece).lexically_normal();
      std::error_code ec;
      w.count_entry();
      if (at_or_within(w.root, folder) && fs::is_directory(fs::status(folder, ec))) ask_from(folder);
    }
  }
  w.lint_staged = w.lint_staged || run.lint_staged;
}

// The files a line names, and the Makefile where it runs `make`.
void add_what_a_line_names(const std::string& line, const fs::path& base, const std::string& home,
                           std::vector<fs::path>& named) {
  for (const std::string& word : path_words(line)) named.push_back(expand_home(word, base, home).lexically_normal());
  const std::vector<std::string> pieces = command_pieces(line);
  if (std::find(pieces.begin(), pieces.end(), "make") != pieces.end())
    for (const char* makefile : {"GNUmakefile", "makefile", "Makefile"}) named.push_back(base / makefile);
}

void watch_named_files(Walker& w, const std::vector<fs::path>& named, const fs::path& base, const std::string& home,
                       int depth);

// A hook or a hook manager's file runs what its lines name (`entry:
// scripts/check.sh`, `./tools/lint`), relative to the top of the worktree
// (or to where an earlier line went: `cd web`, lefthook's `root: web/`),
// `make` runs the Makefile and a package manager the package.json's
// scripts: those files in the workspace are watched, and what they name in
// turn, three levels down (a hook's script calls another; a Makefile
// includes mk/rules.mk and runs ./scripts/lint.sh).
void watch_what_a_script_names(Walker& w, const fs::path& script, const fs::path& base, const std::string& home,
                               int depth = 0) {
  std::istringstream in(read_for_check(script, 1 << 20, w.budget));
  std::vector<fs::path> named, folders = {base};
  std::string line;
  for (size_t lines = 0; std::getline(in, line) && lines < 100000; ++lines) {
    line = with_script_folder(line, script);
    add_what_a_line_names(line, base, home, named);
    const std::vector<std::string> words = folder_words(line);
    for (size_t i = 0; i + 1 < words.size() && folders.size() < 100; ++i)
      if (words[i] == "cd" || words[i] == "pushd" || (i == 0 && words[i] == "root:")) {
        const fs::path folder = (base / words[i + 1]).lexically_normal();
        if (std::find(folders.begin(), folders.end(), folder) == folders.end()) folders.push_back(folder);
      }
    ask_of_manifests(w, line, folders);
  }
  watch_named_files(w, named, base, home, depth);
}

void watch_named_files(Walker& w, const std::vector<fs::path>& named, const fs::path& base, const std::string& home,
                       int depth) {
  for (const fs::path& file : named) {
    if (!within(w.root, file)) continue;
    const bool new_to_watch = !w.snapshot.count(file.lexically_relative(w.root).string());
    w.record(file);
    std::error_code ec;
    if (new_to_watch && depth < 3 && fs::is_regular_file(fs::status(file, ec)))
      watch_what_a_script_names(w, file, base, home, depth + 1);
  }
}

// Past this size a package.json is watched whole, by its identity.
constexpr off_t kMaxManifestBytes = 4 << 20;

// Where a hook runs lint-staged or nano-staged: they read their configs
// from every folder of the repository (a `.lintstagedrc.json` in src/ for
// the files there; a `lint-staged.config.js` runs as it loads) and from
// every package.json's "lint-staged".
void watch_lint_staged_configs(Walker& w, const std::string& home) {
  ScriptsRun reads_settings;
  reads_settings.runs_a_package_tool = true;
  for (const fs::path& file : w.lint_staged_files) {
    if (file.filename() == "package.json") {
      w.manifests[file].merge(reads_settings);
    } else {
      watch(w, file);
      watch_what_a_script_names(w, file, file.parent_path(), home, 1);
    }
  }
}

// The package.json files that hooks' package managers read: the part that
// runs (package_scripts.h), the files beside them their tools read, and
// what the strings found there name. A manifest asked more of later (a
// script's `cd web && npm test`) is read again. The parts are set last,
// over the record of the whole file that a line naming package.json made;
// one that cannot be read (too large, no permission) stays whole. A
// manifest that is a link counts as changed when the link does: where it
// leads depends on who follows it (`/proc/self/cwd/x` is the workspace's
// x for warden, the package folder's for npm).
void watch_manifests(Walker& w, const std::string& home) {
  std::map<fs::path, ScriptsRun> done;
  std::map<fs::path, EntryIdentity> parts;
  std::set<fs::path> whole;
  bool lint_staged_watched = false;
  for (bool more = true; more;) {
    more = false;
    if (w.lint_staged && !lint_staged_watched) {
      watch_lint_staged_configs(w, home);
      lint_staged_watched = true;
    }
    for (const auto& [manifest, asked] : std::map<fs::path, ScriptsRun>(w.manifests)) {
      if (!within(w.root, manifest)) continue;
      const auto was = done.find(manifest);
      if (was != done.end() && was->second == asked) continue;
      more = true;
      const fs::path folder = manifest.parent_path();
      std::error_code ec;
      if (was == done.end())
        for (const std::string& name : package_tool_files()) {
          w.count_entry();  // a workspace made of many manifests fails closed, not slowly
          watch(w, folder / name);
          if (fs::is_regular_file(fs::status(folder / name, ec)))
            watch_what_a_script_names(w, folder / name, folder, home, 1);
        }
      done[manifest] = asked;
      struct stat st;
      if (::stat(manifest.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;  // nothing to run yet
      if (st.st_size > kMaxManifestBytes || ::access(manifest.c_str(), R_OK) != 0) {
        whole.insert(manifest);
        continue;
      }
      const ManifestRuns runs = what_a_manifest_runs(read_for_check(manifest, kMaxManifestBytes, w.budget), asked);
      EntryIdentity& part = parts[manifest];
      if (fs::is_symlink(fs::symlink_status(manifest, ec))) lstat_identity(manifest, part);
      part.watched_text = runs.watched;
      std::vector<fs::path> named;
      for (const std::string& command : runs.commands) {
        w.budget.spend(command.size());
        add_what_a_line_names(command, folder, home, named);
        ask_of_manifests(w, command, {folder});
      }
      watch_named_files(w, named, folder, home, 1);
      // An install runs the scripts of the dependencies that are folders
      // here (`file:tools/x`).
      static const ScriptsRun kInstall = scripts_a_line_runs("npm install");
      for (const std::string& local : runs.local_packages)
        if (const fs::path dependency = (folder / local).lexically_normal(); within(w.root, dependency))
          w.manifests[dependency / "package.json"].merge(kInstall);
    }
  }
  for (const fs::path& manifest : whole) w.record(manifest);
  for (const auto& [manifest, part] : parts)
    if (!whole.count(manifest)) w.snapshot[manifest.lexically_relative(w.root).string()] = part;
}

// The system's and the user's config files, which apply to every
// repository (and GIT_CONFIG_SYSTEM / GIT_CONFIG_GLOBAL, where set, since
// the user's git may run with them).
GitRunConfig shared_configs(const std::string& home, ReadBudget& budget) {
  std::vector<fs::path> files = {"/etc/gitconfig"};
  for (const char* variable : {"GIT_CONFIG_SYSTEM", "GIT_CONFIG_GLOBAL"})
    if (const char* v = std::getenv(variable); v && *v) files.emplace_back(v);
  if (!home.empty()) {
    const char* xdg = std::getenv("XDG_CONFIG_HOME");
    files.push_back(fs::path(home) / ".gitconfig");
    files.push_back((xdg && *xdg ? fs::path(xdg) : fs::path(home) / ".config") / "git" / "config");
  }
  GitRunConfig shared;
  for (const fs::path& file : files) read_git_config(file, home, shared, budget);
  return shared;
}

// The repository the workspace itself lies in, if any: git finds it by
// walking up from where it runs, so its config applies in the workspace.
fs::path enclosing_dot_git(const fs::path& root) {
  for (fs::path dir = root.parent_path(); !dir.empty(); dir = dir.parent_path()) {
    if (exists_no_follow(dir / ".git")) return dir / ".git";
    if (dir == dir.root_path()) break;
  }
  return {};
}

void record_what_git_runs(Walker& w, const std::string& home) {
  const GitRunConfig shared = shared_configs(home, w.budget);
  watch_what_configs_run(w, shared, {}, home);
  std::vector<std::pair<fs::path, std::vector<fs::path>>> repositories;  // base folder, its own configs
  if (const fs::path outer = enclosing_dot_git(w.root); !outer.empty())
    repositories.emplace_back(outer.parent_path(), configs_of(outer, w.budget));
  for (const auto& [relative, id] : PlantedSnapshot(w.snapshot)) {
    const fs::path entry = w.root / relative;
    if (ascii_lower(entry.filename().string()) == ".git")
      repositories.emplace_back(entry.parent_path(), configs_of(entry, w.budget));
    else if (entry.filename() == "config" && ascii_lower(entry.parent_path().filename().string()) != ".git")
      repositories.emplace_back(entry.parent_path(), std::vector<fs::path>{entry});
  }
  for (const auto& [base, own] : repositories) {
    GitRunConfig configs = shared;
    for (const fs::path& config : own) read_git_config(config, home, configs, w.budget);
    watch_what_configs_run(w, configs, base, home);
    // What the hooks and hook managers run: files their lines name.
    std::vector<fs::path> hooks_dirs;
    if (!own.empty()) hooks_dirs.push_back(own.front().parent_path() / "hooks");
    for (const std::string& hooks : configs.hooks_paths)
      if (!hooks.empty()) hooks_dirs.push_back(expand_home(hooks, base, home).lexically_normal());
    for (const fs::path& dir : hooks_dirs) {
      std::error_code ec;
      fs::directory_iterator it(dir, ec), end;
      for (; !ec && it != end; it.increment(ec)) {
        w.count_entry();
        if (it->path().extension() != ".sample") watch_what_a_script_names(w, it->path(), base, home);
      }
      check_listed(ec, dir);
    }
    static const std::vector<fs::path> kHookManagerFiles = hook_manager_files();
    for (const fs::path& name : kHookManagerFiles) {
      watch_tree(w, base / name, true);
      watch_what_a_script_names(w, base / name, base, home);
    }
  }
}

}  // namespace

PlantedSnapshot snapshot_autorun_entries(const std::string& workspace, bool include_git, const std::string& home) {
  Walker w;
  w.root = fs::path(workspace);
  w.include_git = include_git;
  w.home = home;
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
    w.visit(it->path(), it.depth());
  }
  if (ec) throw Error("cannot check the workspace " + workspace + " for code planted for later: " + ec.message());
  if (include_git) {
    record_what_git_runs(w, home);
    watch_manifests(w, home);
  }
  watch_what_envrcs_load(w, home);
  return w.snapshot;
}

std::vector<std::string> planted_since(const PlantedSnapshot& before, const PlantedSnapshot& after) {
  std::set<std::string> units;
  // An entry watched by part of its text that runs nothing (a config
  // without such keys, a package.json without such scripts) is as good as
  // none: git init and npm init plant nothing; nor does a new config's
  // remote (a clone's origin).
  for (const auto& [path, id] : after) {
    auto old = before.find(path);
    EntryIdentity was;
    if (old != before.end())
      was = old->second;
    else
      was.destinations = id.destinations;
    if (!(was == id)) units.insert(planted_unit(path, before, after));
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

std::vector<std::string> nested_repository_entries(const PlantedSnapshot& snapshot, const std::string& workspace) {
  std::set<std::string> repositories;
  for (const auto& [relative, id] : snapshot) {
    const fs::path path(relative);
    bool in_git = false;
    for (const auto& part : path.parent_path()) in_git = in_git || ascii_lower(part.string()) == ".git";
    if (in_git) continue;
    // A .git below the top (the top's own is protected by name); HEAD
    // outside a .git is recorded only in a repository-shaped folder, which
    // is protected unless it is the workspace itself.
    fs::path entry;
    if (ascii_lower(path.filename().string()) == ".git" && !path.parent_path().empty()) entry = path;
    if (path.filename() == "HEAD") entry = path.parent_path();
    if (entry.empty()) continue;
    std::error_code ec;
    if (!fs::is_symlink(fs::symlink_status(fs::path(workspace) / entry, ec))) repositories.insert(entry.string());
  }
  return {repositories.begin(), repositories.end()};
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
