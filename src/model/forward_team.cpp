// Decode steps as a team (see forward.h). Why: with a parallel loop per
// matrix, each loop starts by waking the other threads and ends with them
// waiting for the last, and the norms, activation conversions and residual
// additions between the loops run on one thread alone. Here every thread
// runs every layer, and each stage is a team loop (shared out and stolen as
// parallel_for's are) behind a barrier:
//
//   the rows of wq, wk and wv (one loop over the three), then the key/value
//   heads: rotary, cache store, attention (each head as soon as its own rows
//   are written, with no barrier between: team_qkv_attention);
//   the rows of wo, each added to x;
//   the rows of ffn_gate and ffn_up (one loop over the two);
//   SwiGLU of the hidden units (on every thread), and the rows of ffn_down,
//   each added to x.
//
// A MoE layer's FFN instead: the router's rows; then every thread routes the
// tokens alike, and the selected experts' hidden units (gate, up, SwiGLU),
// then their down rows, are shared out expert by expert; then the weighted
// sum, by rows of x.
//
// Every thread runs the norms and conversions itself rather than wait for
// one to. Each output is the same dot product as in the loops, so the results
// are identical. Two other splits were slower: fixed shares per thread (no
// stealing) made whatever held one core back hold both, and splitting wo and
// ffn_down by columns made each thread read a few KiB of every panel and
// skip the other's part, which streamed three times slower than whole
// panels (docs/performance.md).
#include <algorithm>
#include <chrono>

#include "model/forward.h"
#include "model/ops.h"
#include "tensor/quant.h"
#include "tensor/vector_ops.h"

namespace warden::model {
namespace {

constexpr int64_t kPanelRows = Matrix::kPanelRows;

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

// Where product_rows starts reading panel `panel` of w (of its slice `slice`:
// an expert).
const uint8_t* panel_start(const Matrix& w, int64_t panel, int64_t slice = 0) {
  int64_t run_end;
  return w.packed ? w.packed_panel(panel, slice, run_end) : w.row(panel * kPanelRows, slice);
}

// How much of its share of a loop's weights a member prefetches while it
// waits at the barrier before the loop (ThreadPool::barrier). Why: its
// stream then starts from the cache, and the wait is not lost to the memory
// system: decode steps 0.6-0.9 % shorter in the fast memory regime
// (qwen3-0.6b q4_K_M in three runs and q4_0 in one, of a throwaway build
// alternating the two ways token by token in one process), 0.3 % for
// llama-3.2-1b q6_K. 16 KiB, 256 KiB and 1 MiB measured the same: the waits
// last a few microseconds.
constexpr size_t kWarmBytes = size_t(64) << 10;

// The output matrix's final chunks (ThreadPool::team_share): by default
// 1/16 of the loop, which for a vocabulary of 150k rows is megabytes, and a
// thread that had finished waited for the other's last chunk: decode steps
// 0.4-0.7 % shorter for qwen3-0.6b q4_K_M, 0.2 % for llama-3.2-1b q6_K, in
// the fast memory regime (runs alternating token by token in one process;
// 64 KiB and 1 MiB measured the same).
constexpr size_t kOutputFinalChunkBytes = size_t(256) << 10;

// How much of a key/value head's keys, and of its values, a thread
// prefetches before it waits for the head's rows of wq, wk and wv (a whole
// head up to 64 positions of f16 rows of 128). Why: a head's attention reads
// two short streams from memory, which the hardware prefetchers take a while
// to pick up, so at shallow depth it read at about a third of a plain
// stream's rate. Prefetched, decode steps from an empty cache were 0.7-1.1 %
// shorter (median step-time ratio) for qwen3-0.6b q4_K_M and q4_0, 0.15 %
// for llama-3.2-1b q6_K, in the fast memory regime (a throwaway build
// alternating the two ways token by token in one process); after 512 or
// 4096 cached tokens, the same (0.999, 0.998). Capped, because a long
// context's head is more than L1 and L2 hold, and its streams are long
// enough for the hardware prefetchers.
constexpr size_t kHeadWarmBytes = size_t(16) << 10;

void warm_head(const tensor::CacheRows& rows, int64_t positions) {
  const size_t bytes = std::min(size_t(positions) * rows.row_bytes, kHeadWarmBytes);
  for (size_t offset = 0; offset < bytes; offset += 64) __builtin_prefetch(rows.data + offset, 0, 3);
}

// A chunk [begin, end) of a team loop over `count` matrices of `rows` rows
// each, their panels one after another (the selected experts, expert by
// expert): fn(k, r0, r1) for the rows [r0, r1) of matrix k it covers.
template <typename Fn>
void for_each_matrix_piece(int64_t begin, int64_t end, int64_t count, int64_t rows, Fn fn) {
  const int64_t each = panels(rows);
  for (int64_t k = begin / each; k < count && k * each < end; k++) {
    const int64_t r0 = (std::max(begin, k * each) - k * each) * kPanelRows;
    const int64_t r1 = std::min(rows, (std::min(end, (k + 1) * each) - k * each) * kPanelRows);
    fn(k, r0, r1);
  }
}

// Adds the seconds from its construction to its destruction (or to stop())
// to *into, unless into is null.
class ScopedSeconds {
 public:
  explicit ScopedSeconds(double* into) : into_(into) {
    if (into_) start_ = std::chrono::steady_clock::now();
  }
  ~ScopedSeconds() { stop(); }
  void stop() {
    if (into_) *into_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    into_ = nullptr;
  }
  ScopedSeconds(const ScopedSeconds&) = delete;
  ScopedSeconds& operator=(const ScopedSeconds&) = delete;

