// Decode attention over an f16 KV cache in 512-bit registers, for the
// AVX-512 kernel sets (kernels_avx2.cpp adds it to avx512vnni_kernels()).
//
// Why: decode at depth streams the whole cache per token, and the AVX2
// kernel's arithmetic (a conversion and two FMAs per 8 cached elements and
// query pair, plus the accumulators' loads and stores) ran about as long as
// the reads, so the two overlapped badly. Here a position's 128 values and
// both queries' sums of a qwen3 head stay in 16 registers for the whole pass
// (no accumulator traffic), each row is read front to back, and the scores
// take half the instructions.
//
// Same arithmetic as kernels_avx2.cpp's attend: f32 FMA over converted
// halves, the softmax through softmax_weights_avx2; only the summation order
// differs (16 lanes instead of 8).
//
// Compiled with the AVX2 flags; the functions below the pragma may use
// AVX-512, everything included above it may not (template code from headers
// is shared with the rest of the program).
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "tensor/kernels.h"
#include "tensor/query_groups.h"
#include "tensor/vector_ops.h"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512vl,avx512bw"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx512bw")
// GCC 12's own 512-bit conversion intrinsics trip this warning (a false
// positive of its headers, as in gemm_avx512vnni.cpp).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace warden::tensor {
namespace {

// 16 halves of row `row` from element j, as floats.
inline __m512 load_f16x16(const uint8_t* row, int64_t j) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * j)));
}

// Lane i = the sum of a[i]'s 16 lanes.
inline __m256 transpose_sums8(const __m512 a[8]) {
  __m256 h[8];
  for (int i = 0; i < 8; i++)
    h[i] = _mm256_add_ps(_mm512_castps512_ps256(a[i]),
                         _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a[i]), 1)));
  const __m256 s0123 = _mm256_hadd_ps(_mm256_hadd_ps(h[0], h[1]), _mm256_hadd_ps(h[2], h[3]));
  const __m256 s4567 = _mm256_hadd_ps(_mm256_hadd_ps(h[4], h[5]), _mm256_hadd_ps(h[6], h[7]));
  return _mm256_add_ps(_mm256_permute2f128_ps(s0123, s4567, 0x20), _mm256_permute2f128_ps(s0123, s4567, 0x31));
}

struct F16Head {
  const uint8_t* row(int64_t p) const { return data + size_t(p) * row_bytes; }
  const uint8_t* data;
  size_t row_bytes;
};

// scores_i[p] = scale * q_i . k_p for NQ (1, 2 or 4) queries of one key head:
// 8 / NQ positions per pass, each key chunk converted once for all queries.
template <int NQ>
void scores_f16(const float* const q[NQ], int64_t d, const F16Head& k, int64_t n_pos, float scale,
                float* const scores[NQ]) {
  constexpr int kPos = 8 / NQ;
  int64_t p = 0;
  for (; p + kPos <= n_pos; p += kPos) {
    __m512 acc[8];  // acc[i * kPos + r]: query i, position p + r
    for (auto& a : acc) a = _mm512_setzero_ps();
    const uint8_t* rows[kPos];
    for (int r = 0; r < kPos; r++) rows[r] = k.row(p + r);
    for (int64_t j = 0; j < d; j += 16) {
      __m512 qv[NQ];
      for (int i = 0; i < NQ; i++) qv[i] = _mm512_loadu_ps(q[i] + j);
      for (int r = 0; r < kPos; r++) {
        const __m512 key = load_f16x16(rows[r], j);
        for (int i = 0; i < NQ; i++) acc[i * kPos + r] = _mm512_fmadd_ps(qv[i], key, acc[i * kPos + r]);
      }
    }
    alignas(32) float sums[8];  // lane i * kPos + r
    _mm256_store_ps(sums, _mm256_mul_ps(transpose_sums8(acc), _mm256_set1_ps(scale)));
    for (int i = 0; i < NQ; i++) std::memcpy(scores[i] + p, sums + i * kPos, sizeof(float) * kPos);
  }
  for (; p < n_pos; p++)
    for (int i = 0; i < NQ; i++) {
      __m512 acc = _mm512_setzero_ps();
      for (int64_t j = 0; j < d; j += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(q[i] + j), load_f16x16(k.row(p), j), acc);
      scores[i][p] = _mm512_reduce_add_ps(acc) * scale;
    }
}

