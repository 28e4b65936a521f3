#include "server/connection.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <exception>
#include <mutex>
#include <string_view>
#include <vector>

#include "server/request_extent.h"

namespace warden::server {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::chrono::milliseconds kLook{100};  // how often a worker's wait looks whether the server stops
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

// Waits, a tenth of a second at a time so that a stopping server is
// noticed, until `socket` is ready for `events`; false when `until` comes
// first, the server stops or poll fails.
bool ready(int socket, short events, Clock::time_point until, const std::atomic<bool>& stopping) {
  while (!stopping.load()) {
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

// Sends what fits now, without waiting: for the gate's own short answers.
void send_now(int socket, std::string_view text) { (void)::send(socket, text.data(), text.size(), MSG_NOSIGNAL | MSG_DONTWAIT); }

// One whole request as a worker's cpp-httplib reads it: its reads end where
// the request does, and never touch the socket; writes go to the socket.
class RequestStream final : public httplib::Stream {
 public:
  RequestStream(int socket, std::string_view request, std::chrono::milliseconds io, const std::atomic<bool>& stopping)
      : socket_(socket), request_(request), io_(io), stopping_(stopping) {}

  size_t consumed() const { return offset_; }

  bool is_readable() const override { return offset_ < request_.size(); }
  bool is_writable() const override { return ready(socket_, POLLOUT, Clock::now() + io_, stopping_); }
  ssize_t read(char* ptr, size_t size) override {
    const size_t n = std::min(size, request_.size() - offset_);
    std::memcpy(ptr, request_.data() + offset_, n);
    offset_ += n;
    return ssize_t(n);
  }
  ssize_t write(const char* ptr, size_t size) override {
    // cpp-httplib answers "Expect: 100-continue" itself, but only now, with
    // the body read already: the gate sent the one that was needed.
    if (!wrote_ && std::string_view(ptr, size) == kContinue) return ssize_t(size);
    wrote_ = true;
    for (;;) {
      const ssize_t n = ::send(socket_, ptr, size, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n >= 0) return n;
      if (errno == EINTR) continue;
      if ((errno != EAGAIN && errno != EWOULDBLOCK) || !is_writable()) return -1;
    }
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override { address_of(socket_, true, ip, port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { address_of(socket_, false, ip, port); }
  socket_t socket() const override { return socket_; }

 private:
  int socket_;
  std::string_view request_;
  size_t offset_ = 0;
  bool wrote_ = false;
  std::chrono::milliseconds io_;
  const std::atomic<bool>& stopping_;
};

// Whether the connection a worker answers on is to end after this answer.
thread_local bool closing = false;

}  // namespace

void close_after_answer() { closing = true; }

// ------------------------------------------------------------------ gate

struct Connection {
  int fd = -1;
  std::string bytes;             // received, not yet answered
  Clock::time_point since;       // the connection's start, or its last answer
  size_t requests_left = 0;
  size_t searched = 0;           // how far the head's end was looked for
  RequestExtent extent;          // of the request at the front, once its head is in
  bool continue_sent = false;
  bool keep = false;             // a worker's verdict: serve the next request
  // Ending gently (see end_gently).
  bool draining = false;
  size_t drained = 0;
};

struct ConnectionGate::Impl {
  ConnectionLimits limits;
  size_t workers;
  ProcessRequest process;
  Refusal refusal;
  std::atomic<bool> stopping{false};
  int wake_fd = -1;

  std::mutex returned_mutex;
  std::vector<Connection*> returned;  // answered, for the gate to take back

  // The gate thread's own.
  std::vector<std::unique_ptr<Connection>> waiting;
  size_t answering = 0;  // connections a worker has
  size_t buffered = 0;   // bytes held by all connections
  Clock::time_point accept_paused_until;
  std::unique_ptr<httplib::ThreadPool> pool;

  void wake() {
    const uint64_t one = 1;
    (void)::write(wake_fd, &one, sizeof one);
  }

  // ---- the worker's side
  void answer(Connection* c);

  // ---- the gate's side
  void serve(int listening_fd);
  void take_back_answered();
  void accept_new(int listening_fd);
  void read_request(Connection& c);
  void look_for_head(Connection& c);
  bool due_for_answer(const Connection& c) const { return !c.draining && c.extent.complete(c.bytes.size()); }
  void refuse(Connection& c, int status, const std::string& message, const std::string& code);
  void end_gently(Connection& c);
  void drain(Connection& c);
  void close_now(Connection& c);
  void expire(Connection& c, Clock::time_point now);
  Clock::time_point next_deadline(const Connection& c) const;
  bool evict_longest_waiting();
  void dispatch_and_sweep();
  size_t open_connections() const { return waiting.size() + answering; }
};

ConnectionGate::ConnectionGate(ConnectionLimits limits, size_t workers, ProcessRequest process, Refusal refusal)
    : impl_(std::make_unique<Impl>()) {
  impl_->limits = limits;
  impl_->workers = std::max<size_t>(workers, 1);
  impl_->process = std::move(process);
  impl_->refusal = std::move(refusal);
  impl_->wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  // A connection takes a file descriptor: keep room for the model's and
  // the server's own under the process's limit.
  rlimit files{};
  if (::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur != RLIM_INFINITY)
    impl_->limits.max_connections =
        std::min<size_t>(impl_->limits.max_connections, files.rlim_cur > 256 ? files.rlim_cur - 128 : files.rlim_cur / 2);
}

ConnectionGate::~ConnectionGate() {
  if (impl_->wake_fd >= 0) ::close(impl_->wake_fd);
}

void ConnectionGate::stop() {
  impl_->stopping = true;
  impl_->wake();
}

void ConnectionGate::run(int listening_fd) {
  if (impl_->wake_fd < 0 || impl_->stopping) {
    ::close(listening_fd);
    return;
  }
  impl_->serve(listening_fd);
}

void ConnectionGate::Impl::answer(Connection* c) {
  RequestStream stream(c->fd, std::string_view(c->bytes).substr(0, c->extent.bytes), limits.io, stopping);
  closing = false;
  bool handled = false, connection_closed = false;
  try {
    handled = process(stream, c->requests_left == 0, connection_closed);
  } catch (const std::exception&) {
    handled = false;  // memory ran out, say: this connection ends, not the server
  }
  // cpp-httplib must have read exactly the request the gate measured; where
  // it read less (a refusal before the body) the rest is no request either.
  c->keep = handled && !connection_closed && !closing && stream.consumed() == c->extent.bytes &&
            c->requests_left > 0;
  closing = false;
  {
    std::lock_guard lock(returned_mutex);
    returned.push_back(c);
  }
  wake();
}

void ConnectionGate::Impl::serve(int listening_fd) {
  ::fcntl(listening_fd, F_SETFL, ::fcntl(listening_fd, F_GETFL) | O_NONBLOCK);
  pool = std::make_unique<httplib::ThreadPool>(workers);
  std::vector<pollfd> polled;
  while (!stopping) {
    take_back_answered();
    dispatch_and_sweep();
    const Clock::time_point now = Clock::now();
    Clock::time_point until = now + std::chrono::seconds(1);
    polled.assign({{wake_fd, POLLIN, 0}, {now >= accept_paused_until ? listening_fd : -1, POLLIN, 0}});
    for (const auto& c : waiting) {
      polled.push_back({c->fd, short(due_for_answer(*c) ? POLLOUT : POLLIN), 0});
      until = std::min(until, next_deadline(*c));
    }
    if (accept_paused_until > now) until = std::min(until, accept_paused_until);
    const auto wait = std::chrono::ceil<std::chrono::milliseconds>(std::max(until - now, Clock::duration::zero()));
    if (::poll(polled.data(), polled.size(), int(wait.count())) < 0 && errno != EINTR) break;
    if (polled[0].revents) {
      uint64_t count;
      (void)::read(wake_fd, &count, sizeof count);
    }
    for (size_t i = 0; i + 2 < polled.size(); i++) {
      Connection& c = *waiting[i];
      if (!polled[i + 2].revents || due_for_answer(c)) continue;  // a due one goes in dispatch_and_sweep
      c.draining ? drain(c) : read_request(c);
    }
    if (polled[1].revents) accept_new(listening_fd);
  }
  ::close(listening_fd);
  for (auto& c : waiting) close_now(*c);
  waiting.clear();
  pool->shutdown();  // each worker ends its answer: the scheduler has stopped, writes end with `stopping`
  take_back_answered();
  for (auto& c : waiting) close_now(*c);
  waiting.clear();
}

void ConnectionGate::Impl::take_back_answered() {
  std::vector<Connection*> answered;
  {
    std::lock_guard lock(returned_mutex);
    answered.swap(returned);
  }
  for (Connection* raw : answered) {
    std::unique_ptr<Connection> c(raw);
    answering--;
    buffered -= c->extent.bytes;
    c->bytes.erase(0, c->extent.bytes);
    c->extent = RequestExtent{};
    c->searched = 0;
    c->continue_sent = false;
    c->since = Clock::now();
    if (!c->keep) {
      end_gently(*c);
    } else {
      look_for_head(*c);  // a request may have come in behind the last one
    }
    waiting.push_back(std::move(c));
  }
}

void ConnectionGate::Impl::accept_new(int listening_fd) {
  for (int accepted = 0; accepted < 64; accepted++) {
    const int fd = ::accept4(listening_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      // Out of descriptors: make room, or look again in a moment rather
      // than at once (the socket stays readable).
      if ((errno == EMFILE || errno == ENFILE) && !evict_longest_waiting())
        accept_paused_until = Clock::now() + std::chrono::milliseconds(50);
      return;
    }
    if (open_connections() >= limits.max_connections && !evict_longest_waiting()) {
      ::close(fd);  // every connection has a worker: nothing to make room with
      continue;
    }
    auto c = std::make_unique<Connection>();
    c->fd = fd;
    c->since = Clock::now();
    c->requests_left = limits.requests_per_connection;
    waiting.push_back(std::move(c));
  }
}

void ConnectionGate::Impl::read_request(Connection& c) {
  const size_t room = limits.max_head + limits.max_body + 1 - std::min(c.bytes.size(), limits.max_head + limits.max_body);
  char chunk[64 << 10];
  const ssize_t n = ::recv(c.fd, chunk, std::min(sizeof chunk, room), 0);
  if (n < 0) {
    if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) close_now(c);
    return;
  }
  if (n == 0) return close_now(c);  // before its request was whole (one that was is not read from)
  c.bytes.append(chunk, size_t(n));
  buffered += size_t(n);
  look_for_head(c);
}

void ConnectionGate::Impl::look_for_head(Connection& c) {
  if (!c.extent.head_complete) {
    c.searched = find_head_end(c.bytes, c.searched);
    if (c.searched != std::string::npos) {
      if (c.bytes.size() > limits.max_head)
        refuse(c, 431, "the request's line and headers are over " + std::to_string(limits.max_head >> 10) + " KiB",
               "request_header_fields_too_large");
      return;
    }
    c.extent = measure_request(c.bytes, limits.max_body);
    if (c.extent.head_bytes > limits.max_head)
      return refuse(c, 431, "the request's line and headers are over " + std::to_string(limits.max_head >> 10) + " KiB",
                    "request_header_fields_too_large");
  }
  if (c.extent.expects_continue && !c.continue_sent && !c.extent.complete(c.bytes.size())) {
    send_now(c.fd, kContinue);
    c.continue_sent = true;
  }
}

void ConnectionGate::Impl::refuse(Connection& c, int status, const std::string& message, const std::string& code) {
  send_now(c.fd, refusal(status, message, code));
  end_gently(c);
}

// Ends a connection without losing the answer just sent: closing a socket
// with unread bytes in it resets the connection, and the client may then
// lose the answer. So the sending side is shut first, and what the client
// still sends is read and dropped for a moment (up to 256 KiB, a second),
// until it closes too.
void ConnectionGate::Impl::end_gently(Connection& c) {
  ::shutdown(c.fd, SHUT_WR);
  buffered -= c.bytes.size();
  std::string().swap(c.bytes);
  c.extent = RequestExtent{};
  c.draining = true;
  c.since = Clock::now();
}

void ConnectionGate::Impl::drain(Connection& c) {
  char sink[4096];
  const ssize_t n = ::recv(c.fd, sink, sizeof sink, MSG_DONTWAIT);
  if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) return;
  if (n > 0) c.drained += size_t(n);
  if (n <= 0 || c.drained >= (size_t(256) << 10)) close_now(c);
}

void ConnectionGate::Impl::close_now(Connection& c) {
  if (c.fd < 0) return;
  ::close(c.fd);
  c.fd = -1;
  buffered -= c.bytes.size();
  std::string().swap(c.bytes);
}

Clock::time_point ConnectionGate::Impl::next_deadline(const Connection& c) const {
  if (c.draining) return c.since + std::chrono::seconds(1);
  if (due_for_answer(c)) return c.since + limits.request;
  // Idle before a request begins no longer than keep-alive allows.
  return c.since + (c.bytes.empty() ? std::min(limits.keep_alive, limits.request) : limits.request);
}

void ConnectionGate::Impl::expire(Connection& c, Clock::time_point now) {
  if (c.fd < 0 || now < next_deadline(c)) return;
  // Quietly when no request has begun, or one is whole but its client
  // takes no answer.
  if (c.draining || c.bytes.empty() || due_for_answer(c)) return close_now(c);
  refuse(c, 408,
         "the request did not arrive whole within " + std::to_string(limits.request.count() / 1000) +
             " s (warden serve --timeout)",
         "request_timeout");
}

// Closes the connection that has waited longest for its request (one being
// closed gently first); false when every connection is with a worker.
bool ConnectionGate::Impl::evict_longest_waiting() {
  auto longest = waiting.end();
  for (auto it = waiting.begin(); it != waiting.end(); ++it) {
    if ((*it)->fd < 0) continue;
    if (longest == waiting.end() || (*it)->draining > (*longest)->draining ||
        ((*it)->draining == (*longest)->draining && (*it)->since < (*longest)->since))
      longest = it;
  }
  if (longest == waiting.end()) return false;
  close_now(**longest);
  return true;
}

// Hands each whole request whose socket can take an answer to a worker,
// ends connections past their deadline, keeps the held bytes within
// their limit, and drops closed connections.
void ConnectionGate::Impl::dispatch_and_sweep() {
  const Clock::time_point now = Clock::now();
  while (buffered > limits.max_buffered && evict_longest_waiting()) {
  }
  std::vector<std::unique_ptr<Connection>> still_waiting;
  still_waiting.reserve(waiting.size());
  for (auto& c : waiting) {
    expire(*c, now);
    if (c->fd < 0) continue;
    if (due_for_answer(*c)) {
      pollfd p{c->fd, POLLOUT, 0};
      if (::poll(&p, 1, 0) == 1 && (p.revents & POLLOUT)) {
        c->requests_left--;
        answering++;
        Connection* raw = c.release();
        pool->enqueue([this, raw] { answer(raw); });
        continue;
      }
    }
    still_waiting.push_back(std::move(c));
  }
  waiting.swap(still_waiting);
}

}  // namespace warden::server
