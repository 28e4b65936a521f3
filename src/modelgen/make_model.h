#pragma once
// make-model: a GGUF file with random weights in the exact shapes and
// metadata of a real model, and a working vocabulary.
//
// --peaked: the token embedding is made large (std 1) and the projections
// that write into the residual stream small, so the final hidden state stays
// close to the last token's embedding. With a separate output matrix, its
// rows are a permutation of the embedding rows, so the next token is a fixed
// function of the last one with a margin far above quantization noise; with
// tied embeddings the model repeats its last token. Either way greedy decoding
// gives the same tokens in F32 and in Q8_0, which tests rely on.
#include <cstdint>
#include <string>
#include <vector>

#include "modelgen/plan.h"

namespace warden::modelgen {

struct MakeModelOptions {
  std::string preset;
  std::string type = "f16";
  int64_t layers = 0;  // 0: the preset's own count
  uint64_t seed = 1;
  bool peaked = false;
  int threads = 2;
  std::string out;
};

struct MakeModelResult {
  uint64_t tensor_bytes = 0;
  uint64_t parameters = 0;
  size_t tensor_count = 0;
};

// Validates the options (warden::UsageError for bad ones), then writes `out`
// atomically. Refuses a model that would not fit in memory.
MakeModelResult make_model(const MakeModelOptions& options);

}  // namespace warden::modelgen
