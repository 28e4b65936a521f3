// The 32-element block types: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 (weights) and Q8_1
// (activations for the *_1 dots). Quantizers follow ggml's reference
// algorithms operation for operation, so their bytes match llama-quantize's.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "tensor/blocks.h"
#include "tensor/fp16.h"
#include "tensor/kernels.h"
#include "tensor/rounding.h"

namespace warden::tensor {
namespace {

using detail::round_half_away;
using detail::truncate_to_int;

// ---- unpacking: each block's quants as small signed integers -------------

// Byte j holds element j in its low nibble and element j+16 in its high nibble.
inline void unpack_nibbles(const uint8_t qs[kQK / 2], int q[kQK], int offset) {
  for (int j = 0; j < kQK / 2; j++) {
    q[j] = (qs[j] & 0x0F) + offset;
    q[j + kQK / 2] = (qs[j] >> 4) + offset;
  }
}

// Bit 4 of element j is bit j of the little-endian 32-bit qh.
inline void add_fifth_bits(const uint8_t qh_bytes[4], int q[kQK]) {
  uint32_t qh;
  std::memcpy(&qh, qh_bytes, sizeof qh);
  for (int j = 0; j < kQK; j++) q[j] += int((qh >> j) & 1) << 4;
}

void unpack(const block_q4_0& b, int q[kQK]) { unpack_nibbles(b.qs, q, -8); }
void unpack(const block_q4_1& b, int q[kQK]) { unpack_nibbles(b.qs, q, 0); }
void unpack(const block_q5_0& b, int q[kQK]) {
  unpack_nibbles(b.qs, q, -16);
  add_fifth_bits(b.qh, q);
}
void unpack(const block_q5_1& b, int q[kQK]) {
  unpack_nibbles(b.qs, q, 0);
  add_fifth_bits(b.qh, q);
}

// ---- dequantization ------------------------------------------------------

// x = d * q (the symmetric types).
template <typename Block>
void dequantize_symmetric(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const Block*>(src);
  for (int64_t i = 0; i < n / kQK; i++) {
    int q[kQK];
    unpack(blocks[i], q);
    const float d = fp16_to_fp32(blocks[i].d);
    for (int j = 0; j < kQK; j++) dst[i * kQK + j] = float(q[j]) * d;
  }
}

// x = d * q + m (the types with an offset).
template <typename Block>
void dequantize_with_min(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const Block*>(src);
  for (int64_t i = 0; i < n / kQK; i++) {
    int q[kQK];
    unpack(blocks[i], q);
    const float d = fp16_to_fp32(blocks[i].d);
    const float m = fp16_to_fp32(blocks[i].m);
    for (int j = 0; j < kQK; j++) dst[i * kQK + j] = float(q[j]) * d + m;
  }
}

template <typename Block>
void dequantize_q8(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const Block*>(src);
  for (int64_t i = 0; i < n / kQK; i++) {
    const float d = fp16_to_fp32(blocks[i].d);
    for (int j = 0; j < kQK; j++) dst[i * kQK + j] = float(blocks[i].qs[j]) * d;
  }
}

// ---- quantization --------------------------------------------------------

// The element of largest magnitude, with its sign (the first one on ties).
float signed_absmax(const float* x) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < kQK; j++) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  return max;
}

void min_max(const float* x, float& min, float& max) {
  min = FLT_MAX;
  max = -FLT_MAX;
  for (int j = 0; j < kQK; j++) {
    if (x[j] < min) min = x[j];
    if (x[j] > max) max = x[j];
  }
}

void pack_nibbles(const int q[kQK], uint8_t qs[kQK / 2]) {
  for (int j = 0; j < kQK / 2; j++) qs[j] = uint8_t((q[j] & 0x0F) | ((q[j + kQK / 2] & 0x0F) << 4));
}

uint32_t fifth_bits(const int q[kQK]) {
  uint32_t qh = 0;
  for (int j = 0; j < kQK; j++) qh |= uint32_t((q[j] >> 4) & 1) << j;
  return qh;
}

// The scale maps the signed extreme to -8 (or -16), so the extreme's sign gets
// the full range; codes are (int)(x/d + 8.5) clamped to 15 (31).
template <typename Block, int kHalfRange>
void quantize_symmetric(const float* src, void* dst, int64_t n) {
  auto* blocks = static_cast<Block*>(dst);
  for (int64_t i = 0; i < n / kQK; i++) {
    const float* x = src + i * kQK;
    const float d = signed_absmax(x) / float(-kHalfRange);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    int q[kQK];
    for (int j = 0; j < kQK; j++) {
      const int code = int8_t(truncate_to_int(x[j] * id + (float(kHalfRange) + 0.5f)));
      q[j] = std::min(2 * kHalfRange - 1, code);
    }
    Block& b = blocks[i];
    b.d = fp32_to_fp16(d);
    pack_nibbles(q, b.qs);
    if constexpr (kHalfRange == 16) {
      const uint32_t qh = fifth_bits(q);
      std::memcpy(b.qh, &qh, sizeof qh);
    }
  }
}

// Codes step evenly from the block's minimum to its maximum.
void quantize_q4_1(const float* src, void* dst, int64_t n) {
  auto* blocks = static_cast<block_q4_1*>(dst);
  for (int64_t i = 0; i < n / kQK; i++) {
    const float* x = src + i * kQK;
    float min, max;
    min_max(x, min, max);
    const float d = (max - min) / 15.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    int q[kQK];
    for (int j = 0; j < kQK; j++) q[j] = std::min(15, int(int8_t(truncate_to_int((x[j] - min) * id + 0.5f))));
    blocks[i].d = fp32_to_fp16(d);
    blocks[i].m = fp32_to_fp16(min);
    pack_nibbles(q, blocks[i].qs);
  }
}

