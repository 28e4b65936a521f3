// AVX2 + FMA + F16C kernels (x86-64). This file alone is compiled with
// -mavx2 -mfma -mf16c (see CMakeLists.txt); dispatch.cpp only calls
// avx2_kernels() after checking the CPU at run time, so the library still runs
// on machines without them.
//
// Agreement with the scalar reference (tests/tensor/simd_test.cpp):
// - activation quantizers (Q8_0, Q8_1, Q8_K): identical bytes. They use the
//   same float operations in the same order per element (no FMA), and the
//   integer rounding is rebuilt exactly (ties away from zero for Q8_0/Q8_1,
//   ties to even for Q8_K, as the scalar code does).
// - dots: the per-block integer sums are exact. The K-quant dots then do the
//   scalar code's float operations per super-block (so one super-block gives
//   the same float); the 32-element types accumulate in 8 float lanes with
//   FMA, a different summation order. Results differ from scalar by float
//   rounding only (the tests allow 1e-5 of sum |x_i y_i|).
//   F32/F16/BF16 dots accumulate in double like the reference.
// Dequantizers and weight quantizers are not hot and stay scalar, except F16
// (the attention converts cached keys and values with it; exact either way).
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "tensor/blocks.h"
#include "tensor/decode_attention.h"
#include "tensor/kernels.h"
#include "tensor/lane_sums_avx2.h"
#include "tensor/vector_ops.h"

namespace warden::tensor {
namespace {

using gguf::TensorType;

// ---- helpers --------------------------------------------------------------

inline float half_to_float(uint16_t h) { return _cvtsh_ss(h); }

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline double hsum(__m256d v) {
  __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
  s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
  return _mm_cvtsd_f64(s);
}

inline int hsum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}

inline float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

inline __m256i load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// Pairwise sums of 16-bit lanes into 32-bit lanes.
inline __m256i sum_pairs_i16(__m256i v) { return _mm256_madd_epi16(v, _mm256_set1_epi16(1)); }

// 32-bit lane sums of u8 x s8 products (x unsigned, at most 127 * 2 * 63 per pair).
inline __m256i dot_u8_s8(__m256i x, __m256i y) { return sum_pairs_i16(_mm256_maddubs_epi16(x, y)); }

// Same for two signed operands: move x's sign onto y, then |x| is unsigned.
inline __m256i dot_s8_s8(__m256i x, __m256i y) {
  return dot_u8_s8(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}

// The 32 nibbles of a legacy block: byte j -> element j (low) and j+16 (high).
inline __m256i nibbles_to_bytes(const uint8_t* qs) {
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i both = _mm256_set_m128i(_mm_srli_epi16(packed, 4), packed);
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

// Byte j = 0xFF when bit j of the 32-bit little-endian qh is set, else 0.
inline __m256i bits_to_bytes(const uint8_t* qh_bytes) {
  uint32_t qh;
  std::memcpy(&qh, qh_bytes, sizeof qh);
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32(int(qh)), _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                                    0x0101010101010101, 0x0000000000000000));
  const __m256i bit = _mm256_set1_epi64x(int64_t(0x8040201008040201ull));
  return _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
}

// ---- legacy dots ----------------------------------------------------------

float dot_q8_0(const void* xv, const void* yv, int64_t n) {
  const auto* x = static_cast<const block_q8_0*>(xv);
  const auto* y = static_cast<const block_q8_0*>(yv);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQK; i++) {
    const __m256 d = _mm256_set1_ps(half_to_float(x[i].d) * half_to_float(y[i].d));
    const __m256i s = dot_s8_s8(load32(x[i].qs), load32(y[i].qs));
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(s), acc);
  }
  return hsum(acc);
}

float dot_q4_0(const void* xv, const void* yv, int64_t n) {
  const auto* x = static_cast<const block_q4_0*>(xv);
  const auto* y = static_cast<const block_q8_0*>(yv);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQK; i++) {
    const __m256 d = _mm256_set1_ps(half_to_float(x[i].d) * half_to_float(y[i].d));
    const __m256i q = _mm256_sub_epi8(nibbles_to_bytes(x[i].qs), _mm256_set1_epi8(8));
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_s8_s8(q, load32(y[i].qs))), acc);
  }
  return hsum(acc);
}

float dot_q5_0(const void* xv, const void* yv, int64_t n) {
  const auto* x = static_cast<const block_q5_0*>(xv);
  const auto* y = static_cast<const block_q8_0*>(yv);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQK; i++) {
    const __m256 d = _mm256_set1_ps(half_to_float(x[i].d) * half_to_float(y[i].d));
    const __m256i high = _mm256_and_si256(bits_to_bytes(x[i].qh), _mm256_set1_epi8(0x10));
    const __m256i q = _mm256_sub_epi8(_mm256_or_si256(nibbles_to_bytes(x[i].qs), high), _mm256_set1_epi8(16));
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_s8_s8(q, load32(y[i].qs))), acc);
  }
  return hsum(acc);
}

// x = d q + m against q8_1: d dy sum(q qy) + m s (see legacy_quants.cpp).
template <bool kFifthBit, typename Block>
float dot_with_min(const void* xv, const void* yv, int64_t n) {
  const auto* x = static_cast<const Block*>(xv);
  const auto* y = static_cast<const block_q8_1*>(yv);
  __m256 acc = _mm256_setzero_ps();
  float mins = 0.0f;
  for (int64_t i = 0; i < n / kQK; i++) {
    const __m256 d = _mm256_set1_ps(half_to_float(x[i].d) * half_to_float(y[i].d));
    __m256i q = nibbles_to_bytes(x[i].qs);
    if constexpr (kFifthBit) q = _mm256_or_si256(q, _mm256_and_si256(bits_to_bytes(x[i].qh), _mm256_set1_epi8(0x10)));
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_u8_s8(q, load32(y[i].qs))), acc);
    mins += half_to_float(x[i].m) * half_to_float(y[i].s);
  }
  return hsum(acc) + mins;
}

// ---- K-quant dots against Q8_K ------------------------------------------

// The 16-bit lane pattern that scales the two 16-element groups of a 32-byte
// chunk: lanes 0-7 hold group a's pair sums, lanes 8-15 group b's.
inline __m256i two_group_scales(int a, int b) {
  return _mm256_set_m128i(_mm_set1_epi16(int16_t(b)), _mm_set1_epi16(int16_t(a)));
}

// Q4_K/Q5_K's 6-bit scales and mins (same packing as k_quants.cpp).
inline void unpack_scales_mins_k4(const uint8_t* packed, uint8_t sc[8], uint8_t m[8]) {
  for (int g = 0; g < 4; g++) {
    sc[g] = packed[g] & 63;
    m[g] = packed[g + 4] & 63;
  }
  for (int g = 4; g < 8; g++) {
    sc[g] = uint8_t((packed[g + 4] & 0x0F) | ((packed[g - 4] >> 6) << 4));
    m[g] = uint8_t((packed[g + 4] >> 4) | ((packed[g] >> 6) << 4));
  }
}

