// The KV cache's growth as a decode sees it: reserve() for every position of
// a context, one at a time, with qwen3-0.6b's cache shape (28 layers, 8
// key/value heads of 128, f16). Reports the longest single reserve (the
// pause a decode step takes when the cache grows) and the time of all of
// them; docs/performance.md ("The KV cache's growth") has the figures.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>

#include "model/config.h"
#include "model/kv_cache.h"

namespace {

void BM_GrowToPositions(benchmark::State& state) {
  warden::model::Config c;
  c.n_layer = 28;
  c.n_head = 16;
  c.n_head_kv = 8;
  c.head_dim = c.head_dim_v = 128;
  const int64_t positions = state.range(0);
  double longest = 0, total = 0;
  for (auto _ : state) {
    warden::model::KvCache cache(c, positions, 1);
    for (int64_t p = 0; p < positions; p++) {
      const auto start = std::chrono::steady_clock::now();
      cache.reserve(0, p);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      longest = std::max(longest, s);
      total += s;
    }
  }
  state.counters["longest_reserve_ms"] = 1e3 * longest;
  state.counters["all_reserves_ms"] = benchmark::Counter(1e3 * total, benchmark::Counter::kAvgIterations);
}

}  // namespace

BENCHMARK(BM_GrowToPositions)->Arg(2048)->Arg(4096)->Arg(8192)->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
