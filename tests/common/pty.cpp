#include "common/pty.h"

#include <poll.h>
#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>

namespace warden::test {

PtyChild spawn_on_pty(const std::vector<std::string>& args) {
  std::vector<std::string> copy = args;
  std::vector<char*> argv;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  PtyChild child;
  child.pid = ::forkpty(&child.master, nullptr, nullptr, nullptr);
  if (child.pid == 0) {
    ::execv(argv[0], argv.data());
    _exit(127);
  }
  return child;
}

bool read_until(int fd, std::string& seen, const std::string& needle, size_t from) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    if (seen.find(needle, from) != std::string::npos) return true;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    char buf[4096];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    seen.append(buf, static_cast<size_t>(n));
  }
  return seen.find(needle, from) != std::string::npos;
}

int wait_for_exit(const PtyChild& child, std::string& seen) {
  read_until(child.master, seen, "\x04never");  // a text no run prints: reads until the terminal closes
  int status = 0;
  ::waitpid(child.pid, &status, 0);
  ::close(child.master);
  return status;
}

}  // namespace warden::test
