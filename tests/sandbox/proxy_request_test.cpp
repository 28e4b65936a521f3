#include "sandbox/proxy_request.h"

#include <gtest/gtest.h>

namespace warden::sandbox {
namespace {

std::optional<ProxyRequest> parse(const std::string& head, std::string* why = nullptr) {
  std::string error;
  auto r = parse_proxy_request(head, error);
  if (why) *why = error;
  return r;
}

TEST(ProxyRequest, ParsesConnect) {
  auto r = parse("CONNECT Example.COM.:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->is_connect);
  EXPECT_EQ(r->host, "example.com");
  EXPECT_EQ(r->port, 443);
  ASSERT_EQ(r->headers.size(), 1u);
  EXPECT_EQ(r->headers[0].second, "example.com:443");
}

TEST(ProxyRequest, ParsesAbsoluteUri) {
  auto r = parse("GET http://a.example.org:8080/x/y?q=1#frag HTTP/1.0\r\n\r\n");
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->is_connect);
  EXPECT_EQ(r->host, "a.example.org");
  EXPECT_EQ(r->port, 8080);
  EXPECT_EQ(r->origin_form, "/x/y?q=1");
  auto bare = parse("GET http://a.example.org HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->port, 80);
  EXPECT_EQ(bare->origin_form, "/");
}

TEST(ProxyRequest, ParsesIpv6Literal) {
  auto r = parse("CONNECT [::1]:443 HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->host, "::1");
}

TEST(ProxyRequest, RefusesMalformedRequests) {
  const char* bad[] = {
      "GET /relative HTTP/1.1\r\n\r\n",                 // origin form: no destination
      "GET https://example.com/ HTTP/1.1\r\n\r\n",      // TLS goes through CONNECT
      "CONNECT example.com HTTP/1.1\r\n\r\n",           // port required
      "CONNECT example.com:0 HTTP/1.1\r\n\r\n",
      "CONNECT example.com:65536 HTTP/1.1\r\n\r\n",
      "GET http://user@example.com/ HTTP/1.1\r\n\r\n",  // user information
      "GET http://exa mple.com/ HTTP/1.1\r\n\r\n",
      "GET http://example.com/ HTTP/2\r\n\r\n",
      "GET http://example.com/ HTTP/1.1\r\n folded\r\n\r\n",
      "GET http://example.com/ HTTP/1.1\r\nNoColon\r\n\r\n",
      "GET http://example.com/ HTTP/1.1\r\nX: a\rb\r\n\r\n",
      "GET http://ex..ample.com/ HTTP/1.1\r\n\r\n",
      "GET http://[::1/ HTTP/1.1\r\n\r\n",
      "\r\n\r\n",
      "GET http://example.com/ HTTP/1.1\r\n",           // incomplete
  };
  for (const char* head : bad) {
    std::string why;
    EXPECT_FALSE(parse(head, &why)) << head;
    EXPECT_FALSE(why.empty()) << head;
  }
}

TEST(ProxyRequest, RefusesOversizedHead) {
  std::string head = "GET http://example.com/ HTTP/1.1\r\nX: " + std::string(kMaxRequestHead, 'a') + "\r\n\r\n";
  std::string why;
  EXPECT_FALSE(parse(head, &why));
  EXPECT_EQ(why, "request head too large");
}

TEST(ProxyRequest, HeadLength) {
  EXPECT_EQ(request_head_length("GET http://a/ HTTP/1.1\r\n"), 0u);
  EXPECT_EQ(request_head_length("CONNECT a:1 HTTP/1.1\r\n\r\nrest"), 24u);
}

TEST(ProxyRequest, NormalizeHost) {
  EXPECT_EQ(normalize_host("WWW.Example.com."), "www.example.com");
  EXPECT_EQ(normalize_host(""), "");
  EXPECT_EQ(normalize_host("a..b"), "");
  EXPECT_EQ(normalize_host("a/b"), "");
  EXPECT_EQ(normalize_host(std::string(64, 'a') + ".com"), "");
}

}  // namespace
}  // namespace warden::sandbox
