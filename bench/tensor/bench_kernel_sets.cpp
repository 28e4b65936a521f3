// The scalar reference and the active (SIMD) kernel set side by side: one
// 4096-wide row's vec_dot per weight type, the activation quantizers and the
// f16 attention. bytes_per_second counts the weight (or input) bytes.
#include <benchmark/benchmark.h>

#include "bench_rows.h"

#include <vector>

#include "tensor/kernels.h"
#include "tensor/quant.h"
#include "tensor/vector_ops.h"

namespace {

using warden::gguf::TensorType;
namespace tensor = warden::tensor;

using warden::bench::kRow;
std::vector<float> gaussian(uint32_t seed) { return warden::bench::gaussian_row(seed); }

const tensor::KernelTable& table(bool simd) { return simd ? tensor::active_kernels() : tensor::scalar_kernels(); }

void BM_Dot(benchmark::State& state, TensorType t, bool simd) {
  const tensor::TypeKernels& k = *table(simd).find(t);
  const tensor::TypeKernels& act = *tensor::scalar_kernels().find(k.dot_type);
  std::vector<uint8_t> w(warden::gguf::row_bytes(t, kRow)), a(warden::gguf::row_bytes(k.dot_type, kRow));
  const auto wf = gaussian(1), af = gaussian(2);
  tensor::scalar_kernels().find(t)->quantize(wf.data(), w.data(), kRow);
  act.quantize(af.data(), a.data(), kRow);
  for (auto _ : state) benchmark::DoNotOptimize(k.vec_dot(w.data(), a.data(), kRow));
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(w.size()));
  state.SetLabel(table(simd).name);
}

void BM_QuantizeActivation(benchmark::State& state, TensorType t, bool simd) {
  const auto x = gaussian(3);
  std::vector<uint8_t> q(warden::gguf::row_bytes(t, kRow));
  const tensor::QuantizeFn quantize = table(simd).find(t)->quantize;
  for (auto _ : state) {
    quantize(x.data(), q.data(), kRow);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * kRow * int64_t(sizeof(float)));
  state.SetLabel(table(simd).name);
}

// A matrix product: state.range(1) weight rows of 4096 times state.range(0)
// tokens (1: decode; 2 or 8: batched decode in warden serve; 64: a prefill
// tile), as one
// vec_dot per (row, token), with the matrix kernel on unpacked rows (GemmFn,
// packing per call), and on rows packed beforehand as at model load
// (PackedGemmFn). items = multiply-adds.
enum class Product { vec_dot, gemm, packed };

void BM_Gemm(benchmark::State& state, TensorType t, Product how) {
  const int64_t kRows = state.range(1);
  const int64_t kTokens = state.range(0);
  const tensor::TypeKernels& k = *tensor::active_kernels().find(t);
  if ((how == Product::gemm && !k.gemm) || (how == Product::packed && !k.pack)) {
    state.SkipWithError("no such kernel for this type");
    return;
  }
  const size_t w_row = warden::gguf::row_bytes(t, kRow), x_row = warden::gguf::row_bytes(k.dot_type, kRow);
  std::vector<uint8_t> w(w_row * size_t(kRows)), x(x_row * size_t(kTokens));
  for (int64_t r = 0; r < kRows; r++)
    tensor::scalar_kernels().find(t)->quantize(gaussian(uint32_t(10 + r)).data(), w.data() + size_t(r) * w_row, kRow);
  for (int64_t i = 0; i < kTokens; i++)
    tensor::active_kernels().find(k.dot_type)->quantize(gaussian(uint32_t(100 + i)).data(), x.data() + size_t(i) * x_row,
                                                        kRow);
  std::vector<uint8_t> packed;
  if (how == Product::packed) {
    packed.resize(size_t((kRows + 7) / 8) * k.panel_bytes(kRow));
    k.pack(w.data(), w_row, kRows, kRow, packed.data());
  }
  std::vector<float> y(size_t(kRows * kTokens));
  for (auto _ : state) {
    if (how == Product::gemm) {
      k.gemm(w.data(), w_row, kRows, x.data(), x_row, kTokens, kRow, y.data(), kRows);
    } else if (how == Product::packed) {
      k.gemm_packed(packed.data(), kRows, x.data(), x_row, kTokens, kRow, y.data(), kRows);
    } else {
      for (int64_t i = 0; i < kTokens; i++)
        for (int64_t r = 0; r < kRows; r++)
          y[size_t(i * kRows + r)] = k.vec_dot(w.data() + size_t(r) * w_row, x.data() + size_t(i) * x_row, kRow);
    }
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * kRows * kTokens * kRow);
}

