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

// fn(t) for tokens 0..T-1: on the pool once a batch is large enough to pay
// for the hand-off (prompt slices), on this thread for decode steps.
template <typename Fn>
void for_each_token(ThreadPool& pool, int64_t T, Fn fn) {
  constexpr int64_t kMinParallelTokens = 8;
  if (T < kMinParallelTokens) {
    for (int64_t t = 0; t < T; t++) fn(t);
    return;
  }
  pool.parallel_for(T, [&](int64_t begin, int64_t end, int) {
    for (int64_t t = begin; t < end; t++) fn(t);
  });
}

}  // namespace

Forward::Forward(const Model& model, ThreadPool& pool, bool decode_as_team)
    : model_(model),
      pool_(pool),
      decode_as_team_(decode_as_team),
      qkv_units_(qkv_units(model.config())),
      unit_rows_written_(std::make_unique<UnitRows[]>(size_t(qkv_units_.count))) {}

std::vector<float> Forward::run(const std::vector<BatchToken>& batch, KvCache& cache) {
  std::vector<float> logits;
  run(batch, cache, logits);
  return logits;
}

void Forward::run(const std::vector<BatchToken>& batch, KvCache& cache, std::vector<float>& logits) {
  if (int64_t(batch.size()) <= kMaxStepTokens) return run_step(batch, cache, logits);
  // Consecutive slices, each continuing the cache the previous one filled:
  // the same results, with activation buffers sized for one slice.
  logits.clear();
  std::vector<float> part;
  for (size_t first = 0; first < batch.size(); first += size_t(kMaxStepTokens)) {
    const size_t last = std::min(batch.size(), first + size_t(kMaxStepTokens));
    run_step(std::vector<BatchToken>(batch.begin() + int64_t(first), batch.begin() + int64_t(last)), cache, part);
    logits.insert(logits.end(), part.begin(), part.end());
  }
}

void Forward::run_step(const std::vector<BatchToken>& batch, KvCache& cache, std::vector<float>& logits) {
  const Config& c = model_.config();
  const int64_t T = int64_t(batch.size());
  if (T == 0) return logits.clear();
  for (const auto& bt : batch) {
    if (bt.token < 0 || bt.token >= c.n_vocab)
      throw Error("token id " + std::to_string(bt.token) + " is outside the vocabulary");
    if (bt.seq < 0 || bt.seq >= cache.n_seq()) throw Error("sequence id out of range");
    cache.reserve(bt.seq, bt.pos);
  }

  x_.resize(size_t(T * c.n_embd));
  for (int64_t t = 0; t < T; t++) model_.embed(batch[size_t(t)].token, x_.data() + t * c.n_embd);

  // Rotary angles depend on the position only: once per token, not per layer.
  const int64_t half_rope = c.rope_dim / 2;
  rope_cos_.resize(size_t(T * half_rope));
  rope_sin_.resize(size_t(T * half_rope));
  for (int64_t t = 0; t < T; t++)
    rope_angles(batch[size_t(t)].pos, c, model_.rope_freqs, rope_cos_.data() + t * half_rope,
                rope_sin_.data() + t * half_rope);

  if (decode_as_team_ && T <= kMaxTeamTokens) {
    run_as_team(batch, cache, logits);
  } else {
    for (int64_t il = 0; il < c.n_layer; il++) {
      const Layer& layer = model_.layers[size_t(il)];
      attention_layer(layer, il, batch, cache);
      ffn_layer(layer, T);
    }
    // Final norm and output projection only for the rows that want logits.
    std::vector<int64_t> rows;
    for (int64_t t = 0; t < T; t++)
      if (batch[size_t(t)].want_logits) rows.push_back(t);
    std::vector<float> normed(rows.size() * size_t(c.n_embd));
    for (size_t i = 0; i < rows.size(); i++)
      tensor::rms_norm(x_.data() + rows[i] * c.n_embd, model_.output_norm.data(), normed.data() + i * size_t(c.n_embd),
                       c.n_embd, c.rms_eps);
    logits.resize(rows.size() * size_t(c.n_vocab));
    matmul(model_.output, 0, normed.data(), int64_t(rows.size()), logits.data(), pool_);
  }
  for (const auto& bt : batch) cache.set_length(bt.seq, std::max(cache.length(bt.seq), bt.pos + 1));
}

// xn_ = rms_norm(x_) with `weight`, per token.
void Forward::norm_tokens(const std::vector<float>& weight, int64_t T) {
  const Config& c = model_.config();
  xn_.resize(size_t(T * c.n_embd));
  for_each_token(pool_, T, [&](int64_t t) {
    tensor::rms_norm(x_.data() + t * c.n_embd, weight.data(), xn_.data() + t * c.n_embd, c.n_embd, c.rms_eps);
  });
}

