// Web pages in the user's browser against `warden serve` on loopback: a
// foreign Host (DNS rebinding) or Origin (a cross-site request) is refused
// before anything runs; tools that are not browsers, and pages served from
// this machine, are not. Also: a request whose grammar is too ambiguous to
// start fails alone, and the server goes on serving.
#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>

#include "server/browser_guard.h"
#include "server/serve_process.h"

namespace warden::test {
namespace {

using json = nlohmann::json;
using server::host_header_allowed;
using server::origin_header_allowed;

TEST(BrowserGuard, HostHeader) {
  for (const char* ok : {"127.0.0.1:8080", "127.0.0.1", "localhost:8080", "LOCALHOST", "app.localhost:1", "[::1]:8080",
                         "[::1]", "192.168.1.20:8080", ""})
    EXPECT_TRUE(host_header_allowed(ok, false)) << ok;
  for (const char* bad : {"attacker.example", "attacker.example:8080", "localhost.attacker.example", "127.0.0.1.nip.io",
                          "127.1", "[::1", "localhost:80x", "localhost:", "[::1]x"})
    EXPECT_FALSE(host_header_allowed(bad, false)) << bad;
  // With an API key a page cannot send, names are fine (a reverse proxy's).
  EXPECT_TRUE(host_header_allowed("llm.home.example:443", true));
  EXPECT_FALSE(host_header_allowed("[::1", true));
}

TEST(BrowserGuard, OriginHeader) {
  EXPECT_TRUE(origin_header_allowed("", false));
  for (const char* ok : {"http://localhost:3000", "https://127.0.0.1", "http://127.5.6.7:80", "http://[::1]:5173",
                         "http://ui.localhost"})
    EXPECT_TRUE(origin_header_allowed(ok, true)) << ok;
  for (const char* bad : {"null", "", "https://attacker.example", "http://192.168.1.20:8080", "http://localhost.evil",
                          "file://", "http://localhost/x", "ftp://localhost", "http://localhost:99999x"})
    EXPECT_FALSE(origin_header_allowed(bad, true)) << bad;
}

class BrowserGuardServe : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new ServeProcess({"-c", "1024", "--parallel", "1", "-t", "2"}); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  // POSTs a small chat request with these extra headers; returns status and body.
  static std::pair<int, std::string> chat(const httplib::Headers& headers, const json& extra = json::object(),
                                          const char* content_type = "application/json") {
    json body = {{"messages", json::array({{{"role", "user"}, {"content", "hi"}}})}, {"max_tokens", 2}};
    body.update(extra);
    httplib::Client cli("127.0.0.1", server_->port());
    cli.set_read_timeout(120, 0);
    auto res = cli.Post("/v1/chat/completions", headers, body.dump(), content_type);
    if (!res) return {0, ""};
    return {res->status, res->body};
  }
  static ServeProcess* server_;
};
ServeProcess* BrowserGuardServe::server_ = nullptr;

TEST_F(BrowserGuardServe, ForeignHostOrOriginIsRefusedBeforeAnythingRuns) {
  const std::string port = std::to_string(server_->port());
  auto [status, body] = chat({{"Host", "attacker.example:" + port}}, json::object(), "text/plain");
  EXPECT_EQ(status, 403) << body;
  EXPECT_EQ(json::parse(body)["error"]["code"], "forbidden_host") << body;
  std::tie(status, body) = chat({{"Origin", "https://attacker.example"}}, json::object(), "text/plain");
  EXPECT_EQ(status, 403) << body;
  EXPECT_EQ(json::parse(body)["error"]["code"], "forbidden_origin") << body;
  std::tie(status, body) = chat({{"Origin", "null"}});
  EXPECT_EQ(status, 403) << body;
  // GET routes too: /metrics would tell a rebinding page what runs here.
  httplib::Client cli("127.0.0.1", server_->port());
  auto metrics = cli.Get("/metrics", {{"Host", "attacker.example"}});
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 403);

  // Not a browser, or a page on this machine: served.
  std::tie(status, body) = chat({});
  EXPECT_EQ(status, 200) << body;
  std::tie(status, body) = chat({{"Host", "localhost:" + port}, {"Origin", "http://localhost:" + port}});
  EXPECT_EQ(status, 200) << body;
}

// With an API key required, a page cannot call (it lacks the key), and a web
// UI behind a reverse proxy, on its own name and origin, may.
TEST(BrowserGuardWithKey, NamesAndOriginsAreServedToWhoeverHoldsTheKey) {
  ServeProcess server({"-c", "512", "--parallel", "1", "-t", "2", "--api-key", "k3y"});
  httplib::Client cli("127.0.0.1", server.port());
  cli.set_read_timeout(120, 0);
  const std::string body = R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":1})";
  const httplib::Headers proxied{{"Host", "chat.example.com"}, {"Origin", "https://chat.example.com"}};
  auto without_key = cli.Post("/v1/chat/completions", proxied, body, "application/json");
  ASSERT_TRUE(without_key);
  EXPECT_EQ(without_key->status, 401) << without_key->body;
  httplib::Headers with_key = proxied;
  with_key.emplace("Authorization", "Bearer k3y");
  auto served = cli.Post("/v1/chat/completions", with_key, body, "application/json");
  ASSERT_TRUE(served);
  EXPECT_EQ(served->status, 200) << served->body;
}

TEST_F(BrowserGuardServe, AGrammarTooAmbiguousToStartFailsAloneAsABadRequest) {
  json values = json::array();
  for (int i = 0; i < 5000; ++i) values.push_back(i);
  const json format = {{"type", "json_schema"},
                       {"json_schema", {{"name", "x"}, {"schema", {{"enum", values}}}}}};
  auto [status, body] = chat({}, {{"response_format", format}});
  EXPECT_EQ(status, 400) << body;
  EXPECT_EQ(json::parse(body)["error"]["code"], "unsupported_schema") << body;
  EXPECT_TRUE(server_->alive());
  std::tie(status, body) = chat({});
  EXPECT_EQ(status, 200) << body;
}

}  // namespace
}  // namespace warden::test
