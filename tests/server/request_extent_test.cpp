// How the serve gate measures a request before a worker takes it
// (src/server/request_extent.h).
#include "server/request_extent.h"

#include <gtest/gtest.h>

#include <string>

namespace warden::server {
namespace {

constexpr size_t kMaxBody = 1000;

TEST(RequestExtent, AHeadEndsAtTheFirstBlankLine) {
  const std::string get = "GET /health HTTP/1.1\r\nHost: a\r\n\r\n";
  for (size_t have = 0; have < get.size(); have++)
    EXPECT_FALSE(measure_request(get.substr(0, have), kMaxBody).head_complete) << have;
  const RequestExtent whole = measure_request(get + "GET /next", kMaxBody);
  EXPECT_TRUE(whole.head_complete);
  EXPECT_EQ(whole.head_bytes, get.size());
  EXPECT_EQ(whole.bytes, get.size());
  EXPECT_TRUE(whole.complete(get.size()));
  // A line ending in a bare LF is skipped, as cpp-httplib skips it: it is
  // neither a header nor the head's end.
  const RequestExtent bare = measure_request("GET / HTTP/1.1\r\nContent-Length: 5\n\r\n", kMaxBody);
  EXPECT_TRUE(bare.head_complete);
  EXPECT_EQ(bare.bytes, bare.head_bytes);
}

TEST(RequestExtent, ABodyIsContentLengthBytes) {
  const std::string head = "POST /v1/completions HTTP/1.1\r\ncontent-LENGTH:  12 \r\n\r\n";
  const RequestExtent extent = measure_request(head + "{\"a\":", kMaxBody);
  EXPECT_TRUE(extent.head_complete);
  EXPECT_EQ(extent.head_bytes, head.size());
  EXPECT_EQ(extent.bytes, head.size() + 12);
  EXPECT_FALSE(extent.complete(head.size() + 5));
  EXPECT_TRUE(extent.complete(head.size() + 12));
  // The same length twice is one length.
  EXPECT_EQ(measure_request("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", kMaxBody).bytes,
            std::string("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n").size() + 3);
}

// Bodies that are refused unread count as none: the request goes on at its
// head, where cpp-httplib and the routes refuse it.
TEST(RequestExtent, ABodyRefusedUnreadIsNotWaitedFor) {
  for (const std::string& headers :
       {std::string("Content-Length: 1001\r\n"), std::string("Content-Length: 12abc\r\n"),
        std::string("Content-Length: -1\r\n"), std::string("Content-Length: 99999999999999999999\r\n"),
        std::string("Content-Length: 3\r\nContent-Length: 4\r\n"),
        std::string("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"), std::string("Content-Length:\r\n")}) {
    const std::string head = "POST / HTTP/1.1\r\n" + headers + "\r\n";
    const RequestExtent extent = measure_request(head, kMaxBody);
    EXPECT_TRUE(extent.head_complete) << headers;
    EXPECT_EQ(extent.bytes, head.size()) << headers;
  }
  // A name with a blank before its colon is another header to cpp-httplib.
  const std::string spaced = "POST / HTTP/1.1\r\nContent-Length : 5\r\n\r\n";
  EXPECT_EQ(measure_request(spaced, kMaxBody).bytes, spaced.size());
}

TEST(RequestExtent, ExpectContinueIsNoticed) {
  EXPECT_TRUE(measure_request("POST / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 4\r\n\r\n", kMaxBody)
                  .expects_continue);
  EXPECT_FALSE(measure_request("POST / HTTP/1.1\r\nExpect: 200-ok\r\nContent-Length: 4\r\n\r\n", kMaxBody)
                   .expects_continue);
}

// The quick search finds a head exactly when the parse does, also when the
// bytes come one at a time and it goes on from where it stopped.
TEST(RequestExtent, TheQuickSearchAgreesWithTheParse) {
  for (const std::string& bytes :
       {std::string("GET / HTTP/1.1\r\nA: b\r\n\r\n"), std::string("GET / HTTP/1.1\r\n\r\n"),
        std::string("GET / HTTP/1.1\r\nA: b\n\r\n"), std::string("GET / HTTP/1.1\r\nA: b\r\r\n\n"),
        std::string("\r\n\r\n"), std::string("GET / HTTP/1.1\n\n")}) {
    size_t from = 0;
    for (size_t have = 1; have <= bytes.size(); have++) {
      const std::string part = bytes.substr(0, have);
      if (from != std::string::npos) from = find_head_end(part, from);
      EXPECT_EQ(from == std::string::npos, measure_request(part, kMaxBody).head_complete) << bytes << " " << have;
      EXPECT_EQ(find_head_end(part, 0) == std::string::npos, measure_request(part, kMaxBody).head_complete);
    }
  }
}

}  // namespace
}  // namespace warden::server