// The residual connection: x_ += out, per token.
void Forward::add_to_residual(const std::vector<float>& out, int64_t T) {
  const int64_t n = model_.config().n_embd;
  for_each_token(pool_, T, [&](int64_t t) {
    for (int64_t i = t * n; i < (t + 1) * n; i++) x_[size_t(i)] += out[size_t(i)];
  });
}

void Forward::attention_layer(const Layer& layer, int64_t il, const std::vector<BatchToken>& batch, KvCache& cache) {
  const Config& c = model_.config();
  const int64_t T = int64_t(batch.size());
  norm_tokens(layer.attn_norm, T);

  q_.resize(size_t(T * c.q_dim()));
  k_.resize(size_t(T * c.kv_dim()));
  v_.resize(size_t(T * c.v_dim()));
  matmul_many({{&layer.wq, 0, xn_.data(), T, q_.data()},
               {&layer.wk, 0, xn_.data(), T, k_.data()},
               {&layer.wv, 0, xn_.data(), T, v_.data()}},
              pool_);
  if (c.qkv_bias) {
    add_bias(q_.data(), layer.bq, T);
    add_bias(k_.data(), layer.bk, T);
    add_bias(v_.data(), layer.bv, T);
  }

  // Tokens are independent.
  pool_.parallel_for(T, [&](int64_t begin, int64_t end, int) {
    for (int64_t t = begin; t < end; t++) rotate_and_cache(layer, il, batch, t, 0, c.n_head_kv, cache);
  });

  const int64_t attn_width = c.n_head * c.head_dim_v;
  attn_.resize(size_t(T * attn_width));
  // A long run of one sequence's tokens (a prefill) reads each key/value
  // head once for all its tokens; the other tokens attend one by one.
  std::vector<int64_t> single_tokens;
  for (const TokenRun& run : runs_of(batch)) {
    if (run.count >= kMinRunTokens)
      attend_run(il, batch, run, cache);
    else
      for (int64_t t = run.first; t < run.first + run.count; t++) single_tokens.push_back(t);
  }
  // Every (token, key/value head) pair is independent once the cache holds
  // this batch; splitting over pairs keeps all threads busy in decode (T = 1).
  const int64_t n_single = int64_t(single_tokens.size());
  pool_.parallel_for(n_single * c.n_head_kv, [&](int64_t begin, int64_t end, int) {
    for (int64_t i = begin; i < end; i++) {
      const int64_t t = single_tokens[size_t(i / c.n_head_kv)];
      attend(il, batch[size_t(t)], i % c.n_head_kv, q_.data() + t * c.q_dim(), attn_.data() + t * attn_width, cache);
    }
  });

  ffn_out_.resize(size_t(T * c.n_embd));
  matmul(layer.wo, 0, attn_.data(), T, ffn_out_.data(), pool_);
  add_to_residual(ffn_out_, T);
}

// Token t's query and key heads of key/value heads [kv_begin, kv_end): norm
// (qwen3) and rotate them with the angles run() computed for its position,
// then store its keys and values in the cache.
void Forward::rotate_and_cache(const Layer& layer, int64_t il, const std::vector<BatchToken>& batch, int64_t t,
                               int64_t kv_begin, int64_t kv_end, KvCache& cache) {
  const Config& c = model_.config();
  const BatchToken& bt = batch[size_t(t)];
  const int64_t half_rope = c.rope_dim / 2, group = c.n_head / c.n_head_kv;
  const float* cos_a = rope_cos_.data() + t * half_rope;
  const float* sin_a = rope_sin_.data() + t * half_rope;
  float* q = q_.data() + t * c.q_dim();
  float* k = k_.data() + t * c.kv_dim();
  for (int64_t h = kv_begin * group; h < kv_end * group; h++) {
    float* head = q + h * c.head_dim;
    if (c.qk_norm) tensor::rms_norm(head, layer.q_norm.data(), head, c.head_dim, c.rms_eps);
    rope_apply(head, c, cos_a, sin_a);
  }
  for (int64_t h = kv_begin; h < kv_end; h++) {
    float* head = k + h * c.head_dim;
    if (c.qk_norm) tensor::rms_norm(head, layer.k_norm.data(), head, c.head_dim, c.rms_eps);
    rope_apply(head, c, cos_a, sin_a);
  }
  const float* v = v_.data() + t * c.v_dim();
  for (int64_t h = kv_begin; h < kv_end; h++)
    cache.store(bt.seq, il, h, bt.pos, k + h * c.head_dim, v + h * c.head_dim_v);
}