template <bool kFifthBit, typename Block>
float dot_q45_k(const void* xv, const void* yv, int64_t n) {
  const auto* x = static_cast<const Block*>(xv);
  const auto* y = static_cast<const block_q8_k*>(yv);
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQK_K; i++) {
    uint8_t sc[8], m[8];
    unpack_scales_mins_k4(x[i].scales, sc, m);
    int summs = 0;
    for (int g = 0; g < 8; g++) summs += m[g] * (y[i].bsums[2 * g] + y[i].bsums[2 * g + 1]);
    __m256i hbits;
    if constexpr (kFifthBit) hbits = load32(x[i].qh);
    __m256i sumi = _mm256_setzero_si256();
    for (int j = 0; j < 4; j++) {  // 64 elements: 32 low nibbles, then 32 high
      const __m256i packed = load32(x[i].qs + 32 * j);
      __m256i lo = _mm256_and_si256(packed, low4);
      __m256i hi = _mm256_and_si256(_mm256_srli_epi16(packed, 4), low4);
      if constexpr (kFifthBit) {
        const __m256i one = _mm256_set1_epi8(1);
        const __m256i blo = _mm256_and_si256(_mm256_srli_epi16(hbits, 2 * j), one);
        const __m256i bhi = _mm256_and_si256(_mm256_srli_epi16(hbits, 2 * j + 1), one);
        lo = _mm256_or_si256(lo, _mm256_slli_epi16(blo, 4));
        hi = _mm256_or_si256(hi, _mm256_slli_epi16(bhi, 4));
      }
      const __m256i plo = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, load32(y[i].qs + 64 * j)),
                                            _mm256_set1_epi16(sc[2 * j]));
      const __m256i phi = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, load32(y[i].qs + 64 * j + 32)),
                                            _mm256_set1_epi16(sc[2 * j + 1]));
      sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(plo, phi));
    }
    const float dall = y[i].d * half_to_float(x[i].d);
    const float dmin = y[i].d * half_to_float(x[i].dmin);
    sum += dall * float(hsum(sumi)) - dmin * float(summs);
  }
  return sum;
}

// Q4_K against four activation rows: the nibbles and scales of each
// super-block are unpacked once; per row the operations are dot_q45_k's, so
// each result equals dot_q45_k<false, block_q4_k> exactly.
void dot4_q4_k(const void* xv, const void* yv, size_t y_stride, int64_t n, float out[4]) {
  const auto* x = static_cast<const block_q4_k*>(xv);
  const block_q8_k* y[4];
  for (int r = 0; r < 4; r++) y[r] = reinterpret_cast<const block_q8_k*>(static_cast<const uint8_t*>(yv) + r * y_stride);
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  float sum[4] = {0, 0, 0, 0};
  for (int64_t i = 0; i < n / kQK_K; i++) {
    uint8_t sc[8], m[8];
    unpack_scales_mins_k4(x[i].scales, sc, m);
    __m256i sumi[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
    for (int j = 0; j < 4; j++) {
      const __m256i packed = load32(x[i].qs + 32 * j);
      const __m256i lo = _mm256_and_si256(packed, low4);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(packed, 4), low4);
      const __m256i slo = _mm256_set1_epi16(sc[2 * j]), shi = _mm256_set1_epi16(sc[2 * j + 1]);
      for (int r = 0; r < 4; r++) {
        const __m256i plo = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, load32(y[r][i].qs + 64 * j)), slo);
        const __m256i phi = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, load32(y[r][i].qs + 64 * j + 32)), shi);
        sumi[r] = _mm256_add_epi32(sumi[r], _mm256_add_epi32(plo, phi));
      }
    }
    const float xd = half_to_float(x[i].d), xdmin = half_to_float(x[i].dmin);
    for (int r = 0; r < 4; r++) {
      int summs = 0;
      for (int g = 0; g < 8; g++) summs += m[g] * (y[r][i].bsums[2 * g] + y[r][i].bsums[2 * g + 1]);
      const float dall = y[r][i].d * xd;
      const float dmin = y[r][i].d * xdmin;
      sum[r] += dall * float(hsum(sumi[r])) - dmin * float(summs);
    }
  }
  for (int r = 0; r < 4; r++) out[r] = sum[r];
}

float dot_q6_k(const void* xv, const void* yv, int64_t n) {
  const auto* x = static_cast<const block_q6_k*>(xv);
  const auto* y = static_cast<const block_q8_k*>(yv);
  const __m256i low4 = _mm256_set1_epi8(0x0F), low2 = _mm256_set1_epi8(0x03);
  const __m256i offset = _mm256_set1_epi8(32);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQK_K; i++) {
    __m256i sumi = _mm256_setzero_si256();
    for (int h = 0; h < 2; h++) {  // 128 elements = 4 chunks of 32
      const __m256i ql0 = load32(x[i].ql + 64 * h), ql1 = load32(x[i].ql + 64 * h + 32);
      const __m256i qh = load32(x[i].qh + 32 * h);
      const __m256i low[4] = {_mm256_and_si256(ql0, low4), _mm256_and_si256(ql1, low4),
                              _mm256_and_si256(_mm256_srli_epi16(ql0, 4), low4),
                              _mm256_and_si256(_mm256_srli_epi16(ql1, 4), low4)};
      for (int k = 0; k < 4; k++) {
        const __m256i high = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * k), low2), 4);
        const __m256i q = _mm256_or_si256(low[k], high);  // 0..63, code + 32
        const __m256i yq = load32(y[i].qs + 128 * h + 32 * k);
        // sum((q - 32) y) = sum(q y) - sum(32 y); both fit 16 bits per pair.
        const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(q, yq), _mm256_maddubs_epi16(offset, yq));
        const int g = 8 * h + 2 * k;
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, two_group_scales(x[i].scales[g], x[i].scales[g + 1])));
      }
    }
    sum += y[i].d * half_to_float(x[i].d) * float(hsum(sumi));
  }
  return sum;
}

float dot_q2_k(const void* xv, const void* yv, int64_t n) {
  const auto* x = static_cast<const block_q2_k*>(xv);
  const auto* y = static_cast<const block_q8_k*>(yv);
  const __m256i low2 = _mm256_set1_epi8(0x03);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQK_K; i++) {
    int summs = 0;
    for (int g = 0; g < 16; g++) summs += (x[i].scales[g] >> 4) * y[i].bsums[g];
    __m256i sumi = _mm256_setzero_si256();
    for (int h = 0; h < 2; h++) {
      const __m256i bits = load32(x[i].qs + 32 * h);
      for (int k = 0; k < 4; k++) {
        const __m256i q = _mm256_and_si256(_mm256_srli_epi16(bits, 2 * k), low2);
        const __m256i p = _mm256_maddubs_epi16(q, load32(y[i].qs + 128 * h + 32 * k));
        const int g = 8 * h + 2 * k;
        sumi = _mm256_add_epi32(
            sumi, _mm256_madd_epi16(p, two_group_scales(x[i].scales[g] & 0x0F, x[i].scales[g + 1] & 0x0F)));
      }
    }
    const float dall = y[i].d * half_to_float(x[i].d);
    const float dmin = y[i].d * half_to_float(x[i].dmin);
    sum += dall * float(hsum(sumi)) - dmin * float(summs);
  }
  return sum;
}

