#include "server/peer_socket.h"

#include <dirent.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdlib>

namespace warden::server {

namespace {

// "addr" and port of a socket address, formatted as cpp-httplib formats
// Request::remote_addr (getnameinfo with NI_NUMERICHOST).
bool numeric_address(const sockaddr_storage& addr, socklen_t len, std::string& host, int& port) {
  char host_buf[NI_MAXHOST];
  char port_buf[NI_MAXSERV];
  if (getnameinfo(reinterpret_cast<const sockaddr*>(&addr), len, host_buf, sizeof host_buf, port_buf,
                  sizeof port_buf, NI_NUMERICHOST | NI_NUMERICSERV) != 0)
    return false;
  host = host_buf;
  port = std::atoi(port_buf);
  return true;
}

bool socket_matches(int fd, const std::string& local_addr, int local_port, const std::string& remote_addr,
                    int remote_port) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  std::string host;
  int port = -1;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return false;
  if (!numeric_address(addr, len, host, port) || port != local_port || host != local_addr) return false;
  len = sizeof addr;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return false;
  return numeric_address(addr, len, host, port) && port == remote_port && host == remote_addr;
}

}  // namespace

int find_connection_socket(const std::string& local_addr, int local_port, const std::string& remote_addr,
                           int remote_port) {
  if (local_port <= 0 || remote_port <= 0) return -1;
  DIR* dir = opendir("/proc/self/fd");
  if (!dir) return -1;
  int found = -1;
  const int own = dirfd(dir);
  while (dirent* entry = readdir(dir)) {
    char* end = nullptr;
    long fd = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0' || fd == own) continue;
    // getsockname fails with ENOTSOCK for files and pipes; a listening socket
    // has no peer. Only the accepted socket of this very connection matches
    // both ends (the client end of a loopback connection has them swapped).
    if (socket_matches(int(fd), local_addr, local_port, remote_addr, remote_port)) {
      found = int(fd);
      break;
    }
  }
  closedir(dir);
  return found;
}

bool peer_has_left(int fd) {
  if (fd < 0) return false;
  pollfd p{fd, POLLIN | POLLRDHUP, 0};
  int n = ::poll(&p, 1, 0);
  if (n == 0) return false;       // nothing happened on the socket
  if (n < 0) return false;        // EINTR and friends: ask again next time
  if (p.revents & (POLLERR | POLLHUP | POLLNVAL | POLLRDHUP)) return true;
  char byte;
  ssize_t got = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (got > 0) return false;      // a pipelined request: the client is there
  if (got == 0) return true;      // orderly close
  return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
}

}  // namespace warden::server
