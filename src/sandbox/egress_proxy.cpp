#include "sandbox/egress_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>

#include <nlohmann/json.hpp>

#include "sandbox/fd.h"
#include "sandbox/proxy_request.h"
#include "sandbox/tls_hello.h"
#include "util/error.h"

namespace warden::sandbox {
namespace {

using Clock = std::chrono::steady_clock;

bool write_all(int fd, const char* data, size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, data, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    data += w;
    n -= size_t(w);
  }
  return true;
}

void reply(int fd, int code, const char* status, const std::string& why) {
  std::string body = "warden egress proxy: " + why + "\n";
  std::string r = "HTTP/1.1 " + std::to_string(code) + " " + status + "\r\nContent-Type: text/plain\r\n"
                  "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  write_all(fd, r.data(), r.size());
}

// Waits for `fd` (and the stop pipe); false on stop, timeout or error.
bool wait_readable(int fd, int stop_fd, int timeout_ms) {
  pollfd p[2] = {{fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
  int n = ::poll(p, 2, timeout_ms);
  return n > 0 && !p[1].revents && p[0].revents;
}

// Appends what the client sends next to `buf`; false (and `error`) when the
// deadline passes, the stop pipe fires or the client closes.
bool read_more(int fd, int stop_fd, Clock::time_point deadline, std::string& buf, std::string& error) {
  int left = int(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
  if (left <= 0 || !wait_readable(fd, stop_fd, left)) {
    error = "timed out";
    return false;
  }
  char chunk[4096];
  ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
  if (n <= 0) {
    error = "client closed the connection";
    return false;
  }
  buf.append(chunk, size_t(n));
  return true;
}

constexpr std::chrono::seconds kClientWait{30};

// Reads the request head; `rest` receives bytes that came after it.
bool read_head(int fd, int stop_fd, std::string& head, std::string& rest, std::string& error) {
  std::string buf;
  const auto deadline = Clock::now() + kClientWait;
  while (true) {
    if (size_t len = request_head_length(buf)) {
      head = buf.substr(0, len);
      rest = buf.substr(len);
      return true;
    }
    if (buf.size() > kMaxRequestHead) {
      error = "request head too large";
      return false;
    }
    if (!read_more(fd, stop_fd, deadline, buf, error)) {
      error = "no complete request head: " + error;
      return false;
    }
  }
}

// Reads the tunnel's first bytes (after `buf`, what came with the CONNECT)
// until they hold a whole ClientHello, and checks that it is for `host`: a
// name must be its server_name, an IP literal may go without one.
bool read_client_hello_for(int fd, int stop_fd, const std::string& host, std::string& buf, std::string& error) {
  const auto deadline = Clock::now() + kClientWait;
  while (true) {
    ClientHelloScan scan = scan_client_hello(buf);
    if (scan.status == ClientHelloScan::Status::invalid) {
      error = scan.error;
      return false;
    }
    if (scan.status == ClientHelloScan::Status::complete) {
      const bool ip_literal = parse_ip_literal(host).has_value();
      if (scan.server_name ? *scan.server_name == host : ip_literal) return true;
      error = scan.server_name ? "TLS server name '" + *scan.server_name + "' is not the CONNECT host"
                               : "TLS ClientHello without a server name";
      return false;
    }
    if (!read_more(fd, stop_fd, deadline, buf, error)) {
      error = "no complete TLS ClientHello: " + error;
      return false;
    }
  }
}

// How many body bytes may follow a plain request's head: its Content-Length,
// 0 without one. The proxy forwards exactly one request per connection, so it
// must know where that request ends: a chunked body, or a length given twice
// or unreadably, is refused.
bool request_body_length(const ProxyRequest& r, uint64_t& length, std::string& why) {
  length = 0;
  bool seen = false;
  for (const auto& [name, value] : r.headers) {
    if (::strcasecmp(name.c_str(), "Transfer-Encoding") == 0) {
      why = "Transfer-Encoding in a request is not supported; send Content-Length";
      return false;
    }
    if (::strcasecmp(name.c_str(), "Content-Length") != 0) continue;
    if (seen) {
      why = "more than one Content-Length header";
      return false;
    }
    seen = true;
    if (value.empty() || value.size() > 15 || value.find_first_not_of("0123456789") != std::string::npos) {
      why = "Content-Length '" + value + "' is not a number of bytes";
      return false;
    }
    length = std::stoull(value);
  }
  return true;
}

int connect_with_timeout(const IpAddress& a, uint16_t port, int timeout_ms) {
  sockaddr_storage ss{};
  socklen_t len;
  if (a.v6) {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(port);
    std::memcpy(&s6->sin6_addr, a.bytes.data(), 16);
    len = sizeof *s6;
  } else {
    auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
    s4->sin_family = AF_INET;
    s4->sin_port = htons(port);
    std::memcpy(&s4->sin_addr, a.bytes.data(), 4);
    len = sizeof *s4;
  }
  int fd = ::socket(a.v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    if (errno != EINPROGRESS) {
      ::close(fd);
      return -1;
    }
    pollfd p{fd, POLLOUT, 0};
    int err = 0;
    socklen_t elen = sizeof err;
    if (::poll(&p, 1, timeout_ms) != 1 || ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 || err != 0) {
      ::close(fd);
      return -1;
    }
  }
  int flags = ::fcntl(fd, F_GETFL);
  ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  return fd;
}

// Copies bytes both ways until both directions are finished, the stop pipe
// fires or nothing moves for `idle_ms`. The client may send at most
// `up_budget` more bytes: one byte over it ends the connection (a plain
// request's body is all that may follow its head).
void relay(int client, int upstream, int stop_fd, int idle_ms, uint64_t up_budget, ProxyLogEntry& entry) {
  bool up_open = true, down_open = true;
  char buf[65536];
  while (up_open || down_open) {
    pollfd p[3] = {{up_open ? client : -1, POLLIN, 0}, {down_open ? upstream : -1, POLLIN, 0}, {stop_fd, POLLIN, 0}};
    int n = ::poll(p, 3, idle_ms);
    if (n <= 0 || p[2].revents) return;
    for (int i = 0; i < 2; i++) {
      if (!p[i].revents) continue;
      const int from = i == 0 ? client : upstream, to = i == 0 ? upstream : client;
      ssize_t got = ::recv(from, buf, sizeof buf, 0);
      if (got <= 0) {
        ::shutdown(to, SHUT_WR);
        (i == 0 ? up_open : down_open) = false;
        continue;
      }
      const bool over_budget = i == 0 && uint64_t(got) > up_budget;
      if (over_budget) got = ssize_t(up_budget);
      if (i == 0) up_budget -= uint64_t(got);
      if (!write_all(to, buf, size_t(got))) return;
      (i == 0 ? entry.bytes_up : entry.bytes_down) += uint64_t(got);
      if (over_budget) {
        entry.reason = "client sent more than one request; connection closed";
        return;
      }
    }
  }
}

bool iequals(const std::string& a, const char* b) { return ::strcasecmp(a.c_str(), b) == 0; }

// The host part of a Host header value: "name", "name:port", "[v6]" or
// "[v6]:port".
std::string host_of_header(const std::string& value) {
  if (!value.empty() && value[0] == '[') {
    size_t close = value.find(']');
    return close == std::string::npos ? std::string() : value.substr(1, close - 1);
  }
  return normalize_host(value.substr(0, value.rfind(':')));
}

// The Host header of a plain request must name the URI's host: otherwise a
// server behind an allowed name could be asked for another virtual host.
bool host_header_matches(const ProxyRequest& r, std::string& why) {
  int count = 0;
  for (const auto& [name, value] : r.headers) {
    if (!iequals(name, "Host")) continue;
    if (++count > 1) {
      why = "more than one Host header";
      return false;
    }
    if (host_of_header(value) != r.host) {
      why = "Host header '" + value + "' does not match the URI host";
      return false;
    }
  }
  return true;
}

// The head sent upstream for a plain request: origin-form target, hop-by-hop
// and proxy headers dropped, one request only.
std::string upstream_head(const ProxyRequest& r) {
  std::string out = r.method + " " + r.origin_form + " " + r.version + "\r\n";
  bool has_host = false;
  for (const auto& [name, value] : r.headers) {
    if (iequals(name, "Proxy-Connection") || iequals(name, "Proxy-Authorization") ||
        iequals(name, "Connection") || iequals(name, "Keep-Alive"))
      continue;
    if (iequals(name, "Host")) has_host = true;
    out += name + ": " + value + "\r\n";
  }
  if (!has_host) out += "Host: " + (r.port == 80 ? r.host : r.host + ":" + std::to_string(r.port)) + "\r\n";
  return out + "Connection: close\r\n\r\n";
}

}  // namespace

std::string ProxyLogEntry::to_json() const {
  nlohmann::json j = {{"method", method}, {"host", host},           {"port", port},
                      {"allowed", allowed}, {"reason", reason},     {"bytes_up", bytes_up},
                      {"bytes_down", bytes_down}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

EgressProxy::EgressProxy(ProxyConfig config) : config_(std::move(config)) {
  validate_rules(config_.rules);
  if (!config_.resolver) config_.resolver = system_resolver();
  if (::pipe2(stop_pipe_, O_CLOEXEC) != 0) throw Error("egress proxy: cannot create a pipe");
}

EgressProxy::~EgressProxy() {
  stop();
  ::close(stop_pipe_[0]);
  ::close(stop_pipe_[1]);
}

void EgressProxy::start(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) throw Error("egress proxy: socket path too long: " + path);
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 64) != 0)
    throw Error("egress proxy: cannot listen on " + path + ": " + std::strerror(errno));
  acceptor_ = std::thread([this] { accept_loop(); });
}

void EgressProxy::stop() {
  if (stop_pipe_[1] >= 0) {
    char c = 1;
    [[maybe_unused]] ssize_t w = ::write(stop_pipe_[1], &c, 1);
  }
  if (acceptor_.joinable()) acceptor_.join();
  std::unique_lock lock(mutex_);
  idle_.wait(lock, [this] { return active_ == 0; });
  if (listen_fd_ >= 0) {
    ::close(listen_fd_);
    listen_fd_ = -1;
  }
}

void EgressProxy::accept_loop() {
  while (true) {
    pollfd p[2] = {{listen_fd_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (p[1].revents) return;
    int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    std::lock_guard lock(mutex_);
    if (active_ >= config_.max_connections) {
      reply(client, 503, "Service Unavailable", "too many connections");
      ::close(client);
      continue;
    }
    active_++;
    std::thread([this, client] {
      serve_connection(client);
      std::lock_guard done(mutex_);
      if (--active_ == 0) idle_.notify_all();
    }).detach();
  }
}

void EgressProxy::log(const ProxyLogEntry& entry) {
  std::lock_guard lock(log_mutex_);
  if (config_.on_log) config_.on_log(entry);
  if (!config_.log_path.empty()) {
    if (FILE* f = std::fopen(config_.log_path.c_str(), "ae")) {
      std::fprintf(f, "%s\n", entry.to_json().c_str());
      std::fclose(f);
    }
  }
}

void EgressProxy::serve_connection(int client_fd) {
  Fd client(client_fd);
  const int stop_fd = stop_pipe_[0];
  ProxyLogEntry entry;
  entry.method = "?";
  std::string head, rest, error;
  if (!read_head(client.fd, stop_fd, head, rest, error)) {
    entry.reason = error;
    reply(client.fd, 400, "Bad Request", error);
    return log(entry);
  }
  auto request = parse_proxy_request(head, error);
  if (!request) {
    entry.reason = error;
    reply(client.fd, 400, "Bad Request", error);
    return log(entry);
  }
  entry.method = request->method;
  entry.host = request->host;
  entry.port = request->port;
  std::string why;
  uint64_t body_length = 0;
  if (!request->is_connect) {
    bool ok = host_header_matches(*request, why) && request_body_length(*request, body_length, why);
    if (ok && rest.size() > body_length) {
      why = "bytes after the request body: one request per connection";
      ok = false;
    }
    if (!ok) {
      entry.reason = why;
      reply(client.fd, 403, "Forbidden", why);
      return log(entry);
    }
  }
  EgressDecision decision = decide_egress(config_.rules, config_.resolver, request->host, request->port);
  if (!decision.allowed) {
    entry.reason = decision.reason;
    reply(client.fd, 403, "Forbidden", request->host + ": " + decision.reason);
    return log(entry);
  }
  Fd upstream;
  for (const auto& address : decision.addresses) {
    upstream.fd = connect_with_timeout(address, request->port, config_.connect_timeout_ms);
    if (upstream.fd >= 0) break;
  }
  if (upstream.fd < 0) {
    entry.reason = "cannot connect to destination";
    reply(client.fd, 502, "Bad Gateway", entry.reason);
    return log(entry);
  }
  uint64_t up_budget = UINT64_MAX;
  if (request->is_connect) {
    const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
    if (!write_all(client.fd, ok, sizeof ok - 1)) return log(entry);
    // Nothing reaches the destination before the tunnel shows it carries
    // TLS to the name it was opened for.
    if (!read_client_hello_for(client.fd, stop_fd, request->host, rest, why)) {
      entry.reason = why;
      return log(entry);
    }
  } else {
    const std::string up = upstream_head(*request);
    if (!write_all(upstream.fd, up.data(), up.size())) return log(entry);
    entry.bytes_up += up.size();
    up_budget = body_length - rest.size();
  }
  entry.allowed = true;
  entry.reason = "allowed";
  // Bytes that arrived after the head belong to this one destination.
  if (!rest.empty()) {
    if (!write_all(upstream.fd, rest.data(), rest.size())) return log(entry);
    entry.bytes_up += rest.size();
  }
  relay(client.fd, upstream.fd, stop_fd, config_.idle_timeout_ms, up_budget, entry);
  log(entry);
}

}  // namespace warden::sandbox
