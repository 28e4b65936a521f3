#pragma once
// Tensor element types as ggml defines them: conversions, dequantization, the
// reference quantizers and dot products. Every function here is exact about
// ggml's block layouts (blocks.h): a GGUF file quantized by llama.cpp decodes
// to the same floats, bit for bit.
//
// Row lengths n must be a multiple of the type's block size (32 for the
// legacy quants, 256 for the K-quants); otherwise warden::Error is thrown.
#include <cstdint>

#include "gguf/types.h"
#include "tensor/fp16.h"  // fp16_to_fp32, fp32_to_fp16, bf16_to_fp32, fp32_to_bf16

namespace warden::tensor {

using gguf::TensorType;

// True when weights of type t can be dequantized and used in vec_dot:
// F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K..Q6_K. The activation
// types Q8_1 and Q8_K quantize and dequantize but are never a vec_dot's x.
bool can_compute(TensorType t);
// True when quantize_row/dequantize_row accept t (every type above plus Q8_1, Q8_K).
bool can_convert(TensorType t);

// dst[0..n) = the floats that n elements of type t at src stand for.
void dequantize_row(TensorType t, const void* src, float* dst, int64_t n);

// Encodes n floats as type t into dst (row_bytes(t, n) bytes) with ggml's
// reference algorithm (no importance matrix), so bytes match llama-quantize.
// Non-finite input gives unspecified (but memory-safe) codes: callers that
// quantize weights should reject NaN/inf first (see first_non_finite).
void quantize_row(TensorType t, const float* src, void* dst, int64_t n);

// Index of the first NaN or infinity in src[0..n), or -1 when all are finite.
int64_t first_non_finite(const float* src, int64_t n);

// The type the activation row must be converted to (quantize_row) before
// vec_dot with weights of type t, as ggml does: F32->F32, F16->F16,
// BF16->BF16, Q4_0/Q5_0/Q8_0->Q8_0, Q4_1/Q5_1->Q8_1, K-quants->Q8_K.
TensorType vec_dot_type(TensorType t);

// Dot product of n elements: x in type t, y in vec_dot_type(t).
float vec_dot(TensorType t, const void* x, const void* y, int64_t n);

// Name of the kernel set in use ("scalar", later e.g. "avx2"), for logs and benchmarks.
const char* kernel_set_name();

}  // namespace warden::tensor
