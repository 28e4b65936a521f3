// llama (Llama 1/2/3, files converted from llama2.c, TinyLlama, ...):
// adjacent-pair RoPE, optional llama3 frequency factors (rope_freqs tensor).
#include "model/arch.h"
#include "util/error.h"

namespace warden::model {

Architecture llama_architecture() {
  return {"llama", [](const gguf::File& f, Config& c) {
            c.rope_style = RopeStyle::Normal;
            if (c.n_ff <= 0) throw Error(f.path() + ": missing llama.feed_forward_length");
            // Mixtral-style llama files carry experts; not supported by this architecture file.
            if (f.get_uint("llama.expert_count", 0) > 0)
              throw Error(f.path() + ": llama files with experts are not supported");
          }};
}

}  // namespace warden::model
