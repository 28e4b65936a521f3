// Per-type kernel speed of the active kernel set: vec_dot of one 4096-wide
// weight row against a quantized activation, dequantize_row, and quantizing
// the activation. bytes_per_second counts the weight bytes read (vec_dot,
// dequantize) or the floats read (quantize).
#include <benchmark/benchmark.h>

#include "bench_rows.h"

#include <vector>

#include "tensor/quant.h"

namespace {

using warden::gguf::TensorType;
namespace tensor = warden::tensor;

using warden::bench::kRow;
std::vector<float> gaussian(uint32_t seed) { return warden::bench::gaussian_row(seed); }

std::vector<uint8_t> encode(TensorType t, const std::vector<float>& x) {
  std::vector<uint8_t> q(warden::gguf::row_bytes(t, kRow));
  tensor::quantize_row(t, x.data(), q.data(), kRow);
  return q;
}

void BM_VecDot(benchmark::State& state, TensorType t) {
  const auto w = encode(t, gaussian(1));
  const auto a = encode(tensor::vec_dot_type(t), gaussian(2));
  for (auto _ : state) benchmark::DoNotOptimize(tensor::vec_dot(t, w.data(), a.data(), kRow));
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(w.size()));
  state.SetLabel(tensor::kernel_set_name());
}

void BM_Dequantize(benchmark::State& state, TensorType t) {
  const auto w = encode(t, gaussian(1));
  std::vector<float> out(static_cast<size_t>(kRow));
  for (auto _ : state) {
    tensor::dequantize_row(t, w.data(), out.data(), kRow);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(w.size()));
}

void BM_QuantizeActivation(benchmark::State& state, TensorType t) {
  const auto x = gaussian(3);
  std::vector<uint8_t> q(warden::gguf::row_bytes(t, kRow));
  for (auto _ : state) {
    tensor::quantize_row(t, x.data(), q.data(), kRow);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * kRow * int64_t(sizeof(float)));
}

#define WEIGHT_TYPE(T)                                              \
  BENCHMARK_CAPTURE(BM_VecDot, T, TensorType::T);                   \
  BENCHMARK_CAPTURE(BM_Dequantize, T, TensorType::T);

WEIGHT_TYPE(F32)
WEIGHT_TYPE(F16)
WEIGHT_TYPE(BF16)
WEIGHT_TYPE(Q8_0)
WEIGHT_TYPE(Q4_0)
WEIGHT_TYPE(Q4_1)
WEIGHT_TYPE(Q5_0)
WEIGHT_TYPE(Q5_1)
WEIGHT_TYPE(Q2_K)
WEIGHT_TYPE(Q3_K)
WEIGHT_TYPE(Q4_K)
WEIGHT_TYPE(Q5_K)
WEIGHT_TYPE(Q6_K)

BENCHMARK_CAPTURE(BM_QuantizeActivation, Q8_0, TensorType::Q8_0);
BENCHMARK_CAPTURE(BM_QuantizeActivation, Q8_1, TensorType::Q8_1);
BENCHMARK_CAPTURE(BM_QuantizeActivation, Q8_K, TensorType::Q8_K);

}  // namespace

BENCHMARK_MAIN();
