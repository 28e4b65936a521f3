// Decode attention over the KV cache in 512-bit registers, for the AVX-512
// kernel sets (kernels_avx2.cpp adds it to avx512vnni_kernels()).
//
// Why: decode at depth streams the whole cache per token, and the AVX2
// kernel's arithmetic (a conversion and two FMAs per 8 cached elements and
// query pair, plus the accumulators' loads and stores) ran about as long as
// the reads, so the two overlapped badly. Here a position's 128 values and
// both queries' sums of a qwen3 head stay in 16 registers for the whole pass
// (no accumulator traffic), each row is read front to back, and the scores
// take half the instructions.
//
// Values, and f16 keys, become 16 floats at a time for f32 FMA (a Q8_0
// block's scale goes into the weights); Q8_0 keys meet the queries rounded
// to Q8_0 in exact integer sums per block, as in kernels_avx2.cpp but with
// vpdpbusd (q8_0_scores); the softmax is softmax_weights_avx2. Results
// differ from the AVX2 kernel's by summation order only (16 lanes, not 8).
//
// Compiled with the AVX2 flags; the functions below the pragma may use
// AVX-512, everything included above it may not (template code from headers
// is shared with the rest of the program).
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "tensor/blocks.h"
#include "tensor/decode_attention.h"
#include "tensor/kernels.h"
#include "tensor/lane_sums_avx2.h"
#include "tensor/vector_ops.h"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512vl,avx512bw,avx512vnni"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx512bw,avx512vnni")
// GCC 12's own 512-bit conversion intrinsics trip this warning (a false
// positive of its headers, as in gemm_avx512vnni.cpp).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace warden::tensor {
namespace {

// Lane i = the sum of a[i]'s 16 lanes.
inline __m256 transpose_sums16(const __m512 a[8]) {
  __m256 halves[8];
  for (int i = 0; i < 8; i++)
    halves[i] = _mm256_add_ps(_mm512_castps512_ps256(a[i]),
                              _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a[i]), 1)));
  return transpose_sums8(halves);
}

// A head's cached rows. F16: chunk(row, j) = elements [j, j + 16) of a row
// as floats (j a multiple of 16). Q8_0: block(row, b) for the integer key
// scores; codes(row, j), the same elements' codes as floats, and scale(row,
// j), their block's scale, for the weighted sums.
struct F16Head {
  static __m512 chunk(const uint8_t* row, int64_t j) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * j)));
  }
  const uint8_t* row(int64_t p) const { return data + size_t(p) * row_bytes; }
  const uint8_t* data;
  size_t row_bytes;
};

struct Q8_0Head {
  static const block_q8_0& block(const uint8_t* row, int64_t b) { return reinterpret_cast<const block_q8_0*>(row)[b]; }
  static __m512 codes(const uint8_t* row, int64_t j) {
    const block_q8_0& b = block(row, j / kQK);
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs + j % kQK))));
  }
  static float scale(const uint8_t* row, int64_t j) { return _cvtsh_ss(block(row, j / kQK).d); }
  const uint8_t* row(int64_t p) const { return data + size_t(p) * row_bytes; }
  const uint8_t* data;
  size_t row_bytes;
};

// scores_i[p] = scale * q_i . k_p for NQ (1, 2 or 4) queries of one key head:
// 8 / NQ positions per pass, each key chunk converted once for all queries.
template <int NQ, typename Rows>
void scores(const float* const q[NQ], int64_t d, const Rows& k, int64_t n_pos, float scale, float* const out[NQ]) {
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
        const __m512 key = Rows::chunk(rows[r], j);
        for (int i = 0; i < NQ; i++) acc[i * kPos + r] = _mm512_fmadd_ps(qv[i], key, acc[i * kPos + r]);
      }
    }
    store_pass_scores<NQ>(transpose_sums16(acc), scale, out, p, n_pos);
  }
  for (; p < n_pos; p++)
    for (int i = 0; i < NQ; i++) {
      __m512 acc = _mm512_setzero_ps();
      for (int64_t j = 0; j < d; j += 16)
        acc = _mm512_fmadd_ps(_mm512_loadu_ps(q[i] + j), Rows::chunk(k.row(p), j), acc);
      out[i][p] = _mm512_reduce_add_ps(acc) * scale;
    }
}