void quantize_q5_1(const float* src, void* dst, int64_t n) {
  auto* blocks = static_cast<block_q5_1*>(dst);
  for (int64_t i = 0; i < n / kQK; i++) {
    const float* x = src + i * kQK;
    float min, max;
    min_max(x, min, max);
    const float d = (max - min) / 31.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    int q[kQK];
    // ggml converts straight to uint8 here, without the clamp the others have.
    for (int j = 0; j < kQK; j++) q[j] = uint8_t(truncate_to_int((x[j] - min) * id + 0.5f));
    blocks[i].d = fp32_to_fp16(d);
    blocks[i].m = fp32_to_fp16(min);
    pack_nibbles(q, blocks[i].qs);
    const uint32_t qh = fifth_bits(q);
    std::memcpy(blocks[i].qh, &qh, sizeof qh);
  }
}

// d = absmax / 127; codes are x/d rounded half away from zero.
template <typename Block>
float quantize_q8_block(const float* x, Block& b) {
  float amax = 0.0f;
  for (int j = 0; j < kQK; j++) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  b.d = fp32_to_fp16(d);
  for (int j = 0; j < kQK; j++) b.qs[j] = int8_t(round_half_away(x[j] * id));
  return d;
}

void quantize_q8_0(const float* src, void* dst, int64_t n) {
  auto* blocks = static_cast<block_q8_0*>(dst);
  for (int64_t i = 0; i < n / kQK; i++) quantize_q8_block(src + i * kQK, blocks[i]);
}

void quantize_q8_1(const float* src, void* dst, int64_t n) {
  auto* blocks = static_cast<block_q8_1*>(dst);
  for (int64_t i = 0; i < n / kQK; i++) {
    const float d = quantize_q8_block(src + i * kQK, blocks[i]);
    int sum = 0;
    for (int j = 0; j < kQK; j++) sum += blocks[i].qs[j];
    blocks[i].s = fp32_to_fp16(float(sum) * d);
  }
}

// ---- dot products: integer sums per block, scaled once per block ---------

template <typename Block>
int block_dot(const Block& x, const int8_t* y) {
  int q[kQK];
  unpack(x, q);
  int sum = 0;
  for (int j = 0; j < kQK; j++) sum += q[j] * y[j];
  return sum;
}

// x symmetric (q4_0, q5_0) against q8_0.
template <typename Block>
float dot_symmetric_q8_0(const void* xv, const void* yv, int64_t n) {
  const auto* x = static_cast<const Block*>(xv);
  const auto* y = static_cast<const block_q8_0*>(yv);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQK; i++)
    sum += float(block_dot(x[i], y[i].qs)) * fp16_to_fp32(x[i].d) * fp16_to_fp32(y[i].d);
  return sum;
}

// x with offset (q4_1, q5_1) against q8_1: sum((d q + m) * dy qy)
// = d dy sum(q qy) + m * (dy sum(qy)), and the last factor is y's s.
template <typename Block>
float dot_with_min_q8_1(const void* xv, const void* yv, int64_t n) {
  const auto* x = static_cast<const Block*>(xv);
  const auto* y = static_cast<const block_q8_1*>(yv);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQK; i++) {
    const float dxy = fp16_to_fp32(x[i].d) * fp16_to_fp32(y[i].d);
    sum += dxy * float(block_dot(x[i], y[i].qs)) + fp16_to_fp32(x[i].m) * fp16_to_fp32(y[i].s);
  }
  return sum;
}

float dot_q8_0_q8_0(const void* xv, const void* yv, int64_t n) {
  const auto* x = static_cast<const block_q8_0*>(xv);
  const auto* y = static_cast<const block_q8_0*>(yv);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQK; i++) {
    int sumi = 0;
    for (int j = 0; j < kQK; j++) sumi += x[i].qs[j] * y[i].qs[j];
    sum += float(sumi) * fp16_to_fp32(x[i].d) * fp16_to_fp32(y[i].d);
  }
  return sum;
}

}  // namespace

void add_legacy_kernels(KernelTable& table) {
  using gguf::TensorType;
  auto set = [&](TensorType t, TypeKernels k) { table.by_type[size_t(t)] = k; };
  set(TensorType::Q4_0, {dequantize_symmetric<block_q4_0>, quantize_symmetric<block_q4_0, 8>,
                         dot_symmetric_q8_0<block_q4_0>, TensorType::Q8_0});
  set(TensorType::Q5_0, {dequantize_symmetric<block_q5_0>, quantize_symmetric<block_q5_0, 16>,
                         dot_symmetric_q8_0<block_q5_0>, TensorType::Q8_0});
  set(TensorType::Q4_1, {dequantize_with_min<block_q4_1>, quantize_q4_1, dot_with_min_q8_1<block_q4_1>,
                         TensorType::Q8_1});
  set(TensorType::Q5_1, {dequantize_with_min<block_q5_1>, quantize_q5_1, dot_with_min_q8_1<block_q5_1>,
                         TensorType::Q8_1});
  set(TensorType::Q8_0, {dequantize_q8<block_q8_0>, quantize_q8_0, dot_q8_0_q8_0, TensorType::Q8_0});
  // Q8_1 is only ever an activation: no vec_dot with it as x.
  set(TensorType::Q8_1, {dequantize_q8<block_q8_1>, quantize_q8_1, nullptr, TensorType::Q8_1});
}

}  // namespace warden::tensor
