// quantize_file: round trips, the mixture applied to existing files,
// fallbacks, metadata copying, and bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "common/test_env.h"
#include "gguf/gguf.h"
#include "modelgen/make_model.h"
#include "modelgen/plan.h"
#include "modelgen/preset.h"
#include "modelgen/requantize.h"
#include "tensor/quant.h"
#include "util/error.h"

namespace warden::modelgen {
namespace {

using gguf::TensorType;
using gguf::Value;

std::string tiny_f32(const std::string& preset) {
  MakeModelOptions o;
  o.preset = preset;
  o.type = "f32";
  o.out = test::make_temp_dir("q") + "/" + preset + "-f32.gguf";
  make_model(o);
  return o.out;
}

std::vector<float> all_floats(const gguf::File& f, const gguf::TensorInfo& info) {
  std::vector<float> out(size_t(info.elements()));
  const auto view = f.view(info);
  const size_t row = gguf::row_bytes(info.type, info.dims[0]);
  for (int64_t r = 0; r < info.rows(); r++)
    tensor::dequantize_row(info.type, view.data + size_t(r) * row, out.data() + size_t(r * info.dims[0]), info.dims[0]);
  return out;
}

TEST(Quantize, F32ToQ8_0RoundTripStaysWithinTolerance) {
  const std::string in = tiny_f32("tiny-qwen3moe");
  const std::string out = test::make_temp_dir("q") + "/q8.gguf";
  const auto result = quantize_file(in, out, parse_scheme("q8_0"), 2);
  gguf::File a(in), b(out);
  EXPECT_EQ(result.tensors, a.tensors().size());
  EXPECT_EQ(b.get_uint("general.file_type", 0), 7u);
  // Metadata is copied (the vocabulary included).
  EXPECT_EQ(b.get("tokenizer.ggml.merges").as_string_array(), a.get("tokenizer.ggml.merges").as_string_array());
  EXPECT_EQ(b.get_string("tokenizer.chat_template"), a.get_string("tokenizer.chat_template"));
  ASSERT_EQ(a.tensors().size(), b.tensors().size());
  for (size_t i = 0; i < a.tensors().size(); i++) {
    const auto& ta = a.tensors()[i];
    const auto& tb = b.tensors()[i];
    EXPECT_EQ(ta.name, tb.name);
    EXPECT_EQ(ta.dims, tb.dims);
    const auto fa = all_floats(a, ta), fb = all_floats(b, tb);
    if (!is_quantizable(ta.name, ta.dims.size())) {
      EXPECT_EQ(tb.type, TensorType::F32) << ta.name;
      EXPECT_EQ(fa, fb) << ta.name;  // copied exactly
      continue;
    }
    EXPECT_EQ(tb.type, TensorType::Q8_0) << ta.name;
    // Q8_0: each value within half a step of its 32-block's scale (amax/127),
    // plus the rounding of that scale to fp16 (|q| <= 127 times 2^-11 relative).
    for (size_t block = 0; block < fa.size(); block += 32) {
      float amax = 0;
      for (size_t k = block; k < block + 32; k++) amax = std::max(amax, std::fabs(fa[k]));
      for (size_t k = block; k < block + 32; k++)
        ASSERT_LE(std::fabs(fa[k] - fb[k]), amax / 127.0f * (0.5f + 127.0f / 2048.0f) + 1e-7f) << ta.name << " at " << k;
    }
  }
}

TEST(Quantize, AppliesTheQ4KMMixtureToAnExistingFile) {
  const std::string in = tiny_f32("tiny-qwen3");
  const std::string out = test::make_temp_dir("q") + "/q4km.gguf";
  quantize_file(in, out, parse_scheme("Q4_K_M"), 2);
  gguf::File f(out);
  // Same types make-model gives for the same preset and scheme.
  const auto plan = build_plan(find_preset("tiny-qwen3"), parse_scheme("q4_K_M"), 0, false);
  ASSERT_EQ(f.tensors().size(), plan.tensors.size());
  for (size_t i = 0; i < plan.tensors.size(); i++) EXPECT_EQ(f.tensors()[i].type, plan.tensors[i].type) << plan.tensors[i].name;
  EXPECT_EQ(f.find_tensor("token_embd.weight")->type, TensorType::Q6_K);
  EXPECT_EQ(f.find_tensor("blk.0.attn_v.weight")->type, TensorType::Q4_K);  // use_more_bits(0, 2) is false
  EXPECT_EQ(f.find_tensor("blk.1.attn_v.weight")->type, TensorType::Q6_K);  // use_more_bits(1, 2) is true
  EXPECT_EQ(f.get_uint("general.file_type", 0), 15u);
}

TEST(Quantize, RequantizingAQuantizedFileWorksAndSameTypeIsCopied) {
  const std::string in = tiny_f32("tiny-llama");
  const std::string q8 = test::make_temp_dir("q") + "/q8.gguf";
  const std::string q8again = test::make_temp_dir("q") + "/q8b.gguf";
  const std::string q4 = test::make_temp_dir("q") + "/q4.gguf";
  quantize_file(in, q8, parse_scheme("q8_0"), 2);
  const auto again = quantize_file(q8, q8again, parse_scheme("q8_0"), 1);
  EXPECT_EQ(again.converted, 0u);
  EXPECT_EQ(test::read_file(q8), test::read_file(q8again));
  const auto r = quantize_file(q8, q4, parse_scheme("q4_0"), 2);
  EXPECT_GT(r.converted, 0u);
  gguf::File f(q4);
  EXPECT_EQ(f.find_tensor("blk.1.ffn_down.weight")->type, TensorType::Q4_0);
  EXPECT_EQ(f.find_tensor("rope_freqs.weight")->type, TensorType::F32);
}

// A hand-made file with awkward row lengths, as other converters produce.
std::string odd_shapes_file() {
  gguf::Writer w;
  w.set("general.architecture", Value::string("llama"));
  w.set("llama.block_count", Value::u32(1));
  std::vector<float> a(96 * 4, 0.5f), b(48 * 4, -0.25f), c(256 * 2, 1.0f);
  auto bytes = [](const std::vector<float>& v) {
    const auto* p = reinterpret_cast<const uint8_t*>(v.data());
    return std::vector<uint8_t>(p, p + v.size() * sizeof(float));
  };
  w.add_tensor("blk.0.attn_q.weight", {96, 4}, TensorType::F32, bytes(a));
  w.add_tensor("blk.0.ffn_up.weight", {48, 4}, TensorType::F32, bytes(b));
  w.add_tensor("blk.0.ffn_gate.weight", {256, 2}, TensorType::F32, bytes(c));
  const std::string path = test::make_temp_dir("q") + "/odd.gguf";
  w.write(path);
  return path;
}

TEST(Quantize, RowLengthsThatDoNotFitFallBackPerTensor) {
  const std::string out = test::make_temp_dir("q") + "/odd-q4k.gguf";
  const auto r = quantize_file(odd_shapes_file(), out, parse_scheme("q4_K"), 2);
  EXPECT_EQ(r.fallbacks, 2u);
  gguf::File f(out);
  EXPECT_EQ(f.find_tensor("blk.0.attn_q.weight")->type, TensorType::Q5_0);
  EXPECT_EQ(f.find_tensor("blk.0.ffn_up.weight")->type, TensorType::F16);
  EXPECT_EQ(f.find_tensor("blk.0.ffn_gate.weight")->type, TensorType::Q4_K);
  for (float x : all_floats(f, *f.find_tensor("blk.0.ffn_up.weight"))) EXPECT_EQ(x, -0.25f);
}

TEST(Quantize, UnconvertibleTensorTypeIsAnErrorNamingTheTensor) {
  gguf::Writer w;
  w.set("general.architecture", Value::string("llama"));
  w.add_tensor("blk.0.attn_q.weight", {32, 2}, TensorType::I32, std::vector<uint8_t>(32 * 2 * 4, 0));
  const std::string dir = test::make_temp_dir("q");
  w.write(dir + "/i32.gguf");
  try {
    quantize_file(dir + "/i32.gguf", dir + "/out.gguf", parse_scheme("q8_0"), 1);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("blk.0.attn_q.weight"), std::string::npos) << msg;
    EXPECT_NE(msg.find("i32.gguf"), std::string::npos) << msg;
  }
  EXPECT_FALSE(std::filesystem::exists(dir + "/out.gguf"));
}

TEST(Quantize, NonFiniteWeightsAreRejected) {
  gguf::Writer w;
  w.set("general.architecture", Value::string("llama"));
  std::vector<float> v(64, 0.1f);
  v[40] = std::nanf("");
  const auto* p = reinterpret_cast<const uint8_t*>(v.data());
  w.add_tensor("blk.0.attn_k.weight", {32, 2}, TensorType::F32, std::vector<uint8_t>(p, p + v.size() * 4));
  const std::string dir = test::make_temp_dir("q");
  w.write(dir + "/nan.gguf");
  try {
    quantize_file(dir + "/nan.gguf", dir + "/out.gguf", parse_scheme("q4_0"), 1);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("non-finite"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(dir + "/out.gguf"));
}

}  // namespace
}  // namespace warden::modelgen