// Scores against Q8_0 keys with the queries in Q8_0, as vec_dot(Q8_0) sums
// them: an exact integer dot per block times the two scales. vpdpbusd wants
// unsigned bytes on one side, so the queries' codes go in offset by 128 and
// each key block's code sum times 128 is taken off first (one vpdpbusd per
// position and block, shared by the queries), where the AVX2 kernel spends
// three instructions per query on signs. 8 / NQ positions per pass; the last
// pass repeats position n_pos - 1 in lanes past the end.
template <int NQ>
void q8_0_scores(const block_q8_0* const q[NQ], int64_t nb, const Q8_0Head& k, int64_t n_pos, float scale,
                 float* const out[NQ]) {
  constexpr int kPos = 8 / NQ;
  const __m256i u8_128 = _mm256_set1_epi8(char(0x80));
  thread_local std::vector<uint8_t> offset_codes;  // block b, query i: 32 bytes at (b * NQ + i) * 32
  thread_local std::vector<float> query_scales;   // block b: lane i * kPos + r holds query i's scale
  offset_codes.resize(size_t(nb * NQ * kQK));
  query_scales.resize(size_t(nb * 8));
  for (int64_t b = 0; b < nb; b++)
    for (int i = 0; i < NQ; i++) {
      const __m256i codes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q[i][b].qs));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(offset_codes.data() + (b * NQ + i) * kQK),
                          _mm256_xor_si256(codes, u8_128));
      for (int r = 0; r < kPos; r++) query_scales[size_t(b * 8 + i * kPos + r)] = _cvtsh_ss(q[i][b].d);
    }
  for (int64_t p = 0; p < n_pos; p += kPos) {
    const uint8_t* rows[kPos];
    for (int r = 0; r < kPos; r++) rows[r] = k.row(std::min(p + r, n_pos - 1));
    __m256 acc = _mm256_setzero_ps();  // lane i * kPos + r: query i, position p + r
    for (int64_t b = 0; b < nb; b++) {
      __m256i dots[8];
      alignas(16) uint16_t key_scales[8];
      for (int r = 0; r < kPos; r++) {
        const block_q8_0& key = Q8_0Head::block(rows[r], b);
        const __m256i codes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(key.qs));
        const __m256i start = _mm256_sub_epi32(_mm256_setzero_si256(),
                                               _mm256_dpbusd_epi32(_mm256_setzero_si256(), u8_128, codes));
        for (int i = 0; i < NQ; i++) {
          const uint8_t* query_codes = offset_codes.data() + (b * NQ + i) * kQK;
          const __m256i qc = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(query_codes));
          dots[i * kPos + r] = _mm256_dpbusd_epi32(start, qc, codes);
          key_scales[i * kPos + r] = key.d;
        }
      }
      acc = add_block_sums(acc, dots, key_scales, query_scales.data() + b * 8);
    }
    store_pass_scores<NQ>(acc, scale, out, p, n_pos);
  }
}

// out_i[c0, c0 + 16 * NC) = sum_p w_i[p] v_p[...] / total_i: the NQ * NC
// accumulators (at most 16) stay in registers over all positions.
template <int NQ, int NC, typename Rows>
void weighted_values(const float* const w[NQ], const float total[NQ], const Rows& v, int64_t n_pos, int64_t c0,
                     float* const out[NQ]) {
  __m512 acc[NQ][NC];
  for (auto& per_query : acc)
    for (auto& a : per_query) a = _mm512_setzero_ps();
  for (int64_t p = 0; p < n_pos; p++) {
    const uint8_t* row = v.row(p);
    __m512 vv[NC];
    if constexpr (std::is_same_v<Rows, Q8_0Head>) {
      // Each block's scale goes into the weights (one product per query and
      // block, not one per chunk). A pass of NC > 1 chunks starts on a block
      // (c0 a multiple of 16 * NC, NC even), so chunks go in block pairs.
      constexpr int kPerBlock = NC > 1 ? int(kQK / 16) : 1;
      static_assert(NC % kPerBlock == 0);
      for (int c = 0; c < NC; c++) vv[c] = Rows::codes(row, c0 + 16 * c);
      for (int c = 0; c < NC; c += kPerBlock) {
        const float s = Rows::scale(row, c0 + 16 * c);
        for (int i = 0; i < NQ; i++) {
          const __m512 wi = _mm512_set1_ps(w[i][p] * s);
          for (int u = 0; u < kPerBlock; u++) acc[i][c + u] = _mm512_fmadd_ps(wi, vv[c + u], acc[i][c + u]);
        }
      }
    } else {
      for (int c = 0; c < NC; c++) vv[c] = Rows::chunk(row, c0 + 16 * c);
      for (int i = 0; i < NQ; i++) {
        const __m512 wi = _mm512_set1_ps(w[i][p]);
        for (int c = 0; c < NC; c++) acc[i][c] = _mm512_fmadd_ps(wi, vv[c], acc[i][c]);
      }
    }
  }
  for (int i = 0; i < NQ; i++) {
    const __m512 inv = _mm512_set1_ps(1.0f / total[i]);
    for (int c = 0; c < NC; c++) _mm512_storeu_ps(out[i] + c0 + 16 * c, _mm512_mul_ps(acc[i][c], inv));
  }
}

