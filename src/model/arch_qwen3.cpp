// qwen3 (dense Qwen3): NeoX RoPE, RMSNorm over each head of Q and K before
// RoPE, no projection biases, head width decoupled from n_embd.
#include "model/arch.h"
#include "util/error.h"

namespace warden::model {

Architecture qwen3_architecture() {
  return {"qwen3", [](const gguf::File& f, Config& c) {
            c.rope_style = RopeStyle::Neox;
            c.qk_norm = true;
            if (c.n_ff <= 0) throw Error(f.path() + ": missing qwen3.feed_forward_length");
          }};
}

}  // namespace warden::model
