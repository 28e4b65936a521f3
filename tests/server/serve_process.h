#pragma once
// Test support: a tiny random-weight model made with `warden make-model`, and
// a `warden serve` child process on 127.0.0.1 with a kernel-chosen port.
#include <sys/types.h>

#include <string>
#include <vector>

namespace warden::test {

// A tiny-qwen3 q8_0 model, made once per test process.
const std::string& tiny_model();

class ServeProcess {
 public:
  // Starts `warden serve -m MODEL --port 0 ARGS...` and waits until it
  // printed its address. Throws std::runtime_error if it does not start.
  explicit ServeProcess(const std::vector<std::string>& args, const std::string& model = tiny_model());
  ~ServeProcess();
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  bool alive() const;
  // Resident set size of the server process in KiB (from /proc).
  long rss_kib() const;
  // Stops the server with SIGTERM and returns its exit code (-1: signal).
  int stop();

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  int stdout_fd_ = -1;
};

}  // namespace warden::test
