#pragma once
// Small vector loops of the attention over the KV cache, dispatched like the
// dot products (kernels.h), so they run as SIMD where the CPU allows without
// the caller being compiled for it.
#include <cstddef>
#include <cstdint>

#include "gguf/types.h"

namespace warden::tensor {

// One key or value head of the KV cache: position p's row at
// data + p * row_bytes, its elements in `type`: F16, or Q8_0 (blocks of 32
// int8 codes with an f16 scale each, so rows of a multiple of 32 elements).
// attend and attend_causal throw std::invalid_argument for any other type.
struct CacheRows {
  const uint8_t* data = nullptr;
  gguf::TensorType type = gguf::TensorType::F16;
  size_t row_bytes = 0;
};

// Attention of n_q query heads that share one key/value head (grouped-query
// attention) over positions [0, n_pos). Query i is q + i * d (d floats); key
// p is row p of k (d elements), value p row p of v (dv elements); out + i * dv
// receives sum_p softmax_p(scale * q_i . k_p) * v_p, each key and value
// element taken as the float it stands for, and each query as
// round_queries_for_keys(k.type) leaves it. Scores are computed for all
// positions first (two-pass softmax), which vectorizes better than an online
// softmax and is exact for any length the cache can hold.
void attend(const float* q, int n_q, int64_t d, CacheRows k, CacheRows v, int64_t dv, int64_t n_pos, float scale,
            float* out);

// Rounds `rows` query rows of d floats the way attention over keys of
// key_type takes them: to Q8_0 and back for Q8_0 keys, whose scores are then
// integer dots of the codes (as vec_dot(Q8_0) and llama.cpp compute them);
// unchanged for F16 keys. attend and attend_causal do this themselves.
void round_queries_for_keys(gguf::TensorType key_type, float* q, int64_t rows, int64_t d);

// Causal attention of a run of one sequence's tokens (a prefill) for the
// query heads that share one key/value head: row i (q + i * d) attends
// positions [0, n_pos[i]) and gets out + i * dv, what attend(q + i * d, 1,
// ..., n_pos[i], ...) gives it up to float rounding (the softmax runs online
// over blocks of positions). The keys and values are converted to f32 a
// block at a time, once for all rows, so a run of any length reads its
// cache once; rows are independent of each other (a row gets the same bits
// alone or among others).
void attend_causal(const float* q, int64_t n_rows, const int64_t* n_pos, int64_t d, CacheRows k, CacheRows v,
                   int64_t dv, float scale, float* out);

// The layout attend_causal's SIMD kernels take keys in: panels of kKeyPanel
// positions, element j of position p at panels[(p / 8) * 8 * d + j * 8 +
// p % 8], so the scores of a few rows against a few panels read each panel
// front to back. key_panel_floats: the floats of n_pos positions' panels.
constexpr int64_t kKeyPanel = 8;
constexpr int64_t key_panel_floats(int64_t n_pos, int64_t d) {
  return (n_pos + kKeyPanel - 1) / kKeyPanel * kKeyPanel * d;
}

// y[i] = x[i] rounded to an IEEE half (to nearest even, as fp32_to_fp16).
void f32_to_f16_row(const float* x, uint16_t* y, int64_t n);

// out[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + e^-g): the gated linear
// unit of llama-style feed-forward blocks. out may alias gate.
void swiglu(const float* gate, const float* up, float* out, int64_t n);

// out[i] = x[i] / sqrt(mean(x^2) + eps) * weight[i], the sum of squares in
// double precision (as llama.cpp sums it). out may alias x.
void rms_norm(const float* x, const float* weight, float* out, int64_t n, float eps);

}  // namespace warden::tensor
