#include "model/forward.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "model/ops.h"
#include "tensor/quant.h"
#include "tensor/vector_ops.h"
#include "util/error.h"

namespace warden::model {
namespace {

void add_bias(float* rows, const std::vector<float>& bias, int64_t T) {
  const int64_t n = int64_t(bias.size());
  for (int64_t t = 0; t < T; t++)
    for (int64_t i = 0; i < n; i++) rows[t * n + i] += bias[size_t(i)];
}

void softmax(float* x, int64_t n) {
  float max = *std::max_element(x, x + n);
  double sum = 0;
  for (int64_t i = 0; i < n; i++) sum += x[i] = std::exp(x[i] - max);
  for (int64_t i = 0; i < n; i++) x[i] = float(x[i] / sum);
}

}  // namespace

std::vector<float> Forward::run(const std::vector<BatchToken>& batch, KvCache& cache) {
  const Config& c = model_.config();
  const int64_t T = int64_t(batch.size());
  if (T == 0) return {};
  for (const auto& bt : batch) {
    if (bt.token < 0 || bt.token >= c.n_vocab)
      throw Error("token id " + std::to_string(bt.token) + " is outside the vocabulary");
    if (bt.seq < 0 || bt.seq >= cache.n_seq()) throw Error("sequence id out of range");
    cache.reserve(bt.seq, bt.pos);
  }

  x_.resize(size_t(T * c.n_embd));
  for (int64_t t = 0; t < T; t++)
    tensor::dequantize_row(model_.token_embd.type, model_.token_embd.row(batch[size_t(t)].token),
                           x_.data() + t * c.n_embd, c.n_embd);

  for (int64_t il = 0; il < c.n_layer; il++) {
    const Layer& layer = model_.layers[size_t(il)];
    attention_layer(layer, il, batch, cache);
    ffn_layer(layer, T);
  }
  for (const auto& bt : batch) cache.set_length(bt.seq, std::max(cache.length(bt.seq), bt.pos + 1));

  // Final norm and output projection only for the rows that want logits.
  std::vector<int64_t> rows;
  for (int64_t t = 0; t < T; t++)
    if (batch[size_t(t)].want_logits) rows.push_back(t);
  std::vector<float> normed(rows.size() * size_t(c.n_embd));
  for (size_t i = 0; i < rows.size(); i++)
    rms_norm(x_.data() + rows[i] * c.n_embd, model_.output_norm.data(), normed.data() + i * size_t(c.n_embd), c.n_embd,
             c.rms_eps);
  std::vector<float> logits(rows.size() * size_t(c.n_vocab));
  matmul(model_.output, 0, normed.data(), int64_t(rows.size()), logits.data(), pool_);
  return logits;
}

void Forward::attention_layer(const Layer& layer, int64_t il, const std::vector<BatchToken>& batch, KvCache& cache) {
  const Config& c = model_.config();
  const int64_t T = int64_t(batch.size());
  xn_.resize(size_t(T * c.n_embd));
  for (int64_t t = 0; t < T; t++)
    rms_norm(x_.data() + t * c.n_embd, layer.attn_norm.data(), xn_.data() + t * c.n_embd, c.n_embd, c.rms_eps);

  q_.resize(size_t(T * c.q_dim()));
  k_.resize(size_t(T * c.kv_dim()));
  v_.resize(size_t(T * c.v_dim()));
  matmul(layer.wq, 0, xn_.data(), T, q_.data(), pool_);
  matmul(layer.wk, 0, xn_.data(), T, k_.data(), pool_);
  matmul(layer.wv, 0, xn_.data(), T, v_.data(), pool_);
  if (c.qkv_bias) {
    add_bias(q_.data(), layer.bq, T);
    add_bias(k_.data(), layer.bk, T);
    add_bias(v_.data(), layer.bv, T);
  }

  // Per token: norm and rotate its heads (the angles computed once for all
  // heads), then store its key and value in the cache. Tokens are independent.
  pool_.parallel_for(T, [&](int64_t begin, int64_t end, int) {
    std::vector<float> cos_a(size_t(c.rope_dim / 2)), sin_a(size_t(c.rope_dim / 2));
    for (int64_t t = begin; t < end; t++) {
      const BatchToken& bt = batch[size_t(t)];
      rope_angles(bt.pos, c, model_.rope_freqs, cos_a.data(), sin_a.data());
      float* q = q_.data() + t * c.q_dim();
      float* k = k_.data() + t * c.kv_dim();
      for (int64_t h = 0; h < c.n_head; h++) {
        float* head = q + h * c.head_dim;
        if (c.qk_norm) rms_norm(head, layer.q_norm.data(), head, c.head_dim, c.rms_eps);
        rope_apply(head, c, cos_a.data(), sin_a.data());
      }
      for (int64_t h = 0; h < c.n_head_kv; h++) {
        float* head = k + h * c.head_dim;
        if (c.qk_norm) rms_norm(head, layer.k_norm.data(), head, c.head_dim, c.rms_eps);
        rope_apply(head, c, cos_a.data(), sin_a.data());
      }
      uint16_t* kc = cache.key(bt.seq, il, bt.pos);
      uint16_t* vc = cache.value(bt.seq, il, bt.pos);
      for (int64_t i = 0; i < c.kv_dim(); i++) kc[i] = tensor::fp32_to_fp16(k[i]);
      for (int64_t i = 0; i < c.v_dim(); i++) vc[i] = tensor::fp32_to_fp16(v_[size_t(t * c.v_dim() + i)]);
    }
  });

  const int64_t attn_width = c.n_head * c.head_dim_v;
  attn_.resize(size_t(T * attn_width));
  // Every (token, head) pair is independent once the cache holds this batch;
  // splitting over pairs keeps all threads busy in decode (T = 1) too.
  pool_.parallel_for(T * c.n_head, [&](int64_t begin, int64_t end, int) {
    for (int64_t i = begin; i < end;) {
      const int64_t t = i / c.n_head, h0 = i % c.n_head, h1 = std::min(c.n_head, h0 + (end - i));
      attend(il, batch[size_t(t)], q_.data() + t * c.q_dim(), attn_.data() + t * attn_width, cache, h0, h1);
      i += h1 - h0;
    }
  });

  ffn_out_.resize(size_t(T * c.n_embd));
  matmul(layer.wo, 0, attn_.data(), T, ffn_out_.data(), pool_);
  for (size_t i = 0; i < size_t(T * c.n_embd); i++) x_[i] += ffn_out_[i];
}

// Scaled dot-product attention of one token over its sequence's positions
// 0..pos, for heads [head_begin, head_end), one head at a time, with an
// online (streaming) softmax.
void Forward::attend(int64_t il, const BatchToken& bt, const float* q, float* out, const KvCache& cache,
                     int64_t head_begin, int64_t head_end) const {
  const Config& c = model_.config();
  const int64_t group = c.n_head / c.n_head_kv;
  const float scale = 1.0f / std::sqrt(float(c.head_dim));
  std::vector<float> acc(size_t(c.head_dim_v));
  for (int64_t h = head_begin; h < head_end; h++) {
    const float* qh = q + h * c.head_dim;
    const int64_t kvh = h / group;
    float max_score = -INFINITY;
    double denom = 0.0;
    std::fill(acc.begin(), acc.end(), 0.0f);
    for (int64_t p = 0; p <= bt.pos; p++) {
      const uint16_t* kp = cache.key(bt.seq, il, p) + kvh * c.head_dim;
      const float s = tensor::dot_f32_f16(qh, kp, c.head_dim) * scale;
      // Rescale what was accumulated so far when a new maximum appears.
      if (s > max_score) {
        const float r = std::exp(max_score - s);
        denom *= r;
        for (auto& a : acc) a *= r;
        max_score = s;
      }
      const float w = std::exp(s - max_score);
      denom += w;
      const uint16_t* vp = cache.value(bt.seq, il, p) + kvh * c.head_dim_v;
      tensor::add_scaled_f16(acc.data(), w, vp, c.head_dim_v);
    }
    float* oh = out + h * c.head_dim_v;
    for (int64_t i = 0; i < c.head_dim_v; i++) oh[i] = float(acc[size_t(i)] / denom);
  }
}

void Forward::ffn_layer(const Layer& layer, int64_t T) {
  const Config& c = model_.config();
  for (int64_t t = 0; t < T; t++)
    rms_norm(x_.data() + t * c.n_embd, layer.ffn_norm.data(), xn_.data() + t * c.n_embd, c.n_embd, c.rms_eps);
  if (c.n_expert > 0)
    moe_ffn(layer, T);
  else
    dense_ffn(layer, T);
}

void Forward::dense_ffn(const Layer& layer, int64_t T) {
  const Config& c = model_.config();
  gate_.resize(size_t(T * c.n_ff));
  up_.resize(size_t(T * c.n_ff));
  matmul(layer.ffn_gate, 0, xn_.data(), T, gate_.data(), pool_);
  matmul(layer.ffn_up, 0, xn_.data(), T, up_.data(), pool_);
  for (size_t i = 0; i < gate_.size(); i++) gate_[i] = silu(gate_[i]) * up_[i];
  ffn_out_.resize(size_t(T * c.n_embd));
  matmul(layer.ffn_down, 0, gate_.data(), T, ffn_out_.data(), pool_);
  for (size_t i = 0; i < size_t(T * c.n_embd); i++) x_[i] += ffn_out_[i];
}

// Mixture of experts: each token's router picks its top-k experts; tokens are
// grouped per expert so only the selected experts' weights are read.
void Forward::moe_ffn(const Layer& layer, int64_t T) {
  const Config& c = model_.config();
  std::vector<float> router(size_t(T * c.n_expert));
  matmul(layer.router, 0, xn_.data(), T, router.data(), pool_);

  std::vector<std::vector<std::pair<int64_t, float>>> tokens_of_expert(size_t(c.n_expert));
  std::vector<int64_t> order(size_t(c.n_expert));
  for (int64_t t = 0; t < T; t++) {
    float* probs = router.data() + t * c.n_expert;
    softmax(probs, c.n_expert);
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + c.n_expert_used, order.end(),
                      [&](int64_t a, int64_t b) { return probs[a] > probs[b] || (probs[a] == probs[b] && a < b); });
    float total = 0;
    for (int64_t k = 0; k < c.n_expert_used; k++) total += probs[order[size_t(k)]];
    for (int64_t k = 0; k < c.n_expert_used; k++) {
      int64_t e = order[size_t(k)];
      float w = c.expert_weights_norm ? probs[e] / total : probs[e];
      tokens_of_expert[size_t(e)].push_back({t, w});
    }
  }