// Q3_K's 16 signed 6-bit scales (same packing as k_quants.cpp).
inline int scale_q3_k(const uint8_t* packed, int group) {
  const int low = group < 8 ? packed[group] & 0x0F : packed[group - 8] >> 4;
  const int high = (packed[8 + group % 4] >> (2 * (group / 4))) & 3;
  return (low | (high << 4)) - 32;
}

float dot_q3_k(const void* xv, const void* yv, int64_t n) {
  const auto* x = static_cast<const block_q3_k*>(xv);
  const auto* y = static_cast<const block_q8_k*>(yv);
  const __m256i low2 = _mm256_set1_epi8(0x03), one = _mm256_set1_epi8(1);
  float sum = 0.0f;
  for (int64_t i = 0; i < n / kQK_K; i++) {
    const __m256i hmask = load32(x[i].hmask);
    __m256i sumi = _mm256_setzero_si256();
    for (int h = 0; h < 2; h++) {
      const __m256i bits = load32(x[i].qs + 32 * h);
      for (int k = 0; k < 4; k++) {
        // Element 128h + 32k + l: a clear bit (4h + k) of hmask[l] subtracts 4.
        const __m256i hbit = _mm256_and_si256(_mm256_srli_epi16(hmask, 4 * h + k), one);
        const __m256i minus = _mm256_slli_epi16(_mm256_xor_si256(hbit, one), 2);
        const __m256i q = _mm256_sub_epi8(_mm256_and_si256(_mm256_srli_epi16(bits, 2 * k), low2), minus);
        const __m256i yq = load32(y[i].qs + 128 * h + 32 * k);
        const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(q, q), _mm256_sign_epi8(yq, q));
        const int g = 8 * h + 2 * k;
        sumi = _mm256_add_epi32(
            sumi, _mm256_madd_epi16(p, two_group_scales(scale_q3_k(x[i].scales, g), scale_q3_k(x[i].scales, g + 1))));
      }
    }
    sum += y[i].d * half_to_float(x[i].d) * float(hsum(sumi));
  }
  return sum;
}

// ---- float dots (double accumulation, as the reference) -----------------

// Eight floats of x and y multiplied and added into two double accumulators.
// A product of two floats is exact in double, so FMA here rounds like mul+add.
inline void accumulate8(__m256 x, __m256 y, __m256d& lo, __m256d& hi) {
  lo = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(x)), _mm256_cvtps_pd(_mm256_castps256_ps128(y)), lo);
  hi = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(x, 1)), _mm256_cvtps_pd(_mm256_extractf128_ps(y, 1)), hi);
}

inline __m256 load_f16x8(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

inline __m256 load_bf16x8(const uint16_t* p) {
  const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
}

float dot_f32(const void* xv, const void* yv, int64_t n) {
  const auto* x = static_cast<const float*>(xv);
  const auto* y = static_cast<const float*>(yv);
  __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) accumulate8(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), lo, hi);
  double sum = hsum(_mm256_add_pd(lo, hi));
  for (; i < n; i++) sum += double(x[i]) * double(y[i]);
  return float(sum);
}

float dot_f16(const void* xv, const void* yv, int64_t n) {
  const auto* x = static_cast<const uint16_t*>(xv);
  const auto* y = static_cast<const uint16_t*>(yv);
  __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) accumulate8(load_f16x8(x + i), load_f16x8(y + i), lo, hi);
  double sum = hsum(_mm256_add_pd(lo, hi));
  for (; i < n; i++) sum += double(half_to_float(x[i])) * double(half_to_float(y[i]));
  return float(sum);
}

float dot_bf16(const void* xv, const void* yv, int64_t n) {
  const auto* x = static_cast<const uint16_t*>(xv);
  const auto* y = static_cast<const uint16_t*>(yv);
  __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) accumulate8(load_bf16x8(x + i), load_bf16x8(y + i), lo, hi);
  double sum = hsum(_mm256_add_pd(lo, hi));
  for (; i < n; i++) {
    const float a = _mm_cvtss_f32(_mm_castsi128_ps(_mm_cvtsi32_si128(int(uint32_t(x[i]) << 16))));
    const float b = _mm_cvtss_f32(_mm_castsi128_ps(_mm_cvtsi32_si128(int(uint32_t(y[i]) << 16))));
    sum += double(a) * double(b);
  }
  return float(sum);
}

// ---- attention over the f16 KV cache --------------------------------------

// e^x as 2^n * e^r with r = x - n ln2 in [-ln2/2, ln2/2] and a degree-6
// Taylor polynomial (relative error < 2e-7). x is clamped to [-87, 88]: below,
// about 1e-38 instead of a denormal or zero; above, about 1.6e38 instead of
// infinity (softmax and silu only need the limits' direction).
inline __m256 exp_ps(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(88.0f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.0f / 720);
  for (float c : {1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f}) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
  const __m256i two_n = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(two_n));
}

// The KV cache's rows as the attention kernels read them, a block of kBlock
// elements (one scale) at a time: block(p, j0) of row p from element j0 (a
// multiple of kBlock), then chunk(jj): 8 floats from element j0 + jj; or,
// where kScaled, codes(jj) times the block's `scale` (a float).
struct F16CacheRows {
  static constexpr int64_t kBlock = 8;
  static constexpr bool kScaled = false;
  struct Block {
    __m256 chunk(int64_t jj) const { return load_f16x8(halves + jj); }
    const uint16_t* halves;
  };
  Block block(int64_t p, int64_t j0) const {
    return {reinterpret_cast<const uint16_t*>(data + size_t(p) * row_bytes) + j0};
  }
  const uint8_t* data;
  size_t row_bytes;
};

// Q8_0 codes widened to floats (times their block's scale in chunk(); the
// decode values fold it into each query's weight instead, and decode scores
// read the keys as blocks: q8_0_key_scores).
struct Q8_0CacheRows {
  static constexpr int64_t kBlock = kQK;
  static constexpr bool kScaled = true;
  struct Block {
    __m256 codes(int64_t jj) const {
      return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(qs + jj))));
    }
    __m256 chunk(int64_t jj) const { return _mm256_mul_ps(codes(jj), _mm256_set1_ps(scale)); }
    const int8_t* qs;
    float scale;
  };
  const block_q8_0& block_at(int64_t p, int64_t b) const {
    return reinterpret_cast<const block_q8_0*>(data + size_t(p) * row_bytes)[b];
  }
  Block block(int64_t p, int64_t j0) const {
    const block_q8_0& b = block_at(p, j0 / kQK);
    return {b.qs, half_to_float(b.d)};
  }
  const uint8_t* data;
  size_t row_bytes;
};

