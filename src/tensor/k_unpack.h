#pragma once
// Unpacking the K-quant super-blocks (blocks.h) into small integers: shared by
// the reference kernels (k_quants.cpp) and the SIMD matrix kernels, which
// repack weights into their own layout.
#include <cstdint>

#include "tensor/blocks.h"

namespace warden::tensor::kquant {

// Q4_K/Q5_K: 8 six-bit scales and mins in 12 bytes. Groups 0-3 use the low 6
// bits of bytes 0-3 (scale) and 4-7 (min); groups 4-7 use the nibbles of
// bytes 8-11 plus the top 2 bits of bytes 0-3 (scale) and 4-7 (min).
inline void unpack_scale_min_k4(const uint8_t* packed, int group, uint8_t& scale, uint8_t& min) {
  if (group < 4) {
    scale = packed[group] & 63;
    min = packed[group + 4] & 63;
  } else {
    scale = uint8_t((packed[group + 4] & 0x0F) | ((packed[group - 4] >> 6) << 4));
    min = uint8_t((packed[group + 4] >> 4) | ((packed[group] >> 6) << 4));
  }
}

// Q3_K: 16 six-bit scales (stored + 32) in 12 bytes: the low nibbles of bytes
// 0-7 hold groups 0-7, their high nibbles groups 8-15, and bits 2*(g/4) of
// byte 8 + g%4 hold the top 2 bits of group g.
inline int unpack_scale_q3_k(const uint8_t* packed, int group) {
  const int low = group < 8 ? packed[group] & 0x0F : packed[group - 8] >> 4;
  const int high = (packed[8 + group % 4] >> (2 * (group / 4))) & 3;
  return (low | (high << 4)) - 32;
}

// ===== unpacking a super-block into small integers ========================

// The loops below walk the layouts in storage order (no per-element division)
// so the compiler can vectorize them; blocks.h states each layout per element.

// 2-bit fields: element 128*h + 32*k + l is bits 2k..2k+1 of qs[32*h + l].
inline void unpack_two_bits(const uint8_t* qs, int q[kQK_K]) {
  for (int h = 0; h < 2; h++)
    for (int k = 0; k < 4; k++)
      for (int l = 0; l < 32; l++) q[128 * h + 32 * k + l] = (qs[32 * h + l] >> (2 * k)) & 3;
}

// 4-bit fields: element 64*c + 32*half + l is nibble `half` of qs[32*c + l].
inline void unpack_nibbles(const uint8_t* qs, int q[kQK_K]) {
  for (int c = 0; c < 4; c++)
    for (int l = 0; l < 32; l++) {
      q[64 * c + l] = qs[32 * c + l] & 0x0F;
      q[64 * c + 32 + l] = qs[32 * c + l] >> 4;
    }
}

// One extra bit per element: element 32*k + l is bit k of bits[l].
template <typename Apply>
inline void for_each_extra_bit(const uint8_t* bits, int q[kQK_K], Apply apply) {
  for (int k = 0; k < 8; k++)
    for (int l = 0; l < 32; l++) q[32 * k + l] = apply(q[32 * k + l], (bits[l] >> k) & 1);
}

inline void unpack_q2_k(const block_q2_k& b, int q[kQK_K]) { unpack_two_bits(b.qs, q); }

// A clear hmask bit means "subtract 4": codes are -4..3.
inline void unpack_q3_k(const block_q3_k& b, int q[kQK_K]) {
  unpack_two_bits(b.qs, q);
  for_each_extra_bit(b.hmask, q, [](int v, int bit) { return v - (bit ? 0 : 4); });
}

inline void unpack_q4_k(const block_q4_k& b, int q[kQK_K]) { unpack_nibbles(b.qs, q); }

inline void unpack_q5_k(const block_q5_k& b, int q[kQK_K]) {
  unpack_nibbles(b.qs, q);
  for_each_extra_bit(b.qh, q, [](int v, int bit) { return v | (bit << 4); });
}

// Element 128*h + 32*k + l: low nibble (k/2) of ql[64*h + 32*(k%2) + l], high
// bits 2k..2k+1 of qh[32*h + l]; codes are -32..31.
inline void unpack_q6_k(const block_q6_k& b, int q[kQK_K]) {
  for (int h = 0; h < 2; h++)
    for (int k = 0; k < 4; k++)
      for (int l = 0; l < 32; l++) {
        const int low = (b.ql[64 * h + 32 * (k % 2) + l] >> (4 * (k / 2))) & 0x0F;
        const int high = (b.qh[32 * h + l] >> (2 * k)) & 3;
        q[128 * h + 32 * k + l] = (low | (high << 4)) - 32;
      }
}

// unpack_q6_k's inverse: codes 0..63 (q + 32) into b.ql and b.qh.
inline void pack_q6_k_codes(const int codes[kQK_K], block_q6_k& b) {
  for (auto& v : b.ql) v = 0;
  for (auto& v : b.qh) v = 0;
  for (int e = 0; e < kQK_K; e++) {
    const int h = e / 128, k = (e % 128) / 32, l = e % 32;
    b.ql[64 * h + 32 * (k % 2) + l] |= uint8_t((codes[e] & 0x0F) << (4 * (k / 2)));
    b.qh[32 * h + l] |= uint8_t(((codes[e] >> 4) & 3) << (2 * k));
  }
}

}  // namespace warden::tensor::kquant
