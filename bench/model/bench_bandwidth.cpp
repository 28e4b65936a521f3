// Memory read bandwidth: sums a buffer far larger than the caches, the
// figure decode speed is bounded by (bytes of weights read per token /
// bandwidth = the roofline time per token). Run with --benchmark_filter and
// compare threads=1 and threads=2.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <thread>
#include <vector>

namespace {

constexpr size_t kBytes = size_t(512) << 20;  // 512 MiB

uint64_t sum_words(const uint64_t* p, size_t n) {
  uint64_t a = 0, b = 0, c = 0, d = 0;
  for (size_t i = 0; i + 4 <= n; i += 4) {
    a += p[i];
    b += p[i + 1];
    c += p[i + 2];
    d += p[i + 3];
  }
  return a + b + c + d;
}

void BM_ReadBandwidth(benchmark::State& state) {
  const int threads = int(state.range(0));
  static std::vector<uint64_t> buffer(kBytes / sizeof(uint64_t), 1);
  const size_t per_thread = buffer.size() / size_t(threads);
  for (auto _ : state) {
    std::vector<uint64_t> sums(static_cast<size_t>(threads));
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; t++)
      pool.emplace_back([&, t] { sums[size_t(t)] = sum_words(buffer.data() + size_t(t) * per_thread, per_thread); });
    sums[0] = sum_words(buffer.data(), per_thread);
    for (auto& th : pool) th.join();
    benchmark::DoNotOptimize(sums);
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(per_thread * size_t(threads) * sizeof(uint64_t)));
}

BENCHMARK(BM_ReadBandwidth)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
