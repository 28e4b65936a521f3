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
// Dequantizers and weight quantizers are not hot and stay scalar.
#include <immintrin.h>

#include <cstring>

#include "tensor/blocks.h"
#include "tensor/kernels.h"

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

// ---- attention loops over the f16 KV cache ------------------------------

float dot_f32_f16(const float* a, const uint16_t* b, int64_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), load_f16x8(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), load_f16x8(b + i + 8), acc1);
  }
  for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), load_f16x8(b + i), acc0);
  float s = hsum(_mm256_add_ps(acc0, acc1));
  for (; i < n; i++) s += a[i] * half_to_float(b[i]);
  return s;
}

void add_scaled_f16(float* y, float s, const uint16_t* x, int64_t n) {
  const __m256 vs = _mm256_set1_ps(s);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(vs, load_f16x8(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; i++) y[i] += s * half_to_float(x[i]);
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

// d = absmax / 127, codes round(x / d) as in legacy_quants.cpp; returns d.
template <typename Block>
float quantize_q8_block(const float* x, Block& b) {
  const float amax = abs_max(x, kQK);
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  b.d = uint16_t(_cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT));
  const __m256 vid = _mm256_set1_ps(id);
  __m256i q[4];
  for (int k = 0; k < 4; k++) q[k] = round_half_away8(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * k), vid));
  store_int8x32(q[0], q[1], q[2], q[3], b.qs);
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
    const int sum = hsum(sum_pairs_i16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), load32(blocks[i].qs))));
    blocks[i].s = uint16_t(_cvtss_sh(float(sum) * d, _MM_FROUND_TO_NEAREST_INT));
  }
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
    // The scalar code keeps the first element of largest magnitude, sign included.
    float max = 0.0f;
    for (int j = 0; j < kQK_K; j++)
      if (__builtin_fabsf(x[j]) == amax) {
        max = x[j];
        break;
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
  quant(TensorType::Q8_0, quantize_q8_0);
  quant(TensorType::Q8_1, quantize_q8_1);
  quant(TensorType::Q8_K, quantize_q8_k);
  table.dot_f32_f16 = dot_f32_f16;
  table.add_scaled_f16 = add_scaled_f16;
  return table;
}

}  // namespace

const KernelTable& avx2_kernels() {
  static const KernelTable table = build_avx2_table();
  return table;
}

}  // namespace warden::tensor
