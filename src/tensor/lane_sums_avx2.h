// Horizontal sums of eight AVX2 registers into one register's lanes, shared
// by the attention kernels (kernels_avx2.cpp, attend_avx512.cpp). Only for
// files compiled with -mavx2 (see CMakeLists.txt).
#pragma once

#include <immintrin.h>

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

}  // namespace warden::tensor
