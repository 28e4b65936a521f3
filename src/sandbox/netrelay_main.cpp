// warden-netrelay: runs inside a jail that has network, as the jail's first
// process. It listens on 127.0.0.1:PORT in the jail's own (empty) network
// namespace, relays every TCP connection to the egress proxy's unix socket
// that warden bound into the jail, runs the real command as its child, and
// exits with that command's status. It holds no authority: the same seccomp
// filter applies to it, and the proxy outside decides everything.
//
// usage: warden-netrelay PORT SOCKET -- CMD ARGS...
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

namespace {

bool write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= size_t(w);
  }
  return true;
}

void relay(int a, int b) {
  bool a_open = true, b_open = true;
  char buf[65536];
  while (a_open || b_open) {
    pollfd p[2] = {{a_open ? a : -1, POLLIN, 0}, {b_open ? b : -1, POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; i++) {
      if (!p[i].revents) continue;
      int from = i == 0 ? a : b, to = i == 0 ? b : a;
      ssize_t got = ::recv(from, buf, sizeof buf, 0);
      if (got <= 0) {
        ::shutdown(to, SHUT_WR);
        (i == 0 ? a_open : b_open) = false;
      } else if (!write_all(to, buf, size_t(got))) {
        a_open = b_open = false;
      }
    }
  }
  ::close(a);
  ::close(b);
}

int connect_proxy(const char* path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path, sizeof addr.sun_path - 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return fd;
  if (fd >= 0) ::close(fd);
  return -1;
}

int listen_loopback(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(uint16_t(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 64) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5 || std::strcmp(argv[3], "--") != 0) {
    std::fprintf(stderr, "usage: warden-netrelay PORT SOCKET -- CMD ARGS...\n");
    return 2;
  }
  const int port = std::atoi(argv[1]);
  const char* socket_path = argv[2];
  int listener = listen_loopback(port);
  if (listener < 0) {
    std::fprintf(stderr, "warden-netrelay: cannot listen on 127.0.0.1:%d: %s\n", port, std::strerror(errno));
    return 1;
  }
  pid_t child = ::fork();
  if (child < 0) return 1;
  if (child == 0) {
    ::execvp(argv[4], argv + 4);
    std::fprintf(stderr, "warden-netrelay: cannot run %s: %s\n", argv[4], std::strerror(errno));
    _exit(127);
  }
  int child_fd = int(::syscall(SYS_pidfd_open, child, 0));
  while (true) {
    pollfd p[2] = {{listener, POLLIN, 0}, {child_fd, POLLIN, 0}};
    if (::poll(p, child_fd >= 0 ? 2 : 1, child_fd >= 0 ? -1 : 100) < 0 && errno != EINTR) break;
    int status = 0;
    if (::waitpid(child, &status, WNOHANG) == child) return exit_code_of(status);
    if (!(p[0].revents & POLLIN)) continue;
    int client = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    int upstream = connect_proxy(socket_path);
    if (upstream < 0) {
      ::close(client);
      continue;
    }
    std::thread(relay, client, upstream).detach();
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  return exit_code_of(status);
}
