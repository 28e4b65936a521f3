#include "server/connection.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <exception>

namespace warden::server {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::chrono::milliseconds kLook{100};  // how often a wait looks whether the server stops

// Waits, a tenth of a second at a time so that a stopping server is
// noticed, until `socket` is ready for `events`; false when `until` comes
// first, the server stops (`listening` is no socket) or poll fails.
bool ready(int socket, short events, Clock::time_point until, const std::atomic<int>& listening) {
  while (listening.load() >= 0) {
    const Clock::time_point now = Clock::now();
    if (now >= until) return false;
    const auto step = std::min(kLook, std::chrono::ceil<std::chrono::milliseconds>(until - now));
    pollfd p{socket, events, 0};
    const int n = ::poll(&p, 1, int(step.count()));
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return false;
  }
  return false;
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

// The connection's socket as cpp-httplib reads and writes it: reads come
// from a buffer (its request parser reads a byte at a time) and end at the
// request's deadline as well as at each read's timeout.
class DeadlineStream final : public httplib::Stream {
 public:
  DeadlineStream(int socket, std::chrono::milliseconds io, size_t request_bytes, const std::atomic<int>& listening)
      : socket_(socket), io_(io), request_bytes_(request_bytes), listening_(listening) {}

  // A new request: it must arrive by `deadline`, in at most request_bytes.
  void set_deadline(Clock::time_point deadline) {
    deadline_ = deadline;
    bytes_left_ = request_bytes_;
  }
  void lift_deadline() {
    deadline_ = Clock::time_point::max();
    bytes_left_ = SIZE_MAX;
  }
  bool past_deadline() const { return Clock::now() >= deadline_; }
  bool has_buffered() const { return begin_ < end_; }

  bool is_readable() const override {
    if (has_buffered()) return true;
    const Clock::time_point by_timeout = Clock::now() + io_;
    return ready(socket_, POLLIN, std::min(by_timeout, deadline_), listening_);
  }
  bool is_writable() const override { return ready(socket_, POLLOUT, Clock::now() + io_, listening_); }
  ssize_t read(char* ptr, size_t size) override {
    if (!has_buffered()) {
      if (!is_readable()) return -1;
      ssize_t n;
      do n = ::recv(socket_, buffer_, sizeof buffer_, 0);
      while (n < 0 && errno == EINTR);
      if (n <= 0) return n;
      begin_ = 0;
      end_ = size_t(n);
    }
    const size_t n = std::min({size, end_ - begin_, bytes_left_});
    if (n == 0) return -1;  // the request is larger than any it may be
    std::memcpy(ptr, buffer_ + begin_, n);
    begin_ += n;
    if (bytes_left_ != SIZE_MAX) bytes_left_ -= n;
    return ssize_t(n);
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
  size_t request_bytes_;
  const std::atomic<int>& listening_;
  Clock::time_point deadline_ = Clock::time_point::max();
  size_t bytes_left_ = SIZE_MAX;
  char buffer_[4096];
  size_t begin_ = 0, end_ = 0;
};

// The connection the calling thread is serving, and whether it is to end
// after the answer being made.
thread_local DeadlineStream* current = nullptr;
thread_local bool closing = false;

// Ends the connection without discarding the answer just sent: closing a
// socket with unread bytes in it resets the connection, and a client may
// then lose the answer. So the sending side is shut first, and what the
// client still sends is read and dropped for a moment, until it closes too.
void close_gently(int socket, const std::atomic<int>& listening) {
  ::shutdown(socket, SHUT_WR);
  const Clock::time_point until = Clock::now() + std::chrono::seconds(1);
  char sink[4096];
  for (size_t dropped = 0; dropped < (size_t(256) << 10) && ready(socket, POLLIN, until, listening);) {
    const ssize_t n = ::recv(socket, sink, sizeof sink, MSG_DONTWAIT);
    if (n <= 0 && !(n < 0 && errno == EINTR)) break;
    if (n > 0) dropped += size_t(n);
  }
  ::close(socket);
}

}  // namespace

bool serve_connection(int socket, const ConnectionLimits& limits, const std::atomic<int>& listening,
                      const ProcessRequest& process) {
  DeadlineStream stream(socket, limits.io, limits.request_bytes, listening);
  bool handled = false;
  for (size_t left = limits.requests_per_connection; left > 0; left--) {
    const Clock::time_point deadline = Clock::now() + limits.request;
    stream.set_deadline(deadline);
    // The next request starts to arrive, idle no longer than keep-alive allows.
    if (!stream.has_buffered() &&
        !ready(socket, POLLIN, std::min(Clock::now() + limits.keep_alive, deadline), listening))
      break;
    bool connection_closed = false;
    current = &stream;
    closing = false;
    try {
      handled = process(stream, left == 1, connection_closed);
    } catch (const std::exception&) {
      handled = false;
    }
    current = nullptr;
    // After a refusal the rest of its request may still be unread, and
    // must not be taken for the next request (close_after_answer).
    if (!handled || connection_closed || closing || stream.past_deadline()) break;
  }
  closing = false;
  close_gently(socket, listening);
  return handled;
}

void request_arrived() {
  if (current) current->lift_deadline();
}

void close_after_answer() { closing = true; }

}  // namespace warden::server
