#include "modelgen/preset.h"

#include "util/error.h"

namespace warden::modelgen {
namespace {

// Values from the public config.json of each model on Hugging Face:
//   Qwen/Qwen3-0.6B, Qwen/Qwen3-1.7B, Qwen/Qwen2.5-0.5B, meta-llama/Llama-3.2-1B,
//   Qwen/Qwen3-30B-A3B
// (hidden_size, intermediate_size, num_hidden_layers, num_attention_heads,
// num_key_value_heads, head_dim, max_position_embeddings, rms_norm_eps,
// rope_theta, tie_word_embeddings, vocab_size; moe_intermediate_size,
// num_experts, num_experts_per_tok; Llama's rope_scaling {factor 32,
// low_freq_factor 1, high_freq_factor 4, original_max_position_embeddings 8192}).
// head_dim is "written" where config.json has the key, because that is when
// llama.cpp's converter emits attention.key_length / value_length.
std::vector<Preset> make_presets() {
  std::vector<Preset> p;

  Preset qwen3_06;
  qwen3_06.name = "qwen3-0.6b";
  qwen3_06.description = "Qwen3-0.6B shapes (28 layers, 1024 wide, GQA 16/8, tied output)";
  qwen3_06.arch = "qwen3";
  qwen3_06.vocab = VocabFamily::qwen3;
  qwen3_06.n_vocab = 151936;
  qwen3_06.n_ctx = 40960;
  qwen3_06.n_embd = 1024;
  qwen3_06.n_layer = 28;
  qwen3_06.n_ff = 3072;
  qwen3_06.n_head = 16;
  qwen3_06.n_head_kv = 8;
  qwen3_06.head_dim = 128;
  qwen3_06.write_head_dim = true;
  qwen3_06.rms_eps = 1e-6f;
  qwen3_06.rope_base = 1000000.0f;
  qwen3_06.tied_embeddings = true;
  qwen3_06.qk_norm = true;
  p.push_back(qwen3_06);

  Preset qwen3_17 = qwen3_06;
  qwen3_17.name = "qwen3-1.7b";
  qwen3_17.description = "Qwen3-1.7B shapes (28 layers, 2048 wide, GQA 16/8, tied output)";
  qwen3_17.n_embd = 2048;
  qwen3_17.n_ff = 6144;
  p.push_back(qwen3_17);

  Preset qwen25;
  qwen25.name = "qwen2.5-0.5b";
  qwen25.description = "Qwen2.5-0.5B shapes (24 layers, 896 wide, GQA 14/2, QKV bias, tied output)";
  qwen25.arch = "qwen2";
  qwen25.vocab = VocabFamily::qwen2;
  qwen25.n_vocab = 151936;
  qwen25.n_ctx = 32768;
  qwen25.n_embd = 896;
  qwen25.n_layer = 24;
  qwen25.n_ff = 4864;
  qwen25.n_head = 14;
  qwen25.n_head_kv = 2;
  qwen25.head_dim = 64;  // hidden_size / num_attention_heads; config.json has no head_dim
  qwen25.rms_eps = 1e-6f;
  qwen25.rope_base = 1000000.0f;
  qwen25.tied_embeddings = true;
  qwen25.qkv_bias = true;
  p.push_back(qwen25);

  Preset llama32;
  llama32.name = "llama-3.2-1b";
  llama32.description = "Llama-3.2-1B shapes (16 layers, 2048 wide, GQA 32/8, llama3 rope scaling, tied output)";
  llama32.arch = "llama";
  llama32.vocab = VocabFamily::llama3;
  llama32.n_vocab = 128256;
  llama32.n_ctx = 131072;
  llama32.n_embd = 2048;
  llama32.n_layer = 16;
  llama32.n_ff = 8192;
  llama32.n_head = 32;
  llama32.n_head_kv = 8;
  llama32.head_dim = 64;
  llama32.write_head_dim = true;
  llama32.rms_eps = 1e-5f;
  llama32.rope_base = 500000.0f;
  llama32.tied_embeddings = true;
  llama32.rope_scaling_factor = 32.0f;
  llama32.rope_low_freq_factor = 1.0f;
  llama32.rope_high_freq_factor = 4.0f;
  llama32.rope_original_ctx = 8192;
  llama32.n_reserved_special = 245;  // 11 named + 245 reserved = 256 specials
  p.push_back(llama32);

  Preset moe;
  moe.name = "qwen3-30b-a3b";
  moe.description = "Qwen3-30B-A3B shapes (48 layers, 2048 wide, GQA 32/4, 128 experts top-8; cut with --layers)";
  moe.arch = "qwen3moe";
  moe.vocab = VocabFamily::qwen3;
  moe.n_vocab = 151936;
  moe.n_ctx = 40960;
  moe.n_embd = 2048;
  moe.n_layer = 48;
  moe.n_ff = 6144;
  moe.n_head = 32;
  moe.n_head_kv = 4;
  moe.head_dim = 128;
  moe.write_head_dim = true;
  moe.rms_eps = 1e-6f;
  moe.rope_base = 1000000.0f;
  moe.tied_embeddings = false;
  moe.qk_norm = true;
  moe.n_expert = 128;
  moe.n_expert_used = 8;
  moe.n_ff_exp = 768;
  p.push_back(moe);

  // Tiny versions for fast tests. Widths are multiples of 256 so the K-quants
  // apply without fallback; head_dim differs from n_embd/n_head where the real
  // architecture's does (qwen3), so that path is exercised too.
  Preset tiny_llama = llama32;
  tiny_llama.name = "tiny-llama";
  tiny_llama.description = "tiny llama (2 layers, 256 wide, GQA 4/2, llama3 rope scaling, separate output)";
  tiny_llama.n_vocab = 4096;
  tiny_llama.n_ctx = 4096;
  tiny_llama.n_embd = 256;
  tiny_llama.n_layer = 2;
  tiny_llama.n_ff = 512;
  tiny_llama.n_head = 4;
  tiny_llama.n_head_kv = 2;
  tiny_llama.head_dim = 64;
  tiny_llama.tied_embeddings = false;
  tiny_llama.n_reserved_special = 5;
  p.push_back(tiny_llama);

  Preset tiny_qwen2 = qwen25;
  tiny_qwen2.name = "tiny-qwen2";
  tiny_qwen2.description = "tiny qwen2 (2 layers, 256 wide, GQA 4/2, QKV bias, tied output)";
  tiny_qwen2.n_vocab = 4096;
  tiny_qwen2.n_ctx = 4096;
  tiny_qwen2.n_embd = 256;
  tiny_qwen2.n_layer = 2;
  tiny_qwen2.n_ff = 512;
  tiny_qwen2.n_head = 4;
  tiny_qwen2.n_head_kv = 2;
  tiny_qwen2.head_dim = 64;
  p.push_back(tiny_qwen2);

  Preset tiny_qwen3 = qwen3_06;
  tiny_qwen3.name = "tiny-qwen3";
  tiny_qwen3.description = "tiny qwen3 (2 layers, 256 wide, GQA 4/2, head_dim 128, q/k norm, tied output)";
  tiny_qwen3.n_vocab = 4096;
  tiny_qwen3.n_ctx = 4096;
  tiny_qwen3.n_embd = 256;
  tiny_qwen3.n_layer = 2;
  tiny_qwen3.n_ff = 512;
  tiny_qwen3.n_head = 4;
  tiny_qwen3.n_head_kv = 2;
  tiny_qwen3.head_dim = 128;
  p.push_back(tiny_qwen3);

  Preset tiny_moe = moe;
  tiny_moe.name = "tiny-qwen3moe";
  tiny_moe.description = "tiny qwen3moe (2 layers, 256 wide, GQA 4/2, 8 experts top-2, separate output)";
  tiny_moe.n_vocab = 4096;
  tiny_moe.n_ctx = 4096;
  tiny_moe.n_embd = 256;
  tiny_moe.n_layer = 2;
  tiny_moe.n_ff = 512;
  tiny_moe.n_head = 4;
  tiny_moe.n_head_kv = 2;
  tiny_moe.head_dim = 128;
  tiny_moe.n_expert = 8;
  tiny_moe.n_expert_used = 2;
  tiny_moe.n_ff_exp = 256;
  p.push_back(tiny_moe);

  return p;
}

}  // namespace

const std::vector<Preset>& presets() {
  static const std::vector<Preset> table = make_presets();
  return table;
}

std::string preset_names() {
  std::string names;
  for (const auto& p : presets()) names += (names.empty() ? "" : ", ") + p.name;
  return names;
}

const Preset& find_preset(const std::string& name) {
  for (const auto& p : presets())
    if (p.name == name) return p;
  throw UsageError("unknown preset '" + name + "' (known: " + preset_names() + ")");
}

}  // namespace warden::modelgen
