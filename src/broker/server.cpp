#include "broker/server.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "broker/client.h"
#include "broker/protocol.h"
#include "util/error.h"
#include "util/log.h"
#include "util/paths.h"

namespace warden::broker {
namespace {

nlohmann::json error_reply(const std::string& what) { return {{"ok", false}, {"error", what}}; }

nlohmann::json no_pending_request(const std::string& id, const std::string& tag) {
  if (id.rfind(tag + "-", 0) != 0)
    return error_reply("request " + id + " is not from this broker (its requests are " + tag +
                       "-N; see warden approve list)");
  return error_reply("no pending request " + id + " (answered, timed out, or never made)");
}

bool peer_is_us(int fd) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return false;
  return cred.uid == ::getuid();
}

bool socket_is_live(const std::string& path) {
  try {
    ::close(connect_unix(path));
    return true;
  } catch (const Error&) {
    return false;
  }
}

int listen_unix(const std::string& path) {
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path) throw Error("socket path " + path + " is too long");
  // A live broker answers; a stale socket file from a crash does not.
  if (std::filesystem::exists(std::filesystem::symlink_status(path))) {
    if (socket_is_live(path)) throw Error("another broker is already listening on " + path);
    ::unlink(path.c_str());
  }
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw Error("cannot create socket: " + std::string(std::strerror(errno)));
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  mode_t old = ::umask(077);
  int rc = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::umask(old);
  if (rc != 0 || ::chmod(path.c_str(), 0600) != 0 || ::listen(fd, 16) != 0) {
    int err = errno;
    ::close(fd);
    throw Error("cannot listen on " + path + ": " + std::strerror(err));
  }
  return fd;
}

}  // namespace

SocketPaths SocketPaths::in(const std::string& dir) { return {dir, dir + "/agent.sock", dir + "/approve.sock"}; }
SocketPaths SocketPaths::defaults() { return in(paths::runtime_dir()); }

void ensure_private_dir(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::exists(std::filesystem::symlink_status(dir))) {
    std::filesystem::create_directories(dir, ec);
    if (ec) throw Error("cannot create " + dir + ": " + ec.message());
    ::chmod(dir.c_str(), 0700);
  }
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) throw Error("cannot stat " + dir);
  if (!S_ISDIR(st.st_mode)) throw Error(dir + " is not a directory (a symlink?): refusing to put sockets there");
  if (st.st_uid != ::getuid()) throw Error(dir + " is not owned by this user: refusing to put sockets there");
  if (st.st_mode & 077) throw Error(dir + " is accessible to other users (mode must be 0700)");
}

Server::Server(Broker& broker, ApprovalQueue& queue, SocketPaths paths)
    : broker_(broker), queue_(queue), paths_(std::move(paths)) {}

Server::~Server() { stop(); }

void Server::start() {
  ensure_private_dir(paths_.dir);
  agent_fd_ = listen_unix(paths_.agent);
  try {
    approve_fd_ = listen_unix(paths_.approve);
  } catch (...) {
    ::close(agent_fd_);
    ::unlink(paths_.agent.c_str());
    agent_fd_ = -1;
    throw;
  }
  stop_ = false;
  acceptor_ = std::thread([this] { accept_loop(); });
}

void Server::stop() {
  if (!acceptor_.joinable()) return;
  stop_ = true;
  queue_.close("broker shutdown");
  acceptor_.join();
  std::list<Connection> threads;
  {
    std::lock_guard lock(threads_mutex_);
    threads.swap(connections_);
  }
  for (auto& c : threads) c.thread.join();
  ::close(agent_fd_);
  ::close(approve_fd_);
  ::unlink(paths_.agent.c_str());
  ::unlink(paths_.approve.c_str());
  agent_fd_ = approve_fd_ = -1;
}

void Server::reap_finished_connections() {
  std::lock_guard lock(threads_mutex_);
  for (auto it = connections_.begin(); it != connections_.end();) {
    if (!*it->done) {
      ++it;
      continue;
    }
    it->thread.join();
    it = connections_.erase(it);
  }
}

