// Horizontal sums of eight AVX2 registers into one register's lanes, shared
// by the attention kernels (kernels_avx2.cpp, attend_avx512.cpp). Only for
// files compiled with -mavx2 (see CMakeLists.txt).
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace warden::tensor {

// Lane j = the horizontal sum of a[j].
inline __m256 transpose_sums8(const __m256 a[8]) {
  const __m256 s0123 = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
  const __m256 s4567 = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
  return _mm256_add_ps(_mm256_permute2f128_ps(s0123, s4567, 0x20), _mm256_permute2f128_ps(s0123, s4567, 0x31));
}

// Lane j = the sum of a[j]'s lanes (transpose_sums8 for int32).
inline __m256i transpose_sums8_epi32(const __m256i a[8]) {
  const __m256i s0123 = _mm256_hadd_epi32(_mm256_hadd_epi32(a[0], a[1]), _mm256_hadd_epi32(a[2], a[3]));
  const __m256i s4567 = _mm256_hadd_epi32(_mm256_hadd_epi32(a[4], a[5]), _mm256_hadd_epi32(a[6], a[7]));
  return _mm256_add_epi32(_mm256_permute2x128_si256(s0123, s4567, 0x20), _mm256_permute2x128_si256(s0123, s4567, 0x31));
}

// One block of a Q8_0 key-score pass: acc lane j += the sum of dots[j]'s
// lanes times key_scales[j] (f16 bits, 16-byte aligned) times
// query_scales[j].
inline __m256 add_block_sums(__m256 acc, const __m256i dots[8], const uint16_t key_scales[8],
                             const float* query_scales) {
  const __m256 scales = _mm256_mul_ps(_mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(key_scales))),
                                      _mm256_loadu_ps(query_scales));
  return _mm256_fmadd_ps(_mm256_cvtepi32_ps(transpose_sums8_epi32(dots)), scales, acc);
}

// A score pass's results: lane i * (8 / NQ) + r of `sums`, times `scale`,
// to out[i][p + r] for the positions below n_pos.
template <int NQ>
inline void store_pass_scores(__m256 sums, float scale, float* const out[NQ], int64_t p, int64_t n_pos) {
  constexpr int kPos = 8 / NQ;
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, _mm256_mul_ps(sums, _mm256_set1_ps(scale)));
  for (int i = 0; i < NQ; i++)
    for (int r = 0; r < kPos && p + r < n_pos; r++) out[i][p + r] = lanes[i * kPos + r];
}

}  // namespace warden::tensor
