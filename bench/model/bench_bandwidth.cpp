// Memory read bandwidth: sums a buffer far larger than the caches, the
// figure decode speed is bounded by (bytes of weights read per token /
// bandwidth = the roofline time per token). Run with --benchmark_filter and
// compare threads=1 and threads=2. The buffer is allocated as the engine
// allocates repacked weights (util/mapped_file.h AnonymousMemory: 2 MiB
// aligned, transparent huge pages): with small pages the TLB, not the memory,
// limits a streaming read on this machine (32-34 GB/s instead of ~50).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <thread>
#include <vector>

#include "util/mapped_file.h"

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
  static warden::AnonymousMemory memory(kBytes);
  static uint64_t* const buffer = [] {
    auto* words = reinterpret_cast<uint64_t*>(memory.data());
    for (size_t i = 0; i < kBytes / sizeof(uint64_t); i++) words[i] = i;  // touch every page
    return words;
  }();
  const size_t per_thread = kBytes / sizeof(uint64_t) / size_t(threads);
  for (auto _ : state) {
    std::vector<uint64_t> sums(static_cast<size_t>(threads));
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; t++)
      pool.emplace_back([&, t] { sums[size_t(t)] = sum_words(buffer + size_t(t) * per_thread, per_thread); });
    sums[0] = sum_words(buffer, per_thread);
    for (auto& th : pool) th.join();
    benchmark::DoNotOptimize(sums);
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(per_thread * size_t(threads) * sizeof(uint64_t)));
}

BENCHMARK(BM_ReadBandwidth)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
