#include "agent/changed_files.h"

#include <sys/stat.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <limits>
#include <set>

#include "util/ascii.h"

namespace warden::agent {
namespace fs = std::filesystem;
namespace {

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

// Whether the command line names the file: its workspace path, or its
// file name as a word of its own.
bool named_in(std::string_view command, const std::string& path) {
  if (command.find(path) != std::string_view::npos) return true;
  const std::string name = fs::path(path).filename().string();
  for (size_t at = command.find(name); at != std::string_view::npos; at = command.find(name, at + 1)) {
    const size_t end = at + name.size();
    if ((at == 0 || !is_name_char(command[at - 1])) && (end == command.size() || !is_name_char(command[end])))
      return true;
  }
  return false;
}

// Files a command runs without naming them: programs (any execute bit),
// scripts, and the files build tools and test runners read as code.
bool runs_as_code(const ChangedFiles::File& f) {
  if (f.executable || f.unreadable_folder) return true;
  static const std::set<std::string> kBuildFiles = {
      "Makefile",         "makefile",        "GNUmakefile", "CMakeLists.txt", "meson.build",
      "package.json",     "setup.py",        "setup.cfg",   "pyproject.toml", "tox.ini",
      "noxfile.py",       "conftest.py",     "Cargo.toml",  "build.rs",       "build.gradle",
      "build.gradle.kts", "settings.gradle", "pom.xml",     "Dockerfile",     "Rakefile",
      "Gemfile",          "BUILD",           "BUILD.bazel", "WORKSPACE"};
  static const std::set<std::string> kScriptExtensions = {".sh", ".bash", ".zsh", ".py",  ".js",  ".mjs", ".cjs",
                                                          ".ts", ".pl",   ".rb",  ".php", ".lua", ".mk",  ".cmake"};
  const fs::path p(f.path);
  return kBuildFiles.count(p.filename().string()) || kScriptExtensions.count(p.extension().string());
}

}  // namespace

int64_t change_clock_now_ns() {
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME_COARSE, &now);
  return int64_t(now.tv_sec) * 1000000000 + now.tv_nsec;
}

ChangedFiles changed_since(const std::string& workspace, int64_t since_ns, size_t max_entries) {
  ChangedFiles out;
  const fs::path root(workspace);
  const auto relative = [&](const fs::path& p) { return p.lexically_relative(root).string(); };
  std::vector<fs::path> folders{root};
  size_t seen = 0;
  while (!folders.empty() && !out.walk_cut) {
    const fs::path dir = folders.back();
    folders.pop_back();
    std::error_code ec;
    fs::directory_iterator it(dir, ec), end;
    for (; !ec && it != end; it.increment(ec)) {
      if (++seen > max_entries) {
        out.walk_cut = true;
        break;
      }
      const fs::path p = it->path();
      // Git's object store changes with every commit and holds nothing a
      // command runs (compressed blobs); the rest of a .git is listed.
      if (p.filename() == "objects" && ascii_lower(dir.filename().string()) == ".git") continue;
      struct stat st;
      if (::lstat(p.c_str(), &st) != 0) continue;  // gone since the folder was read
      if (S_ISDIR(st.st_mode)) {
        folders.push_back(p);
        continue;
      }
      const int64_t ctime_ns = int64_t(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec;
      if (ctime_ns >= since_ns) out.files.push_back({relative(p), ctime_ns, false, (st.st_mode & 0111) != 0});
    }
    // What a folder the walk cannot read holds is unknown: it is named.
    if (ec) out.files.push_back({relative(dir), std::numeric_limits<int64_t>::max(), true});
  }
  std::stable_sort(out.files.begin(), out.files.end(),
                   [](const ChangedFiles::File& a, const ChangedFiles::File& b) { return a.ctime_ns > b.ctime_ns; });
  return out;
}

std::string describe_changed_files(const ChangedFiles& changed, std::string_view command, size_t max_shown) {
  if (changed.files.empty() && !changed.walk_cut) return "";
  // Those the command names, then those that run as code, then the rest:
  // touching many other files cannot push a script out of the list.
  std::vector<const ChangedFiles::File*> named, code, others;
  for (const auto& f : changed.files)
    (named_in(command, f.path) ? named : runs_as_code(f) ? code : others).push_back(&f);
  std::string out = "files in the workspace changed since this session began (" + std::to_string(changed.files.size()) +
                    ", " + std::to_string(named.size() + code.size()) +
                    " of them named in the command, programs, scripts or build files), which the command may run; "
                    "read them before you approve:";
  size_t shown = 0;
  for (const auto* group : {&named, &code, &others})
    for (const ChangedFiles::File* f : *group) {
      // Every named file and every one that runs, up to a bound; the rest
      // as room is left.
      const size_t limit = group == &others ? max_shown : 4 * max_shown;
      if (shown >= limit) break;
      ++shown;
      out += "\n  " + f->path;
      if (f->unreadable_folder) out += "/ (a folder warden cannot read)";
      if (group == &named) out += " (named in the command)";
    }
  if (shown < changed.files.size()) out += "\n  ... and " + std::to_string(changed.files.size() - shown) + " more";
  if (changed.walk_cut) out += "\n  (the workspace has too many entries: not all were looked at)";
  return out;
}

}  // namespace warden::agent
