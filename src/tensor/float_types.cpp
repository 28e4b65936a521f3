// F32, F16 and BF16: element-wise conversions and dot products. The dots
// accumulate in double, as ggml's scalar path does, so the reference result
// does not depend on the summation order a SIMD kernel picks.
#include <cstring>

#include "tensor/fp16.h"
#include "tensor/kernels.h"

namespace warden::tensor {
namespace {

void copy_f32(const void* src, float* dst, int64_t n) { std::memcpy(dst, src, size_t(n) * sizeof(float)); }
void store_f32(const float* src, void* dst, int64_t n) { std::memcpy(dst, src, size_t(n) * sizeof(float)); }

float dot_f32(const void* xv, const void* yv, int64_t n) {
  const auto* x = static_cast<const float*>(xv);
  const auto* y = static_cast<const float*>(yv);
  double sum = 0;
  for (int64_t i = 0; i < n; i++) sum += double(x[i]) * double(y[i]);
  return float(sum);
}

void dequantize_f16(const void* src, float* dst, int64_t n) {
  const auto* h = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; i++) dst[i] = fp16_to_fp32(h[i]);
}

void quantize_f16(const float* src, void* dst, int64_t n) {
  auto* h = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; i++) h[i] = fp32_to_fp16(src[i]);
}

float dot_f16(const void* xv, const void* yv, int64_t n) {
  const auto* x = static_cast<const uint16_t*>(xv);
  const auto* y = static_cast<const uint16_t*>(yv);
  double sum = 0;
  for (int64_t i = 0; i < n; i++) sum += double(fp16_to_fp32(x[i])) * double(fp16_to_fp32(y[i]));
  return float(sum);
}

void dequantize_bf16(const void* src, float* dst, int64_t n) {
  const auto* h = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; i++) dst[i] = bf16_to_fp32(h[i]);
}

void quantize_bf16(const float* src, void* dst, int64_t n) {
  auto* h = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; i++) h[i] = fp32_to_bf16(src[i]);
}

float dot_bf16(const void* xv, const void* yv, int64_t n) {
  const auto* x = static_cast<const uint16_t*>(xv);
  const auto* y = static_cast<const uint16_t*>(yv);
  double sum = 0;
  for (int64_t i = 0; i < n; i++) sum += double(bf16_to_fp32(x[i])) * double(bf16_to_fp32(y[i]));
  return float(sum);
}

}  // namespace

void add_float_kernels(KernelTable& table) {
  using gguf::TensorType;
  table.by_type[size_t(TensorType::F32)] = {copy_f32, store_f32, dot_f32, TensorType::F32};
  table.by_type[size_t(TensorType::F16)] = {dequantize_f16, quantize_f16, dot_f16, TensorType::F16};
  table.by_type[size_t(TensorType::BF16)] = {dequantize_bf16, quantize_bf16, dot_bf16, TensorType::BF16};
}

}  // namespace warden::tensor
