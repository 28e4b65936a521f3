#include "util/fd_io.h"

#include <unistd.h>

#include <cerrno>

namespace warden {

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t w = ::write(fd, data.data(), data.size());
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    data.remove_prefix(size_t(w));
  }
  return true;
}

}  // namespace warden