// scores_i[p] = scale * q_i . k_p over all positions of the keys for NQ (1, 2
// or 4) query heads of one key head: each key chunk is converted once for all
// of them (an f16 conversion costs about what an FMA does). 8 / NQ positions
// per pass, the 8 accumulators in registers.
template <int NQ, typename Rows>
void attention_scores(const float* const q[NQ], int64_t d, const Rows& k, int64_t n_pos, float scale,
                      float* const scores[NQ]) {
  static_assert(NQ == 1 || NQ == 2 || NQ == 4);
  constexpr int kPos = 8 / NQ;
  int64_t p = 0;
  for (; p + kPos <= n_pos; p += kPos) {
    __m256 acc[8];  // acc[i * kPos + r]: query i, position p + r
    for (auto& a : acc) a = _mm256_setzero_ps();
    for (int64_t j0 = 0; j0 < d; j0 += Rows::kBlock) {
      typename Rows::Block keys[kPos];
      for (int r = 0; r < kPos; r++) keys[r] = k.block(p + r, j0);
      for (int64_t jj = 0; jj < Rows::kBlock; jj += 8) {
        __m256 qv[NQ];
        for (int i = 0; i < NQ; i++) qv[i] = _mm256_loadu_ps(q[i] + j0 + jj);
        for (int r = 0; r < kPos; r++) {
          const __m256 key = keys[r].chunk(jj);
          for (int i = 0; i < NQ; i++) acc[i * kPos + r] = _mm256_fmadd_ps(qv[i], key, acc[i * kPos + r]);
        }
      }
    }
    store_pass_scores<NQ>(transpose_sums8(acc), scale, scores, p, n_pos);
  }
  for (; p < n_pos; p++)
    for (int i = 0; i < NQ; i++) {
      __m256 acc = _mm256_setzero_ps();
      for (int64_t j0 = 0; j0 < d; j0 += Rows::kBlock) {
        const typename Rows::Block key = k.block(p, j0);
        for (int64_t jj = 0; jj < Rows::kBlock; jj += 8)
          acc = _mm256_fmadd_ps(_mm256_loadu_ps(q[i] + j0 + jj), key.chunk(jj), acc);
      }
      scores[i][p] = hsum(acc) * scale;
    }
}

void quantize_q8_0(const float* src, void* dst, int64_t n);

// Scores against Q8_0 keys, as vec_dot(Q8_0) computes them: each query is
// quantized to Q8_0 (the reference rounds it the same way, see
// round_queries_for_keys), and per 32-element block the codes' dot is an
// integer (maddubs of |q| and k with q's signs) times the two block scales.
// Widening and scaling the keys' codes to floats cost three instructions per
// 8 elements before a query's FMA; this is three per 32 elements. NQ queries
// and 8 / NQ positions make 8 integer sums per block, summed across lanes in
// one transpose and scaled in one product.
template <int NQ>
void q8_0_key_scores(const block_q8_0* const q[NQ], int64_t nb, const Q8_0CacheRows& k, int64_t n_pos, float scale,
                     float* const scores[NQ]) {
  static_assert(NQ == 1 || NQ == 2 || NQ == 4);
  constexpr int kPos = 8 / NQ;
  thread_local std::vector<float> query_scales;  // per block, lane i * kPos + r: query i's scale
  query_scales.resize(size_t(nb) * 8);
  for (int64_t b = 0; b < nb; b++)
    for (int lane = 0; lane < 8; lane++) query_scales[size_t(b * 8 + lane)] = half_to_float(q[lane / kPos][b].d);
  const __m256i ones = _mm256_set1_epi16(1);
  for (int64_t p = 0; p < n_pos; p += kPos) {
    // The last pass repeats position n_pos - 1 in lanes past the end.
    int64_t pos[kPos];
    for (int r = 0; r < kPos; r++) pos[r] = std::min(p + r, n_pos - 1);
    __m256 acc = _mm256_setzero_ps();  // lane i * kPos + r: query i, position p + r
    for (int64_t b = 0; b < nb; b++) {
      __m256i dots[8];
      alignas(16) uint16_t key_scales[8];
      __m256i q_abs[NQ];
      for (int i = 0; i < NQ; i++) {
        const __m256i codes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q[i][b].qs));
        q_abs[i] = _mm256_sign_epi8(codes, codes);
      }
      for (int r = 0; r < kPos; r++) {
        const block_q8_0& key = k.block_at(pos[r], b);
        const __m256i codes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(key.qs));
        for (int i = 0; i < NQ; i++) {
          const __m256i q_codes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q[i][b].qs));
          // |q| * (k with q's signs) = q * k; pairs stay under 2 * 127 * 127.
          const __m256i pairs = _mm256_maddubs_epi16(q_abs[i], _mm256_sign_epi8(codes, q_codes));
          dots[i * kPos + r] = _mm256_madd_epi16(pairs, ones);
          key_scales[i * kPos + r] = key.d;
        }
      }
      acc = add_block_sums(acc, dots, key_scales, query_scales.data() + b * 8);
    }
    store_pass_scores<NQ>(acc, scale, scores, p, n_pos);
  }
}

// The largest of w[0, n).
float max_of(const float* w, int64_t n) {
  __m256 vmax = _mm256_set1_ps(-INFINITY);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(w + i));
  float max_score = hmax(vmax);
  for (; i < n; i++) max_score = std::max(max_score, w[i]);
  return max_score;
}

// w = exp(w - shift) in place over [0, n); returns their sum.
float exp_shifted(float* w, int64_t n, float shift) {
  const __m256 m = _mm256_set1_ps(shift);
  __m256 vsum = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 e = exp_ps(_mm256_sub_ps(_mm256_loadu_ps(w + i), m));
    _mm256_storeu_ps(w + i, e);
    vsum = _mm256_add_ps(vsum, e);
  }
  float sum = hsum(vsum);
  for (; i < n; i++) sum += w[i] = std::exp(w[i] - shift);
  return sum;
}

// weights = exp(scores - max) in place; returns their sum.
float softmax_weights(float* w, int64_t n) { return exp_shifted(w, n, max_of(w, n)); }

// out_i[c0, c0 + 8 * NV) += sum over positions p0..p1 of w_i[p] v_p[...] for
// NQ queries at once: each value chunk is converted once and the
// accumulators stay in registers for the tile.
//
// Always inlined: called on its own once per tile and pass (four positions),
// it spent as long copying its accumulators through the stack and returning
// as summing (in cache, one core, 512 positions: f16 GQA group 2 8.8 -> 7.5
// us per call, group 4 17 -> 13-15, Q8_0 11.8 -> 10.7).
template <int NQ, int NV, typename Rows>
__attribute__((always_inline)) inline void weighted_values(const float* const w[NQ], const Rows& v, int64_t p0,
                                                          int64_t p1, int64_t c0, float* const out[NQ]) {
  // Chunks read from one block; a scaled block's scale goes into each
  // query's weight (one product per query and block instead of one per chunk).
  constexpr int kPer = Rows::kScaled ? std::min<int>(NV, int(Rows::kBlock / 8)) : NV;
  __m256 acc[NQ][NV];
  for (int i = 0; i < NQ; i++)
    for (int c = 0; c < NV; c++) acc[i][c] = _mm256_loadu_ps(out[i] + c0 + 8 * c);
  for (int64_t p = p0; p < p1; p++) {
    for (int c = 0; c < NV; c += kPer) {
      const int64_t j = c0 + 8 * c, jj = j % Rows::kBlock;
      const typename Rows::Block block = v.block(p, j - jj);
      __m256 vv[kPer];
      for (int u = 0; u < kPer; u++) {
        if constexpr (Rows::kScaled)
          vv[u] = block.codes(jj + 8 * u);
        else
          vv[u] = block.chunk(jj + 8 * u);
      }
      for (int i = 0; i < NQ; i++) {
        float weight = w[i][p];
        if constexpr (Rows::kScaled) weight *= block.scale;
        const __m256 wi = _mm256_set1_ps(weight);
        for (int u = 0; u < kPer; u++) acc[i][c + u] = _mm256_fmadd_ps(wi, vv[u], acc[i][c + u]);
      }
    }
  }
  for (int i = 0; i < NQ; i++)
    for (int c = 0; c < NV; c++) _mm256_storeu_ps(out[i] + c0 + 8 * c, acc[i][c]);
}

