#include "agent/git_config.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <set>

#include "util/error.h"

namespace warden::agent {
namespace fs = std::filesystem;
namespace {

// Git's own limit on nested includes.
constexpr int kMaxIncludeDepth = 10;
// A config larger than this is read only this far (git has no limit; no
// real config comes near it).
constexpr size_t kMaxConfigBytes = 4 << 20;
constexpr size_t kCostOfAFile = 4096;  // of the check's read budget, whatever the file holds

bool is_key_char(int c) { return std::isalnum(c) || c == '-'; }

// The text one character at a time as git's reader sees it: "\r\n" is one
// '\n', and the end reads as a last '\n'.
class ConfigText {
 public:
  explicit ConfigText(std::string_view text) : text_(text) {
    if (text_.substr(0, 3) == "\xEF\xBB\xBF") text_.remove_prefix(3);  // a UTF-8 byte order mark
  }
  int next() {
    if (at_ >= text_.size()) {
      end_ = true;
      return last_ = '\n';
    }
    const unsigned char c = text_[at_++];
    if (c == '\r' && at_ < text_.size() && text_[at_] == '\n') {
      ++at_;
      return last_ = '\n';
    }
    return last_ = c;
  }
  bool at_end() const { return end_; }
  // To the start of the next line, unless the last character read ended one.
  void skip_line() {
    if (last_ == '\n') return;
    while (next() != '\n') {
    }
  }

