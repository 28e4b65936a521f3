#pragma once
// Driving a warden command on a pseudo-terminal, as a human at a terminal
// would: the approval prompts read /dev/tty, so the tests that answer them
// need a real one.
#include <sys/types.h>

#include <string>
#include <vector>

namespace warden::test {

struct PtyChild {
  pid_t pid = -1;
  int master = -1;  // read the child's terminal output, write its input
};

// Runs args[0] with args on a new pseudo-terminal (forkpty). pid is -1 when
// no terminal could be made.
PtyChild spawn_on_pty(const std::vector<std::string>& args);

// Reads the terminal into `seen` until `needle` appears at or after `from`,
// the child closes it, or 60 s pass; true when it appeared.
bool read_until(int fd, std::string& seen, const std::string& needle, size_t from = 0);

// Reads the rest of the child's output into `seen` until it closes the
// terminal, reaps it and closes the master; returns its wait status.
int wait_for_exit(const PtyChild& child, std::string& seen);

}  // namespace warden::test
