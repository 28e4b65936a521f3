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
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

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

// Sends from the front of `pending` what the socket takes now; false when
// the connection failed.
bool send_pending(int socket, std::string& pending) {
  while (!pending.empty()) {
    const ssize_t n = ::send(socket, pending.data(), pending.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      pending.erase(0, size_t(n));
    } else if (n == 0 || errno != EINTR) {
      return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    }
  }
  return true;
}

// One whole request as a worker's cpp-httplib reads it: its reads end where
// the request does, and never touch the socket. Writes go to the socket,
// and what it does not take at once to `unsent`, which the gate sends
// after the answer: a worker never waits for its client, so a client that
// reads slowly, or not at all, holds no worker either. What waits is
// counted in the gate's byte budget once the answer is made.
class RequestStream final : public httplib::Stream {
 public:
  RequestStream(int socket, std::string_view request, std::string& unsent)
      : socket_(socket), request_(request), unsent_(unsent) {}

  size_t consumed() const { return offset_; }

  bool is_readable() const override { return offset_ < request_.size(); }
  bool is_writable() const override { return true; }  // what the socket does not take waits in `unsent`
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
    if (!send_pending(socket_, unsent_)) return -1;
    size_t sent = 0;
    if (unsent_.empty() && size > 0) {
      const ssize_t n = ::send(socket_, ptr, size, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n >= 0) sent = size_t(n);
      else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return -1;
    }
    unsent_.append(ptr + sent, size - sent);
    return ssize_t(size);
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override { address_of(socket_, true, ip, port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { address_of(socket_, false, ip, port); }
  socket_t socket() const override { return socket_; }

 private:
  int socket_;
  std::string_view request_;
  std::string& unsent_;
  size_t offset_ = 0;
  bool wrote_ = false;
};

// Whether the connection a worker answers on is to end after this answer.
thread_local bool closing = false;

}  // namespace

void close_after_answer() { closing = true; }

// ------------------------------------------------------------------ gate

struct Connection {
  int fd = -1;
  std::string bytes;             // received, not yet answered
  std::string unsent;            // the last answer's bytes the socket has not taken yet
  Clock::time_point since;       // the connection's start or its last answer; sending: the last progress
  Clock::time_point heard;       // when the client last sent anything (or was answered)
  size_t requests_left = 0;
  size_t searched = 0;           // how far the head's end was looked for
  RequestExtent extent;          // of the request at the front, once its head is in
  bool continue_sent = false;
  bool keep = false;             // a worker's verdict: serve the next request
  bool polled = false;           // the gate has looked whether it sent anything
  // Ending gently (see end_gently).
  bool draining = false;
  size_t drained = 0;
};

// What a connection the gate holds is doing.
enum class Stage { draining, idle, arriving, sending, whole };

struct ConnectionGate::Impl {
  ConnectionLimits limits;
  size_t workers;
  ProcessRequest process;
  Refusal refusal;
  Metrics* metrics = nullptr;
  std::atomic<bool> stopping{false};
  int wake_fd = -1;

  std::mutex returned_mutex;
  std::vector<Connection*> returned;  // answered, for the gate to take back

  // The gate thread's own.
  std::vector<std::unique_ptr<Connection>> waiting;
  size_t open = 0;       // connections open, with a worker or not
  size_t answering = 0;  // connections a worker has
  size_t held = 0;       // bytes the connections in `waiting` hold
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
  void send_unsent(Connection& c);
  void after_answer(Connection& c);
  void refuse(Connection& c, int status, const std::string& message, const std::string& code);
  void end_gently(Connection& c);
  void drain(Connection& c);
  void close_now(Connection& c);
  void expire(Connection& c, Clock::time_point now);
  Clock::time_point next_deadline(const Connection& c) const;
  bool make_room_for_a_connection(Clock::time_point now);
  bool make_room_for_bytes();
  void dispatch_and_sweep();

