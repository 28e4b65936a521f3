#include "model/arch.h"

#include "util/error.h"

namespace warden::model {

const std::vector<Architecture>& architectures() {
  static const std::vector<Architecture> all = {llama_architecture(), qwen2_architecture(), qwen3_architecture(),
                                                qwen3moe_architecture()};
  return all;
}

const Architecture* find_architecture(const std::string& name) {
  for (const auto& a : architectures())
    if (name == a.name) return &a;
  return nullptr;
}

namespace {
int64_t required(const gguf::File& f, const std::string& key) {
  int64_t v = int64_t(f.get_uint(key, 0));
  if (v <= 0) throw Error(f.path() + ": missing or invalid metadata key " + key);
  return v;
}
}  // namespace

void read_common_hparams(const gguf::File& f, Config& c) {
  const std::string a = c.arch + ".";
  c.n_embd = required(f, a + "embedding_length");
  c.n_layer = required(f, a + "block_count");
  c.n_head = required(f, a + "attention.head_count");
  c.n_head_kv = int64_t(f.get_uint(a + "attention.head_count_kv", uint64_t(c.n_head)));
  c.n_ctx_train = int64_t(f.get_uint(a + "context_length", 2048));
  c.rms_eps = float(f.get_float(a + "attention.layer_norm_rms_epsilon", 1e-5));
  c.rope_base = float(f.get_float(a + "rope.freq_base", 10000.0));
  c.head_dim = int64_t(f.get_uint(a + "attention.key_length", uint64_t(c.n_embd / c.n_head)));
  c.head_dim_v = int64_t(f.get_uint(a + "attention.value_length", uint64_t(c.head_dim)));
  c.rope_dim = int64_t(f.get_uint(a + "rope.dimension_count", uint64_t(c.head_dim)));
  c.n_ff = int64_t(f.get_uint(a + "feed_forward_length", 0));
  std::string scaling = f.get_string(a + "rope.scaling.type", "none");
  if (scaling == "linear") {
    double factor = f.get_float(a + "rope.scaling.factor", 1.0);
    if (factor <= 0) throw Error(f.path() + ": invalid " + a + "rope.scaling.factor");
    c.rope_freq_scale = float(1.0 / factor);
  } else if (scaling != "none" && scaling != "llama3") {
    // llama3 scaling is carried by the rope_freqs tensor; YaRN and others are refused.
    throw Error(f.path() + ": rope scaling type '" + scaling + "' is not supported");
  }
  if (c.n_head_kv <= 0 || c.n_head % c.n_head_kv != 0)
    throw Error(f.path() + ": head_count " + std::to_string(c.n_head) + " is not a multiple of head_count_kv " +
                std::to_string(c.n_head_kv));
  if (c.head_dim <= 0 || c.rope_dim <= 0 || c.rope_dim > c.head_dim || c.rope_dim % 2 != 0)
    throw Error(f.path() + ": invalid head or rope dimensions");
}

}  // namespace warden::model