// out_i = sum_p w_i[p] v_p / total_i. The positions go in tiles of a few
// rows, and each pass over a tile reads the next 32-128 bytes of each row
// (NQ * kWide accumulators), so a tile is read almost front to back, which
// the hardware prefetchers follow. With tiles of 32 rows (a 256-byte stride
// through 8 KiB per pass) and the next tile prefetched in software, decode
// attention over 2048 positions read the cache at 11 GB/s on one core of a
// 2-core EPYC where a core reads 30; with tiles of four rows, 23 GB/s, and as
// fast from L3. Four query heads read 32 bytes per row and pass, so their
// tiles are eight rows, which keeps the accumulators' loads and stores per
// tile in proportion (2048 positions on two cores: two query heads 21 ->
// 32-39 GB/s, four 15 -> 22).
template <int NQ>
constexpr int64_t kValueTile = NQ == 4 ? 8 : 4;

template <int NQ, typename Rows>
void weighted_values_all(const float* const w[NQ], const float total[NQ], const Rows& v, int64_t dv, int64_t n_pos,
                         float* const out[NQ]) {
  constexpr int kWide = 8 / NQ;  // value chunks per pass: NQ * kWide accumulators
  for (int i = 0; i < NQ; i++) std::fill(out[i], out[i] + dv, 0.0f);
  for (int64_t p0 = 0; p0 < n_pos; p0 += kValueTile<NQ>) {
    const int64_t p1 = std::min(n_pos, p0 + kValueTile<NQ>);
    int64_t c0 = 0;
    for (; c0 + 8 * kWide <= dv; c0 += 8 * kWide) weighted_values<NQ, kWide>(w, v, p0, p1, c0, out);
    for (; c0 < dv; c0 += 8) weighted_values<NQ, 1>(w, v, p0, p1, c0, out);
  }
  for (int i = 0; i < NQ; i++) {
    const __m256 inv = _mm256_set1_ps(1.0f / total[i]);
    for (int64_t c = 0; c < dv; c += 8) _mm256_storeu_ps(out[i] + c, _mm256_mul_ps(_mm256_loadu_ps(out[i] + c), inv));
  }
}

// attend_head's kernels (decode_attention.h).
struct Avx2Attention {
  template <typename KeyRows>
  static constexpr bool kQ8_0Keys = std::is_same_v<KeyRows, Q8_0CacheRows>;
  template <int NQ, typename KeyRows>
  static void scores(const float* const q[NQ], int64_t d, const KeyRows& k, int64_t n_pos, float scale,
                     float* const w[NQ]) {
    attention_scores<NQ>(q, d, k, n_pos, scale, w);
  }
  template <int NQ, typename KeyRows>
  static void q8_0_scores(const block_q8_0* const q[NQ], int64_t nb, const KeyRows& k, int64_t n_pos, float scale,
                          float* const w[NQ]) {
    q8_0_key_scores<NQ>(q, nb, k, n_pos, scale, w);
  }
  static float softmax(float* w, int64_t n) { return softmax_weights(w, n); }
  template <int NQ, typename ValueRows>
  static void values(const float* const w[NQ], const float total[NQ], const ValueRows& v, int64_t dv, int64_t n_pos,
                     float* const out[NQ]) {
    weighted_values_all<NQ>(w, total, v, dv, n_pos, out);
  }
};

// Calls fn with the row reader of `rows`' type.
template <typename Fn>
void with_cache_rows(const CacheRows& rows, Fn fn) {
  if (rows.type == gguf::TensorType::Q8_0)
    fn(Q8_0CacheRows{rows.data, rows.row_bytes});
  else
    fn(F16CacheRows{rows.data, rows.row_bytes});
}

int64_t cache_block(const CacheRows& rows) { return rows.type == gguf::TensorType::Q8_0 ? kQK : 8; }

void attend(const float* q, int n_q, int64_t d, const CacheRows& k, const CacheRows& v, int64_t dv, int64_t n_pos,
            float scale, float* out) {
  if (d % cache_block(k) != 0 || dv % cache_block(v) != 0) {  // f16 heads not a multiple of 8: rare, kept exact
    scalar_kernels().attend(q, n_q, d, k, v, dv, n_pos, scale, out);
    return;
  }
  with_cache_rows(k, [&](const auto& keys) {
    with_cache_rows(v, [&](const auto& values) {
      attend_head<Avx2Attention>(q, n_q, d, keys, values, dv, n_pos, scale, out);
    });
  });
}

// Elements [j, j + 8) of row p as floats (j a multiple of 8).
template <typename Rows>
__m256 row_chunk(const Rows& rows, int64_t p, int64_t j) {
  return rows.block(p, j / Rows::kBlock * Rows::kBlock).chunk(j % Rows::kBlock);
}

// Rows r[0..7] become their transpose: r[j][l] = old r[l][j].
inline void transpose8x8(__m256 r[8]) {
  __m256 t[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  __m256 u[8];
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int i = 0; i < 4; i++) {
    r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
    r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
  }
}

// Eight positions by eight elements at a time: converted, transposed in
// registers, stored as eight panel steps.
void key_panels(const CacheRows& k, int64_t n_pos, int64_t d, float* panels) {
  if (d % cache_block(k) != 0) {
    scalar_kernels().key_panels(k, n_pos, d, panels);
    return;
  }
  with_cache_rows(k, [&](const auto& rows) {
    for (int64_t p0 = 0; p0 < n_pos; p0 += kKeyPanel) {
      const int64_t live = std::min<int64_t>(kKeyPanel, n_pos - p0);
      float* panel = panels + p0 * d;
      for (int64_t j0 = 0; j0 < d; j0 += 8) {
        __m256 r[8];
        for (int l = 0; l < 8; l++) r[l] = l < live ? row_chunk(rows, p0 + l, j0) : _mm256_setzero_ps();
        transpose8x8(r);
        for (int j = 0; j < 8; j++) _mm256_storeu_ps(panel + (j0 + j) * kKeyPanel, r[j]);
      }
    }
  });
}

