#include "server/connection.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace warden::server {
namespace {

using Clock = std::chrono::steady_clock;

// Whether `socket` becomes ready for `events` within `wait` (a signal's
// interruption waits on for what is left).
bool ready(int socket, short events, std::chrono::milliseconds wait) {
  const Clock::time_point until = Clock::now() + wait;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
    pollfd p{socket, events, 0};
    const int n = ::poll(&p, 1, int(std::max<int64_t>(0, left.count())));
    if (n > 0) return true;
    if (n == 0 || errno != EINTR) return false;
  }
}

// A numeric address and port, as cpp-httplib reports them in a Request.
void address_of(int socket, bool peer, std::string& ip, int& port) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  const int rc = peer ? ::getpeername(socket, reinterpret_cast<sockaddr*>(&addr), &len)
                      : ::getsockname(socket, reinterpret_cast<sockaddr*>(&addr), &len);
  char host[NI_MAXHOST], service[NI_MAXSERV];
  if (rc != 0 || ::getnameinfo(reinterpret_cast<sockaddr*>(&addr), len, host, sizeof host, service, sizeof service,
                               NI_NUMERICHOST | NI_NUMERICSERV) != 0)
    return;
  ip = host;
  port = std::atoi(service);
}

// A socket stream whose reads end at the request's deadline as well as at
// the timeout of each read.
class DeadlineStream final : public httplib::Stream {
 public:
  DeadlineStream(int socket, std::chrono::milliseconds io, Clock::time_point deadline)
      : socket_(socket), io_(io), deadline_(deadline) {}

  void lift_deadline() { deadline_ = Clock::time_point::max(); }

  bool is_readable() const override {
    const Clock::time_point now = Clock::now();
    if (now >= deadline_) return false;
    const auto to_deadline = deadline_ == Clock::time_point::max()
                                 ? io_
                                 : std::chrono::ceil<std::chrono::milliseconds>(deadline_ - now);
    return ready(socket_, POLLIN, std::min(io_, to_deadline));
  }
  bool is_writable() const override { return ready(socket_, POLLOUT, io_); }
  ssize_t read(char* ptr, size_t size) override {
    if (!is_readable()) return -1;
    ssize_t n;
    do n = ::recv(socket_, ptr, size, 0);
    while (n < 0 && errno == EINTR);
    return n;
  }
  ssize_t write(const char* ptr, size_t size) override {
    if (!is_writable()) return -1;
    ssize_t n;
    do n = ::send(socket_, ptr, size, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n;
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override { address_of(socket_, true, ip, port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { address_of(socket_, false, ip, port); }
  socket_t socket() const override { return socket_; }

 private:
  int socket_;
  std::chrono::milliseconds io_;
  Clock::time_point deadline_;
};

// The stream of the request the calling thread is handling.
thread_local DeadlineStream* current = nullptr;

// Waits, a tenth of a second at a time so that a stopping server is
// noticed, until the next request starts to arrive; false when the
// connection stays idle past `idle` or `deadline`, or the server stops.
bool next_request_comes(int socket, std::chrono::milliseconds idle, Clock::time_point deadline,
                        const std::atomic<int>& listening) {
  const Clock::time_point until = std::min(Clock::now() + idle, deadline);
  while (listening.load() >= 0) {
    const Clock::time_point now = Clock::now();
    if (now >= until) return false;
    const auto step = std::min(std::chrono::milliseconds(100),
                               std::chrono::ceil<std::chrono::milliseconds>(until - now));
    if (ready(socket, POLLIN, step)) return true;
  }
  return false;
}

}  // namespace

bool serve_connection(int socket, const ConnectionLimits& limits, const std::atomic<int>& listening,
                      const ProcessRequest& process) {
  bool handled = false;
  for (size_t left = limits.requests_per_connection; left > 0; left--) {
    const Clock::time_point deadline = Clock::now() + limits.request;
    if (!next_request_comes(socket, limits.keep_alive, deadline, listening)) break;
    DeadlineStream stream(socket, limits.io, deadline);
    bool connection_closed = false;
    current = &stream;
    handled = process(stream, left == 1, connection_closed);
    current = nullptr;
    if (!handled || connection_closed) break;
  }
  ::shutdown(socket, SHUT_RDWR);
  ::close(socket);
  return handled;
}

void request_arrived() {
  if (current) current->lift_deadline();
}

}  // namespace warden::server
