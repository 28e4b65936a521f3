// The commands that run the engine in their own process (generate, plain
// chat) confine themselves: every thread under the seccomp filters with
// no_new_privs. What that filter and Landlock refuse is
// in confine_test.cpp; serve has its own check in server_http_test.cpp.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "common/test_env.h"

namespace {

using warden::test::make_temp_dir;
using warden::test::run_warden;
using warden::test::start_warden;
using warden::test::status_field;
using warden::test::WardenChild;

// Every thread of `pid`: {threads, confined}, where a confined thread has
// no_new_privs and both filters, confine_engine_process's and, once the
// model is loaded, forbid_file_changes's.
std::pair<int, int> threads_confined(pid_t pid) {
  int threads = 0, confined = 0;
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    const std::string status = task.path().string() + "/status";
    threads++;
    if (status_field(status, "Seccomp") == "2" && status_field(status, "Seccomp_filters") == "2" &&
        status_field(status, "NoNewPrivs") == "1")
      confined++;
  }
  return {threads, confined};
}

// Starts warden with a pipe for stdin (left open: chat waits on it) and
// waits up to 60 s for the engine's threads to start and every thread to
// be confined; reports the last look.
std::pair<int, int> confined_while_running(const std::vector<std::string>& args) {
  const WardenChild child = start_warden(args);
  std::pair<int, int> seen{0, 0};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    seen = threads_confined(child.pid);
    if (seen.first > 1 && seen.second == seen.first) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ::kill(child.pid, SIGKILL);
  ::close(child.stdin_fd);
  ::waitpid(child.pid, nullptr, 0);
  return seen;
}

TEST(EngineCommands, GenerateAndChatRunConfined) {
  const std::string model = make_temp_dir("model") + "/tiny.gguf";
  ASSERT_EQ(run_warden({"make-model", "--preset", "tiny-qwen3", "--type", "q8_0", "--seed", "5", model}).exit_code, 0);

  auto chat = confined_while_running({"chat", "-m", model, "-t", "2"});
  EXPECT_GT(chat.first, 1);  // the engine's threads too
  EXPECT_EQ(chat.second, chat.first);

  auto generate = confined_while_running({"generate", "-m", model, "-t", "2", "-p", "x", "-n", "-1", "-c", "4096"});
  EXPECT_GT(generate.first, 1);
  EXPECT_EQ(generate.second, generate.first);

  // And they still do their work.
  auto done = run_warden({"generate", "-m", model, "-p", "x", "-n", "4", "--temp", "0"});
  EXPECT_EQ(done.exit_code, 0) << done.err;
  EXPECT_FALSE(done.out.empty());
  // Its packed weights went into the model's own folder of the cache, the
  // one place there the confined engine may write.
  std::vector<std::filesystem::path> copies;
  std::error_code ec;
  for (const auto& e :
       std::filesystem::recursive_directory_iterator(std::string(std::getenv("XDG_CACHE_HOME")) + "/warden/packed", ec))
    if (e.path().extension() == ".bin") copies.push_back(e.path());
  ASSERT_EQ(copies.size(), 1u);
  EXPECT_NE(copies[0].parent_path().filename(), "packed");
}

// How many seccomp filters the process whose status file `status_path()`
// names (none yet: "") has, once it has `want` or 60 s have passed.
std::string seccomp_filters(const std::function<std::string()>& status_path, const std::string& want) {
  std::string filters;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    const std::string path = status_path();
    if (!path.empty() && (filters = status_field(path, "Seccomp_filters")) == want) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return filters;
}

// Opens `fifo` for writing and closes it, which lets the command blocked in
// opening it go on (and find no model); returns the command's exit code.
int release_and_wait(const std::string& fifo, const WardenChild& command) {
  const int writer = ::open(fifo.c_str(), O_WRONLY | O_CLOEXEC);
  if (writer >= 0) ::close(writer);
  ::close(command.stdin_fd);
  int wait_status = 0;
  ::waitpid(command.pid, &wait_status, 0);
  return WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : 128 + WTERMSIG(wait_status);
}

std::string status_of(pid_t pid) { return "/proc/" + std::to_string(pid) + "/status"; }

// inspect is for a GGUF file just downloaded: it confines itself before it
// opens the file. A FIFO in the file's place holds it in open() while the
// test looks, and is no model (an error, exit 1).
TEST(EngineCommands, InspectReadsTheFileConfined) {
  const std::string fifo = make_temp_dir("fifo") + "/model.gguf";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const WardenChild child = start_warden({"inspect", fifo});
  EXPECT_EQ(seccomp_filters([&] { return status_of(child.pid); }, "2"), "2");
  EXPECT_EQ(status_field(status_of(child.pid), "NoNewPrivs"), "1");
  EXPECT_EQ(release_and_wait(fifo, child), 1);
}

// quantize converts in a child process confined as inspect is, which
// writes to a descriptor its parent opened; the parent alone names the
// result. A FIFO as the input holds the child in open() while the test
// looks; it is no model, so nothing is left at OUT or beside it.
TEST(EngineCommands, QuantizeConvertsInAConfinedChild) {
  const std::string dir = make_temp_dir("quantize");
  const std::string fifo = dir + "/in.gguf";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const WardenChild parent = start_warden({"quantize", fifo, dir + "/out.gguf", "q8_0"});
  const std::string children = "/proc/" + std::to_string(parent.pid) + "/task/" + std::to_string(parent.pid) + "/children";
  auto child_status = [&] {
    std::string child;
    std::ifstream(children) >> child;
    return child.empty() ? child : "/proc/" + child + "/status";
  };
  EXPECT_EQ(seccomp_filters(child_status, "2"), "2");
  EXPECT_EQ(status_field(status_of(parent.pid), "Seccomp_filters"), "0");
  EXPECT_EQ(release_and_wait(fifo, parent), 1);
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir), std::filesystem::directory_iterator()), 1);
}

// bench loads its files as serve's engine does, confined first (the filter
// of the load; no second one, since it loads one model after another).
TEST(EngineCommands, BenchLoadsConfined) {
  const std::string fifo = make_temp_dir("bench") + "/model.gguf";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const WardenChild child = start_warden({"bench", "-m", fifo, "-p", "8", "-n", "0", "-r", "1"});
  EXPECT_EQ(seccomp_filters([&] { return status_of(child.pid); }, "1"), "1");
  EXPECT_EQ(release_and_wait(fifo, child), 1);
}

// Error messages carry names from outside; the terminal gets their
// controls shown, not obeyed.
TEST(EngineCommands, ErrorsShowControlCharactersInNames) {
  const std::string missing = make_temp_dir("model") + "/x\x1b[2J\x9b" "31m.gguf";
  auto r = run_warden({"generate", "-m", missing, "-p", "x"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("x\\x1b[2J\\x9b31m.gguf"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find('\x1b'), std::string::npos);
  EXPECT_EQ(r.err.find('\x9b'), std::string::npos);
}

}  // namespace
