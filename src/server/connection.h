#pragma once
// How warden serve takes its connections. cpp-httplib gives every open
// connection one of its worker threads while it reads a request, so a
// client that sent a byte every few seconds (slowloris), on as many
// connections as there are workers, kept everyone else waiting; and one
// that kept reconnecting, each request slow but in time, still did.
//
// Here one thread, the gate, accepts connections and reads every request
// whole (head and body, request_extent.h) before a worker ever sees it; a
// worker only answers. A request must arrive within the limit, counted from
// the connection's start or the previous answer on it, and the gate bounds
// how many connections are open and how many bytes they hold: when either
// is full, the connection that has waited longest for its request is
// closed. So slow clients cost a socket and their bytes, never a worker.
//
// The answer itself has no deadline (a streamed one may take minutes);
// each write waits at most the io limit, and ends within a tenth of a
// second of the server stopping.
#include <httplib.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

namespace warden::server {

struct ConnectionLimits {
  std::chrono::milliseconds request{30000};    // for a request to arrive whole
  std::chrono::milliseconds io{30000};         // for one write of an answer
  std::chrono::milliseconds keep_alive{5000};  // idle between two requests
  size_t max_head = size_t(64) << 10;          // a request's line and headers
  size_t max_body = size_t(4) << 20;           // larger bodies are refused unread
  size_t requests_per_connection = 100;
  size_t max_connections = 1000;  // open at once (fewer if the file limit is lower)
  size_t max_buffered = size_t(64) << 20;  // bytes of requests held at once, over all connections
};

// Answers one whole request from `stream`, as httplib::Server::process_request
// does; returns whether it was handled, and sets `connection_closed` when the
// connection must end after it.
using ProcessRequest = std::function<bool(httplib::Stream& stream, bool close_connection, bool& connection_closed)>;

// The whole HTTP answer the gate sends itself, for a request it refuses
// before any worker sees it (408 too slow, 431 head too large).
using Refusal = std::function<std::string(int status, const std::string& message, const std::string& code)>;

class ConnectionGate {
 public:
  // `workers` threads answer requests.
  ConnectionGate(ConnectionLimits limits, size_t workers, ProcessRequest process, Refusal refusal);
  ~ConnectionGate();

  // Accepts on `listening_fd` and serves until stop(); then closes every
  // connection and the socket, and returns once every worker has ended.
  // Returns at once, closing the socket, if stop() came first.
  void run(int listening_fd);
  // From any thread, also before run().
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Called while answering a request whose body may not have been read (a
// refusal before routing, an error): the connection ends after this answer,
// so that the rest of that request is never read as a request of its own.
void close_after_answer();

}  // namespace warden::server
