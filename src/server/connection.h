#pragma once
// How warden serve reads its connections: cpp-httplib's request handling,
// with a loop and a stream of our own around it, for one thing that
// library lacks. Its timeouts bound each read, not a request, and every
// open connection holds one of its worker threads: a client that sent a
// byte of its request every few seconds (slowloris), on as many
// connections as there are workers, would keep everyone else waiting for
// good. Here a request must have arrived whole (head and body) within the
// limit, counted from the connection's start or the previous answer on it;
// past that the connection is closed. The answer itself has no deadline (a
// streamed one may take minutes); each write still has its timeout. Every
// wait also ends within a tenth of a second of the server stopping.
//
// What this does not stop: a client that keeps opening connections and
// sends each request slowly, but within the limit, still keeps workers
// busy for that long each; reading requests outside the worker threads
// would (docs/server.md, "--timeout").
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <functional>

namespace warden::server {

struct ConnectionLimits {
  std::chrono::milliseconds request{30000};     // for a request to arrive whole
  // Head and body of one request together: cpp-httplib bounds neither a
  // header line nor the number of headers.
  size_t request_bytes = size_t(4) << 20;
  std::chrono::milliseconds io{30000};          // for one read or write
  std::chrono::milliseconds keep_alive{5000};   // idle between two requests
  size_t requests_per_connection = 100;
};

// One request on `stream`, as httplib::Server::process_request handles it.
using ProcessRequest = std::function<bool(httplib::Stream& stream, bool close_connection, bool& connection_closed)>;

// Serves the connection on `socket` until it ends, the limits close it or
// `listening` stops being a socket (the server stops); then shuts it down
// and closes it. An exception while handling a request (memory running
// out) ends that connection, not the server. Returns whether the last
// request was handled.
bool serve_connection(int socket, const ConnectionLimits& limits, const std::atomic<int>& listening,
                      const ProcessRequest& process);

// Called by every route handler, on the thread serving the connection:
// the request has arrived whole, and the deadline no longer applies to it.
void request_arrived();

// Called while answering a request whose body may not have been read (a
// refusal before routing, an error): the connection ends after this answer,
// so that the rest of that request is never read as a request of its own.
void close_after_answer();

}  // namespace warden::server
