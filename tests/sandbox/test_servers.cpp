#include "sandbox/test_servers.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <stdexcept>

#include "common/test_env.h"

namespace warden::sandbox::test {

LoopbackServer::LoopbackServer(std::string body, Mode mode) : mode_(mode), body_(std::move(body)) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd_, 16) != 0 ||
      ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    throw std::runtime_error("test server: cannot listen");
  port_ = ntohs(addr.sin_port);
  if (::pipe2(stop_, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
  thread_ = std::thread([this] { serve(); });
}

LoopbackServer::LoopbackServer(int fd, Mode mode) : fd_(fd), mode_(mode) {
  if (::pipe2(stop_, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
  thread_ = std::thread([this] { serve(); });
}

LoopbackServer* LoopbackServer::abstract_unix(const std::string& name) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path + 1, name.data(), name.size());
  socklen_t len = socklen_t(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(fd, 16) != 0)
    throw std::runtime_error("test server: cannot listen on abstract socket");
  return new LoopbackServer(fd, Mode::count_only);
}

LoopbackServer::~LoopbackServer() {
  char c = 1;
  [[maybe_unused]] ssize_t w = ::write(stop_[1], &c, 1);
  thread_.join();
  ::close(fd_);
  ::close(stop_[0]);
  ::close(stop_[1]);
}

std::vector<std::string> LoopbackServer::requests() const {
  std::lock_guard lock(mutex_);
  return requests_;
}

void LoopbackServer::serve() {
  while (true) {
    pollfd p[2] = {{fd_, POLLIN, 0}, {stop_[0], POLLIN, 0}};
    if (::poll(p, 2, -1) < 0 || p[1].revents) return;
    int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    connections_++;
    if (mode_ != Mode::count_only) {
      std::string head;
      char buf[4096];
      while ((mode_ == Mode::record_all || head.find("\r\n\r\n") == std::string::npos) && head.size() < 65536) {
        pollfd q{c, POLLIN, 0};
        if (::poll(&q, 1, 5000) <= 0) break;
        ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        head.append(buf, size_t(n));
      }
      {
        std::lock_guard lock(mutex_);
        requests_.push_back(head);
      }
      if (mode_ == Mode::http) {
        std::string reply = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                            std::to_string(body_.size()) + "\r\n\r\n" + body_;
        [[maybe_unused]] ssize_t w = ::send(c, reply.data(), reply.size(), MSG_NOSIGNAL);
      }
    }
    ::close(c);
  }
}

TlsLoopbackServer::TlsLoopbackServer(const std::string& name, const std::string& body) {
  const std::string dir = warden::test::make_temp_dir("tls");
  auto made = warden::test::run({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                                 "-subj", "/CN=" + name, "-keyout", dir + "/key.pem", "-out", dir + "/cert.pem"});
  if (made.exit_code != 0) throw std::runtime_error("openssl req: " + made.err);
  warden::test::write_file(dir + "/server.py", R"(import socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
print(s.getsockname()[1], flush=True)
reply = ("HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(sys.argv[3]), sys.argv[3])).encode()
while True:
    c, _ = s.accept()
    c.settimeout(10)
    try:
        t = ctx.wrap_socket(c, server_side=True)
        t.recv(65536)
        t.sendall(reply)
        t.close()
    except Exception:
        c.close()
)");
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
  pid_ = ::fork();
  if (pid_ == 0) {
    ::dup2(out[1], 1);
    ::execl("/usr/bin/python3", "python3", (dir + "/server.py").c_str(), (dir + "/cert.pem").c_str(),
            (dir + "/key.pem").c_str(), body.c_str(), nullptr);
    ::_exit(127);
  }
  ::close(out[1]);
  std::string line;
  char c;
  while (line.find('\n') == std::string::npos && ::read(out[0], &c, 1) == 1) line += c;
  ::close(out[0]);
  port_ = std::atoi(line.c_str());
  if (port_ <= 0) throw std::runtime_error("TLS test server did not start");
}

TlsLoopbackServer::~TlsLoopbackServer() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

UdpCounter::UdpCounter() {
  fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    throw std::runtime_error("udp counter: cannot bind");
  port_ = ntohs(addr.sin_port);
}

UdpCounter::~UdpCounter() { ::close(fd_); }

int UdpCounter::datagrams() {
  char buf[2048];
  while (::recv(fd_, buf, sizeof buf, 0) >= 0) count_++;
  return count_;
}

}  // namespace warden::sandbox::test
