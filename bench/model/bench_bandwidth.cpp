// Memory read bandwidth: sums a buffer far larger than the caches, the
// figure decode speed is bounded by (bytes of weights read per token /
// bandwidth = the roofline time per token). Run with --benchmark_filter and
// compare threads=1 and threads=2. The buffer is allocated as the engine
// allocates repacked weights (util/mapped_file.h AnonymousMemory: 2 MiB
// aligned, transparent huge pages): with small pages the TLB, not the memory,
// limits a streaming read on this machine (32-34 GB/s instead of ~50).
// BM_ReadInPoolLoops reads the same bytes the way decode reads its weights;
// BM_PackedFromMemory and BM_AttendFromMemory run decode's kernels over
// weights and a KV cache far larger than the caches, so against the plain
// reads of the same minute they show how well a kernel's access order
// streams (how the K-quant panel layout and the attention's value tiles were
// chosen). BM_CoreToCore tells which of this VM's two memory regimes a run
// is in: in the fast one the two vCPUs sit on different CCDs (a cache line
// takes 160-280 ns from one to the other, 50-80 ns in the slow regime).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "gguf/types.h"
#include "model/roofline.h"
#include "tensor/kernels.h"
#include "tensor/vector_ops.h"
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

// 512 MiB of one type's packed panels for rows of kCols (64 distinct rows
// repeated: the kernels' speed does not depend on the values), and a
// quantized activation row.
constexpr int64_t kCols = 4096;
struct PackedWeights {
  warden::gguf::TensorType type;
  warden::AnonymousMemory memory{kBytes};
  const warden::tensor::TypeKernels* kernels;
  size_t panel_bytes;
  int64_t panels;
  std::vector<uint8_t> x;

  explicit PackedWeights(warden::gguf::TensorType type) : type(type) {
    namespace tensor = warden::tensor;
    constexpr int64_t kRows = 64;
    kernels = tensor::active_kernels().find(type);
    std::mt19937 rng(7);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> values(size_t(kRows * kCols));
    for (float& v : values) v = normal(rng);
    const size_t row_bytes = warden::gguf::row_bytes(type, kCols);
    std::vector<uint8_t> rows(row_bytes * size_t(kRows));
    const tensor::QuantizeFn quantize = tensor::scalar_kernels().find(type)->quantize;
    for (int64_t r = 0; r < kRows; r++) quantize(values.data() + r * kCols, rows.data() + size_t(r) * row_bytes, kCols);
    panel_bytes = kernels->panel_bytes(kCols);
    std::vector<uint8_t> packed(panel_bytes * size_t(kRows / 8));
    kernels->pack(rows.data(), row_bytes, kRows, kCols, packed.data());
    panels = int64_t(kBytes / panel_bytes);
    for (int64_t i = 0; i < panels; i++)
      std::memcpy(memory.data() + size_t(i) * panel_bytes, packed.data() + size_t(i % (kRows / 8)) * panel_bytes,
                  panel_bytes);
    x.resize(warden::gguf::row_bytes(kernels->dot_type, kCols));
    tensor::active_kernels().find(kernels->dot_type)->quantize(values.data(), x.data(), kCols);
  }
};

// One token times every panel (decode's matrix-vector product), two threads:
// state.range(0) = 0 as one pool loop, otherwise one loop per that many
// panels (64 Q4_K panels of 4096 columns = 1152 KiB, about a decode matrix).
void BM_PackedFromMemory(benchmark::State& state, warden::gguf::TensorType type) {
  static std::unique_ptr<PackedWeights> weights;  // one type at a time: 512 MiB each
  if (!weights || weights->type != type) {
    weights.reset();
    weights = std::make_unique<PackedWeights>(type);
  }
  static warden::ThreadPool pool(2);
  const PackedWeights& w = *weights;
  const int64_t per_loop = state.range(0) ? state.range(0) : w.panels;
  std::vector<float> y(size_t(w.panels) * 8);
  for (auto _ : state) {
    for (int64_t first = 0; first + per_loop <= w.panels; first += per_loop)
      pool.parallel_for(per_loop, [&](int64_t begin, int64_t end, int) {
        const int64_t p = first + begin;
        w.kernels->gemm_packed(w.memory.data() + size_t(p) * w.panel_bytes, (end - begin) * 8, w.x.data(), w.x.size(),
                               1, kCols, y.data() + p * 8, (end - begin) * 8);
      });
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * (w.panels / per_loop) * per_loop * int64_t(w.panel_bytes));
}

