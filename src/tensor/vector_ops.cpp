// The scalar reference of vector_ops.h and its dispatch.
#include "tensor/vector_ops.h"

#include "tensor/fp16.h"
#include "tensor/kernels.h"

namespace warden::tensor {
namespace {

float scalar_dot_f32_f16(const float* a, const uint16_t* b, int64_t n) {
  float s = 0.0f;
  for (int64_t i = 0; i < n; i++) s += a[i] * fp16_to_fp32(b[i]);
  return s;
}

void scalar_add_scaled_f16(float* y, float s, const uint16_t* x, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] += s * fp16_to_fp32(x[i]);
}

}  // namespace

void add_vector_kernels(KernelTable& table) {
  table.dot_f32_f16 = scalar_dot_f32_f16;
  table.add_scaled_f16 = scalar_add_scaled_f16;
}

float dot_f32_f16(const float* a, const uint16_t* b, int64_t n) { return active_kernels().dot_f32_f16(a, b, n); }

void add_scaled_f16(float* y, float s, const uint16_t* x, int64_t n) { active_kernels().add_scaled_f16(y, s, x, n); }

}  // namespace warden::tensor
