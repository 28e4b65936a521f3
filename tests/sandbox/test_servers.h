#pragma once
// Loopback listeners started by the sandbox tests: a tiny HTTP server that
// records what it received, and plain listeners that only count connections.
#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace warden::sandbox::test {

// Accepts on 127.0.0.1:<port> (or an abstract unix name); every connection is
// counted; in HTTP mode the head is recorded and "HTTP/1.0 200 OK" with
// `body` is sent back; in record_all mode everything the client sends until
// it closes is recorded, and nothing is sent back.
class LoopbackServer {
 public:
  enum class Mode { http, count_only, record_all };
  explicit LoopbackServer(std::string body = "hello from the test server\n", Mode mode = Mode::http);
  // An abstract unix socket listener ("\0name") that counts connections.
  static LoopbackServer* abstract_unix(const std::string& name);
  ~LoopbackServer();
  int port() const { return port_; }
  int connections() const { return connections_.load(); }
  std::vector<std::string> requests() const;  // heads received, in order

 private:
  LoopbackServer(int fd, Mode mode);
  void serve();
  int fd_ = -1;
  int port_ = 0;
  int stop_[2] = {-1, -1};
  Mode mode_;
  std::string body_;
  std::atomic<int> connections_{0};
  mutable std::mutex mutex_;
  std::vector<std::string> requests_;
  std::thread thread_;
};

// A TLS server on 127.0.0.1: python3's ssl module with a self-signed
// certificate for `name` made by the openssl command. Every connection gets
// one "HTTP/1.0 200 OK" carrying `body` after its first read.
class TlsLoopbackServer {
 public:
  TlsLoopbackServer(const std::string& name, const std::string& body);
  ~TlsLoopbackServer();  // kills the server
  int port() const { return port_; }

 private:
  int pid_ = -1;
  int port_ = 0;
};

// A UDP socket on 127.0.0.1 that counts datagrams (for DNS-style exfiltration).
class UdpCounter {
 public:
  UdpCounter();
  ~UdpCounter();
  int port() const { return port_; }
  int datagrams();  // drains and counts what arrived so far

 private:
  int fd_ = -1;
  int port_ = 0;
  int count_ = 0;
};

}  // namespace warden::sandbox::test
