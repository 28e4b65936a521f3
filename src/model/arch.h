#pragma once
// Per-architecture knowledge: which metadata keys and tensors a
// general.architecture needs. Each architecture lives in its own arch_*.cpp.
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "model/config.h"

namespace warden::model {

struct Architecture {
  const char* name;
  // Fills the architecture-specific parts of `c` (the common keys are read by
  // read_common_hparams before this is called).
  void (*configure)(const gguf::File& file, Config& c);
};

// All architectures this build can run.
const std::vector<Architecture>& architectures();
const Architecture* find_architecture(const std::string& name);

// Reads <arch>.embedding_length, block_count, head counts, rope and norm keys.
void read_common_hparams(const gguf::File& file, Config& c);

// One registration per arch_*.cpp.
Architecture llama_architecture();
Architecture qwen2_architecture();
Architecture qwen3_architecture();
Architecture qwen3moe_architecture();

}  // namespace warden::model
