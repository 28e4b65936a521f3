#pragma once
// A file descriptor closed when it goes out of scope (sandbox-internal).
#include <unistd.h>

namespace warden::sandbox {

struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  ~Fd() { reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  void reset(int f = -1) {
    if (fd >= 0) ::close(fd);
    fd = f;
  }
};

}  // namespace warden::sandbox