// One token's attention for a GQA group of query heads of 128 (the
// argument: 2 in Qwen3-0.6B, 4 in Llama-3.2-1B) over 512 cached positions
// (the middle of a 1k prompt), one head's keys and values contiguous as the
// KV cache holds them, both of `type` (f16, or q8_0 as -ctk/-ctv q8_0 store
// them).
// One key/value head's cache rows of `positions` positions.
struct CacheHead {
  CacheHead(TensorType type, int64_t positions, const std::vector<float>& source)
      : row(warden::gguf::row_bytes(type, kHead)) {
    k.resize(size_t(positions) * row);
    v.resize(k.size());
    std::vector<float> kf(kHead), vf(kHead);
    for (int64_t p = 0; p < positions; p++) {
      for (int64_t i = 0; i < kHead; i++) {
        kf[size_t(i)] = source[size_t((p * kHead + i) * 7) % source.size()];
        vf[size_t(i)] = source[size_t((p * kHead + i) * 5 + 3) % source.size()];
      }
      tensor::quantize_row(type, kf.data(), k.data() + size_t(p) * row, kHead);
      tensor::quantize_row(type, vf.data(), v.data() + size_t(p) * row, kHead);
    }
    keys = {k.data(), type, row};
    values = {v.data(), type, row};
  }
  static constexpr int64_t kHead = 128;
  size_t row;
  std::vector<uint8_t> k, v;
  tensor::CacheRows keys, values;
};

void BM_Attend(benchmark::State& state, TensorType type, bool simd) {
  constexpr int64_t kHead = CacheHead::kHead;
  const int group = int(state.range(0));
  const int64_t positions = state.range(1);
  const auto q = gaussian(4);  // 4096 floats: queries and the cache contents
  const CacheHead head(type, positions, q);
  std::vector<float> out(size_t(group * kHead));
  const tensor::AttendFn attend = table(simd).attend;
  for (auto _ : state) {
    attend(q.data(), group, kHead, head.keys, head.values, kHead, positions, 0.088f, out.data());
    benchmark::ClobberMemory();
  }
  // The keys and values read, once per call.
  state.SetBytesProcessed(int64_t(state.iterations()) * positions * int64_t(2 * head.row));
  state.SetLabel(table(simd).name);
}

