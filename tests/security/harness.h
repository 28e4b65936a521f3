#pragma once
// The hostile-model harness: a scripted OpenAI-compatible backend that plays
// the model, loopback servers that record exfiltration, and a driver that
// runs `warden run` against them. Shared by the attack corpus test and the
// approval end-to-end tests.
#include <httplib.h>

#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace warden::test {

// An HTTP server on 127.0.0.1 in a background thread.
class LoopbackServer {
 public:
  LoopbackServer();
  ~LoopbackServer();
  int port() const { return port_; }
  httplib::Server& server() { return server_; }
  void start();

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
};

struct RecordedRequest {
  std::string method, host, target, body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string describe() const;
};

// Records every request it gets; answers "ok" (or a page from `pages`).
class SinkServer {
 public:
  SinkServer();
  int port() const { return http_.port(); }
  void add_page(const std::string& path, const std::string& body) { pages_.emplace_back(path, body); }
  std::vector<RecordedRequest> requests();

 private:
  LoopbackServer http_;
  std::mutex mutex_;
  std::vector<RecordedRequest> requests_;
  std::vector<std::pair<std::string, std::string>> pages_;
};

// Replays scripted assistant turns: the i-th POST gets turns[i]; once they
// run out, a final message without tool calls. Keeps every request body so
// tests can check what the model was told.
class ScriptedModel {
 public:
  explicit ScriptedModel(std::vector<nlohmann::json> turns);
  int port() const { return http_.port(); }
  std::vector<nlohmann::json> requests();
  // Text of every tool message the agent sent back, in order.
  std::vector<std::string> tool_results();

 private:
  LoopbackServer http_;
  std::mutex mutex_;
  std::vector<nlohmann::json> turns_;
  std::vector<nlohmann::json> requests_;
  size_t next_ = 0;
};

// One assistant turn that calls one tool.
nlohmann::json tool_turn(const std::string& name, const nlohmann::json& arguments, const std::string& content = "");

// Replaces every {KEY} in every string of `j` by its value.
nlohmann::json substitute(const nlohmann::json& j, const std::vector<std::pair<std::string, std::string>>& vars);

}  // namespace warden::test
