// The egress proxy on its own: a client on its unix socket, test servers on
// loopback that the injected resolver maps test names to.
#include "sandbox/egress_proxy.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <memory>
#include <mutex>

#include "common/test_env.h"
#include "sandbox/test_servers.h"
#include "util/error.h"

namespace warden::sandbox {
namespace {

using test::LoopbackServer;

class EgressProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    socket_path_ = warden::test::make_temp_dir("proxy") + "/proxy.sock";
    ProxyConfig config;
    config.rules.allowed_domains = {"allowed.test", "*.wild.test", "rebind.test"};
    config.rules.private_destinations = {"allowed.test", "a.wild.test"};
    config.rules.allowed_ports = {};
    config.resolver = [](const std::string& host) {
      // Only the names this test lists are mapped, all to loopback.
      static const std::map<std::string, std::string> names = {
          {"allowed.test", "127.0.0.1"}, {"denied.test", "127.0.0.1"}, {"a.wild.test", "127.0.0.1"},
          {"rebind.test", "127.0.0.1"}};
      std::vector<IpAddress> out;
      if (auto it = names.find(host); it != names.end()) out.push_back(*parse_ip_literal(it->second));
      return out;
    };
    config.log_path = warden::test::make_temp_dir("log") + "/egress.jsonl";
    log_path_ = config.log_path;
    config.on_log = [this](const ProxyLogEntry& e) {
      std::lock_guard lock(mutex_);
      log_.push_back(e);
    };
    proxy_ = std::make_unique<EgressProxy>(config);
    proxy_->start(socket_path_);
  }
  void TearDown() override { proxy_.reset(); }

  // Sends `request` (and then `more`, once the proxy answered) and returns
  // everything the proxy sent back until it closed.
  std::string exchange(const std::string& request, const std::string& more = "") {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, socket_path_.c_str(), sizeof addr.sun_path - 1);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
    std::string got;
    char buf[4096];
    bool sent_more = more.empty();
    while (true) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 5000) <= 0) break;
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      got.append(buf, size_t(n));
      if (!sent_more && got.find("\r\n\r\n") != std::string::npos) {
        ::send(fd, more.data(), more.size(), MSG_NOSIGNAL);
        ::shutdown(fd, SHUT_WR);
        sent_more = true;
      }
    }
    ::close(fd);
    return got;
  }

  std::vector<ProxyLogEntry> log() {
    proxy_->stop();  // waits for every connection's log entry
    std::lock_guard lock(mutex_);
    return log_;
  }

  std::string socket_path_, log_path_;
  std::unique_ptr<EgressProxy> proxy_;
  std::mutex mutex_;
  std::vector<ProxyLogEntry> log_;
};

TEST_F(EgressProxyTest, PlainHttpToAllowedDomain) {
  LoopbackServer server("allowed body\n");
  std::string port = std::to_string(server.port());
  std::string reply = exchange("GET http://allowed.test:" + port + "/path?x=1 HTTP/1.1\r\nHost: allowed.test:" + port +
                               "\r\nProxy-Authorization: secret\r\nConnection: keep-alive\r\n\r\n");
  EXPECT_NE(reply.find("200 OK"), std::string::npos);
  EXPECT_NE(reply.find("allowed body"), std::string::npos);
  ASSERT_EQ(server.requests().size(), 1u);
  const std::string head = server.requests()[0];
  EXPECT_EQ(head.rfind("GET /path?x=1 HTTP/1.1\r\n", 0), 0u) << head;
  EXPECT_EQ(head.find("Proxy-Authorization"), std::string::npos);
  EXPECT_NE(head.find("Connection: close"), std::string::npos);
  auto entries = log();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_TRUE(entries[0].allowed);
  EXPECT_EQ(entries[0].host, "allowed.test");
  EXPECT_EQ(entries[0].port, server.port());
  EXPECT_GT(entries[0].bytes_down, 0u);
  EXPECT_GT(entries[0].bytes_up, 0u);
  // The same entry is in the JSON-lines log file.
  std::string file = warden::test::read_file(log_path_);
  EXPECT_NE(file.find("\"host\":\"allowed.test\""), std::string::npos);
  EXPECT_NE(file.find("\"allowed\":true"), std::string::npos);
}

TEST_F(EgressProxyTest, ConnectTunnelToAllowedDomain) {
  LoopbackServer server("tunnelled\n");
  std::string port = std::to_string(server.port());
  std::string reply = exchange("CONNECT allowed.test:" + port + " HTTP/1.1\r\n\r\n",
                               "GET / HTTP/1.0\r\nHost: allowed.test\r\n\r\n");
  EXPECT_EQ(reply.rfind("HTTP/1.1 200 Connection established\r\n\r\n", 0), 0u);
  EXPECT_NE(reply.find("tunnelled"), std::string::npos);
  EXPECT_EQ(server.connections(), 1);
}