void Server::accept_loop() {
  while (!stop_) {
    reap_finished_connections();
    pollfd fds[2] = {{agent_fd_, POLLIN, 0}, {approve_fd_, POLLIN, 0}};
    int n = ::poll(fds, 2, 200);
    if (n <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (!(fds[i].revents & POLLIN)) continue;
      int fd = ::accept4(fds[i].fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      if (!peer_is_us(fd)) {
        log::warn("broker: refused a connection from another user");
        ::close(fd);
        continue;
      }
      Side side = i == 0 ? Side::agent : Side::approver;
      auto done = std::make_shared<std::atomic<bool>>(false);
      std::lock_guard lock(threads_mutex_);
      connections_.push_back({std::thread([this, fd, side, done] {
                                serve(fd, side);
                                *done = true;
                              }),
                              done});
    }
  }
}

void Server::serve(int fd, Side side) {
  LineSocket sock(fd);
  std::string line;
  try {
    while (sock.read_line(line, [this] { return !stop_; })) {
      nlohmann::json reply;
      try {
        auto req = parse_line(line);
        reply = side == Side::agent ? handle_agent(req) : handle_approver(req);
      } catch (const std::exception& e) {
        reply = error_reply(e.what());
      }
      if (!sock.write_line(dump_line(reply))) break;
    }
  } catch (const std::exception& e) {
    // The connection ends here (a line over the limit, a broken socket); the
    // log says so, since whatever that side does next is not heard.
    sock.write_line(dump_line(error_reply(e.what())));
    try {
      broker_.record_event("broker.disconnect", std::string(side == Side::agent ? "agent" : "approver") +
                                                    " connection closed: " + e.what(),
                           "broker");
    } catch (const std::exception&) {
    }
  }
  ::close(fd);
}

nlohmann::json Server::handle_agent(const nlohmann::json& req) {
  std::string op = req.value("op", "");
  if (op == "request") return decision_to_json(broker_.decide(effect_request_from_json(req), "agent"));
  if (op == "result") {
    auto seq = req.find("audit_seq");
    std::string digest = req.value("digest", "");
    if (seq == req.end() || !seq->is_number_integer() || seq->get<int64_t>() <= 0)
      return error_reply("field 'audit_seq' must be a positive integer");
    if (digest.size() != 64 || digest.find_first_not_of("0123456789abcdef") != std::string::npos)
      return error_reply("field 'digest' must be a SHA-256 in lower-case hex");
    broker_.record_result(seq->get<int64_t>(), digest, "agent");
    return {{"ok", true}};
  }
  if (op == "event") {
    std::string kind = req.value("kind", "");
    if (kind.empty() || kind.size() > 64) return error_reply("field 'kind' must be a short non-empty string");
    auto detail = req.find("detail");
    if (detail != req.end() && !detail->is_string()) return error_reply("field 'detail' must be a string");
    std::string text = detail == req.end() ? "" : detail->get<std::string>();
    if (text.size() > kMaxDetailBytes) return error_reply("field 'detail' is too long");
    broker_.record_event(kind, text, "agent");
    return {{"ok", true}};
  }
  if (op == "about") {
    auto policy = broker_.policy();
    auto file = broker_.pinned_policy_file();
    return {{"ok", true},
            {"workspace", policy->env().workspace},
            {"policy", file ? file->path : policy->source()},
            {"audit", broker_.audit_path()}};
  }
  if (op == "list" || op == "show" || op == "approve" || op == "deny" || op == "policy.apply" || op == "policy.status")
    return error_reply("approval and policy verbs are refused on the agent socket");
  return error_reply("unknown op '" + op + "' (agent socket: request, result, event, about)");
}

nlohmann::json Server::handle_approver(const nlohmann::json& req) {
  std::string op = req.value("op", "");
  if (op == "list") {
    nlohmann::json pending = nlohmann::json::array();
    for (auto& p : queue_.list()) pending.push_back(approval_to_json(p));
    return {{"ok", true}, {"pending", pending}};
  }
  if (op == "show") {
    const std::string id = approval_id_from_json(req);
    auto p = queue_.get(id);
    if (!p) return no_pending_request(id, queue_.tag());
    return {{"ok", true}, {"approval", approval_to_json(*p)}};
  }
  if (op == "approve" || op == "deny") {
    const std::string id = approval_id_from_json(req);
    if (!queue_.resolve(id, op == "approve", "warden approve")) return no_pending_request(id, queue_.tag());
    return {{"ok", true}};
  }
  if (op == "policy.status") return policy_status();
  if (op == "policy.apply") return policy_apply(req);
  if (op == "request" || op == "result" || op == "event")
    return error_reply("agent verbs are refused on the approval socket");
  return error_reply("unknown op '" + op +
                     "' (approval socket: list, show, approve, deny, policy.status, policy.apply)");
}

namespace {

std::string comparable_path(const std::string& p) {
  std::error_code ec;
  auto c = std::filesystem::weakly_canonical(p, ec);
  return ec ? std::filesystem::path(p).lexically_normal().string() : c.string();
}

}  // namespace

nlohmann::json Server::policy_status() {
  auto pinned = broker_.pinned_policy_file();
  if (!pinned) return error_reply("this broker has no policy file");
  nlohmann::json reply = {{"ok", true}, {"path", pinned->path}, {"sha256", pinned->sha256}, {"drift", nullptr}};
  if (auto d = broker_.check_policy_drift())
    reply["drift"] = {{"file_sha256", d->file_sha256}, {"file_exists", d->file_exists}};
  return reply;
}

nlohmann::json Server::policy_apply(const nlohmann::json& req) {
  for (auto& [key, value] : req.items())
    if (key != "op" && key != "text" && key != "path") return error_reply("unknown field '" + key + "' in policy.apply");
  auto text = req.find("text");
  if (text == req.end() || !text->is_string()) return error_reply("field 'text' must be the new policy (a string)");
  auto pinned = broker_.pinned_policy_file();
  if (!pinned) return error_reply("this broker has no policy file");
  if (auto path = req.find("path"); path != req.end()) {
    if (!path->is_string()) return error_reply("field 'path' must be a string");
    if (comparable_path(path->get<std::string>()) != comparable_path(pinned->path))
      return error_reply("the running broker's policy is " + pinned->path + ", not " + path->get<std::string>());
  }
  PolicyChange c = broker_.change_policy(text->get<std::string>(), "warden policy apply or set");
  return {{"ok", true},           {"applied", c.applied},       {"message", c.message},
          {"path", pinned->path}, {"old_sha256", c.old_sha256}, {"new_sha256", c.new_sha256},
          {"diff", c.diff},       {"audit_seq", c.audit_seq}};
}

}  // namespace warden::broker