// Scaled dot-product attention of one token over its sequence's positions
// 0..pos for the query heads that share key/value head kvh.
void Forward::attend(int64_t il, const BatchToken& bt, int64_t kvh, const float* q, float* out,
                     const KvCache& cache) const {
  const Config& c = model_.config();
  const int64_t group = c.n_head / c.n_head_kv;
  const float scale = 1.0f / std::sqrt(float(c.head_dim));
  tensor::attend(q + kvh * group * c.head_dim, int(group), c.head_dim, cache.keys(bt.seq, il, kvh),
                 cache.values(bt.seq, il, kvh), c.head_dim_v, bt.pos + 1, scale, out + kvh * group * c.head_dim_v);
}

// Consecutive batch tokens of one sequence at consecutive positions.
std::vector<Forward::TokenRun> Forward::runs_of(const std::vector<BatchToken>& batch) {
  std::vector<TokenRun> runs;
  for (int64_t t = 0; t < int64_t(batch.size()); t++) {
    const BatchToken& bt = batch[size_t(t)];
    if (!runs.empty()) {
      TokenRun& last = runs.back();
      const BatchToken& prev = batch[size_t(last.first + last.count - 1)];
      if (prev.seq == bt.seq && prev.pos + 1 == bt.pos) {
        last.count++;
        continue;
      }
    }
    runs.push_back({t, 1});
  }
  return runs;
}

void Forward::attend_run(int64_t il, const std::vector<BatchToken>& batch, const TokenRun& run, const KvCache& cache) {
  const Config& c = model_.config();
  const int seq = batch[size_t(run.first)].seq;
  const int64_t group = c.n_head / c.n_head_kv, d = c.head_dim, dv = c.head_dim_v;
  const int64_t attn_width = c.n_head * dv, n_rows = run.count * group;
  const float scale = 1.0f / std::sqrt(float(d));
  // Rows (token, query head of the group) in order.
  std::vector<int64_t> positions(static_cast<size_t>(n_rows));
  for (int64_t r = 0; r < n_rows; r++) positions[size_t(r)] = batch[size_t(run.first + r / group)].pos + 1;
  // Work items: a key/value head's rows, split into `parts` slices where the
  // heads alone would leave threads idle (two key/value heads, as
  // qwen2.5's, on sixteen threads): at least two items per thread, so the
  // pool can even out the causal rows' unequal costs. Each slice reads the
  // head's cache itself.
  const int64_t parts = std::max<int64_t>(1, (2 * pool_.size() + c.n_head_kv - 1) / c.n_head_kv);
  const int64_t slice = (n_rows + parts - 1) / parts;
  pool_.parallel_for(c.n_head_kv * parts, [&](int64_t begin, int64_t end, int) {
    thread_local std::vector<float> rows_q, rows_out;
    rows_q.resize(size_t(slice * d));
    rows_out.resize(size_t(slice * dv));
    for (int64_t item = begin; item < end; item++) {
      const int64_t kvh = item / parts, r0 = item % parts * slice, r1 = std::min(n_rows, r0 + slice);
      if (r0 >= r1) continue;
      for (int64_t r = r0; r < r1; r++) {
        const int64_t t = run.first + r / group, h = kvh * group + r % group;
        std::copy_n(q_.data() + t * c.q_dim() + h * d, d, rows_q.data() + (r - r0) * d);
      }
      tensor::attend_causal(rows_q.data(), r1 - r0, positions.data() + r0, d, cache.keys(seq, il, kvh),
                            cache.values(seq, il, kvh), dv, scale, rows_out.data());
      for (int64_t r = r0; r < r1; r++) {
        const int64_t t = run.first + r / group, h = kvh * group + r % group;
        std::copy_n(rows_out.data() + (r - r0) * dv, dv, attn_.data() + t * attn_width + h * dv);
      }
    }
  });
}

void Forward::ffn_layer(const Layer& layer, int64_t T) {
  norm_tokens(layer.ffn_norm, T);
  if (model_.config().n_expert > 0)
    moe_ffn(layer, T);
  else
    dense_ffn(layer, T);
}

