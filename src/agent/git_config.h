#pragma once
// Git's config files, read as git reads them, for what they make git run.
//
// planted_code watches the files git runs as code later, outside the jail;
// which files those are depends on the user's git configs: core.hooksPath
// moves the hooks, include.path pulls in more config (possibly a file in
// the workspace), and keys such as filter.<driver>.clean or core.fsmonitor
// name programs git starts on an ordinary `git status` (possibly a script
// in the workspace). A reader that skipped what git reads (a quoted value,
// a continuation line, an include) would leave such a file unwatched, so
// this one follows git's format, and where it cannot read a line it skips
// only that line and reads on (git would refuse the whole file; reading
// more than git does only watches more).
#include <filesystem>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace warden::agent {

struct GitConfigEntry {
  std::string section;          // lowercased ("core", "filter", "includeif")
  std::string subsection;       // as written; "[a.B]" gives "b", as git reads that old form
  bool has_subsection = false;  // [c ""] has one, the empty string
  std::string name;             // lowercased ("hookspath")
  std::string value;            // unquoted, escapes read
  bool has_value = false;       // false for a bare "name" line (a boolean true)
};

// A regular file's first `max_bytes` bytes ("" for anything else: a FIFO
// planted where a config is looked for would block the reader forever, a
// device would never end).
std::string read_regular_file(const std::filesystem::path& file, size_t max_bytes);

// The entries of a config file's text, in order.
std::vector<GitConfigEntry> parse_git_config(std::string_view text);

// How much more text one check may read and parse (bytes of the files it
// reads, and of lines after their variables are expanded): a workspace
// made to need more (includes fanning out, huge or repeated files) stops
// the check, which fails closed, instead of running on for good.
inline constexpr size_t kCheckReadBytes = size_t(64) << 20;
struct ReadBudget {
  size_t bytes_left = kCheckReadBytes;
  // Throws warden::Error when the budget is spent.
  void spend(size_t bytes);
};

// What the config files that apply to a repository make git run, collected
// over each file and every file it includes (include.path, and
// includeIf.<condition>.path whatever the condition: it may hold when git
// runs later).
struct GitRunConfig {
  std::set<std::filesystem::path> files;     // every config file read, includes too (absolute, normalized)
  std::vector<std::string> hooks_paths;      // every core.hooksPath and init.templateDir value, as written
  std::vector<std::string> commands;         // every value git runs as a command or a program's path
  // Where git sends the repository's content or goes through on the way:
  // remote and submodule URLs, url.<base>.insteadOf rewrites, proxies,
  // git-lfs's servers ("section.subsection.name=value").
  std::vector<std::string> destinations;
};

// Reads `file` (when it exists) and what it includes, to git's depth of 10,
// into `out`, each file once. `home` expands "~/" in an include's path (""
// leaves it alone). What it reads is spent from `budget`.
void read_git_config(const std::filesystem::path& file, const std::string& home, GitRunConfig& out,
                     ReadBudget& budget);

// Whether git runs this entry's value as a command or a program's path
// (core.fsmonitor, core.pager, filter.<driver>.clean, diff.<driver>.textconv,
// an alias starting with '!', a URL of the ext:: transport, ...).
bool runs_as_command(const GitConfigEntry& entry);

// The command line of an entry git runs (the URL of an ext:: transport
// without its prefix, where that is the entry's value or subsection).
std::string command_of(const GitConfigEntry& entry);

// Whether the entry says where git sends the repository's content (a
// remote's URL, an insteadOf rewrite, a proxy, git-lfs's server).
bool names_a_destination(const GitConfigEntry& entry);

// The words of a command that may name a file: those with a '/' or a '.'
// in them, as a shell would split it and in the pieces of each word
// between quotes and punctuation (`"$(./env.sh)"`, `PATH=a/bin:$PATH`),
// without options, variables or git's %-placeholders; `$PWD` and `$(pwd)`
// as ".", `$GIT_DIR` as ".git"; `python -m a.b` as a/b.py and
// a/b/__main__.py; after `cd DIR`, each relative word from DIR too.
std::vector<std::string> path_words(std::string_view command);

// The text with each of `forms` (tried in order at each place) replaced,
// in one pass: a line of a million `$PWD`s costs a million steps.
std::string with_forms_replaced(std::string_view text,
                                const std::vector<std::pair<std::string_view, std::string_view>>& forms);

// `$PWD`, `$(pwd)`, `$(git rev-parse --show-toplevel)` as ".", `$GIT_DIR`
// as ".git": the folders a command line names by variables git and direnv
// set.
std::string with_known_folders(std::string_view command);

// Every piece of a command between whitespace, quotes, shell punctuation,
// ':' and '=' (`PATH="$PWD/bin:$PATH"` gives PATH, ./bin, PATH), without
// options and git's %-placeholders, `$PWD` read as path_words reads it.
std::vector<std::string> command_pieces(std::string_view command);

}  // namespace warden::agent
