// Load: 32 concurrent streaming clients against `warden serve` with 8 slots
// (so 24 wait in the queue at first). Every stream must complete with a
// finish_reason and [DONE]; none may be dropped; the server's memory must
// stay bounded (a second identical wave may not grow it materially).
// Figures (throughput, latency) are printed, never asserted.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include "server/http_client.h"
#include "server/serve_process.h"

namespace warden::test {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct WaveResult {
  int completed = 0;
  int64_t tokens = 0;
  double seconds = 0;
  std::vector<double> latencies;  // per request, seconds
  std::vector<double> first_token;
};

WaveResult run_wave(int port, int clients, int max_tokens) {
  WaveResult w;
  std::vector<std::thread> threads;
  std::vector<int> ok(size_t(clients), 0);
  std::vector<int64_t> tokens(size_t(clients), 0);
  std::vector<double> latency(size_t(clients), 0), ttft(size_t(clients), 0);
  auto t0 = Clock::now();
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&, i] {
      ApiClient c(port);
      json body = {{"messages", json::array({{{"role", "user"}, {"content", "client " + std::to_string(i) +
                                                                                  " says hello"}}})},
                   {"max_tokens", max_tokens},
                   {"seed", i},
                   {"stream", true}};
      auto start = Clock::now();
      bool first = true;
      auto r = c.post_streaming("/v1/chat/completions", body, [&](const std::string&) {
        if (first) ttft[size_t(i)] = std::chrono::duration<double>(Clock::now() - start).count();
        first = false;
        return true;
      });
      latency[size_t(i)] = std::chrono::duration<double>(Clock::now() - start).count();
      auto events = sse_events(r.body);
      if (r.status != 200 || events.empty() || events.back() != "[DONE]") {
        std::printf("[load] client %d failed: HTTP %d, %zu events, body tail: %s\n", i, r.status, events.size(),
                    r.body.substr(r.body.size() > 200 ? r.body.size() - 200 : 0).c_str());
        return;
      }
      for (const auto& e : events) {
        if (e == "[DONE]") continue;
        auto j = json::parse(e);
        if (j.contains("usage") && !j["choices"].empty() && !j["choices"][0]["finish_reason"].is_null()) {
          tokens[size_t(i)] = j["usage"]["completion_tokens"].get<int64_t>();
          ok[size_t(i)] = 1;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  w.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  for (int i = 0; i < clients; ++i) {
    w.completed += ok[size_t(i)];
    w.tokens += tokens[size_t(i)];
  }
  w.latencies = latency;
  w.first_token = ttft;
  std::sort(w.latencies.begin(), w.latencies.end());
  std::sort(w.first_token.begin(), w.first_token.end());
  return w;
}

double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  return sorted[std::min(sorted.size() - 1, size_t(p * double(sorted.size() - 1) + 0.5))];
}

TEST(ServeLoad, ThirtyTwoConcurrentStreamsAllComplete) {
  ServeProcess server({"-c", "8192", "--parallel", "8", "-t", "2"});  // 1024 per slot
  ApiClient c(server.port());
  // Warm up once so the baseline includes the model pages and caches.
  auto warm = c.post("/v1/chat/completions",
                     json{{"messages", json::array({{{"role", "user"}, {"content", "warm up"}}})}, {"max_tokens", 4}});
  ASSERT_EQ(warm.status, 200) << warm.body;
  const long rss_before = server.rss_kib();

  constexpr int kClients = 32, kTokens = 48;
  auto first = run_wave(server.port(), kClients, kTokens);
  const long rss_after_first = server.rss_kib();
  auto second = run_wave(server.port(), kClients, kTokens);
  const long rss_after_second = server.rss_kib();

  EXPECT_EQ(first.completed, kClients);
  EXPECT_EQ(second.completed, kClients);
  EXPECT_TRUE(server.alive());
  // Bounded: 8 slots of KV cache plus buffers -- not per-request growth.
  EXPECT_LT(rss_after_first - rss_before, 256 * 1024) << "KiB";
  EXPECT_LT(rss_after_second - rss_after_first, 32 * 1024) << "KiB";

  auto metrics = c.get("/metrics").body;
  EXPECT_NE(metrics.find("warden_queue_depth 0"), std::string::npos);
  EXPECT_NE(metrics.find("warden_slots_busy 0"), std::string::npos);

  for (const auto* w : {&first, &second}) {
    std::printf("[load] %d/%d streams complete, %lld tokens in %.2f s = %.1f tokens/s aggregate; "
                "latency p50 %.2f s p95 %.2f s; first byte p50 %.2f s p95 %.2f s\n",
                w->completed, kClients, (long long)w->tokens, w->seconds, double(w->tokens) / w->seconds,
                percentile(w->latencies, 0.5), percentile(w->latencies, 0.95), percentile(w->first_token, 0.5),
                percentile(w->first_token, 0.95));
  }
  std::printf("[load] server RSS: %ld KiB before, %ld KiB after wave 1, %ld KiB after wave 2\n", rss_before,
              rss_after_first, rss_after_second);
}

}  // namespace
}  // namespace warden::test
