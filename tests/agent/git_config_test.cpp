// Git's config format as planted_code reads it, checked against the real
// git: every text git accepts must give the entries `git config --list`
// gives; where git refuses a file, the reader skips only the bad line.
#include "agent/git_config.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "common/test_env.h"
#include "util/error.h"

namespace fs = std::filesystem;
using namespace warden::agent;
using warden::test::make_temp_dir;
using warden::test::write_file;

namespace {

// "section[.subsection].name" and the value, as `git config --list` prints them.
std::string listed(const std::vector<GitConfigEntry>& entries) {
  std::string out;
  for (const auto& e : entries) {
    out += e.section + (e.has_subsection ? "." + e.subsection : "") + "." + e.name;
    out += e.has_value ? "\n" + e.value : "";
    out.push_back('\0');
  }
  return out;
}

warden::test::RunResult git_list(const std::string& text) {
  const std::string file = make_temp_dir("gitconfig") + "/config";
  write_file(file, text);
  return warden::test::run({"/usr/bin/git", "config", "--file", file, "--list", "--null"}, "");
}

}  // namespace

TEST(GitConfig, ReadsEveryFormGitAcceptsAsGitDoes) {
  const std::vector<std::string> texts = {
      "[core]\n\thooksPath = \".husky\"  # husky\n",
      "[core] hooksPath = x ; comment\n",
      "[core]\n\thooksPath = a\\\n b\n",
      "[core]\nhooksPath = \"a b\"  c \t d   \n",
      "[Core \"Sub\\\"x\\\\y\"]\n\tName = v\n",
      "[a.B]\nk=v\n",
      "[core]\r\n\tpager = less -R\r\n",
      "\xEF\xBB\xBF[core]\n\tbare\n",
      "[x]\nflag\nother =\n",
      "[x]\n\tv = \"\\t\\n\\b\\\\\\\"\"\n",
      "[filter \"lfs\"]\n\tclean = git-lfs clean -- %f\n\tsmudge = \"./scripts/smudge.sh\" %f\n",
      "[alias]\n\tst-x1 = !sh -c 'echo a#b' \"q;r\"\n",
      "[a]\nk = b=c\n[b] k2 = 2\n; comment\n# comment\n\n[c \"\"]\nk3 = 3\n",
      "[core]\n\thooksPath = \"quoted \\\n continued\" after\n",
      "[includeIf \"gitdir:~/work/\"]\n\tpath = ~/.work.gitconfig\n[include]\n\tpath = ../shared.cfg\n",
      "[core]\n\tpager = last-line-without-newline",
  };
  for (const std::string& text : texts) {
    SCOPED_TRACE(text);
    const auto git = git_list(text);
    ASSERT_EQ(git.exit_code, 0) << git.err;
    EXPECT_EQ(listed(parse_git_config(text)), git.out);
  }
}

// Git refuses these files whole; the reader skips the line git stops at
// and reads on, so a line read differently cannot hide what follows it.
TEST(GitConfig, ALineGitRefusesIsSkippedAndTheRestRead) {
  const std::vector<std::string> texts = {
      "[core]\n\tpager = \"open quote\n\thooksPath = .husky\n",
      "[core]\n\tpager = bad \\q escape\n\thooksPath = .husky\n",
      "[core]\n\t9bad = x\n\thooksPath = .husky\n",
      "[core]\n\tkey # no equals\n\thooksPath = .husky\n",
      "[core\n[core]\n\thooksPath = .husky\n",
  };
  for (const std::string& text : texts) {
    SCOPED_TRACE(text);
    EXPECT_NE(git_list(text).exit_code, 0);
    const auto entries = parse_git_config(text);
    ASSERT_FALSE(entries.empty());
    EXPECT_EQ(entries.back().section, "core");
    EXPECT_EQ(entries.back().name, "hookspath");
    EXPECT_EQ(entries.back().value, ".husky");
  }
  // After a header git refuses, keys do not count for the section before it.
  const auto after_bad_header = parse_git_config("[core]\n[bad header\nhooksPath = x\n");
  EXPECT_TRUE(after_bad_header.empty());
}

