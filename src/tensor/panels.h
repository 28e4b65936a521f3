#pragma once
// What the panel kernels of gemm_avx2.cpp and gemm_avx512bf16.cpp share: eight
// weight rows per panel, one per 32-bit lane of a 256-bit register.
//
// Everything here has internal linkage on purpose. Each including file is
// compiled for its own instruction set (AVX2, or AVX-512 by a target pragma);
// an inline function with external linkage would be emitted in each, and the
// linker would keep one copy for all of them, possibly the AVX-512 one.
#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

namespace warden::tensor {
namespace {

constexpr int kPanelRows = 8;  // one weight row per 32-bit lane

// 8x8 transpose of 32-bit elements: out[s] holds element s of in[0..7].
// Row r of the input is eight 32-bit words of one weight row (four int8
// codes each, or two bf16 values).
inline void transpose_8x8_epi32(__m256i v[8]) {
  __m256i a[8], b[8];
  for (int i = 0; i < 8; i += 2) {
    a[i] = _mm256_unpacklo_epi32(v[i], v[i + 1]);
    a[i + 1] = _mm256_unpackhi_epi32(v[i], v[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    b[i] = _mm256_unpacklo_epi64(a[i], a[i + 2]);
    b[i + 1] = _mm256_unpackhi_epi64(a[i], a[i + 2]);
    b[i + 2] = _mm256_unpacklo_epi64(a[i + 1], a[i + 3]);
    b[i + 3] = _mm256_unpackhi_epi64(a[i + 1], a[i + 3]);
  }
  for (int i = 0; i < 4; i++) {
    v[i] = _mm256_permute2x128_si256(b[i], b[i + 4], 0x20);
    v[i + 4] = _mm256_permute2x128_si256(b[i], b[i + 4], 0x31);
  }
}

// Calls group(nt_tag, t, out) for tokens t, t+1, ..., NT at a time (NT =
// kGroup tokens sharing each weight register, then the tail), and stores
// out's first `rows` lanes of each token at y[t * ldy]. The best kGroup is
// the most tokens whose accumulators fit the 16 registers without spilling.
template <int kGroup, typename Group>
void over_token_groups(int64_t T, int rows, float* y, int64_t ldy, Group group) {
  static_assert(kGroup >= 1 && kGroup <= 6);
  int64_t t = 0;
  auto run = [&](auto nt_tag) {
    constexpr int NT = decltype(nt_tag)::value;
    float out[NT][8];
    group(nt_tag, t, out);
    // A full panel's copy has a constant size, so it compiles to one store
    // instead of a call to memcpy (1.4 % of decode's time).
    if (rows == kPanelRows)
      for (int k = 0; k < NT; k++) std::memcpy(y + (t + k) * ldy, out[k], sizeof out[k]);
    else
      for (int k = 0; k < NT; k++) std::memcpy(y + (t + k) * ldy, out[k], sizeof(float) * size_t(rows));
    t += NT;
  };
  while (T - t >= kGroup) run(std::integral_constant<int, kGroup>{});
  switch (T - t) {  // at most kGroup - 1 tokens are left
    case 5: run(std::integral_constant<int, 5>{}); break;
    case 4: run(std::integral_constant<int, 4>{}); break;
    case 3: run(std::integral_constant<int, 3>{}); break;
    case 2: run(std::integral_constant<int, 2>{}); break;
    case 1: run(std::integral_constant<int, 1>{}); break;
    default: break;
  }
}

}  // namespace
}  // namespace warden::tensor
