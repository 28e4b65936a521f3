#pragma once
// A broker served on real unix sockets in a private folder, for tests.
#include <filesystem>
#include <memory>
#include <string>

#include "broker/broker.h"
#include "broker/server.h"
#include "common/test_env.h"

namespace warden::broker::testing {

struct LiveBroker {
  std::string root;
  std::string workspace;
  SocketPaths sockets;
  std::unique_ptr<AuditLog> audit;
  ApprovalQueue queue;
  std::unique_ptr<Broker> broker;
  std::unique_ptr<Server> server;

  explicit LiveBroker(const std::string& policy_text = "") {
    root = std::filesystem::canonical(test::make_temp_dir("live")).string();
    workspace = root + "/ws";
    std::filesystem::create_directories(workspace);
    sockets = SocketPaths::in(root + "/sock");
    audit = std::make_unique<AuditLog>(root + "/audit.db");
    broker = std::make_unique<Broker>(Policy::parse(policy_text, "policy.toml", PolicyEnv::current(workspace)),
                                      *audit, queue);
    server = std::make_unique<Server>(*broker, queue, sockets);
    server->start();
  }
  ~LiveBroker() { server->stop(); }
};

}  // namespace warden::broker::testing
