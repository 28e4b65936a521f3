// qwen3moe (Qwen3-30B-A3B, ...): qwen3 attention; the FFN is a mixture of
// experts: softmax router over all experts, top-k, selected weights
// renormalised to sum to one.
#include "model/arch.h"
#include "util/error.h"

namespace warden::model {

Architecture qwen3moe_architecture() {
  return {"qwen3moe", [](const gguf::File& f, Config& c) {
            c.rope_style = RopeStyle::Neox;
            c.qk_norm = true;
            c.n_expert = int64_t(f.get_uint("qwen3moe.expert_count", 0));
            c.n_expert_used = int64_t(f.get_uint("qwen3moe.expert_used_count", 0));
            c.n_ff_expert = int64_t(f.get_uint("qwen3moe.expert_feed_forward_length", uint64_t(c.n_ff)));
            c.expert_weights_norm = true;
            if (c.n_expert <= 0 || c.n_expert_used <= 0 || c.n_expert_used > c.n_expert)
              throw Error(f.path() + ": invalid qwen3moe expert_count / expert_used_count");
            if (c.n_ff_expert <= 0) throw Error(f.path() + ": missing qwen3moe.expert_feed_forward_length");
          }};
}

}  // namespace warden::model
