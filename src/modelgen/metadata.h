#pragma once
// The GGUF metadata of a generated model, with the keys llama.cpp's
// converter writes for the real model (general.*, <arch>.*, tokenizer.*).
#include <string>
#include <utility>
#include <vector>

#include "gguf/gguf.h"
#include "modelgen/plan.h"
#include "modelgen/vocab.h"

namespace warden::modelgen {

using Metadata = std::vector<std::pair<std::string, gguf::Value>>;

// Everything but the tokenizer: general.* and <arch>.* hyperparameters.
Metadata model_metadata(const ModelPlan& plan, uint64_t seed);
Metadata tokenizer_metadata(const Vocab& vocab);

}  // namespace warden::modelgen
