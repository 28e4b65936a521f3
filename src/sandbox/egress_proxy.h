#pragma once
// warden's egress proxy: the only way out of a jail with network. It runs
// outside the jail (threads of the warden process) on a unix socket that is
// bound into the jail. One request per client connection: either a CONNECT
// tunnel that carries TLS to the name it names (its ClientHello's server name
// is checked before any byte is relayed; the bytes that follow go to that
// destination only) or one plain HTTP request with an absolute URI and a
// matching Host (forwarded with "Connection: close", followed by exactly its
// Content-Length bytes of body). Names are resolved here, never in the jail;
// every request is logged.
//
// What it cannot see: inside TLS, a client may still ask the allowed server
// for another site it also hosts (domain fronting); that is the allowed
// server's to refuse.
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sandbox/egress_policy.h"

namespace warden::sandbox {

struct ProxyLogEntry {
  std::string method;        // "CONNECT", "GET", ... ("?" when unparsable)
  std::string host;
  uint16_t port = 0;
  bool allowed = false;
  std::string reason;        // "allowed" or why it was refused / failed
  uint64_t bytes_up = 0;     // client -> destination
  uint64_t bytes_down = 0;   // destination -> client
  std::string to_json() const;  // one line, no newline
};

struct ProxyConfig {
  EgressRules rules;
  Resolver resolver;                       // empty = system resolver
  std::function<void(const ProxyLogEntry&)> on_log;
  std::string log_path;                    // JSON lines appended when set
  int connect_timeout_ms = 10000;
  int idle_timeout_ms = 300000;            // a tunnel idle this long is closed
  size_t max_connections = 64;
};

class EgressProxy {
 public:
  explicit EgressProxy(ProxyConfig config);  // validates the rules (warden::Error)
  ~EgressProxy();                            // stop()
  EgressProxy(const EgressProxy&) = delete;
  EgressProxy& operator=(const EgressProxy&) = delete;

  // Listens on a new unix socket at `path` and serves in a background thread.
  void start(const std::string& path);
  // Closes the listener and every open connection, and waits for them.
  void stop();

  // Serves one already-accepted client connection to the end (blocking);
  // takes ownership of `client_fd`. Used by the listener and by tests.
  void serve_connection(int client_fd);

 private:
  void accept_loop();
  void log(const ProxyLogEntry& entry);

  ProxyConfig config_;
  int listen_fd_ = -1;
  int stop_pipe_[2] = {-1, -1};
  std::thread acceptor_;
  std::mutex mutex_;
  std::condition_variable idle_;
  size_t active_ = 0;  // connections being served (guarded by mutex_)
  std::mutex log_mutex_;
};

}  // namespace warden::sandbox
