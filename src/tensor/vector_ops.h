#pragma once
// Small vector loops of the attention over the f16 KV cache, dispatched like
// the dot products (kernels.h), so they run as SIMD where the CPU allows
// without the caller being compiled for it.
#include <cstdint>

namespace warden::tensor {

// sum_i a[i] * float(b[i]) for n f32 values a and IEEE halves b.
float dot_f32_f16(const float* a, const uint16_t* b, int64_t n);

// y[i] += s * float(x[i]) for n IEEE halves x.
void add_scaled_f16(float* y, float s, const uint16_t* x, int64_t n);

}  // namespace warden::tensor