void Forward::dense_ffn(const Layer& layer, int64_t T) {
  const Config& c = model_.config();
  gate_.resize(size_t(T * c.n_ff));
  up_.resize(size_t(T * c.n_ff));
  matmul_many({{&layer.ffn_gate, 0, xn_.data(), T, gate_.data()}, {&layer.ffn_up, 0, xn_.data(), T, up_.data()}}, pool_);
  for_each_token(pool_, T, [&](int64_t t) {
    float* g = gate_.data() + t * c.n_ff;
    tensor::swiglu(g, up_.data() + t * c.n_ff, g, c.n_ff);
  });
  ffn_out_.resize(size_t(T * c.n_embd));
  matmul(layer.ffn_down, 0, gate_.data(), T, ffn_out_.data(), pool_);
  add_to_residual(ffn_out_, T);
}

// Each token's top-k experts by the softmax of its router logits (which it
// overwrites), listed per expert in token order with the token's weight.
Forward::ExpertRoutes Forward::route(float* router_logits, int64_t T) const {
  const Config& c = model_.config();
  ExpertRoutes tokens_of_expert(size_t(c.n_expert));
  std::vector<int64_t> order(size_t(c.n_expert));
  for (int64_t t = 0; t < T; t++) {
    float* probs = router_logits + t * c.n_expert;
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
  return tokens_of_expert;
}

// Mixture of experts: each token's router picks its top-k experts; tokens are
// grouped per expert so only the selected experts' weights are read.
void Forward::moe_ffn(const Layer& layer, int64_t T) {
  const Config& c = model_.config();
  router_.resize(size_t(T * c.n_expert));
  matmul(layer.router, 0, xn_.data(), T, router_.data(), pool_);

  const ExpertRoutes tokens_of_expert = route(router_.data(), T);


  // Experts in groups of about kMaxExpertRows (token, expert) rows: per
  // group, the experts' inputs (their tokens' rows), all their gate and up
  // products in one loop, SwiGLU, all their down products in one loop. A
  // decode step is one group; a long prefill several, which bounds the
  // buffers (every token's rows for every selected expert would be tens of
  // MiB).
  constexpr int64_t kMaxExpertRows = 256;
  struct ExpertRows {
    int64_t e, first, n;  // rows first .. first + n - 1 of the group buffers
  };
  const int64_t n_embd = c.n_embd, n_ff = c.n_ff_expert;
  moe_out_.assign(size_t(T * n_embd), 0.0f);
  std::vector<ExpertRows> group;
  int64_t group_rows = 0;
  auto run_group = [&] {
    std::vector<Product> gate_up, down;
    for (const ExpertRows& w : group) {
      const float* xin = moe_xin_.data() + w.first * n_embd;
      float* g = moe_gate_.data() + w.first * n_ff;
      gate_up.push_back({&layer.gate_exps, w.e, xin, w.n, g});
      gate_up.push_back({&layer.up_exps, w.e, xin, w.n, moe_up_.data() + w.first * n_ff});
      down.push_back({&layer.down_exps, w.e, g, w.n, moe_down_.data() + w.first * n_embd});
    }
    matmul_many(gate_up, pool_);
    for_each_token(pool_, group_rows, [&](int64_t r) {
      float* g = moe_gate_.data() + r * n_ff;
      tensor::swiglu(g, moe_up_.data() + r * n_ff, g, n_ff);
    });
    matmul_many(down, pool_);
    for (const ExpertRows& w : group) {
      const auto& routed = tokens_of_expert[size_t(w.e)];
      for (int64_t i = 0; i < w.n; i++) {
        const auto [t, weight] = routed[size_t(i)];
        const float* out = moe_down_.data() + (w.first + i) * n_embd;
        for (int64_t j = 0; j < n_embd; j++) moe_out_[size_t(t * n_embd + j)] += weight * out[j];
      }
    }
    group.clear();
    group_rows = 0;
  };
  for (int64_t e = 0; e < c.n_expert; e++) {
    const auto& routed = tokens_of_expert[size_t(e)];
    if (routed.empty()) continue;
    const int64_t n = int64_t(routed.size()), rows = group_rows + n;
    if (moe_xin_.size() < size_t(rows * n_embd)) {  // grows to its largest group once, then is reused
      moe_xin_.resize(size_t(rows * n_embd));
      moe_down_.resize(size_t(rows * n_embd));
      moe_gate_.resize(size_t(rows * n_ff));
      moe_up_.resize(size_t(rows * n_ff));
    }
    for (int64_t i = 0; i < n; i++)
      std::copy_n(xn_.data() + routed[size_t(i)].first * n_embd, n_embd, moe_xin_.data() + (group_rows + i) * n_embd);
    group.push_back({e, group_rows, n});
    group_rows = rows;
    if (group_rows >= kMaxExpertRows) run_group();
  }
  if (!group.empty()) run_group();
  add_to_residual(moe_out_, T);
}

}  // namespace warden::model