TEST_F(EgressProxyTest, DeniesUnlistedDomainWithoutConnecting) {
  LoopbackServer denied;
  std::string port = std::to_string(denied.port());
  EXPECT_NE(exchange("GET http://denied.test:" + port + "/ HTTP/1.1\r\n\r\n").find("403"), std::string::npos);
  EXPECT_NE(exchange("CONNECT denied.test:" + port + " HTTP/1.1\r\n\r\n").find("403"), std::string::npos);
  EXPECT_EQ(denied.connections(), 0);
  auto entries = log();
  ASSERT_EQ(entries.size(), 2u);
  for (const auto& e : entries) {
    EXPECT_FALSE(e.allowed);
    EXPECT_EQ(e.reason, "domain not in allowlist");
    EXPECT_EQ(e.host, "denied.test");
  }
}

TEST_F(EgressProxyTest, DeniesIpLiteralsAndLoopbackResolution) {
  LoopbackServer server;
  std::string port = std::to_string(server.port());
  for (std::string host : {"127.0.0.1", "127.1", "2130706433", "[::1]", "localhost"})
    EXPECT_NE(exchange("CONNECT " + host + ":" + port + " HTTP/1.1\r\n\r\n").find("403"), std::string::npos) << host;
  // Listed, but resolves to 127.0.0.1 and is not private-ok.
  std::string reply = exchange("CONNECT rebind.test:" + port + " HTTP/1.1\r\n\r\n");
  EXPECT_NE(reply.find("403"), std::string::npos);
  EXPECT_NE(reply.find("127.0.0.1"), std::string::npos);
  // A wildcard entry does not make every name under it private-ok.
  EXPECT_NE(exchange("CONNECT b.wild.test:" + port + " HTTP/1.1\r\n\r\n").find("403"), std::string::npos);
  EXPECT_EQ(server.connections(), 0);
  LoopbackServer wild("wild\n");
  EXPECT_NE(exchange("GET http://a.wild.test:" + std::to_string(wild.port()) + "/ HTTP/1.1\r\n\r\n").find("wild"),
            std::string::npos);
}

TEST_F(EgressProxyTest, ConnectInsideConnectReachesOnlyTheFirstHost) {
  LoopbackServer allowed, denied;
  std::string inner = "CONNECT denied.test:" + std::to_string(denied.port()) + " HTTP/1.1\r\n\r\n";
  exchange("CONNECT allowed.test:" + std::to_string(allowed.port()) + " HTTP/1.1\r\n\r\n", inner);
  EXPECT_EQ(denied.connections(), 0);
  ASSERT_EQ(allowed.requests().size(), 1u);
  EXPECT_EQ(allowed.requests()[0], inner);  // the inner request went to the allowed host, verbatim
}

TEST_F(EgressProxyTest, AbsoluteUriMustAgreeWithHostHeader) {
  LoopbackServer allowed, denied;
  std::string ap = std::to_string(allowed.port()), dp = std::to_string(denied.port());
  // URI names the unlisted host: refused even though Host names the allowed one.
  EXPECT_NE(exchange("GET http://denied.test:" + dp + "/ HTTP/1.1\r\nHost: allowed.test:" + ap + "\r\n\r\n").find("403"),
            std::string::npos);
  // URI names the allowed host but Host another: refused too.
  std::string reply = exchange("GET http://allowed.test:" + ap + "/ HTTP/1.1\r\nHost: denied.test\r\n\r\n");
  EXPECT_NE(reply.find("403"), std::string::npos);
  EXPECT_NE(reply.find("does not match"), std::string::npos);
  // A second, pipelined request for another host goes to the first host only.
  exchange("GET http://allowed.test:" + ap + "/ HTTP/1.1\r\n\r\nGET http://denied.test:" + dp +
           "/ HTTP/1.1\r\n\r\n");
  EXPECT_EQ(denied.connections(), 0);
  EXPECT_EQ(allowed.connections(), 1);
}

TEST_F(EgressProxyTest, MalformedRequestsAreRefusedAndLogged) {
  EXPECT_NE(exchange("GET /relative HTTP/1.1\r\n\r\n").find("400"), std::string::npos);
  EXPECT_NE(exchange(std::string(20000, 'A')).find("400"), std::string::npos);
  auto entries = log();
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_FALSE(entries[0].allowed);
  EXPECT_FALSE(entries[1].allowed);
}

TEST(EgressProxyConfig, RejectsBadAllowlistEntry) {
  ProxyConfig config;
  config.rules.allowed_domains = {"*"};
  EXPECT_THROW(EgressProxy{config}, Error);
}

}  // namespace
}  // namespace warden::sandbox