 private:
  std::string_view text_;
  size_t at_ = 0;
  int last_ = '\n';
  bool end_ = false;
};

// "[section]", "[section \"sub\"]" or the old "[section.sub]", from after
// the '['; false where git would refuse it.
bool read_section_header(ConfigText& in, std::string& section, std::string& subsection, bool& has_subsection) {
  std::string base;
  subsection.clear();
  has_subsection = false;
  for (;;) {
    int c = in.next();
    if (c == '\n') return false;
    if (c == ']') break;
    if (std::isspace(c)) {
      do c = in.next();
      while (c != '\n' && std::isspace(c));
      if (c != '"') return false;
      has_subsection = true;
      for (c = in.next(); c != '"'; c = in.next()) {
        if (c == '\n') return false;
        if (c == '\\' && (c = in.next()) == '\n') return false;
        subsection.push_back(char(c));
      }
      if (in.next() != ']') return false;
      break;
    }
    if (!is_key_char(c) && c != '.') return false;
    base.push_back(char(std::tolower(c)));
  }
  const size_t dot = base.find('.');
  section = base.substr(0, dot);
  if (dot != std::string::npos && !has_subsection) {
    subsection = base.substr(dot + 1);
    has_subsection = true;
  }
  return true;
}

// A value after its '=', to the end of its line (or of its last
// continuation line); false where git would refuse it (an open quote at
// the line's end, an unknown escape). Whitespace outside quotes is kept
// between words, one space each, and dropped at the ends, as git does.
bool read_value(ConfigText& in, std::string& value) {
  bool quoted = false, comment = false;
  size_t spaces = 0;
  for (;;) {
    int c = in.next();
    if (c == '\n') return !quoted;
    if (comment) continue;
    if (std::isspace(c) && !quoted) {
      if (!value.empty()) ++spaces;
      continue;
    }
    if (!quoted && (c == ';' || c == '#')) {
      comment = true;
      continue;
    }
    value.append(spaces, ' ');
    spaces = 0;
    if (c == '\\') {
      c = in.next();
      if (c == '\n') continue;  // a continuation line
      switch (c) {
        case 't': c = '\t'; break;
        case 'b': c = '\b'; break;
        case 'n': c = '\n'; break;
        case '\\':
        case '"': break;
        default: return false;  // git knows no other escape
      }
      value.push_back(char(c));
      continue;
    }
    if (c == '"') {
      quoted = !quoted;
      continue;
    }
    value.push_back(char(c));
  }
}

// "name", "name = value", from its first letter; false where git would
// refuse it.
bool read_entry(ConfigText& in, int first, GitConfigEntry& entry) {
  entry.name.assign(1, char(std::tolower(first)));
  int c = in.next();
  while (is_key_char(c)) {
    entry.name.push_back(char(std::tolower(c)));
    c = in.next();
  }
  while (c == ' ' || c == '\t') c = in.next();
  if (c == '\n') return true;
  if (c != '=') return false;
  entry.has_value = true;
  return read_value(in, entry.value);
}

fs::path include_target(const std::string& value, const fs::path& including, const std::string& home) {
  if (value.rfind("~/", 0) == 0 && !home.empty()) return fs::path(home) / value.substr(2);
  const fs::path p(value);
  return p.is_absolute() ? p : including.parent_path() / p;
}

void read_config_file(const fs::path& file, const std::string& home, GitRunConfig& out, ReadBudget& budget,
                      int depth) {
  const fs::path normal = fs::absolute(file).lexically_normal();
  if (!out.files.insert(normal).second) return;  // read already: includes may fan out or loop
  // Each file costs the check something even when empty or missing: a
  // config of 400000 includes of files that are not there is no free read.
  budget.spend(kCostOfAFile);
  // Git reads a config whole: one larger than is read here could hide a
  // key past the part read, so the check stops (fails closed).
  const std::string text = read_regular_file(normal, kMaxConfigBytes + 1);
  if (text.size() > kMaxConfigBytes)
    throw Error("the git config " + normal.string() + " is larger than " + std::to_string(kMaxConfigBytes >> 20) +
                " MiB; warden cannot check it for code planted for later");
  budget.spend(text.size());
  for (const GitConfigEntry& e : parse_git_config(text)) {
    if (!e.has_value) continue;
    // init.templateDir's hooks are copied into every repository git init makes.
    if ((e.section == "core" && e.name == "hookspath") || (e.section == "init" && e.name == "templatedir"))
      out.hooks_paths.push_back(e.value);
    const bool include = (e.section == "include" && !e.has_subsection) || e.section == "includeif";
    if (include && e.name == "path" && !e.value.empty() && depth < kMaxIncludeDepth)
      read_config_file(include_target(e.value, normal, home), home, out, budget, depth + 1);
    if (runs_as_command(e)) out.commands.push_back(command_of(e));
    if (names_a_destination(e))
      out.destinations.push_back(e.section + "." + e.subsection + "." + e.name + "=" + e.value);
  }
}

// A word with a '/' or a '.' in it (not dots alone): `build` in `npm run
// build` is an argument, `clean.py` and `tools/x` name files.
bool looks_like_a_file(const std::string& word) {
  return word.find_first_of("/.") != std::string::npos && word.find_first_not_of('.') != std::string::npos;
}

}  // namespace

std::string with_forms_replaced(std::string_view text,
                                const std::vector<std::pair<std::string_view, std::string_view>>& forms) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const auto form = std::find_if(forms.begin(), forms.end(), [&](const auto& f) {
      return !f.first.empty() && text.compare(i, f.first.size(), f.first) == 0;
    });
    if (form == forms.end()) {
      out.push_back(text[i++]);
    } else {
      out.append(form->second);
      i += form->first.size();
    }
  }
  return out;
}

// Variables and substitutions that name the folder a command runs in (the
// top of the worktree for git, an .envrc's folder for direnv) or the
// repository's .git, written as the relative paths they stand for.
std::string with_known_folders(std::string_view command) {
  return with_forms_replaced(command, {{"$(git rev-parse --show-toplevel)", "."},
                                       {"$(pwd)", "."},
                                       {"`pwd`", "."},
                                       {"${PWD}", "."},
                                       {"$PWD", "."},
                                       {"${GIT_DIR}", ".git"},
                                       {"$GIT_DIR", ".git"}});
}

std::string read_regular_file(const fs::path& file, size_t max_bytes) {
  std::error_code ec;
  if (!fs::is_regular_file(fs::status(file, ec))) return "";
  std::ifstream in(file, std::ios::binary);
  std::string text;
  char chunk[16384];
  while (in && text.size() < max_bytes) {
    in.read(chunk, std::streamsize(std::min(sizeof chunk, max_bytes - text.size())));
    text.append(chunk, size_t(in.gcount()));
  }
  return text;
}