// out_i[c0, c0 + 16 * NC) = sum_p w_i[p] v_p[...] / total_i: the NQ * NC
// accumulators (at most 16) stay in registers over all positions.
template <int NQ, int NC>
void weighted_values_f16(const float* const w[NQ], const float total[NQ], const F16Head& v, int64_t n_pos, int64_t c0,
                         float* const out[NQ]) {
  __m512 acc[NQ][NC];
  for (auto& per_query : acc)
    for (auto& a : per_query) a = _mm512_setzero_ps();
  for (int64_t p = 0; p < n_pos; p++) {
    const uint8_t* row = v.row(p);
    __m512 vv[NC];
    for (int c = 0; c < NC; c++) vv[c] = load_f16x16(row, c0 + 16 * c);
    for (int i = 0; i < NQ; i++) {
      const __m512 wi = _mm512_set1_ps(w[i][p]);
      for (int c = 0; c < NC; c++) acc[i][c] = _mm512_fmadd_ps(wi, vv[c], acc[i][c]);
    }
  }
  for (int i = 0; i < NQ; i++) {
    const __m512 inv = _mm512_set1_ps(1.0f / total[i]);
    for (int c = 0; c < NC; c++) _mm512_storeu_ps(out[i] + c0 + 16 * c, _mm512_mul_ps(acc[i][c], inv));
  }
}

// All dv columns for NQ queries: 16 / NQ chunks of 16 per pass over the values.
template <int NQ>
void values_f16(const float* const w[NQ], const float total[NQ], const F16Head& v, int64_t dv, int64_t n_pos,
                float* const out[NQ]) {
  constexpr int kWide = 16 / NQ;
  int64_t c0 = 0;
  for (; c0 + 16 * kWide <= dv; c0 += 16 * kWide) weighted_values_f16<NQ, kWide>(w, total, v, n_pos, c0, out);
  for (; c0 < dv; c0 += 16) weighted_values_f16<NQ, 1>(w, total, v, n_pos, c0, out);
}

void attend_f16(const float* q, int n_q, int64_t d, const F16Head& k, const F16Head& v, int64_t dv, int64_t n_pos,
                float scale, float* out) {
  thread_local std::vector<float> weights, totals;
  weights.resize(size_t(n_q) * size_t(n_pos));
  totals.resize(size_t(n_q));
  auto w_of = [&](int i) { return weights.data() + size_t(i) * size_t(n_pos); };
  for_query_groups(n_q, [&](auto nq_tag, int i) {
    constexpr int NQ = decltype(nq_tag)::value;
    const float* qs[NQ];
    float* ws[NQ];
    for (int j = 0; j < NQ; j++) qs[j] = q + (i + j) * d, ws[j] = w_of(i + j);
    scores_f16<NQ>(qs, d, k, n_pos, scale, ws);
  });
  for (int i = 0; i < n_q; i++) totals[size_t(i)] = softmax_weights_avx2(w_of(i), n_pos);
  for_query_groups(n_q, [&](auto nq_tag, int i) {
    constexpr int NQ = decltype(nq_tag)::value;
    const float* ws[NQ];
    float* os[NQ];
    for (int j = 0; j < NQ; j++) ws[j] = w_of(i + j), os[j] = out + (i + j) * dv;
    values_f16<NQ>(ws, totals.data() + i, v, dv, n_pos, os);
  });
}

void attend(const float* q, int n_q, int64_t d, const CacheRows& k, const CacheRows& v, int64_t dv, int64_t n_pos,
            float scale, float* out) {
  const bool f16 = k.type == gguf::TensorType::F16 && v.type == gguf::TensorType::F16;
  if (!f16 || d % 16 != 0 || dv % 16 != 0) {
    avx2_kernels().attend(q, n_q, d, k, v, dv, n_pos, scale, out);
    return;
  }
  attend_f16(q, n_q, d, {k.data, k.row_bytes}, {v.data, v.row_bytes}, dv, n_pos, scale, out);
}

}  // namespace

void add_avx512_attention_kernels(KernelTable& table) { table.attend = attend; }

}  // namespace warden::tensor

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC diagnostic pop
#pragma GCC pop_options
#endif
