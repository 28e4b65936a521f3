// Decode steps as a team (see forward.h). Why: with a parallel loop per
// matrix, a layer's five loops each start by waking the other thread and end
// with one thread idle while the other finishes, and the norms, activation
// conversions and residual additions between the loops run on one thread
// alone. Here every thread runs every layer:
//
//   its own key/value heads: their rows of wq, wk and wv, rotary, cache,
//     attention;
//   the rows of wo, shared out as parallel_for shares them (stealing at the
//     end), each added to x;
//   the FFN hidden units, shared out the same way: their rows of ffn_gate
//     and ffn_up, SwiGLU;
//   the rows of ffn_down, shared out the same way, each added to x;
//
// with a barrier before each shared loop and at the end of the layer. Each
// output is the same dot product as in the loops, so the results are
// identical. The heads are split in advance because each thread attends
// with the keys and values it computed itself; the loops are shared out
// because a static split of them made whatever held one core back hold both
// (llama-3.2-1b decoded 1-5 % slower than with the loops). Splitting wo and
// ffn_down by columns instead would save barriers, but each thread then
// reads a few KiB of every panel and skips the other's part, and those
// pieces streamed from memory three times slower than whole panels.
#include <algorithm>

#include "model/forward.h"
#include "model/ops.h"
#include "tensor/quant.h"
#include "tensor/vector_ops.h"