  std::vector<float> moe_out(size_t(T * c.n_embd), 0.0f), xin, g, u, down;
  for (int64_t e = 0; e < c.n_expert; e++) {
    const auto& routed = tokens_of_expert[size_t(e)];
    if (routed.empty()) continue;
    const int64_t n = int64_t(routed.size());
    xin.resize(size_t(n * c.n_embd));
    for (int64_t i = 0; i < n; i++)
      std::copy_n(xn_.data() + routed[size_t(i)].first * c.n_embd, c.n_embd, xin.data() + i * c.n_embd);
    g.resize(size_t(n * c.n_ff_expert));
    u.resize(size_t(n * c.n_ff_expert));
    matmul(layer.gate_exps, e, xin.data(), n, g.data(), pool_);
    matmul(layer.up_exps, e, xin.data(), n, u.data(), pool_);
    for (size_t i = 0; i < g.size(); i++) g[i] = silu(g[i]) * u[i];
    down.resize(size_t(n * c.n_embd));
    matmul(layer.down_exps, e, g.data(), n, down.data(), pool_);
    for (int64_t i = 0; i < n; i++) {
      const auto [t, w] = routed[size_t(i)];
      for (int64_t j = 0; j < c.n_embd; j++) moe_out[size_t(t * c.n_embd + j)] += w * down[size_t(i * c.n_embd + j)];
    }
  }
  for (size_t i = 0; i < moe_out.size(); i++) x_[i] += moe_out[i];
}

}  // namespace warden::model
