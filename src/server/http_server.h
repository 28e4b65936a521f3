#pragma once
// The HTTP front end of `warden serve`: OpenAI-compatible routes over the
// scheduler, bearer-key auth, a request body limit, OpenAI-style error
// objects for every failure, and Prometheus metrics.
//
// Routes: POST /v1/chat/completions, POST /v1/completions, GET /v1/models,
// GET /health, GET /metrics. /health answers without a key (for probes);
// everything else needs it when one is set.
#include <cstdint>
#include <memory>
#include <string>

#include "engine/engine.h"
#include "server/api.h"
#include "server/metrics.h"

namespace warden::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;              // 0: any free port (see listen_on)
  std::string api_key;          // "" = no auth
  std::string alias;            // the model id clients name; "" = the file's base name
  size_t max_body = 4u << 20;   // request body limit in bytes
  size_t max_queue = 64;        // waiting requests when every slot is busy
  // Seconds a client may take to send a whole request (from its connection,
  // or the previous answer on it; connection.h), and that an answer may
  // wait in all for its client to take more of it.
  int timeout_seconds = 30;
  engine::LookupParams lookup;  // lookup decoding (--spec-type ngram-simple)
  std::string chat_template;    // the model's template source ("" = ChatML)
  // --reasoning-format auto: a <think> block at the start of a chat answer
  // goes out as reasoning_content (reasoning.h); none: it stays content.
  bool split_reasoning = true;
  SamplingDefaults sampling;    // what a request's sampling fields default to
};

// A socket listening on `host` (a name or an address: the first of its
// addresses this machine can bind; "::" takes IPv4 too) and `port` (0: any
// free port; one in use on that address is an error), made
// before the server, which a process may want to confine itself in between
// (warden serve does). Throws warden::Error when nothing can be bound.
struct ListeningSocket {
  int fd = -1;
  int port = 0;           // the port bound, also when 0 was asked for
  bool loopback = false;  // bound to a loopback address only
};
ListeningSocket listen_on(const std::string& host, int port);

class Server {
 public:
  // The engine's n_seq is the number of slots. Throws warden::Error for a
  // chat template that does not parse.
  Server(engine::Engine& engine, ServerOptions options);
  ~Server();

  // Serves on `socket` (and closes it in the end) until stop() is called
  // (from another thread or a signal watcher).
  void listen(ListeningSocket socket);
  void stop();

  const std::string& model_id() const;
  Metrics& metrics();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace warden::server
