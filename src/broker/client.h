#pragma once
// Clients of the broker's sockets. AgentClient is the whole interface the
// agent loop gets: ask for an effect, report its result, log an event. It
// has no way to approve anything. ApproverClient is for `warden approve`.
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "broker/protocol.h"
#include "broker/request.h"

namespace warden::broker {

// Connects to a unix socket; throws warden::Error naming the path.
int connect_unix(const std::string& path);

// What a running broker serves: `warden run` checks it before using a
// broker it did not start.
struct BrokerAbout {
  std::string workspace;  // resolved
  std::string policy;     // its file, or "(built-in defaults)"
  std::string audit;      // the audit database
};

class AgentClient {
 public:
  // Default: $XDG_RUNTIME_DIR/warden/agent.sock.
  explicit AgentClient(const std::string& socket_path = "");
  ~AgentClient();
  AgentClient(const AgentClient&) = delete;
  AgentClient& operator=(const AgentClient&) = delete;

  // Blocks until the broker decides (a human may be asked). A broker that
  // cannot be reached or answers garbage throws warden::Error: the caller
  // must then treat the effect as denied.
  Decision request(const EffectRequest& r);
  // Audits the SHA-256 of an effect's result for the decision's record.
  void report_result(int64_t audit_seq, std::string_view result_bytes);
  // Audits a model call or other event.
  void record_event(const std::string& kind, const std::string& detail);
  BrokerAbout about();

 private:
  nlohmann::json call(const nlohmann::json& req);
  int fd_ = -1;
  LineSocket sock_{-1};
};

class ApproverClient {
 public:
  // Default: $XDG_RUNTIME_DIR/warden/approve.sock.
  explicit ApproverClient(const std::string& socket_path = "");
  ~ApproverClient();
  ApproverClient(const ApproverClient&) = delete;
  ApproverClient& operator=(const ApproverClient&) = delete;

  // Sends one verb; returns the reply; throws Error on {"ok":false}.
  nlohmann::json call(const nlohmann::json& req);

 private:
  int fd_ = -1;
  LineSocket sock_{-1};
};

}  // namespace warden::broker