// ---- prefill attention: a run's rows against blocks of f32 keys ----------
//
// The keys and values of a block of positions are converted to f32 once for
// all the run's rows of a key/value head (keys as panels, values as rows),
// and every group of four rows takes the block in two small matrix
// products: scores S = Q K^T (4 x positions), then sums += W V (4 x dv),
// with the softmax online over the blocks (each row's running maximum and
// total; its sums rescaled when the maximum grows). Both products are
// register-blocked micro-kernels of four rows by up to three 8-float chunks:
// per step, four broadcast row elements meet three loaded chunks in twelve
// FMAs (7 loads per 12 FMAs), and the twelve accumulators stay in registers
// for the whole pass. The rows read their keys and values from memory once,
// however long the run, and no head-sized f32 copy is kept.
constexpr int kGroupRows = 4;  // rows per micro-kernel
static_assert(kKeyPanel == 8);

// w[r][8 * pc + 8 * c + l] = scale * q_r . key(8 * (pc + c) + l) for NC
// panels from panel pc: each panel is d steps of eight positions, read front
// to back.
template <int NC>
void panel_scores(const float* q, int64_t d, const float* panels, int64_t pc, float scale, float* w, int64_t w_stride) {
  __m256 acc[kGroupRows][NC];
  for (auto& row : acc)
    for (auto& a : row) a = _mm256_setzero_ps();
  const float* k = panels + pc * kKeyPanel * d;
  for (int64_t j = 0; j < d; j++) {
    __m256 keys[NC];
    for (int c = 0; c < NC; c++) keys[c] = _mm256_loadu_ps(k + c * kKeyPanel * d + j * kKeyPanel);
    for (int r = 0; r < kGroupRows; r++) {
      const __m256 qr = _mm256_broadcast_ss(q + r * d + j);
      for (int c = 0; c < NC; c++) acc[r][c] = _mm256_fmadd_ps(qr, keys[c], acc[r][c]);
    }
  }
  const __m256 s = _mm256_set1_ps(scale);
  for (int r = 0; r < kGroupRows; r++)
    for (int c = 0; c < NC; c++) _mm256_storeu_ps(w + r * w_stride + (pc + c) * kKeyPanel, _mm256_mul_ps(acc[r][c], s));
}

// sums[r][c0, c0 + 8 * NC) = alpha[r] * sums[r][...] + sum_{p < n} w[r][p]
// v_p[...]: one block of positions of the weighted sums, each row's earlier
// sums rescaled to the row's new maximum on the way in.
template <int NC>
void weighted_value_rows(const float* w, int64_t w_stride, const float* v, int64_t dv, int64_t n, int64_t c0,
                         const float* alpha, float* sums) {
  __m256 acc[kGroupRows][NC];
  for (int r = 0; r < kGroupRows; r++)
    for (int c = 0; c < NC; c++)
      acc[r][c] = _mm256_mul_ps(_mm256_loadu_ps(sums + r * dv + c0 + 8 * c), _mm256_set1_ps(alpha[r]));
  for (int64_t p = 0; p < n; p++) {
    __m256 vals[NC];
    for (int c = 0; c < NC; c++) vals[c] = _mm256_loadu_ps(v + p * dv + c0 + 8 * c);
    for (int r = 0; r < kGroupRows; r++) {
      const __m256 wr = _mm256_broadcast_ss(w + r * w_stride + p);
      for (int c = 0; c < NC; c++) acc[r][c] = _mm256_fmadd_ps(wr, vals[c], acc[r][c]);
    }
  }
  for (int r = 0; r < kGroupRows; r++)
    for (int c = 0; c < NC; c++) _mm256_storeu_ps(sums + r * dv + c0 + 8 * c, acc[r][c]);
}

// Chunks (key panels or value chunks) for the next micro-kernel pass, of
// `left`: three where possible, but 4 as 2 + 2 rather than 3 + 1, since one
// chunk gives only four independent FMA chains, half of what keeps both FMA
// units busy.
inline int next_block(int64_t left) { return left >= 3 && left != 4 ? 3 : int(std::min<int64_t>(left, 2)); }

// Positions per block: its f32 keys and values (64 KiB each at d = dv = 128)
// stay in L2 while every group of the run reads them.
constexpr int64_t kAttendBlock = 128;

// One row's online softmax over a block: w[0, live) are its scores, which
// become exp(score - new maximum); w[live, n) become zero (positions past
// the row's own). Returns the factor that rescales the row's earlier sums
// and total (zero for a row's first block, one when it attends none).
float online_softmax_block(float* w, int64_t live, int64_t n, float& max_score, float& total) {
  if (live <= 0) {
    std::fill(w, w + n, 0.0f);
    return 1.0f;
  }
  const float new_max = std::max(max_score, max_of(w, live));
  const float alpha = std::exp(max_score - new_max);  // exp(-inf) = 0 for the first block
  const float sum = exp_shifted(w, live, new_max);
  std::fill(w + live, w + n, 0.0f);
  max_score = new_max;
  total = total * alpha + sum;
  return alpha;
}

// Positions [p0, p0 + n) of value rows as f32 rows of dv floats.
template <typename Rows>
void value_rows(const Rows& rows, int64_t p0, int64_t n, int64_t dv, float* out) {
  for (int64_t p = 0; p < n; p++)
    for (int64_t j0 = 0; j0 < dv; j0 += 8)
      _mm256_storeu_ps(out + p * dv + j0, row_chunk(rows, p0 + p, j0));
}

// One group of four rows against one block of n positions (keys as panels,
// values as rows): scores, the online softmax, the weighted sums.
void group_block(const float* q, int64_t d, const float* panels, const float* values, int64_t dv, int64_t n,
                 const int64_t live[kGroupRows], float scale, float* w, float* max_score, float* total, float* sums) {
  const int64_t n_panels = (n + kKeyPanel - 1) / kKeyPanel, w_stride = n_panels * kKeyPanel;
  for (int64_t pc = 0; pc < n_panels;) {
    const int step = next_block(n_panels - pc);
    if (step == 3)
      panel_scores<3>(q, d, panels, pc, scale, w, w_stride);
    else if (step == 2)
      panel_scores<2>(q, d, panels, pc, scale, w, w_stride);
    else
      panel_scores<1>(q, d, panels, pc, scale, w, w_stride);
    pc += step;
  }
  float alpha[kGroupRows];
  for (int r = 0; r < kGroupRows; r++)
    alpha[r] = online_softmax_block(w + r * w_stride, std::min(live[r], n), n, max_score[r], total[r]);
  for (int64_t c0 = 0; c0 < dv;) {
    const int step = next_block((dv - c0) / 8);
    if (step == 3)
      weighted_value_rows<3>(w, w_stride, values, dv, n, c0, alpha, sums);
    else if (step == 2)
      weighted_value_rows<2>(w, w_stride, values, dv, n, c0, alpha, sums);
    else
      weighted_value_rows<1>(w, w_stride, values, dv, n, c0, alpha, sums);
    c0 += 8 * step;
  }
}