 private:
  double* into_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace

void Forward::time_stages(std::vector<StageSeconds>* times) {
  if (times) times->resize(size_t(pool_.team_size()));
  stage_times_ = times;
}

double* Forward::stage_seconds(int i, Stage stage) {
  return stage_times_ ? &(*stage_times_)[size_t(i)].stage[stage] : nullptr;
}

void Forward::team_barrier(int i, const void* warm, size_t warm_bytes) {
  ScopedSeconds timed(stage_times_ ? &(*stage_times_)[size_t(i)].barriers : nullptr);
  pool_.barrier(warm, warm_bytes);
}

Forward::QkvUnits Forward::qkv_units(const Config& c) {
  QkvUnits u;
  const int64_t group = c.n_head / c.n_head_kv;
  auto fills_panels = [&](int64_t heads) {
    return (heads * group * c.head_dim) % kPanelRows == 0 && (heads * c.head_dim) % kPanelRows == 0 &&
           (heads * c.head_dim_v) % kPanelRows == 0;
  };
  u.heads = 1;
  while (u.heads < c.n_head_kv && (c.n_head_kv % u.heads != 0 || !fills_panels(u.heads))) u.heads++;
  u.count = c.n_head_kv / u.heads;
  u.rows[0] = u.heads * group * c.head_dim;
  u.rows[1] = u.heads * c.head_dim;
  u.rows[2] = u.heads * c.head_dim_v;
  return u;
}

void Forward::run_as_team(const std::vector<BatchToken>& batch, KvCache& cache, std::vector<float>& logits) {
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
  if (c.n_expert > 0) {  // one row per (token, selected expert)
    const size_t rows = size_t(T * c.n_expert_used);
    router_.resize(size_t(T * c.n_expert));
    moe_gate_.resize(rows * size_t(c.n_ff_expert));
    moe_up_.resize(rows * size_t(c.n_ff_expert));
    moe_down_.resize(rows * size_t(c.n_embd));
    moe_out_.resize(size_t(T * c.n_embd));
  }
  team_scratch_.resize(size_t(pool_.size()));
  for (int64_t u = 0; u < qkv_units_.count; u++) unit_rows_written_[size_t(u)].rows.store(0, std::memory_order_relaxed);
  int64_t n_logits = 0;
  for (const BatchToken& bt : batch) n_logits += bt.want_logits;
  logits.resize(size_t(n_logits * c.n_vocab));  // every row is written below
  pool_.run_team([&](int i) { team_member(i, batch, cache, logits); });
}

void Forward::team_member(int i, const std::vector<BatchToken>& batch, KvCache& cache, std::vector<float>& logits) {
  ScopedSeconds timed(stage_times_ ? &(*stage_times_)[size_t(i)].steps : nullptr);
  const Config& c = model_.config();
  const int64_t T = int64_t(batch.size());
  for (int64_t il = 0; il < c.n_layer; il++) {
    const Layer& layer = model_.layers[size_t(il)];
    team_qkv_attention(i, il, layer, batch, cache);
    team_add_product(i, layer.wo, attn_.data(), T);
    if (c.n_expert > 0) {
      team_router(i, layer, T);
      team_experts_gate_up(i, layer, T);
      team_experts_down(i, layer);
      team_experts_sum(i, T);
    } else {
      team_gate_up(i, layer, T);
      team_down(i, layer, T);
    }
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

// Q, K and V, then attention, as one stage with one barrier. The rows of the
// three matrices are shared out as one loop (as matmul_many does), and
// counted as they are written, per unit of key/value heads (qkv_units: a
// unit's query heads' rows of wq and its rows of wk and wv). Then the heads
// are shared out, and a head's rotary, cache store and attention wait only
// for its own unit's count (per head, every token's rotary and store before
// any token attends: a token may attend to an earlier one of the same
// batch). Why: a thread that finishes its rows goes on to the heads whose
// rows are written instead of waiting at a barrier for the rest: decode
// steps 0.2-0.6 % shorter (qwen3-0.6b q4_K_M, fast memory regime, three runs
// of a throwaway build alternating the two ways token by token in one
// process; too small for bench/model/ab_decode.py to resolve). The loop keeps
// the matrices whole rather than going unit by unit, because a unit's rows
// are three runs of 64-144 KiB, and runs that short streamed 6 % slower
// (114 against 122 tokens/s, in alternating runs).
void Forward::team_qkv_attention(int i, int64_t il, const Layer& layer, const std::vector<BatchToken>& batch,
                                 KvCache& cache) {
  const Config& c = model_.config();
  const int64_t T = int64_t(batch.size()), attn_width = c.n_head * c.head_dim_v;
  const QkvUnits& u = qkv_units_;
  std::vector<uint8_t>* converted = team_scratch_[size_t(i)].converted;
  const int64_t n = c.n_embd;
  const int64_t q_panels = panels(c.q_dim()), k_panels = panels(c.kv_dim());
  const int64_t first = pool_.team_share(i, q_panels + k_panels + panels(c.v_dim()));
  const uint8_t* warm = first < q_panels              ? panel_start(layer.wq, first)
                        : first < q_panels + k_panels ? panel_start(layer.wk, first - q_panels)
                                                      : panel_start(layer.wv, first - q_panels - k_panels);
  team_barrier(i, warm, kWarmBytes);  // x is complete
  const float* xn = team_norm(i, layer.attn_norm, T);
  const uint8_t* xq = convert_rows(layer.wq, xn, n, T, converted[0]);
  const uint8_t* xk = same_dot_type(layer.wk, layer.wq) ? xq : convert_rows(layer.wk, xn, n, T, converted[1]);
  const uint8_t* xv = same_dot_type(layer.wv, layer.wq)   ? xq
                      : same_dot_type(layer.wv, layer.wk) ? xk
                                                          : convert_rows(layer.wv, xn, n, T, converted[2]);
  struct Part {
    const Matrix& w;
    const uint8_t* x;
    float* y;
    const std::vector<float>& bias;
    int64_t first_panel;
  };
  const Part parts[3] = {{layer.wq, xq, q_.data(), layer.bq, 0},
                         {layer.wk, xk, k_.data(), layer.bk, q_panels},
                         {layer.wv, xv, v_.data(), layer.bv, q_panels + k_panels}};
  ScopedSeconds qkv_timed(stage_seconds(i, kQkv));
  pool_.team_loop(i, [&](int64_t begin, int64_t end, int) {
    for (int m = 0; m < 3; m++) {
      const Part& p = parts[m];
      const int64_t b = std::max(begin, p.first_panel), e = std::min(end, p.first_panel + panels(p.w.rows));
      if (b >= e) continue;
      const int64_t r0 = (b - p.first_panel) * kPanelRows, r1 = std::min(p.w.rows, (e - p.first_panel) * kPanelRows);
      product_rows(p.w, 0, r0, r1, p.x, converted_row_bytes(p.w), T, p.y, p.w.rows);
      if (c.qkv_bias)
        for (int64_t t = 0; t < T; t++)
          for (int64_t r = r0; r < r1; r++) p.y[t * p.w.rows + r] += p.bias[size_t(r)];
      for (int64_t unit = r0 / u.rows[m]; unit * u.rows[m] < r1; unit++) {
        const int64_t rows = std::min(r1, (unit + 1) * u.rows[m]) - std::max(r0, unit * u.rows[m]);
        unit_rows_written_[size_t(unit)].rows.fetch_add(rows, std::memory_order_release);
      }
    }
  });
  qkv_timed.stop();
  // No barrier: each head waits for its own unit below.
  pool_.team_share(i, c.n_head_kv);
  const int64_t written_by_now = (il + 1) * (u.rows[0] + u.rows[1] + u.rows[2]);
  ScopedSeconds timed(stage_seconds(i, kAttention));
  pool_.team_loop(i, [&](int64_t begin, int64_t end, int) {
    for (int64_t kvh = begin; kvh < end; kvh++) {
      warm_head(cache.keys(batch[0].seq, il, kvh), batch[0].pos);
      warm_head(cache.values(batch[0].seq, il, kvh), batch[0].pos);
      ThreadPool::wait_for_count(unit_rows_written_[size_t(kvh / u.heads)].rows, written_by_now);
      for (int64_t t = 0; t < T; t++) rotate_and_cache(layer, il, batch, t, kvh, kvh + 1, cache);
      for (int64_t t = 0; t < T; t++)
        attend(il, batch[size_t(t)], kvh, q_.data() + t * c.q_dim(), attn_.data() + t * attn_width, cache);
    }
  });
}

// x += w in for the T rows of in (w.cols floats each), w's rows shared out
// among the threads: the residual connection after wo.
void Forward::team_add_product(int i, const Matrix& w, const float* in, int64_t T) {
  const int64_t first = pool_.team_share(i, panels(w.rows));
  team_barrier(i, panel_start(w, first), kWarmBytes);  // `in` is complete
  add_product_rows(i, kWo, w, in, T);
}

// The rows of w this thread takes in the current team loop, times in, added
// to x.
void Forward::add_product_rows(int i, Stage stage, const Matrix& w, const float* in, int64_t T) {
  const int64_t n = model_.config().n_embd;
  const uint8_t* xq = convert_rows(w, in, w.cols, T, team_scratch_[size_t(i)].converted[0]);
  ScopedSeconds timed(stage_seconds(i, stage));
  pool_.team_loop(i, [&](int64_t begin, int64_t end, int) {
    const int64_t r0 = begin * kPanelRows, r1 = std::min(w.rows, end * kPanelRows);
    product_rows(w, 0, r0, r1, xq, converted_row_bytes(w), T, ffn_out_.data(), n);
    for (int64_t t = 0; t < T; t++)
      for (int64_t r = r0; r < r1; r++) x_[size_t(t * n + r)] += ffn_out_[size_t(t * n + r)];
  });
}

// The rows of ffn_gate, then those of ffn_up, as one loop (as wq, wk and wv
// are): a thread's share is one run through one matrix, mostly. Why: with
// the two matrices' rows shared out together (a chunk's rows of ffn_gate,
// then the same rows of ffn_up), each chunk began two streams, and decode
// steps took 1.2-1.8 % longer (qwen3-0.6b q4_K_M and q4_0, llama-3.2-1b
// q6_K, fast memory regime, a throwaway build alternating the two ways token
// by token in one process). SwiGLU moves to team_down, where each thread
// combines the whole of gate_ and up_ itself.
void Forward::team_gate_up(int i, const Layer& layer, int64_t T) {
  const Config& c = model_.config();
  std::vector<uint8_t>* converted = team_scratch_[size_t(i)].converted;
  const int64_t n = c.n_embd, gate_panels = panels(c.n_ff);
  const int64_t first = pool_.team_share(i, 2 * gate_panels);
  team_barrier(i, panel_start(first < gate_panels ? layer.ffn_gate : layer.ffn_up, first % gate_panels),
               kWarmBytes);  // x is complete
  const float* xn = team_norm(i, layer.ffn_norm, T);
  const uint8_t* xg = convert_rows(layer.ffn_gate, xn, n, T, converted[0]);
  const uint8_t* xu =
      same_dot_type(layer.ffn_up, layer.ffn_gate) ? xg : convert_rows(layer.ffn_up, xn, n, T, converted[1]);
  ScopedSeconds timed(stage_seconds(i, kGateUp));
  pool_.team_loop(i, [&](int64_t begin, int64_t end, int) {
    for_each_matrix_piece(begin, end, 2, c.n_ff, [&](int64_t k, int64_t r0, int64_t r1) {
      const Matrix& w = k == 0 ? layer.ffn_gate : layer.ffn_up;
      product_rows(w, 0, r0, r1, k == 0 ? xg : xu, converted_row_bytes(w), T, (k == 0 ? gate_ : up_).data(), c.n_ff);
    });
  });
}

// SwiGLU over the FFN's hidden units (every thread, into its own scratch),
// then x += ffn_down of them, ffn_down's rows shared out.
void Forward::team_down(int i, const Layer& layer, int64_t T) {
  const Matrix& w = layer.ffn_down;
  const int64_t first = pool_.team_share(i, panels(w.rows));
  team_barrier(i, panel_start(w, first), kWarmBytes);  // gate_ and up_ are complete
  std::vector<float>& hidden = team_scratch_[size_t(i)].hidden;
  hidden.resize(size_t(T * w.cols));
  tensor::swiglu(gate_.data(), up_.data(), hidden.data(), T * w.cols);
  add_product_rows(i, kDown, w, hidden.data(), T);
}

// MoE (as moe_ffn, whose arithmetic this repeats row for row): the router's
// rows shared out.
void Forward::team_router(int i, const Layer& layer, int64_t T) {
  const Config& c = model_.config();
  const int64_t first = pool_.team_share(i, panels(c.n_expert));
  team_barrier(i, panel_start(layer.router, first), kWarmBytes);  // x is complete
  const float* xn = team_norm(i, layer.ffn_norm, T);
  const uint8_t* xr = convert_rows(layer.router, xn, c.n_embd, T, team_scratch_[size_t(i)].converted[0]);
  ScopedSeconds timed(stage_seconds(i, kRouter));
  pool_.team_loop(i, [&](int64_t begin, int64_t end, int) {
    product_rows(layer.router, 0, begin * kPanelRows, std::min(c.n_expert, end * kPanelRows), xr,
                 converted_row_bytes(layer.router), T, router_.data(), c.n_expert);
  });
}

// Every thread routes the tokens alike; then the selected experts' hidden
// units are shared out, expert by expert (long runs of one expert's rows
// per thread), each computing gate, up and SwiGLU for the expert's tokens.
void Forward::team_experts_gate_up(int i, const Layer& layer, int64_t T) {
  const Config& c = model_.config();
  TeamScratch& m = team_scratch_[size_t(i)];
  const int64_t n = c.n_embd, n_ff = c.n_ff_expert, unit_panels = panels(n_ff);
  // At most this many experts are selected; loop indices past the ones that
  // are do nothing.
  const int64_t max_experts = std::min(c.n_expert, T * c.n_expert_used);
  pool_.team_share(i, max_experts * unit_panels);
  team_barrier(i);  // the router's logits are complete
  m.router.assign(router_.begin(), router_.begin() + T * c.n_expert);
  m.routes = route(m.router.data(), T);
  m.experts.clear();
  m.first_row.clear();
  m.xin.clear();
  for (int64_t e = 0; e < c.n_expert; e++) {
    if (m.routes[size_t(e)].empty()) continue;
    m.experts.push_back(e);
    m.first_row.push_back(int64_t(m.xin.size()) / n);
    for (const auto& [t, weight] : m.routes[size_t(e)]) m.xin.insert(m.xin.end(), m.xn.data() + t * n, m.xn.data() + (t + 1) * n);
  }
  const int64_t rows = int64_t(m.xin.size()) / n;
  const uint8_t* xg = convert_rows(layer.gate_exps, m.xin.data(), n, rows, m.converted[0]);
  const uint8_t* xu =
      same_dot_type(layer.up_exps, layer.gate_exps) ? xg : convert_rows(layer.up_exps, m.xin.data(), n, rows, m.converted[1]);
  const size_t gate_row = converted_row_bytes(layer.gate_exps), up_row = converted_row_bytes(layer.up_exps);
  ScopedSeconds timed(stage_seconds(i, kExperts));
  pool_.team_loop(i, [&](int64_t begin, int64_t end, int) {
    for_each_matrix_piece(begin, end, int64_t(m.experts.size()), n_ff, [&](int64_t slot, int64_t f0, int64_t f1) {
      const int64_t e = m.experts[size_t(slot)], first = m.first_row[size_t(slot)];
      const int64_t count = int64_t(m.routes[size_t(e)].size());
      product_rows(layer.gate_exps, e, f0, f1, xg + size_t(first) * gate_row, gate_row, count,
                   moe_gate_.data() + first * n_ff, n_ff);
      product_rows(layer.up_exps, e, f0, f1, xu + size_t(first) * up_row, up_row, count, moe_up_.data() + first * n_ff,
                   n_ff);
      for (int64_t r = first; r < first + count; r++) {
        float* g = moe_gate_.data() + r * n_ff + f0;
        tensor::swiglu(g, moe_up_.data() + r * n_ff + f0, g, f1 - f0);
      }
    });
  });
}

// The selected experts' down products, shared out expert by expert.
void Forward::team_experts_down(int i, const Layer& layer) {
  const Config& c = model_.config();
  TeamScratch& m = team_scratch_[size_t(i)];
  const int64_t n = c.n_embd, row_panels = panels(n);
  const int64_t rows = int64_t(m.xin.size()) / n;
  const int64_t first = pool_.team_share(i, int64_t(m.experts.size()) * row_panels);
  const uint8_t* warm = first < int64_t(m.experts.size()) * row_panels
                            ? panel_start(layer.down_exps, first % row_panels, m.experts[size_t(first / row_panels)])
                            : nullptr;  // no expert selected for this thread's share
  team_barrier(i, warm, kWarmBytes);  // every expert's hidden units are complete
  const uint8_t* gq = convert_rows(layer.down_exps, moe_gate_.data(), c.n_ff_expert, rows, m.converted[0]);
  const size_t down_row = converted_row_bytes(layer.down_exps);
  ScopedSeconds timed(stage_seconds(i, kExperts));
  pool_.team_loop(i, [&](int64_t begin, int64_t end, int) {
    for_each_matrix_piece(begin, end, int64_t(m.experts.size()), n, [&](int64_t slot, int64_t r0, int64_t r1) {
      const int64_t e = m.experts[size_t(slot)], first = m.first_row[size_t(slot)];
      product_rows(layer.down_exps, e, r0, r1, gq + size_t(first) * down_row, down_row,
                   int64_t(m.routes[size_t(e)].size()), moe_down_.data() + first * n, n);
    });
  });
}

// x += the experts' outputs weighted by the router, rows shared out, summed
// per row in moe_ffn's order (experts ascending, then tokens).
void Forward::team_experts_sum(int i, int64_t T) {
  const Config& c = model_.config();
  const TeamScratch& m = team_scratch_[size_t(i)];
  const int64_t n = c.n_embd;
  pool_.team_share(i, panels(n));
  team_barrier(i);  // every expert's output is complete
  ScopedSeconds timed(stage_seconds(i, kExperts));
  pool_.team_loop(i, [&](int64_t begin, int64_t end, int) {
    const int64_t r0 = begin * kPanelRows, r1 = std::min(n, end * kPanelRows);
    for (int64_t t = 0; t < T; t++) std::fill(moe_out_.begin() + t * n + r0, moe_out_.begin() + t * n + r1, 0.0f);
    for (size_t slot = 0; slot < m.experts.size(); slot++) {
      const auto& routed = m.routes[size_t(m.experts[slot])];
      for (size_t k = 0; k < routed.size(); k++) {
        const auto [t, weight] = routed[k];
        const float* out = moe_down_.data() + (m.first_row[slot] + int64_t(k)) * n;
        for (int64_t r = r0; r < r1; r++) moe_out_[size_t(t * n + r)] += weight * out[r];
      }
    }
    for (int64_t t = 0; t < T; t++)
      for (int64_t r = r0; r < r1; r++) x_[size_t(t * n + r)] += moe_out_[size_t(t * n + r)];
  });
}

// The final norm of the tokens that want logits (on every thread), and the
// output projection's rows shared out among the threads.
void Forward::team_logits(int i, const std::vector<BatchToken>& batch, std::vector<float>& logits) {
  const Config& c = model_.config();
  std::vector<float>& xn = team_scratch_[size_t(i)].xn;
  const int64_t n = c.n_embd;
  const Matrix& w = model_.output;
  const size_t panel_bytes = w.packed ? w.panel_bytes : w.row_bytes * kPanelRows;
  const int64_t first = pool_.team_share(i, panels(w.rows), int64_t(kOutputFinalChunkBytes / panel_bytes) + 1);
  team_barrier(i, panel_start(w, first), kWarmBytes);  // x is complete
  int64_t rows = 0;
  for (int64_t t = 0; t < int64_t(batch.size()); t++)
    if (batch[size_t(t)].want_logits)
      tensor::rms_norm(x_.data() + t * n, model_.output_norm.data(), xn.data() + rows++ * n, n, c.rms_eps);
  if (rows == 0) return;  // on every thread alike: the shares set above are left unclaimed
  const uint8_t* xq = convert_rows(w, xn.data(), n, rows, team_scratch_[size_t(i)].converted[0]);
  ScopedSeconds timed(stage_seconds(i, kOutput));
  pool_.team_loop(i, [&](int64_t begin, int64_t end, int) {
    product_rows(w, 0, begin * kPanelRows, std::min(w.rows, end * kPanelRows), xq, converted_row_bytes(w), rows,
                 logits.data(), c.n_vocab);
  });
}

}  // namespace warden::model