  static Stage stage(const Connection& c) {
    if (c.draining) return Stage::draining;
    if (!c.unsent.empty()) return Stage::sending;
    if (c.extent.complete(c.bytes.size())) return Stage::whole;
    return c.bytes.empty() ? Stage::idle : Stage::arriving;
  }
};

ConnectionGate::ConnectionGate(ConnectionLimits limits, size_t workers, ProcessRequest process, Refusal refusal,
                               Metrics& metrics)
    : impl_(std::make_unique<Impl>()) {
  impl_->metrics = &metrics;
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
  RequestStream stream(c->fd, std::string_view(c->bytes).substr(0, c->extent.bytes), c->unsent);
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
      // A whole request waits for a worker (the wake) and for its socket
      // to take an answer.
      const Stage at = stage(*c);
      polled.push_back({c->fd, short(at == Stage::sending || at == Stage::whole ? POLLOUT : POLLIN), 0});
      if (at == Stage::whole && answering >= workers) polled.back().fd = -1;
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
      c.polled = true;
      if (!polled[i + 2].revents) continue;
      switch (stage(c)) {
        case Stage::draining: drain(c); break;
        case Stage::sending: send_unsent(c); break;
        case Stage::whole: break;  // for dispatch_and_sweep
        case Stage::idle:
        case Stage::arriving: read_request(c); break;
      }
    }
    if (polled[1].revents) accept_new(listening_fd);
  }
  ::close(listening_fd);
  for (auto& c : waiting) close_now(*c);
  waiting.clear();
  pool->shutdown();  // each worker ends its answer at once: the scheduler has stopped, and no write waits
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
    c->bytes.erase(0, c->extent.bytes);
    held += c->bytes.size() + c->unsent.size();
    c->extent = RequestExtent{};
    c->searched = 0;
    c->continue_sent = false;
    c->since = c->heard = Clock::now();
    if (c->unsent.empty()) after_answer(*c);
    waiting.push_back(std::move(c));
  }
}

// The answer is out: the next request, or the end.
void ConnectionGate::Impl::after_answer(Connection& c) {
  if (!c.keep) return end_gently(c);
  look_for_head(c);  // a request may have come in behind the last one
}

