#pragma once
// Which tensor type each tensor of a model gets, for a requested --type.
//
// Every type except q4_K_M is uniform: all quantizable weights get that type.
// q4_K_M is llama.cpp's mixture: Q4_K everywhere, Q6_K for the output matrix
// (or the tied token embedding), and Q6_K for attn_v and ffn_down in the
// layers llama.cpp's use_more_bits() picks (the first and last eighth, and
// every third layer in between); models with exactly 8 experts get Q8_0
// attn_k/attn_v and Q5_K attn_output, as llama.cpp does for Mixtral. Rows whose length is not a multiple of the
// type's block size fall back per tensor as llama.cpp does (Q4_K -> Q5_0,
// Q5_K -> Q5_1, Q6_K -> Q8_0, Q2_K/Q3_K -> Q4_0, otherwise F16).
// Norms, biases, 1-D tensors and the MoE router (ffn_gate_inp) are never
// quantized, as in llama.cpp.
#include <cstdint>
#include <string>
#include <vector>

#include "gguf/types.h"

namespace warden::modelgen {

using gguf::TensorType;

struct Scheme {
  std::string name;              // as the user spelled it canonically: "q4_K_M", "q8_0"
  TensorType base = TensorType::F32;
  bool q4_k_m = false;           // llama.cpp's Q4_K_M mixture
  uint32_t file_type = 0;        // general.file_type (llama_ftype)
};

// Parses a --type / TYPE argument (case-insensitive); throws warden::UsageError
// naming the accepted types.
Scheme parse_scheme(const std::string& text);
std::string scheme_names();

// llama.cpp's rule for which tensors may be quantized at all.
bool is_quantizable(const std::string& name, size_t n_dims);

// Picks each tensor's type. Call choose() once per tensor, in file order:
// like llama.cpp, the attn_v rule counts attn_v tensors in that order.
class TypeChooser {
 public:
  // `tensor_names`: every tensor of the model (to see whether output.weight
  // exists and how many attn_v tensors there are); n_layer = block_count.
  TypeChooser(Scheme scheme, const std::vector<std::string>& tensor_names, int64_t n_layer, int64_t n_expert);

  struct Choice {
    TensorType type;
    std::string fallback_note;  // non-empty when the row length forced a fallback
  };
  // `current` is the tensor's type in the source (F32 for generated weights);
  // tensors that are not quantized keep it.
  Choice choose(const std::string& name, const std::vector<int64_t>& dims, TensorType current);

 private:
  TensorType mixture_type(const std::string& name);

  Scheme scheme_;
  int64_t n_layer_;
  int64_t n_expert_;
  bool tied_ = true;
  int n_attention_v_ = 0;
  int i_attention_v_ = 0;
  int i_ffn_down_ = 0;
};

// Same rule as llama.cpp's use_more_bits(i_layer, n_layers).
bool use_more_bits(int64_t i_layer, int64_t n_layers);

}  // namespace warden::modelgen