// Decode attention of one token: a GQA group of state.range(0) query heads
// of 128 per key/value head, 2048 cached positions, over 112 key/value heads
// (qwen3-0.6b's 28 layers x 8 heads at half the positions: 224 MiB of f16
// keys and values, 119 MiB as q8_0), split between two threads.
using warden::gguf::TensorType;

warden::tensor::CacheRows random_cache_heads(TensorType type, int64_t heads, int64_t rows, int64_t dim) {
  const size_t row_bytes = warden::gguf::row_bytes(type, dim);
  auto* memory = new warden::AnonymousMemory(size_t(heads * rows) * row_bytes);  // kept for the process
  auto* bytes = reinterpret_cast<uint8_t*>(memory->data());
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> magnitude(0x3000, 0x3bff);  // halves in [0.125, 1)
  auto random_half = [&] { return uint16_t(magnitude(rng) | (rng() & 1 ? 0x8000 : 0)); };
  if (type == TensorType::F16) {
    auto* h = reinterpret_cast<uint16_t*>(bytes);
    for (size_t i = 0; i < size_t(heads * rows * dim); i++) h[i] = random_half();
  } else {  // Q8_0 blocks: a scale, then 32 random codes
    for (size_t at = 0; at < size_t(heads * rows) * row_bytes; at += 34) {
      const uint16_t d = random_half();
      std::memcpy(bytes + at, &d, sizeof d);
      for (int i = 0; i < 32; i++) bytes[at + 2 + size_t(i)] = uint8_t(rng());
    }
  }
  return {bytes, type, row_bytes};
}

void BM_AttendFromMemory(benchmark::State& state, TensorType type) {
  constexpr int64_t kDim = 128, kPositions = 2048, kHeads = 112;
  // Per head its keys, then its values.
  static const warden::tensor::CacheRows f16 = random_cache_heads(TensorType::F16, kHeads, 2 * kPositions, kDim);
  static const warden::tensor::CacheRows q8_0 = random_cache_heads(TensorType::Q8_0, kHeads, 2 * kPositions, kDim);
  const warden::tensor::CacheRows& cache = type == TensorType::F16 ? f16 : q8_0;
  const int group = int(state.range(0));
  static warden::ThreadPool pool(2);
  const std::vector<float> q(size_t(group * kDim), 0.1f);
  std::vector<float> out(size_t(2 * group * kDim));
  for (auto _ : state) {
    pool.parallel_for(kHeads, [&](int64_t begin, int64_t end, int thread) {
      for (int64_t h = begin; h < end; h++) {
        warden::tensor::CacheRows k = cache, v = cache;
        k.data += size_t(2 * h * kPositions) * cache.row_bytes;
        v.data = k.data + size_t(kPositions) * cache.row_bytes;
        warden::tensor::attend(q.data(), group, kDim, k, v, kDim, kPositions, 0.088f,
                               out.data() + size_t(thread * group * kDim));
      }
    });
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(size_t(kHeads * 2 * kPositions) * cache.row_bytes));
}

// One cache line handed back and forth between the pool's two threads, as
// `warden bench` times it after each run (model::time_handoff): what a
// barrier, or any value one thread writes and the other reads next, costs.
void BM_CoreToCore(benchmark::State& state) {
  static warden::ThreadPool pool(2);
  double seconds = 0;
  for (auto _ : state) seconds += warden::model::time_handoff(pool);
  state.counters["ns_per_handoff"] = 1e9 * seconds / double(state.iterations());
}

BENCHMARK(BM_CoreToCore)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ReadBandwidth)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ReadInPoolLoops)->Arg(4)->Arg(1152)->Arg(3456)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_PackedFromMemory, Q8_0, TensorType::Q8_0)->Arg(0)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_PackedFromMemory, Q4_0, TensorType::Q4_0)->Arg(0)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_PackedFromMemory, Q4_K, TensorType::Q4_K)->Arg(0)->Arg(64)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_PackedFromMemory, Q6_K, TensorType::Q6_K)->Arg(0)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_PackedFromMemory, F16, TensorType::F16)->Arg(0)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_PackedFromMemory, BF16, TensorType::BF16)->Arg(0)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_AttendFromMemory, f16, TensorType::F16)->Arg(2)->Arg(4)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_AttendFromMemory, q8_0, TensorType::Q8_0)->Arg(2)->Arg(4)->UseRealTime()->Unit(benchmark::kMillisecond);
// The plain reads again: the memory may have changed speed meanwhile.
BENCHMARK(BM_ReadBandwidth)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CoreToCore)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
