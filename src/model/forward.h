#pragma once
// The forward pass of a decoder-only transformer over a batch of tokens that
// may belong to several independent sequences (continuous batching). Each
// token attends to the cached positions of its own sequence up to its own
// position, so a prefill of N tokens in one batch computes exactly what N
// single-token steps compute.
#include <atomic>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "model/kv_cache.h"
#include "model/model.h"
#include "util/thread_pool.h"

namespace warden::model {

struct BatchToken {
  int32_t token = 0;
  int64_t pos = 0;
  int seq = 0;
  bool want_logits = false;
};

class Forward {
 public:
  // decode_as_team: whether decode steps (up to kMaxTeamTokens tokens) run as a team
  // of the pool's threads (below); the results are the same either way.
  Forward(const Model& model, ThreadPool& pool, bool decode_as_team = true);

  // Runs the batch, writing keys/values into `cache`; returns one row of
  // n_vocab logits per token with want_logits, in batch order. Positions of a
  // sequence must continue its cached length (pos == cache.length(seq) for the
  // sequence's first token in the batch, then consecutive).
  std::vector<float> run(const std::vector<BatchToken>& batch, KvCache& cache);
  // The same into `logits`, resized to fit. Why: a decode loop that passes
  // the same vector each step reuses its memory, where a fresh vector of
  // n_vocab floats was allocated and zeroed each step (36 us of a 9-12 ms
  // qwen3-0.6b step).
  void run(const std::vector<BatchToken>& batch, KvCache& cache, std::vector<float>& logits);

  // How a decode step as a team counts the rows of wq, wk and wv as they
  // are written (team_qkv_attention): per unit of `heads` key/value heads,
  // whose rows are its query heads' rows of wq and its rows of wk and wv
  // (rows[0..2]). The fewest heads whose rows fill whole panels of 8, as a
  // thread writes whole panels (one head where head sizes are multiples of
  // 8, as in every model we know of), else all heads in one unit.
  struct QkvUnits {
    int64_t heads = 1, count = 1;
    int64_t rows[3] = {};
  };
  static QkvUnits qkv_units(const Config& c);

  // Where decode steps as a team spend their time, per member: each stage's
  // loops, the waits at barriers, and whole steps (what the stages and
  // barriers leave of a step is the norms, the activations' conversions and
  // SwiGLU). For bench/model/bench_decode_stages; off unless asked for, as
  // it reads the clock twice per stage and member.
  enum Stage { kQkv, kAttention, kWo, kGateUp, kDown, kRouter, kExperts, kOutput, kStages };
  struct StageSeconds {
    double stage[kStages] = {};
    double barriers = 0, steps = 0;
  };
  // From now on, each decode step as a team adds member i's times to
  // (*times)[i] (the vector is resized to the pool's team); null stops.
  void time_stages(std::vector<StageSeconds>* times);

 private:
  // Batches longer than this run as consecutive slices: activations (the FFN's
  // are n_ff wide) then stay within a few tens of MiB at any prompt length,
  // for one more read of the weights per slice (no measurable cost: 181.7 vs
  // 178.6 tokens/s at 512 tokens of llama-3.2-1b q4_K_M, within noise).
  static constexpr int64_t kMaxStepTokens = 256;
  void run_step(const std::vector<BatchToken>& batch, KvCache& cache, std::vector<float>& logits);
  void attention_layer(const Layer& layer, int64_t il, const std::vector<BatchToken>& batch, KvCache& cache);
  void ffn_layer(const Layer& layer, int64_t T);
  void norm_tokens(const std::vector<float>& weight, int64_t T);
  void add_to_residual(const std::vector<float>& out, int64_t T);
  void dense_ffn(const Layer& layer, int64_t T);
  void moe_ffn(const Layer& layer, int64_t T);
  using ExpertRoutes = std::vector<std::vector<std::pair<int64_t, float>>>;  // per expert: (token, weight)
  ExpertRoutes route(float* router_logits, int64_t T) const;
  void rotate_and_cache(const Layer& layer, int64_t il, const std::vector<BatchToken>& batch, int64_t t,
                        int64_t kv_begin, int64_t kv_end, KvCache& cache);
  void attend(int64_t il, const BatchToken& bt, int64_t kvh, const float* q, float* out, const KvCache& cache) const;