// {rows, depth}: a prefill run's rows for one key/value head of an f16
// cache, two per token (qwen3-0.6b's two query heads per key/value head),
// after `depth` positions already cached; items are the multiply-adds of
// the scores and the weighted sums.
void BM_AttendCausal(benchmark::State& state, bool simd) {
  constexpr int64_t kHead = CacheHead::kHead;
  const int64_t rows = state.range(0), depth = state.range(1), positions = depth + rows / 2;
  const auto row = gaussian(4);
  std::vector<float> q(size_t(rows * kHead));
  for (size_t i = 0; i < q.size(); i++) q[i] = row[(i * 3) % row.size()];
  const CacheHead head(TensorType::F16, positions, row);
  std::vector<float> out(size_t(rows * kHead));
  std::vector<int64_t> n_pos(static_cast<size_t>(rows));
  int64_t macs = 0;
  for (int64_t i = 0; i < rows; i++) macs += (n_pos[size_t(i)] = depth + 1 + i / 2) * 2 * kHead;
  const auto attend = table(simd).attend_causal;
  for (auto _ : state) {
    attend(q.data(), rows, n_pos.data(), kHead, head.keys, head.values, kHead, 0.088f, out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * macs);
  state.SetLabel(table(simd).name);
}

// The conversion of f16 keys (512 positions of a head of 128 in a cache row
// of eight heads) to f32 key panels, as attend_causal converts its blocks.
void BM_AttendKeyPanels(benchmark::State& state, bool simd) {
  constexpr int64_t kHead = 128, kPositions = 512, kKvStride = 8 * kHead;
  const auto q = gaussian(4);
  std::vector<uint16_t> keys(static_cast<size_t>(kPositions * kKvStride));
  for (size_t i = 0; i < keys.size(); i++) keys[i] = tensor::fp32_to_fp16(q[(i * 7) % q.size()]);
  std::vector<float> panels(static_cast<size_t>(tensor::key_panel_floats(kPositions, kHead)));
  const auto convert = table(simd).key_panels;
  const tensor::CacheRows rows{reinterpret_cast<const uint8_t*>(keys.data()), TensorType::F16, kKvStride * 2};
  for (auto _ : state) {
    convert(rows, kPositions, kHead, panels.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * kPositions * kHead);
  state.SetLabel(table(simd).name);
}

#define BOTH(T)                                                \
  BENCHMARK_CAPTURE(BM_Dot, T##_scalar, TensorType::T, false); \
  BENCHMARK_CAPTURE(BM_Dot, T##_active, TensorType::T, true);

BOTH(F32)
BOTH(F16)
BOTH(BF16)
BOTH(Q8_0)
BOTH(Q4_0)
BOTH(Q4_1)
BOTH(Q5_0)
BOTH(Q5_1)
BOTH(Q2_K)
BOTH(Q3_K)
BOTH(Q4_K)
BOTH(Q5_K)
BOTH(Q6_K)

// {tokens, rows}: 64 rows stay in L2; 8192 rows (a 4096 x 8192 matrix, like a
// large FFN projection) stream from memory, as decode does; 256 tokens is a
// prompt slice (the forward pass slices prompts at 256), whose activations
// (1.1 MiB) no longer fit L2. The kernel set is the active one
// (WARDEN_KERNELS=avx2 picks AVX2 on a CPU with VNNI).
#define GEMM(T)                                                                                             \
  BENCHMARK_CAPTURE(BM_Gemm, T##_vec_dot, TensorType::T, Product::vec_dot)                                  \
      ->Args({1, 64})->Args({8, 64})->Args({64, 64})->Args({1, 8192});                                       \
  BENCHMARK_CAPTURE(BM_Gemm, T##_gemm, TensorType::T, Product::gemm)->Args({2, 64})->Args({8, 64})->Args({64, 64}); \
  BENCHMARK_CAPTURE(BM_Gemm, T##_packed, TensorType::T, Product::packed)                                    \
      ->Args({1, 64})->Args({8, 64})->Args({64, 64})->Args({1, 8192})->Args({256, 64})->Args({256, 512});

GEMM(F16)
GEMM(BF16)
GEMM(Q8_0)
GEMM(Q4_0)
GEMM(Q4_1)
GEMM(Q5_0)
GEMM(Q5_1)
GEMM(Q4_K)
GEMM(Q5_K)
GEMM(Q6_K)
GEMM(Q3_K)
GEMM(Q2_K)

BENCHMARK_CAPTURE(BM_QuantizeActivation, Q8_0_scalar, TensorType::Q8_0, false);
BENCHMARK_CAPTURE(BM_QuantizeActivation, Q8_0_active, TensorType::Q8_0, true);
BENCHMARK_CAPTURE(BM_QuantizeActivation, Q8_K_scalar, TensorType::Q8_K, false);
BENCHMARK_CAPTURE(BM_QuantizeActivation, Q8_K_active, TensorType::Q8_K, true);
// Args: query heads per key head, positions (64: the mean of a 128-token
// generation from an empty cache).
BENCHMARK_CAPTURE(BM_Attend, f16_scalar, TensorType::F16, false)->Args({2, 512});
BENCHMARK_CAPTURE(BM_Attend, f16_active, TensorType::F16, true)
    ->Args({1, 512})->Args({2, 512})->Args({4, 512})->Args({2, 64});
BENCHMARK_CAPTURE(BM_Attend, q8_0_active, TensorType::Q8_0, true)->Args({2, 512})->Args({4, 512})->Args({2, 64});
BENCHMARK_CAPTURE(BM_AttendCausal, scalar, false)->Args({16, 512});
BENCHMARK_CAPTURE(BM_AttendCausal, active, true)
    ->Args({16, 0})->Args({16, 512})->Args({1024, 0})->Args({1024, 2048})->Args({1024, 8192});
BENCHMARK_CAPTURE(BM_AttendKeyPanels, scalar, false);
BENCHMARK_CAPTURE(BM_AttendKeyPanels, active, true);

}  // namespace

BENCHMARK_MAIN();
