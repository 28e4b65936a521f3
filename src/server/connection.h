#pragma once
// How warden serve takes its connections. cpp-httplib gives every open
// connection one of its worker threads while it reads a request, so a
// client that sent a byte every few seconds (slowloris), on as many
// connections as there are workers, kept everyone else waiting; and one
// that kept reconnecting, each request slow but in time, still did.
//
// Here one thread, the gate, accepts connections and reads every request
// whole (head and body, request_extent.h) before a worker ever sees it,
// and hands it on only when a worker is free; a worker only answers, and
// never waits for its client: what of its answer the client does not take
// at once the gate sends as the client reads. So slow clients, at either
// end, cost a socket and their bytes, never a worker.
//
// A request must arrive, and find a worker, within the limit counted from
// the connection's start or the previous answer on it (408, 503). The gate
// bounds how many connections are open and the bytes they hold; when
// either is full, it closes the connections that cost others most (see
// make_room_for_a_connection and make_room_for_bytes in connection.cpp).
//
// The answer itself has no deadline (a streamed one may take minutes); the
// rest of one that the gate sends must make progress within the io limit.
#include <httplib.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "server/metrics.h"

namespace warden::server {

struct ConnectionLimits {
  std::chrono::milliseconds request{30000};  // for a request to arrive whole, and find a worker
  // For a client to take any more of the rest of an answer the gate sends.
  std::chrono::milliseconds io{30000};
  std::chrono::milliseconds keep_alive{5000};  // idle between two requests
  size_t max_head = size_t(64) << 10;          // a request's line and headers
  size_t max_body = size_t(4) << 20;           // larger bodies are refused unread
  size_t requests_per_connection = 100;
  size_t max_connections = 1000;  // open at once (fewer if the file limit is lower)
  // Bytes the connections the gate holds may hold in all: requests, and
  // answers their clients have not taken yet (not counted: a request with
  // a worker, and the answer it is making).
  size_t max_buffered = size_t(256) << 20;
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
  // `workers` threads answer requests; `metrics` counts connections and
  // the gate's own refusals.
  ConnectionGate(ConnectionLimits limits, size_t workers, ProcessRequest process, Refusal refusal, Metrics& metrics);
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
