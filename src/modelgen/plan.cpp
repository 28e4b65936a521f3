#include "modelgen/plan.h"

#include <cmath>

#include "util/error.h"

namespace warden::modelgen {
namespace {

constexpr double kPi = 3.14159265358979323846;
// Standard deviation of the random weights: a typical transformer init.
constexpr float kWeightStd = 0.02f;
// Under --peaked the token embedding dominates the residual stream (see
// make_model.h); the projections that write into the residual are damped.
constexpr float kPeakedEmbeddingStd = 1.0f;
constexpr float kPeakedResidualWriteStd = 0.002f;

struct PlanBuilder {
  const Preset& p;
  bool peaked;
  std::vector<PlannedTensor> tensors;

  void add(std::string name, std::vector<int64_t> dims, Init init, float scale = 0.0f) {
    PlannedTensor t;
    t.name = std::move(name);
    t.dims = std::move(dims);
    t.init = init;
    t.scale = scale;
    tensors.push_back(std::move(t));
  }
  void norm(const std::string& name, int64_t n) { add(name, {n}, Init::ones); }
  void weight(const std::string& name, std::vector<int64_t> dims) { add(name, std::move(dims), Init::normal, kWeightStd); }
  // Projections whose output is added to the residual stream.
  void residual_write(const std::string& name, std::vector<int64_t> dims) {
    add(name, std::move(dims), Init::normal, peaked ? kPeakedResidualWriteStd : kWeightStd);
  }

  void layer(int64_t i) {
    const std::string b = "blk." + std::to_string(i) + ".";
    const int64_t q_dim = p.n_head * p.head_dim;
    const int64_t kv_dim = p.n_head_kv * p.head_dim;
    norm(b + "attn_norm.weight", p.n_embd);
    weight(b + "attn_q.weight", {p.n_embd, q_dim});
    if (p.qkv_bias) weight(b + "attn_q.bias", {q_dim});
    weight(b + "attn_k.weight", {p.n_embd, kv_dim});
    if (p.qkv_bias) weight(b + "attn_k.bias", {kv_dim});
    weight(b + "attn_v.weight", {p.n_embd, kv_dim});
    if (p.qkv_bias) weight(b + "attn_v.bias", {kv_dim});
    if (p.qk_norm) {
      norm(b + "attn_q_norm.weight", p.head_dim);
      norm(b + "attn_k_norm.weight", p.head_dim);
    }
    residual_write(b + "attn_output.weight", {q_dim, p.n_embd});
    norm(b + "ffn_norm.weight", p.n_embd);
    if (p.is_moe()) {
      weight(b + "ffn_gate_inp.weight", {p.n_embd, p.n_expert});
      weight(b + "ffn_gate_exps.weight", {p.n_embd, p.n_ff_exp, p.n_expert});
      weight(b + "ffn_up_exps.weight", {p.n_embd, p.n_ff_exp, p.n_expert});
      residual_write(b + "ffn_down_exps.weight", {p.n_ff_exp, p.n_embd, p.n_expert});
    } else {
      weight(b + "ffn_gate.weight", {p.n_embd, p.n_ff});
      weight(b + "ffn_up.weight", {p.n_embd, p.n_ff});
      residual_write(b + "ffn_down.weight", {p.n_ff, p.n_embd});
    }
  }

  void build() {
    add("token_embd.weight", {p.n_embd, p.n_vocab}, Init::embedding, peaked ? kPeakedEmbeddingStd : kWeightStd);
    if (p.rope_scaling_factor > 0) add("rope_freqs.weight", {p.head_dim / 2}, Init::rope_freqs);
    for (int64_t i = 0; i < p.n_layer; i++) layer(i);
    norm("output_norm.weight", p.n_embd);
    if (!p.tied_embeddings)
      add("output.weight", {p.n_embd, p.n_vocab}, peaked ? Init::peaked_output : Init::normal,
          peaked ? kPeakedEmbeddingStd : kWeightStd);
  }
};

void assign_types(ModelPlan& plan) {
  std::vector<std::string> names;
  for (const auto& t : plan.tensors) names.push_back(t.name);
  TypeChooser chooser(plan.scheme, names, plan.preset.n_layer, plan.preset.n_expert);
  for (auto& t : plan.tensors) {
    auto choice = chooser.choose(t.name, t.dims, TensorType::F32);
    t.type = choice.type;
    t.fallback_note = choice.fallback_note;
    t.bytes = gguf::row_bytes(t.type, t.dims[0]) * uint64_t(t.rows());
  }
}

}  // namespace

int64_t PlannedTensor::rows() const {
  int64_t r = 1;
  for (size_t i = 1; i < dims.size(); i++) r *= dims[i];
  return r;
}

uint64_t ModelPlan::total_bytes() const {
  uint64_t sum = 0;
  for (const auto& t : tensors) sum += t.bytes;
  return sum;
}

uint64_t ModelPlan::parameter_count() const {
  uint64_t sum = 0;
  for (const auto& t : tensors) sum += uint64_t(t.dims[0]) * uint64_t(t.rows());
  return sum;
}

ModelPlan build_plan(const Preset& preset, const Scheme& scheme, int64_t layers, bool peaked) {
  ModelPlan plan;
  plan.preset = preset;
  plan.scheme = scheme;
  plan.peaked = peaked;
  if (layers > 0) plan.preset.n_layer = layers;
  PlanBuilder builder{plan.preset, peaked, {}};
  builder.build();
  plan.tensors = std::move(builder.tensors);
  assign_types(plan);
  return plan;
}

std::vector<float> llama3_rope_factors(const Preset& p) {
  // As convert_hf_to_gguf.py computes them: for each rotary frequency, keep
  // high frequencies, divide low ones by `factor`, and blend in between.
  const double low_freq_wavelen = double(p.rope_original_ctx) / p.rope_low_freq_factor;
  const double high_freq_wavelen = double(p.rope_original_ctx) / p.rope_high_freq_factor;
  std::vector<float> factors;
  for (int64_t i = 0; i < p.head_dim; i += 2) {
    // float32 like the converter's torch computation
    const float freq = 1.0f / std::pow(p.rope_base, float(i) / float(p.head_dim));
    const double wavelen = 2.0 * kPi / freq;
    if (wavelen < high_freq_wavelen) {
      factors.push_back(1.0f);
    } else if (wavelen > low_freq_wavelen) {
      factors.push_back(p.rope_scaling_factor);
    } else {
      const double smooth = (double(p.rope_original_ctx) / wavelen - p.rope_low_freq_factor) /
                            (p.rope_high_freq_factor - p.rope_low_freq_factor);
      factors.push_back(float(1.0 / ((1.0 - smooth) / p.rope_scaling_factor + smooth)));
    }
  }
  return factors;
}

}  // namespace warden::modelgen
