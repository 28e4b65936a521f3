#include "modelgen/quant_scheme.h"

#include <cctype>
#include <cstdio>

#include "util/error.h"

namespace warden::modelgen {
namespace {

struct SchemeRow {
  const char* name;
  TensorType base;
  bool q4_k_m;
  uint32_t file_type;  // llama_ftype values from llama.h
};

// Uniform K-quant files are labelled with llama.cpp's "_S" ftype, the
// closest to "all tensors this type".
const SchemeRow kSchemes[] = {
    {"f32", TensorType::F32, false, 0},     {"f16", TensorType::F16, false, 1},
    {"bf16", TensorType::BF16, false, 32},  {"q8_0", TensorType::Q8_0, false, 7},
    {"q4_0", TensorType::Q4_0, false, 2},   {"q4_1", TensorType::Q4_1, false, 3},
    {"q5_0", TensorType::Q5_0, false, 8},   {"q5_1", TensorType::Q5_1, false, 9},
    {"q2_K", TensorType::Q2_K, false, 10},  {"q3_K", TensorType::Q3_K, false, 11},
    {"q4_K", TensorType::Q4_K, false, 14},  {"q5_K", TensorType::Q5_K, false, 16},
    {"q6_K", TensorType::Q6_K, false, 18},  {"q4_K_M", TensorType::Q4_K, true, 15},
};

bool iequals(const std::string& a, const char* b) {
  size_t i = 0;
  for (; i < a.size() && b[i]; i++)
    if (std::tolower((unsigned char)a[i]) != std::tolower((unsigned char)b[i])) return false;
  return i == a.size() && !b[i];
}

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

bool ends_with(const std::string& s, const char* tail) {
  const std::string t(tail);
  return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
}

bool is_attn_v_like(const std::string& name) {
  return contains(name, "attn_v.weight") || contains(name, "attn_qkv.weight") || contains(name, "attn_kv_b.weight");
}

uint32_t block_size(TensorType t) { return gguf::type_info(t)->block_size; }

// llama.cpp's tensor_type_fallback, minus the types warden does not have
// (IQ4_NL is replaced by Q4_0, its same-size block-32 neighbour).
TensorType fallback_for(TensorType t) {
  switch (t) {
    case TensorType::Q2_K:
    case TensorType::Q3_K: return TensorType::Q4_0;
    case TensorType::Q4_K: return TensorType::Q5_0;
    case TensorType::Q5_K: return TensorType::Q5_1;
    case TensorType::Q6_K: return TensorType::Q8_0;
    default: return TensorType::F16;
  }
}

// Layer number from a "blk.N." name, or -1.
int64_t layer_of(const std::string& name) {
  int layer = -1;
  if (std::sscanf(name.c_str(), "blk.%d.", &layer) != 1) return -1;
  return layer;
}

}  // namespace

Scheme parse_scheme(const std::string& text) {
  for (const auto& row : kSchemes)
    if (iequals(text, row.name)) return {row.name, row.base, row.q4_k_m, row.file_type};
  throw UsageError("unknown type '" + text + "' (known: " + scheme_names() + ")");
}

std::string scheme_names() {
  std::string names;
  for (const auto& row : kSchemes) names += (names.empty() ? "" : ", ") + std::string(row.name);
  return names;
}

bool is_quantizable(const std::string& name, size_t n_dims) {
  if (n_dims < 2) return false;
  if (!ends_with(name, "weight")) return false;
  if (contains(name, "_norm.weight")) return false;
  if (contains(name, "ffn_gate_inp.weight")) return false;  // MoE router stays F32
  if (name == "position_embd.weight" || name == "token_types.weight") return false;
  if (contains(name, "ssm_conv1d")) return false;
  return true;
}

bool use_more_bits(int64_t i_layer, int64_t n_layers) {
  return i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 || (i_layer - n_layers / 8) % 3 == 2;
}

TypeChooser::TypeChooser(Scheme scheme, const std::vector<std::string>& tensor_names, int64_t n_layer,
                         int64_t n_expert)
    : scheme_(std::move(scheme)), n_layer_(n_layer), n_expert_(n_expert) {
  for (const auto& name : tensor_names) {
    if (name == "output.weight") tied_ = false;
    if (is_attn_v_like(name)) n_attention_v_++;
  }
}

TensorType TypeChooser::mixture_type(const std::string& name) {
  const bool is_output = name == "output.weight" || (tied_ && name == "token_embd.weight");
  if (is_output) return TensorType::Q6_K;  // row-length fallback to Q8_0 happens in choose()
  // llama.cpp singles out 8-expert models (Mixtral): their attention is a
  // small share of the size, so it gets more bits.
  const bool eight_experts = n_expert_ == 8;
  if (is_attn_v_like(name)) {
    const bool more = use_more_bits(i_attention_v_, n_attention_v_);
    i_attention_v_++;
    if (eight_experts) return TensorType::Q8_0;
    return more ? TensorType::Q6_K : TensorType::Q4_K;
  }
  if (contains(name, "attn_k.weight") && eight_experts) return TensorType::Q8_0;
  if (contains(name, "attn_output.weight") && eight_experts) return TensorType::Q5_K;
  if (contains(name, "ffn_down")) {
    // With experts, llama.cpp reads the layer from the name (expert tensors
    // need not be in layer order); otherwise it counts ffn_down tensors.
    int64_t layer = n_expert_ > 1 ? layer_of(name) : i_ffn_down_;
    i_ffn_down_++;
    if (layer < 0 || layer >= n_layer_)
      throw Error("cannot tell the layer of tensor " + name + " (block_count " + std::to_string(n_layer_) + ")");
    return use_more_bits(layer, n_layer_) ? TensorType::Q6_K : TensorType::Q4_K;
  }
  return TensorType::Q4_K;
}

TypeChooser::Choice TypeChooser::choose(const std::string& name, const std::vector<int64_t>& dims,
                                        TensorType current) {
  if (!is_quantizable(name, dims.size())) return {current, ""};
  TensorType wanted = scheme_.q4_k_m ? mixture_type(name) : scheme_.base;
  const int64_t ncols = dims[0];
  // llama.cpp: an output matrix whose rows do not fit Q4_K's blocks goes to Q8_0.
  const bool is_output = name == "output.weight" || (tied_ && name == "token_embd.weight");
  if (scheme_.q4_k_m && is_output && ncols % block_size(TensorType::Q4_K) != 0) wanted = TensorType::Q8_0;
  if (ncols % block_size(wanted) == 0) return {wanted, ""};
  TensorType fallback = fallback_for(wanted);
  if (ncols % block_size(fallback) != 0) fallback = TensorType::F16;
  const std::string note = name + ": row length " + std::to_string(ncols) + " is not a multiple of " +
                           std::to_string(block_size(wanted)) + " (needed by " +
                           std::string(gguf::type_name(wanted)) + "), using " +
                           std::string(gguf::type_name(fallback));
  return {fallback, note};
}

}  // namespace warden::modelgen
