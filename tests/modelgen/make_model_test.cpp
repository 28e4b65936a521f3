// Tiny presets written to disk and read back with gguf::File: metadata keys
// and values, tensor table, weight statistics, determinism, --peaked.
#include <gtest/gtest.h>

#include <cmath>

#include "common/test_env.h"
#include "gguf/gguf.h"
#include "modelgen/make_model.h"
#include "modelgen/plan.h"
#include "modelgen/preset.h"
#include "tensor/quant.h"
#include "util/error.h"

namespace warden::modelgen {
namespace {

using gguf::TensorType;

std::string write_model(const std::string& preset, const std::string& type, uint64_t seed = 1, bool peaked = false) {
  MakeModelOptions o;
  o.preset = preset;
  o.type = type;
  o.seed = seed;
  o.peaked = peaked;
  o.out = test::make_temp_dir("mm") + "/" + preset + "-" + type + ".gguf";
  make_model(o);
  return o.out;
}

std::vector<float> row_floats(const gguf::File& f, const std::string& name, int64_t row) {
  const auto view = f.tensor(name);
  const int64_t n = view.info->dims[0];
  std::vector<float> out(static_cast<size_t>(n));
  tensor::dequantize_row(view.info->type, view.data + size_t(row) * gguf::row_bytes(view.info->type, n), out.data(), n);
  return out;
}

class TinyPreset : public ::testing::TestWithParam<const char*> {};

TEST_P(TinyPreset, WrittenFileMatchesThePlanAndMetadata) {
  const Preset& p = find_preset(GetParam());
  const std::string path = write_model(p.name, "q8_0");
  gguf::File f(path);
  const std::string a = p.arch + ".";
  EXPECT_EQ(f.get_string("general.architecture"), p.arch);
  EXPECT_EQ(f.get_uint(a + "block_count", 0), uint64_t(p.n_layer));
  EXPECT_EQ(f.get_uint(a + "context_length", 0), uint64_t(p.n_ctx));
  EXPECT_EQ(f.get_uint(a + "embedding_length", 0), uint64_t(p.n_embd));
  EXPECT_EQ(f.get_uint(a + "feed_forward_length", 0), uint64_t(p.n_ff));
  EXPECT_EQ(f.get_uint(a + "attention.head_count", 0), uint64_t(p.n_head));
  EXPECT_EQ(f.get_uint(a + "attention.head_count_kv", 0), uint64_t(p.n_head_kv));
  EXPECT_FLOAT_EQ(float(f.get_float(a + "attention.layer_norm_rms_epsilon", 0)), p.rms_eps);
  EXPECT_FLOAT_EQ(float(f.get_float(a + "rope.freq_base", 0)), p.rope_base);
  EXPECT_EQ(f.has(a + "attention.key_length"), p.write_head_dim);
  if (p.write_head_dim) {
    EXPECT_EQ(f.get_uint(a + "attention.value_length", 0), uint64_t(p.head_dim));
  }
  EXPECT_EQ(f.has(a + "rope.dimension_count"), p.arch == "llama");
  EXPECT_EQ(f.has(a + "expert_count"), p.is_moe());
  if (p.is_moe()) {
    EXPECT_EQ(f.get_uint(a + "expert_count", 0), uint64_t(p.n_expert));
    EXPECT_EQ(f.get_uint(a + "expert_used_count", 0), uint64_t(p.n_expert_used));
    EXPECT_EQ(f.get_uint(a + "expert_feed_forward_length", 0), uint64_t(p.n_ff_exp));
  }
  EXPECT_EQ(f.get_uint("general.file_type", 0), 7u);
  EXPECT_EQ(f.get_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(f.get_string("tokenizer.ggml.pre"), p.arch == "llama" ? "llama-bpe" : "qwen2");
  EXPECT_EQ(f.get("tokenizer.ggml.tokens").as_array().items.size(), size_t(p.n_vocab));
  EXPECT_EQ(f.get("tokenizer.ggml.token_type").as_array().items.size(), size_t(p.n_vocab));
  EXPECT_GT(f.get("tokenizer.ggml.merges").as_array().items.size(), 3000u);
  EXPECT_EQ(f.get_bool("tokenizer.ggml.add_bos_token", false), p.arch == "llama");
  EXPECT_LT(f.get_uint("tokenizer.ggml.eos_token_id", 1u << 30), uint64_t(p.n_vocab));
  EXPECT_FALSE(f.get_string("tokenizer.chat_template").empty());

  const auto plan = build_plan(p, parse_scheme("q8_0"), 0, false);
  ASSERT_EQ(f.tensors().size(), plan.tensors.size());
  for (size_t i = 0; i < plan.tensors.size(); i++) {
    const auto& got = f.tensors()[i];
    EXPECT_EQ(got.name, plan.tensors[i].name);
    EXPECT_EQ(got.dims, plan.tensors[i].dims) << got.name;
    EXPECT_EQ(got.type, plan.tensors[i].type) << got.name;
    EXPECT_EQ(got.type, got.dims.size() == 1 || got.name.find("gate_inp") != std::string::npos ? TensorType::F32
                                                                                                 : TensorType::Q8_0)
        << got.name;
  }
  // Norms are ones; weights look like N(0, 0.02^2).
  for (float x : row_floats(f, "output_norm.weight", 0)) EXPECT_EQ(x, 1.0f);
  const auto w = row_floats(f, "blk.1.attn_q.weight", 3);
  double sum = 0, sum_sq = 0;
  for (float x : w) {
    ASSERT_TRUE(std::isfinite(x));
    sum += x;
    sum_sq += double(x) * x;
  }
  const double mean = sum / double(w.size()), sd = std::sqrt(sum_sq / double(w.size()) - mean * mean);
  EXPECT_NEAR(sd, 0.02, 0.004);
  EXPECT_NEAR(mean, 0.0, 0.004);
}

INSTANTIATE_TEST_SUITE_P(All, TinyPreset, ::testing::Values("tiny-llama", "tiny-qwen2", "tiny-qwen3", "tiny-qwen3moe"));

TEST(MakeModel, LlamaRopeFreqsAreWrittenAsComputed) {
  gguf::File f(write_model("tiny-llama", "f32"));
  const auto got = row_floats(f, "rope_freqs.weight", 0);
  EXPECT_EQ(got, llama3_rope_factors(find_preset("tiny-llama")));
}

TEST(MakeModel, SameSeedSameBytesOtherSeedOtherWeights) {
  const std::string a = test::read_file(write_model("tiny-qwen3", "q4_K_M", 7));
  const std::string b = test::read_file(write_model("tiny-qwen3", "q4_K_M", 7));
  EXPECT_TRUE(a == b);
  gguf::File fa(write_model("tiny-qwen3", "f32", 7));
  gguf::File fc(write_model("tiny-qwen3", "f32", 8));
  EXPECT_NE(row_floats(fa, "blk.0.ffn_up.weight", 0), row_floats(fc, "blk.0.ffn_up.weight", 0));
  EXPECT_NE(row_floats(fa, "token_embd.weight", 100), row_floats(fc, "token_embd.weight", 100));
}

TEST(MakeModel, EveryTypeWritesALoadableFile) {
  for (const char* type : {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q2_K", "q3_K", "q4_K",
                           "q5_K", "q6_K", "q4_K_M"}) {
    gguf::File f(write_model("tiny-qwen3moe", type));
    EXPECT_EQ(f.get_uint("general.file_type", 999), uint64_t(parse_scheme(type).file_type)) << type;
    // Weights decode to finite values near N(0, 0.02^2).
    for (float x : row_floats(f, "blk.0.ffn_down_exps.weight", 5)) {
      ASSERT_TRUE(std::isfinite(x)) << type;
      EXPECT_LT(std::fabs(x), 0.2f) << type;
    }
  }
}

TEST(MakeModel, LayersOptionCutsTheModel) {
  MakeModelOptions o;
  o.preset = "tiny-qwen2";
  o.type = "f16";
  o.layers = 1;
  o.out = test::make_temp_dir("mm") + "/one.gguf";
  make_model(o);
  gguf::File f(o.out);
  EXPECT_EQ(f.get_uint("qwen2.block_count", 0), 1u);
  EXPECT_NE(f.find_tensor("blk.0.attn_q.weight"), nullptr);
  EXPECT_EQ(f.find_tensor("blk.1.attn_q.weight"), nullptr);
}

TEST(MakeModel, BadOptionsAreUsageErrors) {
  MakeModelOptions o;
  o.out = test::make_temp_dir("mm") + "/x.gguf";
  o.preset = "nope";
  EXPECT_THROW(make_model(o), UsageError);
  o.preset = "tiny-qwen3";
  o.type = "q9_9";
  EXPECT_THROW(make_model(o), UsageError);
  o.type = "f32";
  o.layers = -2;
  EXPECT_THROW(make_model(o), UsageError);
}

TEST(MakeModel, UnwritablePathFailsWithoutLeavingAFile) {
  MakeModelOptions o;
  o.preset = "tiny-qwen3";
  o.out = test::make_temp_dir("mm") + "/no/such/dir/x.gguf";
  try {
    make_model(o);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no/such/dir"), std::string::npos) << e.what();
  }
}

// Greedy robustness of --peaked, checked on the output layer alone: with the
// final hidden state equal to the last token's normalised embedding, the top
// logit must beat the runner-up by far more than Q8_0 rounding can move it.
double top_margin_ratio(const gguf::File& f, const std::string& out_name, int64_t token, int64_t* argmax) {
  auto h = row_floats(f, "token_embd.weight", token);
  double norm = 0;
  for (float x : h) norm += double(x) * x;
  norm = std::sqrt(norm / double(h.size()));
  const int64_t n_vocab = f.tensor(out_name).info->dims[1];
  double best = -1e30, second = -1e30, sum_abs = 0;
  for (int64_t j = 0; j < n_vocab; j++) {
    const auto w = row_floats(f, out_name, j);
    double logit = 0;
    for (size_t i = 0; i < h.size(); i++) logit += double(w[i]) * h[i] / norm;
    sum_abs += std::fabs(logit);
    if (logit > best) {
      second = best;
      best = logit;
      *argmax = j;
    } else if (logit > second) {
      second = logit;
    }
  }
  return (best - second) / (sum_abs / double(n_vocab));
}

TEST(MakeModel, PeakedOutputHasLargeMarginsAndWalksAChain) {
  gguf::File untied(write_model("tiny-qwen3moe", "q8_0", 3, true));
  EXPECT_TRUE(untied.get_bool("warden.modelgen.peaked", false));
  int64_t next = -1;
  const double ratio = top_margin_ratio(untied, "output.weight", 1000, &next);
  EXPECT_GT(ratio, 3.0);   // margin several times the typical logit size
  EXPECT_NE(next, 1000);   // untied: the chain moves to another token
  gguf::File tied(write_model("tiny-qwen3", "q8_0", 3, true));
  int64_t same = -1;
  EXPECT_GT(top_margin_ratio(tied, "token_embd.weight", 1000, &same), 3.0);
  EXPECT_EQ(same, 1000);   // tied: the model repeats its last token
  // Without --peaked the margins are those of random logits: small.
  gguf::File plain(write_model("tiny-qwen3moe", "q8_0", 3, false));
  int64_t any = -1;
  EXPECT_LT(top_margin_ratio(plain, "output.weight", 1000, &any), 1.0);
}

}  // namespace
}  // namespace warden::modelgen
