// Agreement with ggml's reference implementation, on data produced by
// llama.cpp's libggml-base (see tests/data/tensor/README.md): our dequantize
// of ggml's bytes gives ggml's floats bit for bit, and our quantizer writes
// ggml's bytes for every type.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "common/test_env.h"
#include "tensor/quant.h"

namespace warden::tensor {
namespace {

constexpr int64_t kCount = 2048;  // elements in every fixture row

std::string fixture(const std::string& name) {
  return test::read_file(test::source_path("tests/data/tensor/" + name));
}

std::vector<float> floats_of(const std::string& bytes) {
  std::vector<float> v(bytes.size() / sizeof(float));
  std::memcpy(v.data(), bytes.data(), v.size() * sizeof(float));
  return v;
}

std::vector<float> input() {
  auto v = floats_of(fixture("input.f32"));
  EXPECT_EQ(int64_t(v.size()), kCount);
  return v;
}

// Compares bit patterns, so -0.0 vs 0.0 or differing NaNs count as differences.
int64_t first_bit_difference(const std::vector<float>& a, const std::vector<float>& b) {
  for (size_t i = 0; i < a.size(); i++)
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0) return int64_t(i);
  return -1;
}

class ReferenceTest : public ::testing::TestWithParam<TensorType> {
 protected:
  std::string name() const { return std::string(gguf::type_name(GetParam())); }
};
using ReferenceDequantize = ReferenceTest;
using ReferenceQuantize = ReferenceTest;

TEST_P(ReferenceDequantize, OfGgmlBytesEqualsGgmlFloatsBitForBit) {
  const TensorType t = GetParam();
  const std::string bytes = fixture(name() + ".bin");
  ASSERT_EQ(bytes.size(), gguf::row_bytes(t, kCount));
  const std::vector<float> expected = floats_of(fixture(name() + ".f32"));
  ASSERT_EQ(int64_t(expected.size()), kCount);
  std::vector<float> ours(kCount);
  dequantize_row(t, bytes.data(), ours.data(), kCount);
  const int64_t diff = first_bit_difference(ours, expected);
  EXPECT_EQ(diff, -1) << name() << " element " << diff << ": ours " << ours[size_t(diff)] << " ggml "
                      << expected[size_t(diff)];
}

TEST_P(ReferenceQuantize, WritesGgmlBytes) {
  const TensorType t = GetParam();
  const std::vector<float> x = input();
  const std::string expected = fixture(name() + ".bin");
  std::string ours(gguf::row_bytes(t, kCount), '\0');
  quantize_row(t, x.data(), ours.data(), kCount);
  ASSERT_EQ(ours.size(), expected.size());
  const auto block_bytes = gguf::type_info(t)->type_size;
  for (size_t i = 0; i < ours.size(); i++) {
    if (ours[i] != expected[i]) {
      ADD_FAILURE() << name() << ": first differing byte " << i << " (block " << i / block_bytes << ")";
      break;
    }
  }
}

std::string param_name(const ::testing::TestParamInfo<TensorType>& info) {
  return std::string(gguf::type_name(info.param));
}

// ggml cannot dequantize q8_1, so it has no .f32 fixture.
INSTANTIATE_TEST_SUITE_P(Tensor, ReferenceDequantize,
                         ::testing::Values(TensorType::F16, TensorType::BF16, TensorType::Q8_0, TensorType::Q4_0,
                                           TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1, TensorType::Q2_K,
                                           TensorType::Q3_K, TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K,
                                           TensorType::Q8_K),
                         param_name);

INSTANTIATE_TEST_SUITE_P(Tensor, ReferenceQuantize,
                         ::testing::Values(TensorType::F16, TensorType::BF16, TensorType::Q8_0, TensorType::Q8_1,
                                           TensorType::Q4_0, TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1,
                                           TensorType::Q2_K, TensorType::Q3_K, TensorType::Q4_K, TensorType::Q5_K,
                                           TensorType::Q6_K, TensorType::Q8_K),
                         param_name);

}  // namespace
}  // namespace warden::tensor
