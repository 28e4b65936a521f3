// Slow clients (slowloris). `warden serve` reads every request whole on one
// thread before a worker answers it, and `--timeout N` gives each request N
// seconds to arrive, from the connection's start or the previous answer on
// it (src/server/connection.h): a slow client costs a socket, never a
// worker, and no client is kept waiting by others' slowness.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "common/test_env.h"
#include "server/serve_process.h"

namespace warden::test {
namespace {

// A connection to the server, with `options` set on its socket first.
int connect_to(int port, const std::function<void(int)>& options = nullptr) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0 && options) options(fd);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(uint16_t(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return fd;
  if (fd >= 0) ::close(fd);
  return -1;
}

void send_all(int fd, const std::string& text) {
  for (size_t sent = 0; sent < text.size();) {
    const ssize_t n = ::send(fd, text.data() + sent, text.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return;
    sent += size_t(n);
  }
}

// What arrives on `fd` until the server closes it or `wait` passes with
// nothing more; `closed` tells which.
std::string receive(int fd, std::chrono::seconds wait, bool* closed = nullptr) {
  std::string got;
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, int(std::chrono::milliseconds(wait).count())) <= 0) break;
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      if (closed) *closed = true;
      return got;
    }
    got.append(buf, size_t(n));
    if (!closed && got.find("\r\n\r\n") != std::string::npos && got.find("ok") != std::string::npos) break;
  }
  if (closed) *closed = false;
  return got;
}

// What arrives on `fd` until `marker` has come `count` times, the server
// closes it, or 30 s pass with nothing more.
std::string receive_until(int fd, const std::string& marker, int count = 1) {
  std::string got;
  auto seen = [&] {
    int n = 0;
    for (size_t at = got.find(marker); at != std::string::npos; at = got.find(marker, at + 1)) n++;
    return n;
  };
  while (seen() < count) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 30000) <= 0) break;
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, size_t(n));
  }
  return got;
}

const std::string kHealth = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