  // Attention for runs of one sequence's tokens (tensor::attend_causal),
  // which reads a key/value head's cache once for all the run's tokens: from
  // kMinRunTokens tokens on this beats attending per token. Shorter runs
  // (lookup decoding's passes) attend per token, as single steps do, so
  // their logits are the same bits.
  struct TokenRun {
    int64_t first = 0, count = 0;
  };
  static constexpr int64_t kMinRunTokens = 8;
  static std::vector<TokenRun> runs_of(const std::vector<BatchToken>& batch);
  void attend_run(int64_t il, const std::vector<BatchToken>& batch, const TokenRun& run, const KvCache& cache);

  // Decode steps as a team (forward_team.cpp): every thread of the pool runs
  // every layer, the products' rows and the attention's key/value heads
  // shared out in team loops, so the threads meet at a barrier per stage (4
  // per dense layer, 6 per MoE layer) instead of starting and ending a
  // parallel loop per matrix and waiting on one thread for what lies
  // between. Used for batches of up to kMaxTeamTokens tokens; other batches
  // take the loops above. The results are identical either way.
  static constexpr int64_t kMaxTeamTokens = 8;
  struct TeamScratch {
    std::vector<float> xn;              // normed activations
    std::vector<float> hidden;          // the FFN's hidden units after SwiGLU
    std::vector<uint8_t> converted[3];  // activations in the weights' dot types
    // MoE: the router's picks (the same on every thread), the selected
    // experts in ascending order, the first of each one's rows in the expert
    // buffers (one row per routed token, as moe_ffn orders them), and the
    // rows' inputs.
    ExpertRoutes routes;
    std::vector<int64_t> experts, first_row;
    std::vector<float> router, xin;
  };
  void run_as_team(const std::vector<BatchToken>& batch, KvCache& cache, std::vector<float>& logits);
  void team_member(int i, const std::vector<BatchToken>& batch, KvCache& cache, std::vector<float>& logits);
  const float* team_norm(int i, const std::vector<float>& weight, int64_t T);
  void team_qkv_attention(int i, int64_t il, const Layer& layer, const std::vector<BatchToken>& batch,
                          KvCache& cache);
  void team_barrier(int i, const void* warm = nullptr, size_t warm_bytes = 0);
  double* stage_seconds(int i, Stage stage);
  void team_add_product(int i, const Matrix& w, const float* in, int64_t T);
  void add_product_rows(int i, Stage stage, const Matrix& w, const float* in, int64_t T);
  void team_gate_up(int i, const Layer& layer, int64_t T);
  void team_down(int i, const Layer& layer, int64_t T);
  void team_router(int i, const Layer& layer, int64_t T);
  void team_experts_gate_up(int i, const Layer& layer, int64_t T);
  void team_experts_down(int i, const Layer& layer);
  void team_experts_sum(int i, int64_t T);
  void team_logits(int i, const std::vector<BatchToken>& batch, std::vector<float>& logits);

  const Model& model_;
  ThreadPool& pool_;
  const bool decode_as_team_;
  // Per unit: its rows of wq, wk and wv written so far in this step, summed
  // over the layers (layer il's are all written at (il + 1) x the unit's
  // rows). A cache line each: the threads add to different units at once.
  struct alignas(64) UnitRows {
    std::atomic<int64_t> rows{0};
  };
  const QkvUnits qkv_units_;
  const std::unique_ptr<UnitRows[]> unit_rows_written_;
  std::vector<TeamScratch> team_scratch_;
  std::vector<StageSeconds>* stage_times_ = nullptr;
  // Activations for the current batch, [T][width] row-major.
  std::vector<float> x_, xn_, q_, k_, v_, attn_, gate_, up_, ffn_out_;
  // MoE: router logits, one group of experts' rows (inputs, gate, up, down
  // outputs) and the layer's output; reused, so a long prefill does not leave
  // the heap fragmented by per-expert allocations.
  std::vector<float> router_, moe_xin_, moe_gate_, moe_up_, moe_down_, moe_out_;
  // Rotary cosines and sines per token of the batch, [T][rope_dim / 2].
  std::vector<float> rope_cos_, rope_sin_;
};

}  // namespace warden::model
