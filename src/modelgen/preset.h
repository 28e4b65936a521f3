#pragma once
// Model presets: the hyperparameters of real models (and tiny versions of
// each architecture for fast tests), as their public config.json files give
// them. make-model builds a GGUF with random weights in exactly these shapes.
#include <cstdint>
#include <string>
#include <vector>

namespace warden::modelgen {

// Which vocabulary family a preset uses (token layout, special tokens,
// pre-tokenizer name and chat template).
enum class VocabFamily { qwen2, qwen3, llama3 };

struct Preset {
  std::string name;         // "qwen3-0.6b"
  std::string description;  // one line for --help and general.name
  std::string arch;         // general.architecture: llama, qwen2, qwen3, qwen3moe
  VocabFamily vocab = VocabFamily::qwen3;
  int64_t n_vocab = 0;
  int64_t n_ctx = 0;        // context_length (max_position_embeddings)
  int64_t n_embd = 0;       // hidden_size
  int64_t n_layer = 0;      // num_hidden_layers
  int64_t n_ff = 0;         // intermediate_size
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim = 0;     // key/value length per head
  bool write_head_dim = false;  // config.json has head_dim: the converter writes key_length/value_length
  float rms_eps = 1e-6f;
  float rope_base = 10000.0f;
  bool tied_embeddings = false;  // no output.weight; the output reuses token_embd
  bool qkv_bias = false;         // qwen2: attn_q/k/v.bias
  bool qk_norm = false;          // qwen3, qwen3moe: attn_q_norm / attn_k_norm
  // Mixture of experts (qwen3moe); 0 experts means a dense FFN.
  int64_t n_expert = 0;
  int64_t n_expert_used = 0;
  int64_t n_ff_exp = 0;
  // llama3 rope scaling, written as rope_freqs.weight (factor 0 = none).
  float rope_scaling_factor = 0.0f;
  float rope_low_freq_factor = 0.0f;
  float rope_high_freq_factor = 0.0f;
  int64_t rope_original_ctx = 0;
  // Special-token block: for llama3, how many <|reserved_special_token_N|>
  // follow the named ones (the real vocab has 256 specials in all).
  int64_t n_reserved_special = 0;

  bool is_moe() const { return n_expert > 0; }
};

const std::vector<Preset>& presets();
// The preset called `name`; throws warden::UsageError listing the known names.
const Preset& find_preset(const std::string& name);
// Comma-separated preset names, for help and error texts.
std::string preset_names();

}  // namespace warden::modelgen
