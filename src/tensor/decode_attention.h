// The outline of decode attention over one key/value head, shared by the
// AVX2 kernel (kernels_avx2.cpp) and the 512-bit one (attend_avx512.cpp):
// the query heads' scores in groups of 4, 2 and 1 (a group shares each
// converted key chunk), each head's softmax, then each group's weighted sum
// of the values. Against Q8_0 keys the queries go in as Q8_0 blocks, rounded
// as the scalar reference rounds them (round_queries_for_keys).
//
// Kernels supplies, for its own row readers:
//   template <typename KeyRows> static constexpr bool kQ8_0Keys;
//   template <int NQ, typename KeyRows> static void scores(const float* const q[NQ], int64_t d,
//       const KeyRows& k, int64_t n_pos, float scale, float* const w[NQ]);
//   template <int NQ, typename KeyRows> static void q8_0_scores(const block_q8_0* const q[NQ],
//       int64_t blocks, const KeyRows& k, int64_t n_pos, float scale, float* const w[NQ]);
//   static float softmax(float* w, int64_t n);  // w = exp(w - max w), returns the sum
//   template <int NQ, typename ValueRows> static void values(const float* const w[NQ],
//       const float total[NQ], const ValueRows& v, int64_t dv, int64_t n_pos, float* const out[NQ]);
#pragma once

#include <cstdint>
#include <type_traits>
#include <vector>

#include "tensor/blocks.h"
#include "tensor/quant.h"

namespace warden::tensor {

// Calls run(std::integral_constant<int, NQ>{}, first) over the query heads
// [0, n_q) in groups of NQ = 4, then 2, then 1.
template <typename Fn>
void for_query_groups(int n_q, Fn run) {
  int i = 0;
  for (; i + 4 <= n_q; i += 4) run(std::integral_constant<int, 4>{}, i);
  for (; i + 2 <= n_q; i += 2) run(std::integral_constant<int, 2>{}, i);
  for (; i < n_q; i++) run(std::integral_constant<int, 1>{}, i);
}

template <typename Kernels, typename KeyRows, typename ValueRows>
void attend_head(const float* q, int n_q, int64_t d, const KeyRows& k, const ValueRows& v, int64_t dv, int64_t n_pos,
                 float scale, float* out) {
  thread_local std::vector<float> weights, totals;
  thread_local std::vector<block_q8_0> q_blocks;  // the queries in Q8_0, for Q8_0 keys
  weights.resize(size_t(n_q) * size_t(n_pos));
  totals.resize(size_t(n_q));
  auto w_of = [&](int i) { return weights.data() + size_t(i) * size_t(n_pos); };
  constexpr bool kQ8_0Keys = Kernels::template kQ8_0Keys<KeyRows>;
  if constexpr (kQ8_0Keys) {
    q_blocks.resize(size_t(n_q * d / kQK));
    quantize_row(gguf::TensorType::Q8_0, q, q_blocks.data(), n_q * d);
  }
  for_query_groups(n_q, [&](auto nq_tag, int i) {
    constexpr int NQ = decltype(nq_tag)::value;
    float* ws[NQ];
    for (int j = 0; j < NQ; j++) ws[j] = w_of(i + j);
    if constexpr (kQ8_0Keys) {
      const block_q8_0* qs[NQ];
      for (int j = 0; j < NQ; j++) qs[j] = q_blocks.data() + (i + j) * d / kQK;
      Kernels::template q8_0_scores<NQ>(qs, d / kQK, k, n_pos, scale, ws);
    } else {
      const float* qs[NQ];
      for (int j = 0; j < NQ; j++) qs[j] = q + (i + j) * d;
      Kernels::template scores<NQ>(qs, d, k, n_pos, scale, ws);
    }
  });
  for (int i = 0; i < n_q; i++) totals[size_t(i)] = Kernels::softmax(w_of(i), n_pos);
  for_query_groups(n_q, [&](auto nq_tag, int i) {
    constexpr int NQ = decltype(nq_tag)::value;
    const float* ws[NQ];
    float* os[NQ];
    for (int j = 0; j < NQ; j++) ws[j] = w_of(i + j), os[j] = out + (i + j) * dv;
    Kernels::template values<NQ>(ws, totals.data() + i, v, dv, n_pos, os);
  });
}

}  // namespace warden::tensor
