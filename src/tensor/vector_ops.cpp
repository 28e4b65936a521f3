// The scalar reference of vector_ops.h and its dispatch.
#include "tensor/vector_ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "tensor/blocks.h"
#include "tensor/fp16.h"
#include "tensor/kernels.h"
#include "tensor/quant.h"

namespace warden::tensor {
namespace {

// The reference attention for any key/value layout: key(p)[j], value(p, j).
template <typename Key, typename Value>
void reference_attention(const float* q, int n_q, int64_t d, Key key, Value value, int64_t dv, int64_t n_pos,
                         float scale, float* out) {
  std::vector<float> weights(static_cast<size_t>(n_pos));
  for (int i = 0; i < n_q; i++) {
    const float* qi = q + i * d;
    float max_score = -INFINITY;
    for (int64_t p = 0; p < n_pos; p++) {
      float s = 0.0f;
      for (int64_t j = 0; j < d; j++) s += qi[j] * key(p, j);
      weights[size_t(p)] = s * scale;
      max_score = std::max(max_score, weights[size_t(p)]);
    }
    double total = 0.0;
    for (auto& w : weights) total += w = std::exp(w - max_score);
    float* oi = out + i * dv;
    std::fill(oi, oi + dv, 0.0f);
    for (int64_t p = 0; p < n_pos; p++)
      for (int64_t j = 0; j < dv; j++) oi[j] += weights[size_t(p)] * value(p, j);
    for (int64_t j = 0; j < dv; j++) oi[j] = float(oi[j] / total);
  }
}

// Element j of row p as the float it stands for.
float cache_element(const CacheRows& rows, int64_t p, int64_t j) {
  const uint8_t* row = rows.data + size_t(p) * rows.row_bytes;
  if (rows.type == gguf::TensorType::Q8_0) {
    const auto* block = reinterpret_cast<const block_q8_0*>(row) + j / kQK;
    return fp16_to_fp32(block->d) * float(block->qs[j % kQK]);
  }
  uint16_t half;
  std::memcpy(&half, row + 2 * j, sizeof half);
  return fp16_to_fp32(half);
}

void check_cache_type(const CacheRows& rows) {
  if (rows.type != gguf::TensorType::F16 && rows.type != gguf::TensorType::Q8_0)
    throw std::invalid_argument("attention: cache rows of type " + std::string(gguf::type_name(rows.type)) +
                                " (F16 or Q8_0 expected)");
}

void scalar_attend(const float* q, int n_q, int64_t d, const CacheRows& k, const CacheRows& v, int64_t dv,
                   int64_t n_pos, float scale, float* out) {
  std::vector<float> rounded(q, q + n_q * d);
  round_queries_for_keys(k.type, rounded.data(), n_q, d);
  reference_attention(
      rounded.data(), n_q, d, [&](int64_t p, int64_t j) { return cache_element(k, p, j); },
      [&](int64_t p, int64_t j) { return cache_element(v, p, j); }, dv, n_pos, scale, out);
}

void scalar_attend_causal(const float* q, int64_t n_rows, const int64_t* n_pos, int64_t d, const CacheRows& k,
                          const CacheRows& v, int64_t dv, float scale, float* out) {
  for (int64_t i = 0; i < n_rows; i++) scalar_attend(q + i * d, 1, d, k, v, dv, n_pos[i], scale, out + i * dv);
}

void scalar_key_panels(const CacheRows& k, int64_t n_pos, int64_t d, float* panels) {
  const int64_t padded = (n_pos + kKeyPanel - 1) / kKeyPanel * kKeyPanel;
  for (int64_t p = 0; p < padded; p++)
    for (int64_t j = 0; j < d; j++)
      panels[p / kKeyPanel * kKeyPanel * d + j * kKeyPanel + p % kKeyPanel] = p < n_pos ? cache_element(k, p, j) : 0.0f;
}

void scalar_f32_to_f16_row(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = fp32_to_fp16(x[i]);
}

void scalar_swiglu(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; i++) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void scalar_rms_norm(const float* x, const float* weight, float* out, int64_t n, float eps) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; i++) sum += double(x[i] * x[i]);
  const float scale = 1.0f / std::sqrt(float(sum / double(n)) + eps);
  for (int64_t i = 0; i < n; i++) out[i] = x[i] * scale * weight[i];
}

}  // namespace

void add_vector_kernels(KernelTable& table) {
  table.attend = scalar_attend;
  table.attend_causal = scalar_attend_causal;
  table.key_panels = scalar_key_panels;
  table.f32_to_f16_row = scalar_f32_to_f16_row;
  table.swiglu = scalar_swiglu;
  table.rms_norm = scalar_rms_norm;
}

void attend(const float* q, int n_q, int64_t d, CacheRows k, CacheRows v, int64_t dv, int64_t n_pos, float scale,
            float* out) {
  check_cache_type(k);
  check_cache_type(v);
  if (n_q > 0 && n_pos > 0) active_kernels().attend(q, n_q, d, k, v, dv, n_pos, scale, out);
}

void round_queries_for_keys(gguf::TensorType key_type, float* q, int64_t rows, int64_t d) {
  if (key_type != gguf::TensorType::Q8_0 || rows <= 0) return;
  thread_local std::vector<block_q8_0> blocks;  // called per prefill tile: no allocation each time
  blocks.resize(size_t(rows * d / kQK));
  quantize_row(gguf::TensorType::Q8_0, q, blocks.data(), rows * d);  // d is a multiple of 32 for a Q8_0 cache
  dequantize_row(gguf::TensorType::Q8_0, blocks.data(), q, rows * d);
}

void attend_causal(const float* q, int64_t n_rows, const int64_t* n_pos, int64_t d, CacheRows k, CacheRows v,
                   int64_t dv, float scale, float* out) {
  check_cache_type(k);
  check_cache_type(v);
  if (n_rows > 0) active_kernels().attend_causal(q, n_rows, n_pos, d, k, v, dv, scale, out);
}

void f32_to_f16_row(const float* x, uint16_t* y, int64_t n) { active_kernels().f32_to_f16_row(x, y, n); }

void swiglu(const float* gate, const float* up, float* out, int64_t n) { active_kernels().swiglu(gate, up, out, n); }

void rms_norm(const float* x, const float* weight, float* out, int64_t n, float eps) {
  active_kernels().rms_norm(x, weight, out, n, eps);
}

}  // namespace warden::tensor