TEST(GitConfig, IncludesAreFollowedWhateverTheirCondition) {
  const std::string dir = fs::canonical(make_temp_dir("inc")).string();
  const std::string home = dir + "/home";
  write_file(dir + "/repo/config",
             "[include]\n\tpath = ../shared.cfg\n[includeIf \"gitdir:/nowhere/\"]\n\tpath = ~/cond.cfg\n"
             "[filter \"x\"]\n\tclean = ./scripts/clean.sh %f\n");
  write_file(dir + "/shared.cfg", "[core]\n\thooksPath = .githooks\n[include]\n\tpath = missing.cfg\n");
  write_file(home + "/cond.cfg", "[core]\n\tfsmonitor = tools/monitor\n[include]\n\tpath = cond.cfg\n");
  GitRunConfig run;
  ReadBudget budget;
  read_git_config(dir + "/repo/config", home, run, budget);
  // Each file once: cond.cfg includes itself.
  EXPECT_EQ(run.files, (std::set<fs::path>{dir + "/repo/config", dir + "/shared.cfg", dir + "/missing.cfg",
                                           home + "/cond.cfg"}));
  EXPECT_EQ(run.hooks_paths, std::vector<std::string>{".githooks"});
  EXPECT_EQ(run.commands, (std::vector<std::string>{"tools/monitor", "./scripts/clean.sh %f"}));
}

// Includes that fan out (a file including another eight times, ten deep)
// are read once each; text past the check's budget stops it.
TEST(GitConfig, ReadingIsBounded) {
  const std::string dir = fs::canonical(make_temp_dir("fan")).string();
  std::string fan_out;
  for (int i = 0; i < 8; ++i) fan_out += "[include]\n\tpath = config\n";
  write_file(dir + "/config", fan_out);
  GitRunConfig run;
  ReadBudget budget;
  read_git_config(dir + "/config", "", run, budget);
  EXPECT_EQ(run.files.size(), 1u);
  EXPECT_EQ(budget.bytes_left, kCheckReadBytes - fan_out.size() - 4096);  // its text, and what any file costs
  // Includes of files that are not there cost too: 150000 of them (in a
  // config under the size read) do not fit the budget.
  std::string many;
  for (int i = 0; i < 150000; ++i) many += "[include]\n\tpath = x" + std::to_string(i) + "\n";
  write_file(dir + "/many", many);
  GitRunConfig includes;
  ReadBudget fresh;
  try {
    read_git_config(dir + "/many", "", includes, fresh);
    ADD_FAILURE() << "read on";
  } catch (const warden::Error& e) {
    EXPECT_NE(std::string(e.what()).find("more text than warden reads"), std::string::npos) << e.what();
  }
  write_file(dir + "/big", "[core]\n\tpager = " + std::string(1 << 20, 'x') + "\n");
  ReadBudget small;
  small.bytes_left = 1000;
  GitRunConfig other;
  EXPECT_THROW(read_git_config(dir + "/big", "", other, small), warden::Error);
}

TEST(GitConfig, CommandKeysAndTheWordsThatMayNameFiles) {
  const auto entry = [](const std::string& text) { return parse_git_config(text).at(0); };
  EXPECT_TRUE(runs_as_command(entry("[core]\nfsmonitor = x\n")));
  EXPECT_TRUE(runs_as_command(entry("[filter \"lfs\"]\nsmudge = x\n")));
  EXPECT_TRUE(runs_as_command(entry("[diff \"pdf\"]\ntextconv = x\n")));
  EXPECT_TRUE(runs_as_command(entry("[pager]\nlog = x\n")));
  EXPECT_TRUE(runs_as_command(entry("[alias]\nup = !./up.sh\n")));
  EXPECT_TRUE(runs_as_command(entry("[gpg \"ssh\"]\ndefaultKeyCommand = x\n")));
  EXPECT_TRUE(runs_as_command(entry("[lfs \"customtransfer.x\"]\npath = x\n")));
  // Any alias: one without '!' may still set a key that runs a program.
  EXPECT_TRUE(runs_as_command(entry("[alias]\nst = -c core.fsmonitor=./x status\n")));
  EXPECT_TRUE(runs_as_command(entry("[url \"ext::sh -c x\"]\ninsteadOf = https://h/\n")));
  EXPECT_EQ(command_of(entry("[url \"ext::sh -c x\"]\ninsteadOf = https://h/\n")), "sh -c x");
  EXPECT_TRUE(runs_as_command(entry("[remote \"o\"]\nvcs = ext\n")));
  EXPECT_FALSE(runs_as_command(entry("[remote \"o\"]\nurl = https://h/x.git\n")));
  EXPECT_FALSE(runs_as_command(entry("[url \"https://mirror/\"]\ninsteadOf = https://h/\n")));
  EXPECT_FALSE(runs_as_command(entry("[user]\nname = x\n")));
  EXPECT_FALSE(runs_as_command(entry("[core]\nhooksPath = x\n")));

  EXPECT_EQ(path_words("less -R"), std::vector<std::string>{});
  EXPECT_EQ(path_words("./scripts/clean.sh --in=%f"), std::vector<std::string>{"./scripts/clean.sh"});
  EXPECT_EQ(path_words("!sh tools/a.sh; python3 'b c.py' --config=cfg.yml | tee out.txt"),
            (std::vector<std::string>{"tools/a.sh", "b c.py", "cfg.yml", "out.txt", "c.py"}));
  // What runs a file without naming it as a word of its own.
  const auto has = [](const std::string& command, const std::string& path) {
    const auto words = path_words(command);
    return std::find(words.begin(), words.end(), path) != words.end();
  };
  EXPECT_TRUE(has("python3 -m tools.nbstrip", "tools/nbstrip.py"));
  EXPECT_TRUE(has("python3 -m tools.nbstrip", "tools/nbstrip/__main__.py"));
  EXPECT_TRUE(has("sh -c 'tools/hexconv.sh \"$0\"'", "tools/hexconv.sh"));
  EXPECT_TRUE(has("!cd tools && ./lint.sh", "tools/./lint.sh"));
  EXPECT_TRUE(has("$(pwd)/x", "./x"));
  EXPECT_TRUE(has("${PWD}/x --fix", "./x"));
  EXPECT_TRUE(has("\"$GIT_DIR\"/../x", ".git/../x"));
  EXPECT_TRUE(has("eval \"$(./scripts/env.sh)\"", "./scripts/env.sh"));
  EXPECT_TRUE(has("export PATH=\"$PWD/tools/bin:$PATH\"", "./tools/bin"));
  EXPECT_FALSE(has("npm run build", "build"));  // a plain word is no file's name here
  EXPECT_EQ(path_words("GIT_X=1 bin/run \"$HOME\" x\\ y.sh"), (std::vector<std::string>{"bin/run", "x y.sh", "y.sh"}));
}

