#pragma once
// Hyperparameters of a decoder-only transformer, read from GGUF metadata.
#include <cstdint>
#include <string>

namespace warden::model {

enum class RopeStyle {
  Normal,  // rotate adjacent pairs (x[2i], x[2i+1]): llama
  Neox,    // rotate halves (x[i], x[i + d/2]): qwen2, qwen3
};

struct Config {
  std::string arch;
  int64_t n_vocab = 0;
  int64_t n_embd = 0;
  int64_t n_layer = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim = 0;    // per-head width of Q and K
  int64_t head_dim_v = 0;  // per-head width of V
  int64_t n_ff = 0;
  int64_t n_ctx_train = 0;
  float rms_eps = 1e-5f;
  float rope_base = 10000.0f;
  float rope_freq_scale = 1.0f;  // 1 / linear scaling factor
  int64_t rope_dim = 0;
  RopeStyle rope_style = RopeStyle::Normal;
  bool qkv_bias = false;  // qwen2
  bool qk_norm = false;   // qwen3: RMSNorm over each head of Q and K
  // Mixture of experts (qwen3moe); n_expert == 0 means a dense FFN.
  int64_t n_expert = 0;
  int64_t n_expert_used = 0;
  int64_t n_ff_expert = 0;
  bool expert_weights_norm = false;  // renormalise the top-k router weights

  int64_t q_dim() const { return n_head * head_dim; }
  int64_t kv_dim() const { return n_head_kv * head_dim; }
  int64_t v_dim() const { return n_head_kv * head_dim_v; }
};

}  // namespace warden::model
