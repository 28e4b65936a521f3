#include "broker/client.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "broker/audit.h"
#include "broker/server.h"
#include "util/error.h"

namespace warden::broker {
namespace {

nlohmann::json round_trip(LineSocket& sock, const nlohmann::json& req) {
  if (!sock.write_line(dump_line(req))) throw Error("broker: connection lost");
  std::string line;
  if (!sock.read_line(line)) throw Error("broker: connection closed without a reply");
  return parse_line(line);
}

void throw_unless_ok(const nlohmann::json& reply) {
  if (reply.value("ok", false)) return;
  auto err = reply.find("error");
  throw Error(err != reply.end() && err->is_string() ? err->get<std::string>() : "malformed broker reply");
}

}  // namespace

int connect_unix(const std::string& path) {
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path) throw Error("socket path " + path + " is too long");
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw Error("cannot create socket: " + std::string(std::strerror(errno)));
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int err = errno;
    ::close(fd);
    throw Error("cannot reach the broker at " + path + ": " + std::strerror(err) + " (is `warden broker` running?)");
  }
  return fd;
}

AgentClient::AgentClient(const std::string& socket_path)
    : fd_(connect_unix(socket_path.empty() ? SocketPaths::defaults().agent : socket_path)), sock_(fd_) {}

AgentClient::~AgentClient() {
  if (fd_ >= 0) ::close(fd_);
}

nlohmann::json AgentClient::call(const nlohmann::json& req) { return round_trip(sock_, req); }

Decision AgentClient::request(const EffectRequest& r) { return decision_from_json(call(effect_request_to_json(r))); }

void AgentClient::report_result(int64_t audit_seq, std::string_view result_bytes) {
  throw_unless_ok(call({{"op", "result"}, {"audit_seq", audit_seq}, {"digest", sha256_hex(result_bytes)}}));
}

void AgentClient::record_event(const std::string& kind, const std::string& detail) {
  throw_unless_ok(call({{"op", "event"}, {"kind", kind}, {"detail", detail}}));
}

BrokerAbout AgentClient::about() {
  nlohmann::json reply = call({{"op", "about"}});
  throw_unless_ok(reply);
  auto field = [&](const char* name) {
    auto it = reply.find(name);
    if (it == reply.end() || !it->is_string()) throw Error(std::string("broker: 'about' reply lacks '") + name + "'");
    return it->get<std::string>();
  };
  return BrokerAbout{field("workspace"), field("policy"), field("audit")};
}

ApproverClient::ApproverClient(const std::string& socket_path)
    : fd_(connect_unix(socket_path.empty() ? SocketPaths::defaults().approve : socket_path)), sock_(fd_) {}

ApproverClient::~ApproverClient() {
  if (fd_ >= 0) ::close(fd_);
}

nlohmann::json ApproverClient::call(const nlohmann::json& req) {
  auto reply = round_trip(sock_, req);
  throw_unless_ok(reply);
  return reply;
}

}  // namespace warden::broker
