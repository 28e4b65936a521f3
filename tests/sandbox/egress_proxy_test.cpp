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
#include "sandbox/tls_hello_builder.h"
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
    int fd = connect_client();
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

  int connect_client() {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, socket_path_.c_str(), sizeof addr.sun_path - 1);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    return fd;
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
  // The ClientHello names the CONNECT host; it and what follows reach the
  // destination verbatim, even when the hello came in pieces.
  const std::string tls = test::client_hello("Allowed.Test", 40) + "\x17\x03\x03" + test::with_length("data", 2);
  std::string reply = exchange("CONNECT allowed.test:" + port + " HTTP/1.1\r\n\r\n", tls);
  EXPECT_EQ(reply.rfind("HTTP/1.1 200 Connection established\r\n\r\n", 0), 0u);
  EXPECT_NE(reply.find("tunnelled"), std::string::npos);
  EXPECT_EQ(server.connections(), 1);
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(server.requests()[0], tls);
  auto entries = log();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_TRUE(entries[0].allowed);
  EXPECT_EQ(entries[0].bytes_up, tls.size());
}

TEST_F(EgressProxyTest, ConnectTunnelMustCarryTlsToItsOwnHost) {
  LoopbackServer server;
  std::string connect = "CONNECT allowed.test:" + std::to_string(server.port()) + " HTTP/1.1\r\n\r\n";
  const std::pair<std::string, std::string> refused[] = {
      // Another virtual host of the same server, in plain HTTP or in the SNI.
      {"GET / HTTP/1.1\r\nHost: evil.test\r\n\r\n", "not a TLS handshake record"},
      {test::client_hello("evil.test"), "TLS server name 'evil.test' is not the CONNECT host"},
      {test::client_hello(std::nullopt), "TLS ClientHello without a server name"},
      // The hello sent along with the CONNECT is checked all the same.
  };
  for (const auto& [tunnel, why] : refused) exchange(connect, tunnel);
  exchange(connect + test::client_hello("evil.test"));
  // The destination was connected to (before the hello could be read) but
  // never received a byte.
  for (const auto& request : server.requests()) EXPECT_EQ(request, "");
  auto entries = log();
  ASSERT_EQ(entries.size(), 4u);
  for (size_t i = 0; i < entries.size(); i++) {
    EXPECT_FALSE(entries[i].allowed);
    EXPECT_EQ(entries[i].bytes_up, 0u);
    EXPECT_NE(entries[i].reason.find(i < 3 ? refused[i].second : "evil.test"), std::string::npos) << entries[i].reason;
  }
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
  EXPECT_EQ(denied.connections(), 0);
  EXPECT_EQ(allowed.connections(), 0);
}

TEST_F(EgressProxyTest, PlainRequestIsOneRequestWithItsOwnBody) {
  LoopbackServer allowed, denied;
  const std::string a = "allowed.test:" + std::to_string(allowed.port());
  const std::string d = "denied.test:" + std::to_string(denied.port());
  const std::string get = "GET http://" + a + "/ HTTP/1.1\r\nHost: " + a + "\r\n";
  const std::string evil = "GET / HTTP/1.1\r\nHost: evil.test\r\n\r\n";
  // A second request on the connection, in the same packet or later, or
  // hidden behind a body the head does not delimit: never forwarded.
  const std::pair<std::string, std::string> refused[] = {
      {get + "\r\n" + evil, "bytes after the request body"},
      {get + "\r\nGET http://" + d + "/ HTTP/1.1\r\n\r\n", "bytes after the request body"},
      {get + "Content-Length: 2\r\n\r\nab" + evil, "bytes after the request body"},
      {get + "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + evil, "Transfer-Encoding"},
      {get + "Content-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n", "Transfer-Encoding"},
      {get + "Content-Length: 1\r\nContent-Length: 1\r\n\r\nx", "more than one Content-Length"},
      {get + "Content-Length: -1\r\n\r\n", "is not a number"},
      {get + "Content-Length: 0x10\r\n\r\n", "is not a number"},
  };
  for (const auto& [request, why] : refused) {
    std::string reply = exchange(request);
    EXPECT_NE(reply.find("403"), std::string::npos) << request;
    EXPECT_NE(reply.find(why), std::string::npos) << reply;
  }
  EXPECT_EQ(allowed.connections(), 0);
  EXPECT_EQ(denied.connections(), 0);
}

TEST_F(EgressProxyTest, BodyIsForwardedUpToItsLengthAndNoFurther) {
  LoopbackServer server("", LoopbackServer::Mode::record_all);
  const std::string a = "allowed.test:" + std::to_string(server.port());
  const std::string head = "POST http://" + a + "/ HTTP/1.1\r\nHost: " + a + "\r\nContent-Length: 4\r\n\r\n";
  int fd = connect_client();
  ::send(fd, (head + "bo").data(), head.size() + 2, MSG_NOSIGNAL);
  // Once the destination is connected, the rest of the body and a second
  // request come in one packet: the body is forwarded, the request is not.
  for (int i = 0; i < 500 && server.connections() == 0; i++) ::usleep(10000);
  const std::string rest = "dyGET / HTTP/1.1\r\nHost: evil.test\r\n\r\n";
  ::send(fd, rest.data(), rest.size(), MSG_NOSIGNAL);
  char buf[256];
  while (::recv(fd, buf, sizeof buf, 0) > 0) {
  }
  ::close(fd);
  for (int i = 0; i < 500 && server.requests().empty(); i++) ::usleep(10000);
  ASSERT_EQ(server.requests().size(), 1u);
  const std::string got = server.requests()[0];
  EXPECT_EQ(got.rfind("POST / HTTP/1.1\r\n", 0), 0u) << got;
  EXPECT_EQ(got.substr(got.size() - 8), "\r\n\r\nbody") << got;
  auto entries = log();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].reason, "client sent more than one request; connection closed");
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