std::vector<GitConfigEntry> parse_git_config(std::string_view text) {
  std::vector<GitConfigEntry> entries;
  ConfigText in(text);
  std::string section, subsection;
  bool has_subsection = false, comment = false;
  for (;;) {
    const int c = in.next();
    if (c == '\n') {
      if (in.at_end()) return entries;
      comment = false;
      continue;
    }
    if (comment || std::isspace(c)) continue;
    if (c == '#' || c == ';') {
      comment = true;
      continue;
    }
    if (c == '[') {
      // A header git refuses ends the section: what follows is not taken
      // for the old section's keys.
      if (!read_section_header(in, section, subsection, has_subsection)) {
        section = subsection = "";
        in.skip_line();
      }
      continue;
    }
    if (!std::isalpha(c)) {
      in.skip_line();
      continue;
    }
    GitConfigEntry entry;
    if (!read_entry(in, c, entry)) {
      in.skip_line();
      continue;
    }
    if (section.empty()) continue;  // a key before any section: git refuses it
    entry.section = section;
    entry.subsection = subsection;
    entry.has_subsection = has_subsection;
    entries.push_back(std::move(entry));
  }
}

void ReadBudget::spend(size_t bytes) {
  if (bytes > bytes_left)
    throw Error("the workspace's configs, hooks and .envrc files hold more text than warden reads to check them (" +
                std::to_string(kCheckReadBytes >> 20) + " MiB)");
  bytes_left -= bytes;
}

void read_git_config(const fs::path& file, const std::string& home, GitRunConfig& out, ReadBudget& budget) {
  read_config_file(file, home, out, budget, 0);
}

bool runs_as_command(const GitConfigEntry& e) {
  // The keys git (and the tools it starts on its own) run as commands or
  // programs, as section.name: a subsection (a driver's, a tool's, a
  // remote's name) may be anything.
  // clang-format off
  static const std::set<std::string> kCommandKeys = {
      "core.fsmonitor", "core.pager", "core.editor", "core.sshcommand", "core.askpass", "core.gitproxy",
      "sequence.editor", "interactive.difffilter", "diff.external", "diff.command", "diff.textconv",
      "difftool.cmd", "difftool.path", "mergetool.cmd", "mergetool.path", "merge.driver",
      "filter.clean", "filter.smudge", "filter.process", "credential.helper", "gpg.program",
      "uploadpack.packobjectshook", "remote.receivepack", "remote.uploadpack", "trailer.command", "trailer.cmd",
      "browser.cmd", "browser.path", "man.cmd", "man.path", "guitool.cmd", "imap.tunnel",
      "sendemail.sendmailcmd", "sendemail.smtpserver", "sendemail.tocmd", "sendemail.cccmd",
      "gpg.defaultkeycommand", "core.alternaterefscommand", "lfs.path", "lfs.clean", "lfs.smudge",
      "hook.command", "hook.event", "tar.command", "instaweb.httpd", "sendemail.headercmd", "svn.authorsprog"};
  // clang-format on
  if (e.section == "pager" || kCommandKeys.count(e.section + "." + e.name)) return true;
  // A URL of the ext:: transport is a command git runs to reach the remote
  // (where protocol.ext.allow lets it): as a value, or as the URL an
  // insteadOf rewrites to; remote.<name>.vcs makes a remote helper of
  // that name run the remote's URL; protocol.allow is what lets them.
  if (names_a_destination(e) && e.value.rfind("ext::", 0) == 0) return true;
  if (e.section == "url" && e.subsection.rfind("ext::", 0) == 0) return true;
  if ((e.section == "remote" && e.name == "vcs") || (e.section == "protocol" && e.name == "allow")) return true;
  // Any alias: one that starts with '!' is a shell command, and another
  // may set config that runs one (`-c core.fsmonitor=... status`).
  if (e.section == "alias") return true;
  // A submodule's update that starts with '!' is a shell command.
  return e.section == "submodule" && e.name == "update" && e.value.rfind('!', 0) == 0;
}

std::string command_of(const GitConfigEntry& e) {
  if (e.section == "url" && e.subsection.rfind("ext::", 0) == 0) return e.subsection.substr(5);
  return e.value.rfind("ext::", 0) == 0 ? e.value.substr(5) : e.value;
}