void attend_causal(const float* q, int64_t n_rows, const int64_t* n_pos, int64_t d, const CacheRows& k,
                   const CacheRows& v, int64_t dv, float scale, float* out) {
  if (d % cache_block(k) != 0 || dv % cache_block(v) != 0) {  // f16 heads not a multiple of 8: rare, kept exact
    scalar_kernels().attend_causal(q, n_rows, n_pos, d, k, v, dv, scale, out);
    return;
  }
  const int64_t n_groups = (n_rows + kGroupRows - 1) / kGroupRows, padded_rows = n_groups * kGroupRows;
  thread_local std::vector<float> queries, panels, values, w, sums, max_score, total;
  queries.assign(size_t(padded_rows * d), 0.0f);  // padding rows: zero queries that attend nothing
  std::copy(q, q + n_rows * d, queries.begin());
  round_queries_for_keys(k.type, queries.data(), n_rows, d);
  panels.resize(size_t(key_panel_floats(kAttendBlock, d)));
  values.resize(size_t(kAttendBlock * dv));
  w.resize(size_t(kGroupRows * kAttendBlock));
  sums.assign(size_t(padded_rows * dv), 0.0f);
  max_score.assign(size_t(padded_rows), -INFINITY);
  total.assign(size_t(padded_rows), 0.0f);
  thread_local std::vector<int64_t> group_pos;  // positions a group attends: its rows' largest n_pos
  group_pos.assign(size_t(n_groups), 0);
  for (int64_t i = 0; i < n_rows; i++) {
    int64_t& pos = group_pos[size_t(i / kGroupRows)];
    pos = std::max(pos, n_pos[i]);
  }
  const int64_t max_pos = *std::max_element(group_pos.begin(), group_pos.end());

  for (int64_t p0 = 0; p0 < max_pos; p0 += kAttendBlock) {
    const int64_t n = std::min(kAttendBlock, max_pos - p0);
    key_panels(CacheRows{k.data + size_t(p0) * k.row_bytes, k.type, k.row_bytes}, n, d, panels.data());
    with_cache_rows(v, [&](const auto& rows) { value_rows(rows, p0, n, dv, values.data()); });
    for (int64_t g = 0; g < n_groups; g++) {
      if (group_pos[size_t(g)] <= p0) continue;
      int64_t live[kGroupRows];
      for (int r = 0; r < kGroupRows; r++) {
        const int64_t row = g * kGroupRows + r;
        live[r] = row < n_rows ? n_pos[row] - p0 : 0;
      }
      const int64_t rows = g * kGroupRows;
      group_block(queries.data() + rows * d, d, panels.data(), values.data(), dv,
                  std::min(n, group_pos[size_t(g)] - p0), live, scale, w.data(), max_score.data() + rows,
                  total.data() + rows, sums.data() + rows * dv);
    }
  }
  for (int64_t i = 0; i < n_rows; i++) {
    const __m256 inv = _mm256_set1_ps(1.0f / total[size_t(i)]);
    for (int64_t c = 0; c < dv; c += 8)
      _mm256_storeu_ps(out + i * dv + c, _mm256_mul_ps(_mm256_loadu_ps(sums.data() + i * dv + c), inv));
  }
}

void dequantize_f16(const void* src, float* dst, int64_t n) {
  const auto* h = static_cast<const uint16_t*>(src);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, load_f16x8(h + i));
  for (; i < n; i++) dst[i] = half_to_float(h[i]);
}

void f32_to_f16_row(const float* x, uint16_t* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
  for (; i < n; i++) y[i] = uint16_t(_cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT));
}

void swiglu(const float* gate, const float* up, float* out, int64_t n) {
  int64_t i = 0;
  const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
  for (; i + 8 <= n; i += 8) {
    const __m256 g = _mm256_loadu_ps(gate + i);
    const __m256 silu = _mm256_div_ps(g, _mm256_add_ps(one, exp_ps(_mm256_xor_ps(g, sign))));
    _mm256_storeu_ps(out + i, _mm256_mul_ps(silu, _mm256_loadu_ps(up + i)));
  }
  for (; i < n; i++) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

// Each x[i]^2 rounded to float as the scalar loop rounds it, then summed in
// double, four lanes twice over: the same sum up to the order of additions.
void rms_norm(const float* x, const float* weight, float* out, int64_t n, float eps) {
  __m256d a = _mm256_setzero_pd(), b = _mm256_setzero_pd();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    const __m256 sq = _mm256_mul_ps(v, v);
    a = _mm256_add_pd(a, _mm256_cvtps_pd(_mm256_castps256_ps128(sq)));
    b = _mm256_add_pd(b, _mm256_cvtps_pd(_mm256_extractf128_ps(sq, 1)));
  }
  double sum = hsum(_mm256_add_pd(a, b));
  for (; i < n; i++) sum += double(x[i] * x[i]);
  const float scale = 1.0f / std::sqrt(float(sum / double(n)) + eps);
  const __m256 s = _mm256_set1_ps(scale);
  for (i = 0; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), s), _mm256_loadu_ps(weight + i)));
  for (; i < n; i++) out[i] = x[i] * scale * weight[i];
}

// ---- activation quantizers (bit-exact with the scalar ones) --------------

inline __m256 abs_ps(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

// Largest |x| over n floats; NaNs are skipped as the scalar comparisons skip them
// (max_ps returns its second operand when the first is NaN).
inline float abs_max(const float* x, int n) {
  __m256 m = _mm256_setzero_ps();
  for (int j = 0; j < n; j += 8) m = _mm256_max_ps(abs_ps(_mm256_loadu_ps(x + j)), m);
  return hmax(m);
}

// Four vectors of 8 int32 (each in -128..127) -> 32 int8 in order.
inline void store_int8x32(__m256i a, __m256i b, __m256i c, __m256i d, int8_t* out) {
  const __m256i ab = _mm256_packs_epi32(a, b), cd = _mm256_packs_epi32(c, d);
  const __m256i packed = _mm256_packs_epi16(ab, cd);
  const __m256i ordered = _mm256_permutevar8x32_epi32(packed, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), ordered);
}

// C's roundf (ties away from zero) of 8 floats, exactly: truncate, then step
// away from zero when the dropped fraction is at least one half.
inline __m256i round_half_away8(__m256 v) {
  const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m256 frac = abs_ps(_mm256_sub_ps(v, t));
  const __m256 step = _mm256_and_ps(_mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ),
                                    _mm256_or_ps(_mm256_set1_ps(1.0f), _mm256_and_ps(v, _mm256_set1_ps(-0.0f))));
  return _mm256_cvttps_epi32(_mm256_add_ps(t, step));
}

// A 32-value block's codes, round(x * id) (id = 1 / d).
inline void store_q8_codes(const float* x, float id, int8_t* qs) {
  const __m256 vid = _mm256_set1_ps(id);
  __m256i q[4];
  for (int k = 0; k < 4; k++) q[k] = round_half_away8(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * k), vid));
  store_int8x32(q[0], q[1], q[2], q[3], qs);
}

// d = absmax / 127, codes round(x / d) as in legacy_quants.cpp; returns d.
template <typename Block>
float quantize_q8_block(const float* x, Block& b) {
  const float amax = abs_max(x, kQK);
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  b.d = uint16_t(_cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT));
  store_q8_codes(x, id, b.qs);
  return d;
}

