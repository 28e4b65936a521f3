#include "modelgen/metadata.h"

namespace warden::modelgen {

using gguf::Value;

Metadata model_metadata(const ModelPlan& plan, uint64_t seed) {
  const Preset& p = plan.preset;
  const std::string a = p.arch + ".";
  Metadata m;
  m.emplace_back("general.architecture", Value::string(p.arch));
  m.emplace_back("general.type", Value::string("model"));
  m.emplace_back("general.name", Value::string(p.name + " (random weights)"));
  m.emplace_back("general.description", Value::string("warden make-model: " + p.description));
  m.emplace_back(a + "block_count", Value::u32(uint32_t(p.n_layer)));
  m.emplace_back(a + "context_length", Value::u32(uint32_t(p.n_ctx)));
  m.emplace_back(a + "embedding_length", Value::u32(uint32_t(p.n_embd)));
  m.emplace_back(a + "feed_forward_length", Value::u32(uint32_t(p.n_ff)));
  m.emplace_back(a + "attention.head_count", Value::u32(uint32_t(p.n_head)));
  m.emplace_back(a + "attention.head_count_kv", Value::u32(uint32_t(p.n_head_kv)));
  m.emplace_back(a + "rope.freq_base", Value::f32(p.rope_base));
  m.emplace_back(a + "attention.layer_norm_rms_epsilon", Value::f32(p.rms_eps));
  if (p.is_moe()) {
    m.emplace_back(a + "expert_count", Value::u32(uint32_t(p.n_expert)));
    m.emplace_back(a + "expert_used_count", Value::u32(uint32_t(p.n_expert_used)));
  }
  if (p.write_head_dim) {
    m.emplace_back(a + "attention.key_length", Value::u32(uint32_t(p.head_dim)));
    m.emplace_back(a + "attention.value_length", Value::u32(uint32_t(p.head_dim)));
  }
  m.emplace_back("general.file_type", Value::u32(plan.scheme.file_type));
  if (p.is_moe()) m.emplace_back(a + "expert_feed_forward_length", Value::u32(uint32_t(p.n_ff_exp)));
  if (p.arch == "llama") {
    // LlamaModel.set_gguf_parameters adds these two.
    m.emplace_back(a + "vocab_size", Value::u32(uint32_t(p.n_vocab)));
    m.emplace_back(a + "rope.dimension_count", Value::u32(uint32_t(p.head_dim)));
  }
  m.emplace_back("general.quantization_version", Value::u32(2));
  // Provenance, so a file can be regenerated and is never mistaken for a real model.
  m.emplace_back("warden.modelgen.preset", Value::string(p.name));
  m.emplace_back("warden.modelgen.seed", Value::u64(seed));
  m.emplace_back("warden.modelgen.peaked", Value::boolean(plan.peaked));
  return m;
}

Metadata tokenizer_metadata(const Vocab& v) {
  Metadata m;
  m.emplace_back("tokenizer.ggml.model", Value::string(v.model));
  m.emplace_back("tokenizer.ggml.pre", Value::string(v.pre));
  m.emplace_back("tokenizer.ggml.tokens", Value::strings(v.tokens));
  m.emplace_back("tokenizer.ggml.token_type", Value::i32s(v.types));
  m.emplace_back("tokenizer.ggml.merges", Value::strings(v.merges));
  if (v.bos >= 0) m.emplace_back("tokenizer.ggml.bos_token_id", Value::u32(uint32_t(v.bos)));
  if (v.eos >= 0) m.emplace_back("tokenizer.ggml.eos_token_id", Value::u32(uint32_t(v.eos)));
  if (v.eot >= 0) m.emplace_back("tokenizer.ggml.eot_token_id", Value::u32(uint32_t(v.eot)));
  if (v.pad >= 0) m.emplace_back("tokenizer.ggml.padding_token_id", Value::u32(uint32_t(v.pad)));
  m.emplace_back("tokenizer.ggml.add_bos_token", Value::boolean(v.add_bos));
  m.emplace_back("tokenizer.chat_template", Value::string(v.chat_template));
  return m;
}

}  // namespace warden::modelgen