bool names_a_destination(const GitConfigEntry& e) {
  static const std::set<std::string> kDestinationKeys = {
      "remote.url",    "remote.pushurl",    "remote.proxy", "remote.lfsurl", "remote.lfspushurl", "url.insteadof",
      "url.pushinsteadof", "http.proxy", "submodule.url", "lfs.url",       "lfs.pushurl"};
  // Keys that name a remote may name a URL or a path instead (`git push`
  // then sends there); a remote's name is no destination of its own.
  static const std::set<std::string> kRemoteKeys = {"remote.pushdefault", "branch.pushremote", "branch.remote"};
  const std::string key = e.section + "." + e.name;
  return kDestinationKeys.count(key) > 0 ||
         (kRemoteKeys.count(key) > 0 && e.value.find_first_of("/:") != std::string::npos);
}

std::vector<std::string> command_pieces(std::string_view command) {
  const std::string text = with_known_folders(command);
  std::vector<std::string> pieces;
  std::string piece;
  for (size_t i = 0; i <= text.size(); ++i) {
    const char c = i < text.size() ? text[i] : ' ';
    if (!std::isspace(static_cast<unsigned char>(c)) &&
        std::string_view(";&|()<>`'\":=${}\\").find(c) == std::string_view::npos) {
      piece.push_back(c);
      continue;
    }
    if (!piece.empty() && piece[0] != '-' && piece[0] != '%') pieces.push_back(piece);
    piece.clear();
  }
  return pieces;
}

std::vector<std::string> path_words(std::string_view command) {
  if (!command.empty() && command.front() == '!') command.remove_prefix(1);
  const std::string text = with_known_folders(command);
  std::vector<std::string> words;
  std::set<std::string> seen;
  const auto add = [&](const std::string& w) {
    if (!w.empty() && seen.insert(w).second) words.push_back(w);
  };
  // First the words as a shell splits them: quotes keep a word whole; a
  // word counts when it looks like a file (a program without a '/' comes
  // from PATH, and a plain word is an argument); `-m a.b` runs Python's
  // a/b.py or a/b/__main__.py; after `cd DIR`, a relative word may be
  // DIR's too.
  std::string word, cd_dir;
  bool in_word = false, program = true, module_next = false, cd_next = false;
  char quote = 0;
  const auto finish = [&] {
    if (!in_word) return;
    std::string w = word;
    if (const size_t eq = w.find('='); eq != std::string::npos) w.erase(0, eq + 1);
    // "$ROOT/scripts/x.sh": the variable most likely names the top of the
    // worktree (`ROOT=$(git rev-parse --show-toplevel)`), so the rest counts.
    if (w.size() > 1 && w[0] == '$' && w.find('/') != std::string::npos) w.erase(0, w.find('/') + 1);
    const bool option_or_variable = w.empty() || w[0] == '-' || w[0] == '$' || w[0] == '%';
    if (module_next && !option_or_variable) {
      std::string path = w;
      std::replace(path.begin(), path.end(), '.', '/');
      add(path + ".py");
      add(path + "/__main__.py");
    } else if (cd_next && !option_or_variable) {
      cd_dir = w;
    } else if (!option_or_variable && looks_like_a_file(w)) {
      add(w);
      if (!cd_dir.empty() && w[0] != '/' && w[0] != '~') add(cd_dir + "/" + w);
    }
    module_next = w == "-m";
    cd_next = program && w == "cd";
    // A NAME=VALUE before the program is an assignment; the program follows.
    if (word.find('=') == std::string::npos) program = false;
    word.clear();
    in_word = false;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quote) {
      if (c == quote)
        quote = 0;
      else if (c == '\\' && quote == '"' && i + 1 < text.size())
        word.push_back(text[++i]);
      else
        word.push_back(c);
    } else if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (c == '\\' && i + 1 < text.size()) {
      word.push_back(text[++i]);
      in_word = true;
    } else if (std::isspace(static_cast<unsigned char>(c))) {
      finish();
    } else if (std::string_view(";&|()<>`").find(c) != std::string_view::npos) {
      finish();
      // After ; & | ( a new command starts: its first word is a program.
      if (c != '<' && c != '>') program = true;
    } else {
      word.push_back(c);
      in_word = true;
    }
  }
  finish();
  // Then every piece of the text that looks like a file: what a quote kept
  // whole is looked into too (`sh -c 'tools/x.sh "$0"'`, `"$(./env.sh)"`).
  for (const std::string& piece : command_pieces(command))
    if (looks_like_a_file(piece)) add(piece);
  return words;
}

}  // namespace warden::agent
