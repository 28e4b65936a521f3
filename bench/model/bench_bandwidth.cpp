// Memory read bandwidth: sums a buffer far larger than the caches, the
// figure decode speed is bounded by (bytes of weights read per token /
// bandwidth = the roofline time per token). Run with --benchmark_filter and
// compare threads=1 and threads=2. The buffer is allocated as the engine
// allocates repacked weights (util/mapped_file.h AnonymousMemory: 2 MiB
// aligned, transparent huge pages): with small pages the TLB, not the memory,
// limits a streaming read on this machine (32-34 GB/s instead of ~50).
// BM_ReadInPoolLoops reads the same bytes the way decode reads its weights.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <thread>
#include <vector>

#include "util/mapped_file.h"
#include "util/thread_pool.h"

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

// The buffer, every page touched once.
const uint64_t* touched_buffer() {
  static warden::AnonymousMemory memory(kBytes);
  static const uint64_t* const buffer = [] {
    auto* words = reinterpret_cast<uint64_t*>(memory.data());
    for (size_t i = 0; i < kBytes / sizeof(uint64_t); i++) words[i] = i;
    return words;
  }();
  return buffer;
}

void BM_ReadBandwidth(benchmark::State& state) {
  const int threads = int(state.range(0));
  const uint64_t* const buffer = touched_buffer();
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

// One pool loop per "matrix" of state.range(0) KiB (1152: qwen3-0.6b's
// attn_output in q4_K; 3456: its gate and up together; 4: next to nothing,
// so the time is the loops' own cost), the chunks of 64 bytes the pool hands
// each thread summed as they come, two threads. Against BM_ReadBandwidth/2
// the difference is what decode's loop structure costs: a wake-up, a wait
// and a new stream per matrix and thread.
void BM_ReadInPoolLoops(benchmark::State& state) {
  constexpr size_t kChunkWords = 64 / sizeof(uint64_t);
  const size_t matrix_words = size_t(state.range(0)) * 1024 / sizeof(uint64_t);
  const size_t matrices = kBytes / sizeof(uint64_t) / matrix_words;
  const uint64_t* const buffer = touched_buffer();
  static warden::ThreadPool pool(2);
  for (auto _ : state) {
    uint64_t sums[2][8] = {};  // a cache line per thread
    for (size_t m = 0; m < matrices; m++) {
      const uint64_t* matrix = buffer + m * matrix_words;
      pool.parallel_for(int64_t(matrix_words / kChunkWords), [&](int64_t begin, int64_t end, int thread) {
        sums[thread][0] += sum_words(matrix + size_t(begin) * kChunkWords, size_t(end - begin) * kChunkWords);
      });
    }
    benchmark::DoNotOptimize(sums);
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(matrices * matrix_words * sizeof(uint64_t)));
}

BENCHMARK(BM_ReadBandwidth)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ReadInPoolLoops)->Arg(4)->Arg(1152)->Arg(3456)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
