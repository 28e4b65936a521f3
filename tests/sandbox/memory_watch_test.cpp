// The supervisor's count of a process tree's memory (memory_watch.h), on
// real processes: children forked here touch known amounts.
#include "sandbox/memory_watch.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <vector>

namespace warden::sandbox {
namespace {

constexpr size_t kMiB = 1 << 20;

// A child that touches `mib` MiB (private, or a shared mapping it then forks
// a grandchild over), says so on a pipe, and waits to be killed.
pid_t hold(size_t mib, bool shared_with_a_grandchild = false) {
  int ready[2];
  if (::pipe(ready) != 0) return -1;
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(ready[0]);
    const int flags = shared_with_a_grandchild ? MAP_SHARED | MAP_ANONYMOUS : MAP_PRIVATE | MAP_ANONYMOUS;
    void* block = ::mmap(nullptr, mib * kMiB, PROT_READ | PROT_WRITE, flags, -1, 0);
    if (block == MAP_FAILED) _exit(1);
    std::memset(block, 1, mib * kMiB);
    if (shared_with_a_grandchild && ::fork() == 0) {
      while (true) ::pause();
    }
    [[maybe_unused]] ssize_t w = ::write(ready[1], "x", 1);
    while (true) ::pause();
  }
  ::close(ready[1]);
  char c;
  [[maybe_unused]] ssize_t r = ::read(ready[0], &c, 1);
  ::close(ready[0]);
  return pid;
}

void end(pid_t pid) {
  ::kill(-pid, SIGKILL);
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
}

TEST(MemoryWatch, CountsAProcessTreeOnceAndNothingElse) {
  check_memory_watch_available();
  // A process group of its own, so that the grandchild is killed with it.
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t root = ::fork();
  if (root == 0) {
    ::setpgid(0, 0);
    pid_t a = hold(48), b = hold(32, true);
    [[maybe_unused]] ssize_t w = ::write(ready[1], "x", 1);
    ::waitpid(a, nullptr, 0);
    ::waitpid(b, nullptr, 0);
    _exit(0);
  }
  ::close(ready[1]);
  char c;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ::close(ready[0]);
  auto held = process_tree_memory(root);
  end(root);
  ASSERT_TRUE(held.has_value());
  // 48 MiB private, 32 MiB shared by a child and its grandchild (counted
  // once), and a few MiB of the test binary's own pages in each process.
  EXPECT_GE(*held, 80 * kMiB);
  EXPECT_LT(*held, 100 * kMiB);
}

TEST(MemoryWatch, AProcessThatIsGoneHoldsNothing) {
  pid_t pid = ::fork();
  if (pid == 0) _exit(0);
  ::waitpid(pid, nullptr, 0);
  auto held = process_tree_memory(pid);
  ASSERT_TRUE(held.has_value());
  EXPECT_EQ(*held, 0u);
}

}  // namespace
}  // namespace warden::sandbox