void ConnectionGate::Impl::accept_new(int listening_fd) {
  for (int accepted = 0; accepted < 64; accepted++) {
    const int fd = ::accept4(listening_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    const Clock::time_point now = Clock::now();
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      // Out of descriptors: make room, or look again in a moment rather
      // than at once (the socket stays readable).
      if ((errno == EMFILE || errno == ENFILE) && !make_room_for_a_connection(now))
        accept_paused_until = now + std::chrono::milliseconds(50);
      return;
    }
    if (open >= limits.max_connections && !make_room_for_a_connection(now)) {
      ::close(fd);  // every connection has a worker: nothing to make room with
      metrics->connections_closed_for_room_total++;
      continue;
    }
    auto c = std::make_unique<Connection>();
    c->fd = fd;
    c->since = c->heard = now;
    c->requests_left = limits.requests_per_connection;
    open++;
    metrics->connections_open = int64_t(open);
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
  held += size_t(n);
  c.heard = Clock::now();
  look_for_head(c);
}

void ConnectionGate::Impl::look_for_head(Connection& c) {
  const std::string too_large = "the request's line and headers are over " + std::to_string(limits.max_head >> 10) + " KiB";
  if (!c.extent.head_complete) {
    c.searched = find_head_end(c.bytes, c.searched);
    if (c.searched != std::string::npos) {
      if (c.bytes.size() > limits.max_head) refuse(c, 431, too_large, "request_header_fields_too_large");
      return;
    }
    c.extent = measure_request(c.bytes, limits.max_body);
    if (c.extent.head_bytes > limits.max_head) return refuse(c, 431, too_large, "request_header_fields_too_large");
  }
  if (c.extent.expects_continue && !c.continue_sent && !c.extent.complete(c.bytes.size())) {
    send_now(c.fd, kContinue);
    c.continue_sent = true;
  }
}

void ConnectionGate::Impl::send_unsent(Connection& c) {
  const size_t before = c.unsent.size();
  const bool alive = send_pending(c.fd, c.unsent);
  held -= before - c.unsent.size();  // also what went out before a failure
  if (!alive) return close_now(c);
  if (c.unsent.size() < before) c.since = Clock::now();  // the deadline counts from the last progress
  if (c.unsent.empty()) after_answer(c);
}

void ConnectionGate::Impl::refuse(Connection& c, int status, const std::string& message, const std::string& code) {
  metrics->gate_refusals_total++;
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
  held -= c.bytes.size() + c.unsent.size();
  std::string().swap(c.bytes);
  std::string().swap(c.unsent);
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
  open--;
  metrics->connections_open = int64_t(open);
  held -= c.bytes.size() + c.unsent.size();
  std::string().swap(c.bytes);
  std::string().swap(c.unsent);
}

Clock::time_point ConnectionGate::Impl::next_deadline(const Connection& c) const {
  switch (stage(c)) {
    case Stage::draining: return c.since + std::chrono::seconds(1);
    case Stage::sending: return c.since + limits.io;
    case Stage::idle: return c.since + std::min(limits.keep_alive, limits.request);  // before a request begins
    case Stage::arriving:
    case Stage::whole: break;
  }
  return c.since + limits.request;
}

void ConnectionGate::Impl::expire(Connection& c, Clock::time_point now) {
  if (c.fd < 0 || now < next_deadline(c)) return;
  const std::string seconds = std::to_string(limits.request.count() / 1000) + " s (warden serve --timeout)";
  switch (stage(c)) {
    case Stage::arriving:
      return refuse(c, 408, "the request did not arrive whole within " + seconds, "request_timeout");
    case Stage::whole:
      // Whole, but every worker stayed busy (or its client takes no answer).
      return refuse(c, 503, "the server was too busy to take the request within " + seconds, "server_busy");
    default:
      return close_now(c);  // no request begun, a client that takes no answer, or a gentle end done
  }
}

// When all connections are open, a new one closes one that waits: one
// being ended first, then the one whose client has been silent longest
// (its request still to come or arriving), then one taking its answer (the
// oldest), then a whole request waiting for a worker (the oldest). Only
// connections the gate has looked at since they were opened count, so that
// one just opened is not taken for one that sends nothing. False when
// every connection has a worker.
bool ConnectionGate::Impl::make_room_for_a_connection(Clock::time_point now) {
  auto cost = [now](const Connection& c) {
    const Stage at = stage(c);
    if (at == Stage::idle || at == Stage::arriving) return std::pair{int(Stage::arriving), c.heard - now};
    return std::pair{int(at), c.since - now};
  };
  Connection* chosen = nullptr;
  for (bool only_polled : {true, false}) {
    for (const auto& c : waiting)
      if (c->fd >= 0 && (c->polled || !only_polled) && (!chosen || cost(*c) < cost(*chosen))) chosen = c.get();
    if (chosen) break;
  }
  if (!chosen) return false;
  close_now(*chosen);
  metrics->connections_closed_for_room_total++;
  return true;
}

// When the connections that wait hold too many bytes: the one holding the
// most goes, one whose request is still arriving or whose answer is going
// out before a whole request waiting for a worker. False when none holds any.
bool ConnectionGate::Impl::make_room_for_bytes() {
  auto weight = [](const Connection& c) {
    return std::pair{stage(c) != Stage::whole, c.bytes.size() + c.unsent.size()};
  };
  Connection* chosen = nullptr;
  for (const auto& c : waiting)
    if (c->fd >= 0 && weight(*c).second > 0 && (!chosen || weight(*chosen) < weight(*c))) chosen = c.get();
  if (!chosen) return false;
  if (stage(*chosen) == Stage::sending) {
    close_now(*chosen);  // mid-answer: no room for a refusal
  } else {
    refuse(*chosen, 503, "the server holds too many requests' bytes to take this one now", "server_busy");
  }
  return true;
}

// Hands whole requests whose socket can take an answer to free workers,
// ends connections past their deadline, keeps the bytes held within their
// limit, and drops closed connections.
void ConnectionGate::Impl::dispatch_and_sweep() {
  const Clock::time_point now = Clock::now();
  while (held > limits.max_buffered && make_room_for_bytes()) {
  }
  std::vector<std::unique_ptr<Connection>> still_waiting;
  still_waiting.reserve(waiting.size());
  for (auto& c : waiting) {
    expire(*c, now);
    if (c->fd < 0) continue;
    if (stage(*c) == Stage::whole && answering < workers) {
      pollfd p{c->fd, POLLOUT, 0};
      if (::poll(&p, 1, 0) == 1 && (p.revents & POLLOUT)) {
        c->requests_left--;
        answering++;
        held -= c->bytes.size();
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
