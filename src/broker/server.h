#pragma once
// The broker daemon's two unix sockets, in $XDG_RUNTIME_DIR/warden (a 0700
// folder owned by the user; each socket 0600):
//   agent.sock    the agent's narrow protocol (request / result / event)
//   approve.sock  the human's protocol (list / show / approve / deny, and
//                 policy.status / policy.apply for `warden policy apply`)
// Every connection's peer must run as our own uid (SO_PEERCRED). No sandbox
// can see this folder (the sandbox masks $XDG_RUNTIME_DIR/warden).
#include <atomic>
#include <list>
#include <memory>
#include <nlohmann/json.hpp>
#include <mutex>
#include <string>
#include <thread>

#include "broker/approvals.h"
#include "broker/broker.h"

namespace warden::broker {

struct SocketPaths {
  std::string dir;
  std::string agent;
  std::string approve;
  static SocketPaths in(const std::string& dir);
  static SocketPaths defaults();  // paths::runtime_dir()
};

// Makes `dir` (0700) if missing; throws warden::Error unless it is a real
// directory (not a symlink) owned by us with no group/other access.
void ensure_private_dir(const std::string& dir);

class Server {
 public:
  Server(Broker& broker, ApprovalQueue& queue, SocketPaths paths);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds both sockets and starts serving. Throws warden::Error when the
  // folder is unsafe or another broker already listens there.
  void start();
  // Stops accepting, denies whatever is pending, joins every thread, and
  // removes the sockets.
  void stop();

 private:
  enum class Side { agent, approver };
  void accept_loop();
  void serve(int fd, Side side);
  nlohmann::json handle_agent(const nlohmann::json& req);
  nlohmann::json handle_approver(const nlohmann::json& req);
  nlohmann::json policy_status();
  nlohmann::json policy_apply(const nlohmann::json& req);

  Broker& broker_;
  ApprovalQueue& queue_;
  SocketPaths paths_;
  int agent_fd_ = -1;
  int approve_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
  struct Connection {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  void reap_finished_connections();
  std::mutex threads_mutex_;
  std::list<Connection> connections_;
};

}  // namespace warden::broker