// Eight blocks' scales at a time (the same divisions and rounding as
// quantize_q8_block's, in vectors), then finish(block, d) per block (Q8_1's
// sum). One block at a time, the two scalar divisions of each block's scale
// chained behind its maximum, and a row took 1.6-1.7 times as long (4096
// floats, bench_tensor: Q8_0 1406 against 886 ns, Q8_1 1973 against 1180).
template <typename Block, typename Finish>
void quantize_q8_rows(const float* src, Block* blocks, int64_t count, Finish finish) {
  int64_t i = 0;
  for (; i + 8 <= count; i += 8) {
    alignas(32) float amax[8], scale[8], inverse[8];
    alignas(16) uint16_t halves[8];
    for (int k = 0; k < 8; k++) amax[k] = abs_max(src + (i + k) * kQK, kQK);
    const __m256 d = _mm256_div_ps(_mm256_load_ps(amax), _mm256_set1_ps(127.0f));
    const __m256 nonzero = _mm256_cmp_ps(d, _mm256_setzero_ps(), _CMP_NEQ_UQ);  // d != 0, as in C
    _mm256_store_ps(scale, d);
    _mm256_store_ps(inverse, _mm256_and_ps(_mm256_div_ps(_mm256_set1_ps(1.0f), d), nonzero));
    _mm_store_si128(reinterpret_cast<__m128i*>(halves), _mm256_cvtps_ph(d, _MM_FROUND_TO_NEAREST_INT));
    for (int k = 0; k < 8; k++) {
      blocks[i + k].d = halves[k];
      store_q8_codes(src + (i + k) * kQK, inverse[k], blocks[i + k].qs);
      finish(blocks[i + k], scale[k]);
    }
  }
  for (; i < count; i++) finish(blocks[i], quantize_q8_block(src + i * kQK, blocks[i]));
}

void quantize_q8_0(const float* src, void* dst, int64_t n) {
  quantize_q8_rows(src, static_cast<block_q8_0*>(dst), n / kQK, [](block_q8_0&, float) {});
}

// Q8_1 also keeps d times the sum of its codes.
void quantize_q8_1(const float* src, void* dst, int64_t n) {
  quantize_q8_rows(src, static_cast<block_q8_1*>(dst), n / kQK, [](block_q8_1& b, float d) {
    const int sum = hsum(sum_pairs_i16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), load32(b.qs))));
    b.s = uint16_t(_cvtss_sh(float(sum) * d, _MM_FROUND_TO_NEAREST_INT));
  });
}

void quantize_q8_k(const float* x, void* dst, int64_t n) {
  auto* blocks = static_cast<block_q8_k*>(dst);
  for (int64_t i = 0; i < n / kQK_K; i++, x += kQK_K) {
    block_q8_k& y = blocks[i];
    const float amax = abs_max(x, kQK_K);
    if (amax == 0.0f) {
      std::memset(&y, 0, sizeof y);
      continue;
    }
    // The scalar code keeps the first element of largest magnitude, sign
    // included. Found eight at a time: element by element, the search took
    // almost as long as the rest of the block (its position in real
    // activations is anywhere, and the branch mispredicts; 4096 floats:
    // 1585 against 908 ns, bench_tensor).
    float max = 0.0f;
    const __m256 vamax = _mm256_set1_ps(amax);
    for (int j = 0; j < kQK_K; j += 8) {
      const int hits = _mm256_movemask_ps(_mm256_cmp_ps(abs_ps(_mm256_loadu_ps(x + j)), vamax, _CMP_EQ_OQ));
      if (hits != 0) {
        max = x[j + __builtin_ctz(unsigned(hits))];
        break;
      }
    }
    const float iscale = -127.0f / max;
    const __m256 vs = _mm256_set1_ps(iscale);
    const __m256i cap = _mm256_set1_epi32(127);
    for (int j = 0; j < kQK_K; j += 32) {
      __m256i q[4];
      // cvtps rounds to nearest even under the default MXCSR, as nearest_int does.
      for (int k = 0; k < 4; k++)
        q[k] = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + j + 8 * k), vs)), cap);
      store_int8x32(q[0], q[1], q[2], q[3], y.qs + j);
    }
    for (int g = 0; g < 16; g++) {
      const __m256i wide = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(y.qs + 16 * g)));
      y.bsums[g] = int16_t(hsum(sum_pairs_i16(wide)));
    }
    y.d = 1 / iscale;
  }
}

KernelTable build_avx2_table() {
  KernelTable table = scalar_kernels();
  table.name = "avx2";
  auto dot = [&](TensorType t, VecDotFn fn) { table.by_type[size_t(t)].vec_dot = fn; };
  auto quant = [&](TensorType t, QuantizeFn fn) { table.by_type[size_t(t)].quantize = fn; };
  dot(TensorType::F32, dot_f32);
  dot(TensorType::F16, dot_f16);
  dot(TensorType::BF16, dot_bf16);
  dot(TensorType::Q4_0, dot_q4_0);
  dot(TensorType::Q5_0, dot_q5_0);
  dot(TensorType::Q4_1, dot_with_min<false, block_q4_1>);
  dot(TensorType::Q5_1, dot_with_min<true, block_q5_1>);
  dot(TensorType::Q8_0, dot_q8_0);
  dot(TensorType::Q2_K, dot_q2_k);
  dot(TensorType::Q3_K, dot_q3_k);
  dot(TensorType::Q4_K, dot_q45_k<false, block_q4_k>);
  table.by_type[size_t(TensorType::Q4_K)].vec_dot_4 = dot4_q4_k;
  dot(TensorType::Q5_K, dot_q45_k<true, block_q5_k>);
  dot(TensorType::Q6_K, dot_q6_k);
  table.by_type[size_t(TensorType::F16)].dequantize = dequantize_f16;
  quant(TensorType::Q8_0, quantize_q8_0);
  quant(TensorType::Q8_1, quantize_q8_1);
  quant(TensorType::Q8_K, quantize_q8_k);
  table.attend = attend;
  table.attend_causal = attend_causal;
  table.key_panels = key_panels;
  table.f32_to_f16_row = f32_to_f16_row;
  table.swiglu = swiglu;
  table.rms_norm = rms_norm;
  add_avx2_gemm_kernels(table);
  return table;
}

// `base` renamed, with more kernels on top: each AVX-512 set extends the last.
KernelTable extended(KernelTable base, const char* name, void (*add_kernels)(KernelTable&)) {
  base.name = name;
  add_kernels(base);
  return base;
}

}  // namespace

const KernelTable& avx2_kernels() {
  static const KernelTable table = build_avx2_table();
  return table;
}

float softmax_weights_avx2(float* w, int64_t n) { return softmax_weights(w, n); }

const KernelTable& avx512vnni_kernels() {
  static const KernelTable table = extended(avx2_kernels(), "avx512vnni", [](KernelTable& t) {
    add_avx512vnni_gemm_kernels(t);
    add_avx512_attention_kernels(t);
  });
  return table;
}

const KernelTable& avx512bf16_kernels() {
  static const KernelTable table = extended(avx512vnni_kernels(), "avx512bf16", add_avx512bf16_gemm_kernels);
  return table;
}

}  // namespace warden::tensor