// Columns [c0, dv) for NQ queries, in passes of NC chunks of 16 while they
// fit, then of NC / 2, ...: as few passes over the values as the registers
// allow (a head of 128 values takes one pass for one or two queries, where
// passes of single chunks would read every row eight times). c0 stays a
// multiple of 16 * NC, which the Q8_0 block pairs rely on.
template <int NQ, int NC, typename Rows>
void values_from(const float* const w[NQ], const float total[NQ], const Rows& v, int64_t dv, int64_t n_pos,
                 int64_t c0, float* const out[NQ]) {
  for (; c0 + 16 * NC <= dv; c0 += 16 * NC) weighted_values<NQ, NC>(w, total, v, n_pos, c0, out);
  if constexpr (NC > 1) values_from<NQ, NC / 2>(w, total, v, dv, n_pos, c0, out);
}

template <int NQ, typename Rows>
void values(const float* const w[NQ], const float total[NQ], const Rows& v, int64_t dv, int64_t n_pos,
            float* const out[NQ]) {
  values_from<NQ, 16 / NQ>(w, total, v, dv, n_pos, 0, out);  // 16 / NQ chunks: NQ * NC accumulators <= 16
}

// attend_head's kernels (decode_attention.h).
struct Avx512Attention {
  template <typename KeyRows>
  static constexpr bool kQ8_0Keys = std::is_same_v<KeyRows, Q8_0Head>;
  template <int NQ, typename KeyRows>
  static void scores(const float* const q[NQ], int64_t d, const KeyRows& k, int64_t n_pos, float scale,
                     float* const w[NQ]) {
    tensor::scores<NQ>(q, d, k, n_pos, scale, w);
  }
  template <int NQ, typename KeyRows>
  static void q8_0_scores(const block_q8_0* const q[NQ], int64_t nb, const KeyRows& k, int64_t n_pos, float scale,
                          float* const w[NQ]) {
    tensor::q8_0_scores<NQ>(q, nb, k, n_pos, scale, w);
  }
  static float softmax(float* w, int64_t n) { return softmax_weights_avx2(w, n); }
  template <int NQ, typename ValueRows>
  static void values(const float* const w[NQ], const float total[NQ], const ValueRows& v, int64_t dv, int64_t n_pos,
                     float* const out[NQ]) {
    tensor::values<NQ>(w, total, v, dv, n_pos, out);
  }
};

// Calls fn with `rows`' reader.
template <typename Fn>
void with_head(const CacheRows& rows, Fn fn) {
  if (rows.type == gguf::TensorType::Q8_0)
    fn(Q8_0Head{rows.data, rows.row_bytes});
  else
    fn(F16Head{rows.data, rows.row_bytes});
}

void attend(const float* q, int n_q, int64_t d, const CacheRows& k, const CacheRows& v, int64_t dv, int64_t n_pos,
            float scale, float* out) {
  // Row lengths in whole chunks (Q8_0 rows are whole blocks already).
  if (d % 16 != 0 || dv % 16 != 0) {
    avx2_kernels().attend(q, n_q, d, k, v, dv, n_pos, scale, out);
    return;
  }
  with_head(k, [&](const auto& keys) {
    with_head(v, [&](const auto& vals) { attend_head<Avx512Attention>(q, n_q, d, keys, vals, dv, n_pos, scale, out); });
  });
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