// A counter or gauge from GET /metrics; -1 when it is not there.
double metric(int port, const std::string& name) {
  const int fd = connect_to(port);
  if (fd < 0) return -1;
  send_all(fd, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  const std::string text = receive_until(fd, name + " ");
  const std::string more = receive(fd, std::chrono::seconds(1));
  ::close(fd);
  const size_t at = (text + more).find("\n" + name + " ");
  return at == std::string::npos ? -1 : std::atof((text + more).c_str() + at + name.size() + 2);
}

// `count` connections, the i-th having sent `start(i)`; fewer when one
// cannot connect.
std::vector<int> connections_that_began(int port, int count, const std::function<std::string(int)>& start) {
  std::vector<int> fds;
  for (int i = 0; i < count; i++) {
    const int fd = connect_to(port);
    if (fd < 0) break;
    send_all(fd, start(i));
    fds.push_back(fd);
  }
  return fds;
}

// What another client gets for GET /health (it waits up to 30 s).
std::string health_for_another_client(int port) {
  const int fd = connect_to(port);
  if (fd < 0) return "";
  send_all(fd, kHealth);
  const std::string answer = receive(fd, std::chrono::seconds(30));
  ::close(fd);
  return answer;
}

TEST(SlowClients, TrickledRequestsAreCutOffAndOthersAreServed) {
  // 17 worker threads (1 slot, no queue, 16 more): 40 trickling connections
  // would hold every one of them for as long as they trickle.
  ServeProcess server({"--parallel", "1", "--max-queue", "0", "-t", "1", "--timeout", "2"});
  // Half of them trickle their headers in, half a body they announced.
  const std::vector<int> slow = connections_that_began(server.port(), 40, [](int i) {
    return i % 2 ? std::string("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                 : std::string("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                               "application/json\r\nContent-Length: 4000\r\n\r\n{");
  });
  ASSERT_EQ(slow.size(), 40u);
  std::atomic<bool> trickling{true};
  std::thread trickle([&] {
    while (trickling) {
      for (int fd : slow) ::send(fd, " ", 1, MSG_NOSIGNAL);  // well inside each read's 2 s
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
  });

  // Another client is answered all the same.
  const std::string answer = health_for_another_client(server.port());
  EXPECT_EQ(answer.rfind("HTTP/1.1 200", 0), 0u) << answer;
  // And every trickling connection was closed by the server.
  int closed_by_server = 0;
  for (int s : slow) {
    bool closed = false;
    receive(s, std::chrono::seconds(10), &closed);
    closed_by_server += closed;
  }
  trickling = false;
  trickle.join();
  for (int s : slow) ::close(s);
  EXPECT_EQ(closed_by_server, 40);
  EXPECT_TRUE(server.alive());
}

// The limit is per request: a connection kept alive across several
// requests, longer in all than the limit, is served throughout; a request
// that arrives slowly but in time is too.
TEST(SlowClients, TheLimitIsForEachRequestNotTheConnection) {
  ServeProcess server({"--parallel", "1", "-t", "1", "--timeout", "2"});
  const int fd = connect_to(server.port());
  ASSERT_GE(fd, 0);
  for (int i = 0; i < 3; i++) {
    for (char c : kHealth) {  // 42 bytes over about 0.8 s
      send_all(fd, std::string(1, c));
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    const std::string answer = receive(fd, std::chrono::seconds(30));
    EXPECT_EQ(answer.rfind("HTTP/1.1 200", 0), 0u) << "request " << i << ": " << answer;
    // What the answer says of keep-alive is what the server does.
    EXPECT_NE(answer.find("Keep-Alive: timeout=2, max=100"), std::string::npos) << answer;
    std::this_thread::sleep_for(std::chrono::milliseconds(800));
  }
  ::close(fd);
}

// A request refused before its body is read (here: from a web page of
// another site) ends its connection: the body, which holds a request of
// its own, is never taken for the next request on it.
TEST(SlowClients, TheBodyOfARefusedRequestIsNeverARequest) {
  ServeProcess server({"--parallel", "1", "-t", "1"});
  const std::string inner_body = R"({"prompt":"hi","max_tokens":2})";
  const std::string inner = "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                            "Content-Length: " + std::to_string(inner_body.size()) + "\r\n\r\n" + inner_body;
  const int fd = connect_to(server.port());
  ASSERT_GE(fd, 0);
  send_all(fd, "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: https://evil.example\r\n"
               "Content-Type: text/plain\r\nContent-Length: " + std::to_string(inner.size()) + "\r\n\r\n" + inner);
  bool closed = false;
  const std::string answers = receive(fd, std::chrono::seconds(30), &closed);
  ::close(fd);
  EXPECT_TRUE(closed);
  EXPECT_EQ(answers.rfind("HTTP/1.1 403", 0), 0u) << answers;
  EXPECT_EQ(answers.find("HTTP/1.1", 1), std::string::npos) << answers;  // one answer only
  EXPECT_EQ(answers.find("text_completion"), std::string::npos) << answers;

  // A body without a length (chunked, or until the client closes) could be
  // any size: refused.
  const int chunked = connect_to(server.port());
  ASSERT_GE(chunked, 0);
  send_all(chunked, "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "5\r\nhello\r\n");
  const std::string refused = receive(chunked, std::chrono::seconds(30), &closed);
  ::close(chunked);
  EXPECT_EQ(refused.rfind("HTTP/1.1 411", 0), 0u) << refused;
  EXPECT_TRUE(closed);

  // cpp-httplib reads no body for a GET (the bytes would be the next
  // request), and inflates compressed bodies past --max-body: both refused.
  for (const auto& [head, status] :
       {std::pair{"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " + std::to_string(inner.size()) +
                      "\r\n\r\n" + inner,
                  std::string("HTTP/1.1 400")},
        std::pair{std::string("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Encoding: gzip\r\n"
                              "Content-Length: 4\r\n\r\nabcd"),
                  std::string("HTTP/1.1 415")}}) {
    const int c = connect_to(server.port());
    ASSERT_GE(c, 0);
    send_all(c, head);
    const std::string answer = receive(c, std::chrono::seconds(30), &closed);
    ::close(c);
    EXPECT_EQ(answer.rfind(status, 0), 0u) << answer;
    EXPECT_EQ(answer.find("HTTP/1.1", 1), std::string::npos) << answer;
    EXPECT_TRUE(closed);
  }
}

// cpp-httplib bounds neither a header line nor the number of headers: a
// request may take no more than the body's limit and 64 KiB in all, so a
// 50 MB header line costs the server no 50 MB.
TEST(SlowClients, ARequestHeadIsBoundedInSize) {
  ServeProcess server({"--parallel", "1", "-t", "1", "--max-body", "1024"});
  // The high-water mark: the line, read whole, would be freed again at once.
  const std::string status = "/proc/" + std::to_string(server.pid()) + "/status";
  const long peak_before = std::atol(status_field(status, "VmHWM").c_str());
  const int fd = connect_to(server.port());
  ASSERT_GE(fd, 0);
  send_all(fd, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Long: " + std::string(size_t(50) << 20, 'a'));
  bool closed = false;
  receive(fd, std::chrono::seconds(30), &closed);
  ::close(fd);
  EXPECT_TRUE(closed);
  EXPECT_LT(std::atol(status_field(status, "VmHWM").c_str()) - peak_before, 25 * 1024);
  EXPECT_EQ(health_for_another_client(server.port()).rfind("HTTP/1.1 200", 0), 0u);
}

// Whether `fd` has nothing to read and is still open, this moment.
bool quiet(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 0;
}

// Slow requests, each in time, hold no worker: with 17 workers and 60 such
// requests under way, another client is answered while all 60 are still
// arriving, and each of them is answered once it is whole.
TEST(SlowClients, RequestsStillArrivingHoldNoWorker) {
  ServeProcess server({"--parallel", "1", "--max-queue", "0", "-t", "1", "--timeout", "60"});
  const std::vector<int> slow = connections_that_began(server.port(), 60, [](int) {
    return "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n";  // the blank line still to come
  });
  ASSERT_EQ(slow.size(), 60u);
  const std::string answer = health_for_another_client(server.port());
  EXPECT_EQ(answer.rfind("HTTP/1.1 200", 0), 0u) << answer;
  int still_arriving = 0;
  for (int s : slow) still_arriving += quiet(s);
  EXPECT_EQ(still_arriving, 60);
  int answered = 0;
  for (int s : slow) {
    send_all(s, "\r\n");
    answered += receive(s, std::chrono::seconds(30)).rfind("HTTP/1.1 200", 0) == 0;
    ::close(s);
  }
  EXPECT_EQ(answered, 60);
}

// Connections are bounded (here by a file limit of 300): once they are all
// open, each new one closes the one whose client has been silent longest,
// so a client that opens many and then sends nothing cannot lock others
// out.
TEST(SlowClients, ANewConnectionMakesRoomByClosingTheLongestSilent) {
  rlimit files{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &files), 0);
  rlimit low = files;
  low.rlim_cur = 300;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  std::optional<ServeProcess> server;
  try {
    server.emplace(std::vector<std::string>{"--parallel", "1", "-t", "1", "--timeout", "60"});
  } catch (...) {
    ::setrlimit(RLIMIT_NOFILE, &files);
    throw;
  }
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &files), 0);
  std::vector<int> idle = connections_that_began(server->port(), 250, [](int) { return "GET /health HTTP/1.1\r\n"; });
  ASSERT_EQ(idle.size(), 250u);
  // They go quiet; then a client that sends its request a moment after it
  // connects is answered all the same, while more connections open.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const int fd = connect_to(server->port());
  ASSERT_GE(fd, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  for (int i = 0; i < 5; i++) idle.push_back(connect_to(server->port()));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  send_all(fd, kHealth);
  const std::string answer = receive(fd, std::chrono::seconds(30));
  ::close(fd);
  EXPECT_EQ(answer.rfind("HTTP/1.1 200", 0), 0u) << answer;
  // The ones closed are those silent longest, here the oldest.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // for the closes to arrive
  size_t closed = 0;
  for (size_t i = 0; i < idle.size(); i++) {
    if (quiet(idle[i])) continue;
    EXPECT_EQ(i, closed) << "a newer connection closed before an older one";
    closed++;
  }
  EXPECT_GT(closed, 0u);
  EXPECT_LT(closed, idle.size());
  // /metrics counts them (and one more should its own connection have
  // needed room).
  const double counted = metric(server->port(), "warden_connections_closed_for_room_total");
  EXPECT_GE(counted, double(closed));
  EXPECT_LE(counted, double(closed) + 1);
  for (int s : idle) ::close(s);
}

// Clients that start streamed answers and read none of them hold no
// worker: what the socket does not take, the worker leaves to the gate,
// which sends it as the client reads. Each client's small segments (MSS
// 536, as on a real network) keep the server's send buffer at about 190 KB,
// less than one answer.
TEST(SlowClients, AnswersNobodyReadsHoldNoWorker) {
  ServeProcess server({"--parallel", "1", "--max-queue", "0", "-t", "1", "--timeout", "60"});
  const std::string body = R"({"prompt":"hi","max_tokens":3000,"ignore_eos":true,"stream":true})";
  const std::string request = "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                              "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  std::vector<int> deaf;
  for (int tries = 0; deaf.size() < 17 && tries < 2000; tries++) {  // 17 workers
    const int fd = connect_to(server.port(), [](int socket) {
      const int mss = 536, small = 4096;
      ::setsockopt(socket, IPPROTO_TCP, TCP_MAXSEG, &mss, sizeof mss);
      ::setsockopt(socket, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    });
    ASSERT_GE(fd, 0);
    send_all(fd, request);
    // One slot: a client that finds it busy gets 503 and tries again.
    char head[12];
    pollfd p{fd, POLLIN, 0};
    const bool streaming = ::poll(&p, 1, 30000) == 1 && ::recv(fd, head, sizeof head, MSG_PEEK) == ssize_t(sizeof head) &&
                           std::string(head, sizeof head) == "HTTP/1.1 200";
    if (streaming) {
      deaf.push_back(fd);
    } else {
      ::close(fd);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  ASSERT_EQ(deaf.size(), 17u);
  const std::string answer = health_for_another_client(server.port());
  EXPECT_EQ(answer.rfind("HTTP/1.1 200", 0), 0u) << answer;
  // And each answer, once read, is whole.
  int whole = 0;
  for (int s : deaf) {
    whole += receive_until(s, "data: [DONE]").find("data: [DONE]") != std::string::npos;
    ::close(s);
  }
  EXPECT_EQ(whole, 17);
}

// A request that does not arrive whole in time is answered 408, then closed.
TEST(SlowClients, ARequestPastItsTimeIsToldSo) {
  ServeProcess server({"--parallel", "1", "-t", "1", "--timeout", "1"});
  const int fd = connect_to(server.port());
  ASSERT_GE(fd, 0);
  send_all(fd, "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\r\n{");
  bool closed = false;
  const std::string answer = receive(fd, std::chrono::seconds(30), &closed);
  ::close(fd);
  EXPECT_EQ(answer.rfind("HTTP/1.1 408", 0), 0u) << answer;
  EXPECT_NE(answer.find("request_timeout"), std::string::npos) << answer;
  EXPECT_TRUE(closed);
  EXPECT_EQ(metric(server.port(), "warden_gate_refusals_total"), 1);
}

// "Expect: 100-continue" (curl sends it with large bodies) is answered
// before the body comes, and only once.
TEST(SlowClients, ExpectContinueIsAnsweredBeforeTheBody) {
  ServeProcess server({"--parallel", "1", "-t", "1"});
  const std::string body = R"({"prompt":"hi","max_tokens":2})";
  const int fd = connect_to(server.port());
  ASSERT_GE(fd, 0);
  send_all(fd, "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               "Expect: 100-continue\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n");
  EXPECT_EQ(receive_until(fd, "\r\n\r\n"), "HTTP/1.1 100 Continue\r\n\r\n");
  send_all(fd, body);
  const std::string answer = receive_until(fd, "text_completion");
  ::close(fd);
  EXPECT_EQ(answer.rfind("HTTP/1.1 200", 0), 0u) << answer;
  EXPECT_EQ(answer.find("100 Continue"), std::string::npos) << answer;
}

// Requests sent back to back on one connection are answered in order.
TEST(SlowClients, RequestsSentTogetherAreAnsweredInOrder) {
  ServeProcess server({"--parallel", "1", "-t", "1"});
  const int fd = connect_to(server.port());
  ASSERT_GE(fd, 0);
  send_all(fd, kHealth + "GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" + kHealth);
  const std::string answers = receive_until(fd, "\"status\":\"ok\"", 2);
  ::close(fd);
  const size_t first = answers.find("\"status\":\"ok\""), models = answers.find("\"object\":\"list\""),
               last = answers.rfind("\"status\":\"ok\"");
  ASSERT_NE(first, std::string::npos) << answers;
  ASSERT_NE(models, std::string::npos) << answers;
  EXPECT_LT(first, models);
  EXPECT_LT(models, last);
}

// A Content-Length that is not one decimal number is refused: cpp-httplib
// would take "12abc" as 12, and the first of two lengths.
TEST(SlowClients, AContentLengthMustBeOneNumber) {
  ServeProcess server({"--parallel", "1", "-t", "1"});
  for (const std::string& lengths : {std::string("Content-Length: 2x\r\n"),
                                     std::string("Content-Length: 2\r\nContent-Length: 3\r\n")}) {
    const int fd = connect_to(server.port());
    ASSERT_GE(fd, 0);
    send_all(fd, "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n" + lengths + "\r\n{}");
    bool closed = false;
    const std::string answer = receive(fd, std::chrono::seconds(30), &closed);
    ::close(fd);
    EXPECT_EQ(answer.rfind("HTTP/1.1 400", 0), 0u) << lengths << answer;
    EXPECT_NE(answer.find("invalid_content_length"), std::string::npos) << answer;
    EXPECT_TRUE(closed);
  }
}

// A stop waits at most --timeout (5 s at most) for work a worker is still
// doing before a generation starts: tokenizing a 4 MiB word takes about a
// second of CPU, and 20 of them on this machine's two cores ten.
TEST(SlowClients, AStopWaitsForRequestsStillBeingPreparedAtMostTheirTimeout) {
  ServeProcess server({"--parallel", "1", "-t", "1", "--timeout", "1"});
  const std::string body = R"({"max_tokens":1,"prompt":")" + std::string((4 << 20) - 100, 'x') + R"("})";
  const std::vector<int> fds = connections_that_began(server.port(), 20, [&](int) {
    return "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
           "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  });
  ASSERT_EQ(fds.size(), 20u);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // for the gate to hand them out
  const auto asked = std::chrono::steady_clock::now();
  EXPECT_EQ(server.stop(), 0);
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - asked).count();
  EXPECT_LT(took, 4.0) << "the stop waited for every request";
  for (int fd : fds) ::close(fd);
}

TEST(SlowClients, TheTimeoutMustBeASensibleNumberOfSeconds) {
  EXPECT_THROW(ServeProcess({"--timeout", "0"}), std::runtime_error);
  EXPECT_THROW(ServeProcess({"--timeout", "x"}), std::runtime_error);
}

}  // namespace
}  // namespace warden::test