// Only regular files are read: a FIFO planted where a config is looked for
// would block the reader forever.
TEST(GitConfig, OnlyRegularFilesAreReadAndOnlySoFar) {
  const std::string dir = fs::canonical(make_temp_dir("fifo")).string();
  ASSERT_EQ(::mkfifo((dir + "/fifo").c_str(), 0600), 0);
  EXPECT_EQ(read_regular_file(dir + "/fifo", 100), "");
  EXPECT_EQ(read_regular_file("/dev/zero", 100), "");
  EXPECT_EQ(read_regular_file(dir + "/missing", 100), "");
  write_file(dir + "/big", std::string(40000, 'x') + "tail");
  EXPECT_EQ(read_regular_file(dir + "/big", 40002), std::string(40000, 'x') + "ta");
  EXPECT_EQ(read_regular_file(dir + "/big", 1 << 20).size(), 40004u);
  write_file(dir + "/config", "[include]\n\tpath = fifo\n");
  GitRunConfig run;
  ReadBudget budget;
  read_git_config(dir + "/config", "", run, budget);
  EXPECT_EQ(run.files.size(), 2u);
}

// Where git sends the repository, and a URL of the ext:: transport, which
// is a command.
TEST(GitConfig, DestinationsAndExtURLsAreFound) {
  const std::string dir = std::filesystem::canonical(warden::test::make_temp_dir("cfg")).string();
  warden::test::write_file(dir + "/config",
                           "[remote \"origin\"]\n\turl = https://example.org/x.git\n\tpushurl = ext::sh -c tools/up.sh\n"
                           "[url \"https://evil.test/\"]\n\tinsteadOf = https://github.com/\n[http]\n\tproxy = evil:8080\n"
                           "[user]\n\tname = Me\n");
  GitRunConfig runs;
  ReadBudget budget;
  read_git_config(dir + "/config", "", runs, budget);
  EXPECT_EQ(runs.destinations,
            (std::vector<std::string>{"remote.origin.url=https://example.org/x.git",
                                      "remote.origin.pushurl=ext::sh -c tools/up.sh",
                                      "url.https://evil.test/.insteadof=https://github.com/", "http..proxy=evil:8080"}));
  EXPECT_EQ(runs.commands, std::vector<std::string>{"sh -c tools/up.sh"});
  // A key that names a remote sends there when it holds a URL or a path.
  const auto entry = [](const std::string& text) { return parse_git_config(text).at(0); };
  EXPECT_TRUE(names_a_destination(entry("[remote]\npushDefault = /tmp/evil.git\n")));
  EXPECT_TRUE(names_a_destination(entry("[branch \"main\"]\npushRemote = https://evil.test/x\n")));
  EXPECT_FALSE(names_a_destination(entry("[branch \"main\"]\nremote = origin\n")));
  EXPECT_TRUE(runs_as_command(entry("[hook \"lint\"]\ncommand = ./lint.sh\n")));
  EXPECT_TRUE(runs_as_command(entry("[tar \"tar.gz\"]\ncommand = gzip -cn\n")));
}
