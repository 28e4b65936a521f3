#pragma once
// The tensor table of a model to generate: names, shapes (ggml order, ne0
// first), types and how each is initialised. Computing it writes nothing, so
// tests can check the full-size presets without producing gigabytes.
#include <cstdint>
#include <string>
#include <vector>

#include "modelgen/preset.h"
#include "modelgen/quant_scheme.h"

namespace warden::modelgen {

enum class Init {
  normal,          // N(0, scale^2)
  ones,            // norm weights
  rope_freqs,      // llama3 rope scaling factors, computed
  embedding,       // token_embd: N(0, scale^2)
  peaked_output,   // output.weight under --peaked: permuted copies of token_embd rows
};

struct PlannedTensor {
  std::string name;
  std::vector<int64_t> dims;
  TensorType type = TensorType::F32;
  Init init = Init::normal;
  float scale = 0.0f;
  uint64_t bytes = 0;
  std::string fallback_note;  // set when the row length forced another type
  int64_t rows() const;
};

struct ModelPlan {
  Preset preset;  // with --layers applied
  Scheme scheme;
  bool peaked = false;
  std::vector<PlannedTensor> tensors;
  uint64_t total_bytes() const;
  uint64_t parameter_count() const;
};

// layers <= 0 keeps the preset's layer count.
ModelPlan build_plan(const Preset& preset, const Scheme& scheme, int64_t layers, bool peaked);

// The factors llama.cpp's converter writes as rope_freqs.weight for llama3
// rope scaling (one per rotary frequency pair: head_dim / 2 values).
std::vector<float> llama3_rope_factors(const Preset& preset);

}  // namespace warden::modelgen
