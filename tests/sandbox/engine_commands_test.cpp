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

// inspect is for a GGUF file just downloaded: it confines itself before it
// opens the file. A FIFO in the file's place holds it in open() while the
// test looks, and is no model (an error, exit 1).
TEST(EngineCommands, InspectReadsTheFileConfined) {
  const std::string fifo = make_temp_dir("fifo") + "/model.gguf";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const WardenChild child = start_warden({"inspect", fifo});
  const std::string status = "/proc/" + std::to_string(child.pid) + "/status";
  std::string filters;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline && (filters = status_field(status, "Seccomp_filters")) != "2")
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  EXPECT_EQ(filters, "2");
  EXPECT_EQ(status_field(status, "NoNewPrivs"), "1");
  const int writer = ::open(fifo.c_str(), O_WRONLY | O_CLOEXEC);  // lets its open() return
  ASSERT_GE(writer, 0);
  ::close(writer);
  ::close(child.stdin_fd);
  int wait_status = 0;
  ::waitpid(child.pid, &wait_status, 0);
  EXPECT_TRUE(WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 1) << wait_status;
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
  std::string child, filters;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream(children) >> child;
    if (!child.empty() && (filters = status_field("/proc/" + child + "/status", "Seccomp_filters")) == "2") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_EQ(filters, "2") << "child " << child;
  EXPECT_EQ(status_field("/proc/" + std::to_string(parent.pid) + "/status", "Seccomp_filters"), "0");
  const int writer = ::open(fifo.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(writer, 0);
  ::close(writer);
  ::close(parent.stdin_fd);
  int wait_status = 0;
  ::waitpid(parent.pid, &wait_status, 0);
  EXPECT_TRUE(WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 1) << wait_status;
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir), std::filesystem::directory_iterator()), 1);
}

// bench loads its files as serve's engine does, confined first (the filter
// of the load; no second one, since it loads one model after another).
TEST(EngineCommands, BenchLoadsConfined) {
  const std::string fifo = make_temp_dir("bench") + "/model.gguf";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const WardenChild child = start_warden({"bench", "-m", fifo, "-p", "8", "-n", "0", "-r", "1"});
  const std::string status = "/proc/" + std::to_string(child.pid) + "/status";
  std::string filters;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline && (filters = status_field(status, "Seccomp_filters")) != "1")
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  EXPECT_EQ(filters, "1");
  const int writer = ::open(fifo.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(writer, 0);
  ::close(writer);
  ::close(child.stdin_fd);
  int wait_status = 0;
  ::waitpid(child.pid, &wait_status, 0);
  EXPECT_TRUE(WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 1) << wait_status;
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
