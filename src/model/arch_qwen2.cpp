// qwen2 (Qwen2, Qwen2.5): NeoX RoPE and biases on the Q, K and V projections.
#include "model/arch.h"
#include "util/error.h"

namespace warden::model {

Architecture qwen2_architecture() {
  return {"qwen2", [](const gguf::File& f, Config& c) {
            c.rope_style = RopeStyle::Neox;
            c.qkv_bias = true;
            if (c.n_ff <= 0) throw Error(f.path() + ": missing qwen2.feed_forward_length");
          }};
}

}  // namespace warden::model