namespace warden::model {
namespace {

constexpr int64_t kPanelRows = 8;  // rows per packed panel

// T rows of x (n floats each) converted to w's dot type into `out`, as
// product_rows reads them.
const uint8_t* convert_rows(const Matrix& w, const float* x, int64_t n, int64_t T, std::vector<uint8_t>& out) {
  const gguf::TensorType vt = tensor::vec_dot_type(w.type);
  const size_t row = gguf::row_bytes(vt, n);
  if (out.size() < row * size_t(T)) out.resize(row * size_t(T));
  for (int64_t t = 0; t < T; t++) tensor::quantize_row(vt, x + t * n, out.data() + size_t(t) * row, n);
  return out.data();
}

size_t converted_row_bytes(const Matrix& w) { return gguf::row_bytes(tensor::vec_dot_type(w.type), w.cols); }

bool same_dot_type(const Matrix& a, const Matrix& b) {
  return tensor::vec_dot_type(a.type) == tensor::vec_dot_type(b.type);
}

int64_t panels(int64_t rows) { return (rows + kPanelRows - 1) / kPanelRows; }

}  // namespace

// Each thread's key/value heads, or none where the team path does not
// apply: more threads than key/value heads, heads whose rows do not start on
// a whole panel, or MoE layers. (A team of two splitting each selected
// expert's rows decoded qwen3moe 2-3 % slower than the loops, which already
// reach about 90 % of the roofline there.)
std::vector<Forward::TeamShare> Forward::plan_team(const Model& model, int threads) {
  const Config& c = model.config();
  const int64_t n = threads;
  if (c.n_expert > 0 || n < 1 || n > c.n_head_kv || c.head_dim % kPanelRows || c.head_dim_v % kPanelRows) return {};
  std::vector<TeamShare> shares;
  for (int64_t i = 0; i < n; i++) shares.push_back({c.n_head_kv * i / n, c.n_head_kv * (i + 1) / n});
  return shares;
}

std::vector<float> Forward::run_as_team(const std::vector<BatchToken>& batch, KvCache& cache) {
  const Config& c = model_.config();
  const int64_t T = int64_t(batch.size());
  // Shared buffers, each thread writing its own rows of each product.
  q_.resize(size_t(T * c.q_dim()));
  k_.resize(size_t(T * c.kv_dim()));
  v_.resize(size_t(T * c.v_dim()));
  attn_.resize(size_t(T * c.n_head * c.head_dim_v));
  gate_.resize(size_t(T * c.n_ff));
  up_.resize(size_t(T * c.n_ff));
  ffn_out_.resize(size_t(T * c.n_embd));
  team_scratch_.resize(team_.size());
  int64_t n_logits = 0;
  for (const BatchToken& bt : batch) n_logits += bt.want_logits;
  std::vector<float> logits(size_t(n_logits * c.n_vocab));
  pool_.run_team([&](int i) { team_member(i, batch, cache, logits); });
  return logits;
}

void Forward::team_member(int i, const std::vector<BatchToken>& batch, KvCache& cache, std::vector<float>& logits) {
  const Config& c = model_.config();
  const int64_t T = int64_t(batch.size());
  for (int64_t il = 0; il < c.n_layer; il++) {
    const Layer& layer = model_.layers[size_t(il)];
    team_attention(i, layer, il, batch, cache);
    team_add_product(i, layer.wo, attn_.data(), T);
    team_gate_up(i, layer, T);
    team_add_product(i, layer.ffn_down, gate_.data(), T);
    pool_.barrier();  // x is complete
  }
  team_logits(i, batch, logits);
}

// xn = rms_norm(x) with `weight`, into this thread's scratch.
const float* Forward::team_norm(int i, const std::vector<float>& weight, int64_t T) {
  const Config& c = model_.config();
  std::vector<float>& xn = team_scratch_[size_t(i)].xn;
  xn.resize(size_t(T * c.n_embd));
  for (int64_t t = 0; t < T; t++)
    tensor::rms_norm(x_.data() + t * c.n_embd, weight.data(), xn.data() + t * c.n_embd, c.n_embd, c.rms_eps);
  return xn.data();
}

void Forward::team_attention(int i, const Layer& layer, int64_t il, const std::vector<BatchToken>& batch,
                             KvCache& cache) {
  const Config& c = model_.config();
  const TeamShare& s = team_[size_t(i)];
  std::vector<uint8_t>* converted = team_scratch_[size_t(i)].converted;
  const int64_t T = int64_t(batch.size()), n = c.n_embd, group = c.n_head / c.n_head_kv;
  const float* xn = team_norm(i, layer.attn_norm, T);
  const uint8_t* xq = convert_rows(layer.wq, xn, n, T, converted[0]);
  const uint8_t* xk = same_dot_type(layer.wk, layer.wq) ? xq : convert_rows(layer.wk, xn, n, T, converted[1]);
  const uint8_t* xv = same_dot_type(layer.wv, layer.wq)   ? xq
                      : same_dot_type(layer.wv, layer.wk) ? xk
                                                          : convert_rows(layer.wv, xn, n, T, converted[2]);
  const int64_t q0 = s.kv_begin * group * c.head_dim, q1 = s.kv_end * group * c.head_dim;
  const int64_t k0 = s.kv_begin * c.head_dim, k1 = s.kv_end * c.head_dim;
  const int64_t v0 = s.kv_begin * c.head_dim_v, v1 = s.kv_end * c.head_dim_v;
  product_rows(layer.wq, 0, q0, q1, xq, converted_row_bytes(layer.wq), T, q_.data(), c.q_dim());
  product_rows(layer.wk, 0, k0, k1, xk, converted_row_bytes(layer.wk), T, k_.data(), c.kv_dim());
  product_rows(layer.wv, 0, v0, v1, xv, converted_row_bytes(layer.wv), T, v_.data(), c.v_dim());
  if (c.qkv_bias)
    for (int64_t t = 0; t < T; t++) {
      for (int64_t r = q0; r < q1; r++) q_[size_t(t * c.q_dim() + r)] += layer.bq[size_t(r)];
      for (int64_t r = k0; r < k1; r++) k_[size_t(t * c.kv_dim() + r)] += layer.bk[size_t(r)];
      for (int64_t r = v0; r < v1; r++) v_[size_t(t * c.v_dim() + r)] += layer.bv[size_t(r)];
    }
  // Every token's keys and values are in the cache before any token attends:
  // a token may attend to an earlier one of the same batch.
  for (int64_t t = 0; t < T; t++) rotate_and_cache(layer, il, batch, t, s.kv_begin, s.kv_end, cache);
  const int64_t attn_width = c.n_head * c.head_dim_v;
  for (int64_t t = 0; t < T; t++)
    for (int64_t kvh = s.kv_begin; kvh < s.kv_end; kvh++)
      attend(il, batch[size_t(t)], kvh, q_.data() + t * c.q_dim(), attn_.data() + t * attn_width, cache);
}

// x += w in for the T rows of in (w.cols floats each), w's rows shared out
// among the threads: the residual connection after wo and ffn_down.
void Forward::team_add_product(int i, const Matrix& w, const float* in, int64_t T) {
  const int64_t n = model_.config().n_embd;
  pool_.team_share(i, panels(w.rows));
  pool_.barrier();  // `in` is complete
  const uint8_t* xq = convert_rows(w, in, w.cols, T, team_scratch_[size_t(i)].converted[0]);
  pool_.team_loop(i, [&](int64_t begin, int64_t end, int) {
    const int64_t r0 = begin * kPanelRows, r1 = std::min(w.rows, end * kPanelRows);
    product_rows(w, 0, r0, r1, xq, converted_row_bytes(w), T, ffn_out_.data(), n);
    for (int64_t t = 0; t < T; t++)
      for (int64_t r = r0; r < r1; r++) x_[size_t(t * n + r)] += ffn_out_[size_t(t * n + r)];
  });
}

// The FFN's hidden units, shared out among the threads: their rows of
// ffn_gate and ffn_up, and SwiGLU over them into gate_.
void Forward::team_gate_up(int i, const Layer& layer, int64_t T) {
  const Config& c = model_.config();
  std::vector<uint8_t>* converted = team_scratch_[size_t(i)].converted;
  const int64_t n = c.n_embd;
  pool_.team_share(i, panels(c.n_ff));
  pool_.barrier();  // x is complete
  const float* xn = team_norm(i, layer.ffn_norm, T);
  const uint8_t* xg = convert_rows(layer.ffn_gate, xn, n, T, converted[0]);
  const uint8_t* xu =
      same_dot_type(layer.ffn_up, layer.ffn_gate) ? xg : convert_rows(layer.ffn_up, xn, n, T, converted[1]);
  pool_.team_loop(i, [&](int64_t begin, int64_t end, int) {
    const int64_t f0 = begin * kPanelRows, f1 = std::min(c.n_ff, end * kPanelRows);
    product_rows(layer.ffn_gate, 0, f0, f1, xg, converted_row_bytes(layer.ffn_gate), T, gate_.data(), c.n_ff);
    product_rows(layer.ffn_up, 0, f0, f1, xu, converted_row_bytes(layer.ffn_up), T, up_.data(), c.n_ff);
    for (int64_t t = 0; t < T; t++) {
      float* g = gate_.data() + t * c.n_ff + f0;
      tensor::swiglu(g, up_.data() + t * c.n_ff + f0, g, f1 - f0);
    }
  });
}

// The final norm of the tokens that want logits (on every thread), and the
// output projection's rows shared out among the threads.
void Forward::team_logits(int i, const std::vector<BatchToken>& batch, std::vector<float>& logits) {
  const Config& c = model_.config();
  std::vector<float>& xn = team_scratch_[size_t(i)].xn;
  const int64_t n = c.n_embd;
  pool_.team_share(i, panels(model_.output.rows));
  pool_.barrier();  // x is complete
  int64_t rows = 0;
  for (int64_t t = 0; t < int64_t(batch.size()); t++)
    if (batch[size_t(t)].want_logits)
      tensor::rms_norm(x_.data() + t * n, model_.output_norm.data(), xn.data() + rows++ * n, n, c.rms_eps);
  if (rows == 0) return;  // on every thread alike: the shares set above are left unclaimed
  const Matrix& w = model_.output;
  const uint8_t* xq = convert_rows(w, xn.data(), n, rows, team_scratch_[size_t(i)].converted[0]);
  pool_.team_loop(i, [&](int64_t begin, int64_t end, int) {
    product_rows(w, 0, begin * kPanelRows, std::min(w.rows, end * kPanelRows), xq, converted_row_bytes(w), rows,
                 logits.data(), c.n_vocab);
  });
}

}  // namespace warden::model
