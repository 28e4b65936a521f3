#include "agent/changed_files.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <filesystem>
#include <limits>
#include <map>
#include <set>

#include "util/ascii.h"

namespace warden::agent {
namespace fs = std::filesystem;
namespace {

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

// The files build tools and test runners read as code, and the programs
// that read them.
const std::map<std::string, std::vector<std::string>>& build_files() {
  static const std::map<std::string, std::vector<std::string>> kReadBy = {
      {"Makefile", {"make"}},
      {"makefile", {"make"}},
      {"GNUmakefile", {"make"}},
      {"CMakeLists.txt", {"cmake"}},
      {"meson.build", {"meson"}},
      {"package.json", {"npm", "npx", "yarn", "pnpm"}},
      {"setup.py", {"python", "python3", "pip", "pip3"}},
      {"setup.cfg", {"python", "python3", "pip"}},
      {"pyproject.toml", {"python", "python3", "pip", "pip3", "poetry", "uv"}},
      {"tox.ini", {"tox"}},
      {"noxfile.py", {"nox"}},
      {"conftest.py", {"pytest", "python", "python3"}},
      {"Cargo.toml", {"cargo"}},
      {"build.rs", {"cargo"}},
      {"build.gradle", {"gradle", "./gradlew"}},
      {"build.gradle.kts", {"gradle", "./gradlew"}},
      {"settings.gradle", {"gradle", "./gradlew"}},
      {"pom.xml", {"mvn"}},
      {"Dockerfile", {"docker", "podman"}},
      {"Rakefile", {"rake"}},
      {"Gemfile", {"bundle"}},
      {"BUILD", {"bazel"}},
      {"BUILD.bazel", {"bazel"}},
      {"WORKSPACE", {"bazel"}}};
  return kReadBy;
}

// Whether `word` occurs in the command as a word of its own.
bool has_word(std::string_view command, std::string_view word) {
  for (size_t at = command.find(word); at != std::string_view::npos; at = command.find(word, at + 1)) {
    const size_t end = at + word.size();
    if ((at == 0 || !is_name_char(command[at - 1])) && (end == command.size() || !is_name_char(command[end])))
      return true;
  }
  return false;
}

// Whether the command line names the file: its workspace path, or its
// file name as a word of its own.
bool named_in(std::string_view command, const std::string& path) {
  return command.find(path) != std::string_view::npos || has_word(command, fs::path(path).filename().string());
}

// Whether the command names a program that reads the file (`make` reads
// the Makefile).
bool read_by_a_program_in(std::string_view command, const std::string& path) {
  const auto it = build_files().find(fs::path(path).filename().string());
  if (it == build_files().end()) return false;
  for (const std::string& program : it->second)
    if (has_word(command, program)) return true;
  return false;
}

bool is_build_file(const ChangedFiles::File& f) {
  const fs::path p(f.path);
  return build_files().count(p.filename().string()) || p.extension() == ".mk" || p.extension() == ".cmake";
}

// Programs (any execute bit) and scripts, which a command may run without
// naming them.
bool is_program_or_script(const ChangedFiles::File& f) {
  static const std::set<std::string> kScriptExtensions = {".sh",  ".bash", ".zsh", ".py", ".js",  ".mjs",
                                                          ".cjs", ".ts",   ".pl",  ".rb", ".php", ".lua"};
  return f.executable || f.unreadable || kScriptExtensions.count(fs::path(f.path).extension().string());
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
      if (::lstat(p.c_str(), &st) != 0) {
        // Gone since the folder was read; else (a path too long, say) what
        // it is cannot be told, so it is named.
        if (errno != ENOENT) out.files.push_back({relative(p), std::numeric_limits<int64_t>::max(), true});
        continue;
      }
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
  // Those the command names, then build files, then programs and scripts,
  // then the rest: touching many other files (or scripts) cannot push a
  // changed Makefile out of the list.
  std::vector<const ChangedFiles::File*> named, build, code, others;
  for (const auto& f : changed.files)
    (named_in(command, f.path) || read_by_a_program_in(command, f.path) ? named
     : is_build_file(f)                                                 ? build
     : is_program_or_script(f)                                          ? code
                                                                        : others)
        .push_back(&f);
  std::string out = "files in the workspace changed since this session began (" + std::to_string(changed.files.size()) +
                    ": " + std::to_string(named.size()) + " named in the command or read by a program it names, " +
                    std::to_string(build.size()) + " build files, " + std::to_string(code.size()) +
                    " programs or scripts), which the command may run; read them before you approve:";
  size_t shown = 0;
  for (const auto* group : {&named, &build, &code, &others}) {
    // Every named file and build file, up to a bound; programs and scripts
    // up to a lower one; the rest as room is left.
    const size_t limit = group == &others ? max_shown : group == &code ? 4 * max_shown : 16 * max_shown;
    for (const ChangedFiles::File* f : *group) {
      if (shown >= limit) break;
      ++shown;
      out += "\n  " + f->path;
      if (f->unreadable) out += " (warden cannot look at it)";
      if (group == &named)
        out += named_in(command, f->path) ? " (named in the command)" : " (read by a program the command names)";
    }
  }
  if (shown < changed.files.size()) out += "\n  ... and " + std::to_string(changed.files.size() - shown) + " more";
  if (changed.walk_cut) out += "\n  (the workspace has too many entries: not all were looked at)";
  return out;
}

}  // namespace warden::agent
