// Behaviour of every type through the public API: quantize -> dequantize
// error on realistic data, vec_dot against dequantize-then-dot, the
// vec_dot_type mapping, and clear errors for bad arguments.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "tensor/blocks.h"
#include "tensor/kernels.h"
#include "tensor/quant.h"
#include "util/error.h"

namespace warden::tensor {
namespace {

const std::vector<TensorType> kWeightTypes = {
    TensorType::F32,  TensorType::F16,  TensorType::BF16, TensorType::Q8_0, TensorType::Q4_0,
    TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1, TensorType::Q2_K, TensorType::Q3_K,
    TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K};

std::string name_of(TensorType t) { return std::string(gguf::type_name(t)); }

// Weight-like data: Gaussian with a per-row scale and a few outliers, as in
// trained matrices.
std::vector<float> weights(int64_t n, uint32_t seed, float sigma = 0.02f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, sigma);
  std::vector<float> x(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; i++) x[size_t(i)] = normal(rng) * (i % 97 == 13 ? 8.0f : 1.0f);
  return x;
}

std::vector<uint8_t> quantize(TensorType t, const std::vector<float>& x) {
  std::vector<uint8_t> q(gguf::row_bytes(t, int64_t(x.size())));
  quantize_row(t, x.data(), q.data(), int64_t(x.size()));
  return q;
}

std::vector<float> dequantize(TensorType t, const std::vector<uint8_t>& q, int64_t n) {
  std::vector<float> y(static_cast<size_t>(n));
  dequantize_row(t, q.data(), y.data(), n);
  return y;
}

double rms(const std::vector<float>& x) {
  double s = 0;
  for (float v : x) s += double(v) * v;
  return std::sqrt(s / double(x.size()));
}

// Root-mean-square error of the round trip relative to the data's RMS.
// Bounds are 1.25x what the reference algorithms achieve on this data (the
// outliers make it harder than plain Gaussian data), so a weaker scale search
// or a packing error fails them.
double round_trip_bound(TensorType t) {
  switch (t) {
    case TensorType::F32: return 0.0;
    case TensorType::F16: return 2.6e-4;
    case TensorType::BF16: return 2.1e-3;
    case TensorType::Q8_0: return 0.0105;
    case TensorType::Q8_1: return 0.0105;
    case TensorType::Q8_K: return 0.022;
    case TensorType::Q6_K: return 0.031;
    case TensorType::Q5_0: return 0.083;
    case TensorType::Q5_1: return 0.058;
    case TensorType::Q5_K: return 0.054;
    case TensorType::Q4_0: return 0.167;
    case TensorType::Q4_1: return 0.118;
    case TensorType::Q4_K: return 0.11;
    case TensorType::Q3_K: return 0.233;
    case TensorType::Q2_K: return 0.425;
    default: return 0.0;
  }
}

class EveryType : public ::testing::TestWithParam<TensorType> {};

TEST_P(EveryType, RoundTripErrorIsWithinTheTypesBound) {
  const TensorType t = GetParam();
  const int64_t n = 4096;
  const auto x = weights(n, 1234);
  const auto y = dequantize(t, quantize(t, x), n);
  std::vector<float> err(x.size());
  for (size_t i = 0; i < x.size(); i++) err[i] = y[i] - x[i];
  const double relative = rms(err) / rms(x);
  EXPECT_LE(relative, round_trip_bound(t)) << name_of(t);
  RecordProperty("relative_rmse_" + name_of(t), std::to_string(relative));
}

TEST_P(EveryType, ZeroRowStaysZero) {
  const TensorType t = GetParam();
  const int64_t n = 512;
  const std::vector<float> x(size_t(n), 0.0f);
  for (float v : dequantize(t, quantize(t, x), n)) ASSERT_EQ(v, 0.0f) << name_of(t);
}

TEST_P(EveryType, ConstantRowIsReproducedClosely) {
  const TensorType t = GetParam();
  const int64_t n = 512;
  const std::vector<float> x(size_t(n), -0.75f);
  for (float v : dequantize(t, quantize(t, x), n)) ASSERT_NEAR(v, -0.75f, 0.75f * 0.01f) << name_of(t);
}

TEST_P(EveryType, NonFiniteInputIsMemorySafe) {
  // Not meaningful, but must not crash or write outside the row.
  const TensorType t = GetParam();
  const int64_t n = 256;
  auto x = weights(n, 7);
  x[3] = std::nanf("");
  x[100] = INFINITY;
  EXPECT_EQ(first_non_finite(x.data(), n), 3);
  std::vector<uint8_t> q(gguf::row_bytes(t, n) + 16, 0xAB);
  quantize_row(t, x.data(), q.data(), n);
  for (size_t i = q.size() - 16; i < q.size(); i++) ASSERT_EQ(q[i], 0xAB);
}

INSTANTIATE_TEST_SUITE_P(Tensor, EveryType,
                         ::testing::Values(TensorType::F32, TensorType::F16, TensorType::BF16, TensorType::Q8_0,
                                           TensorType::Q8_1, TensorType::Q4_0, TensorType::Q4_1, TensorType::Q5_0,
                                           TensorType::Q5_1, TensorType::Q2_K, TensorType::Q3_K, TensorType::Q4_K,
                                           TensorType::Q5_K, TensorType::Q6_K, TensorType::Q8_K),
                         [](const auto& info) { return name_of(info.param); });

// The part of a *_1 dot that y's stored s = fp16(d * sum(q)) cannot reproduce
// exactly: sum over blocks of |m_x| * |s - d * sum(q)|.
template <typename Block>
double offset_rounding_allowance(const std::vector<uint8_t>& xq, const std::vector<uint8_t>& yq) {
  const auto* x = reinterpret_cast<const Block*>(xq.data());
  const auto* y = reinterpret_cast<const block_q8_1*>(yq.data());
  double allowance = 0;
  for (size_t b = 0; b < yq.size() / sizeof(block_q8_1); b++) {
    int sum = 0;
    for (int j = 0; j < kQK; j++) sum += y[b].qs[j];
    const double exact = double(fp16_to_fp32(y[b].d)) * sum;
    allowance += std::fabs(fp16_to_fp32(x[b].m)) * std::fabs(fp16_to_fp32(y[b].s) - exact);
  }
  return allowance;
}

class WeightType : public ::testing::TestWithParam<TensorType> {};

TEST_P(WeightType, VecDotMatchesDequantizeThenF32Dot) {
  const TensorType t = GetParam();
  const TensorType yt = vec_dot_type(t);
  for (int64_t n : {int64_t(256), int64_t(4096)}) {
    const auto xq = quantize(t, weights(n, 42));
    const auto yq = quantize(yt, weights(n, 43, 1.0f));
    const auto xf = dequantize(t, xq, n);
    const auto yf = dequantize(yt, yq, n);
    double expected = 0, magnitude = 0;
    for (int64_t i = 0; i < n; i++) {
      expected += double(xf[size_t(i)]) * yf[size_t(i)];
      magnitude += std::fabs(double(xf[size_t(i)]) * yf[size_t(i)]);
    }
    double tolerance = 2e-5 * magnitude;
    if (t == TensorType::Q4_1) tolerance += offset_rounding_allowance<block_q4_1>(xq, yq);
    if (t == TensorType::Q5_1) tolerance += offset_rounding_allowance<block_q5_1>(xq, yq);
    EXPECT_NEAR(vec_dot(t, xq.data(), yq.data(), n), expected, tolerance) << name_of(t) << " n=" << n;
  }
}

INSTANTIATE_TEST_SUITE_P(Tensor, WeightType, ::testing::ValuesIn(kWeightTypes),
                         [](const auto& info) { return name_of(info.param); });

TEST(TensorApi, VecDotTypesAreGgmls) {
  EXPECT_EQ(vec_dot_type(TensorType::F32), TensorType::F32);
  EXPECT_EQ(vec_dot_type(TensorType::F16), TensorType::F16);
  EXPECT_EQ(vec_dot_type(TensorType::BF16), TensorType::BF16);
  for (auto t : {TensorType::Q4_0, TensorType::Q5_0, TensorType::Q8_0}) EXPECT_EQ(vec_dot_type(t), TensorType::Q8_0);
  for (auto t : {TensorType::Q4_1, TensorType::Q5_1}) EXPECT_EQ(vec_dot_type(t), TensorType::Q8_1);
  for (auto t : {TensorType::Q2_K, TensorType::Q3_K, TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K})
    EXPECT_EQ(vec_dot_type(t), TensorType::Q8_K);
}

TEST(TensorApi, CanComputeEveryWeightTypeButNotActivationOrIntegerTypes) {
  for (auto t : kWeightTypes) EXPECT_TRUE(can_compute(t)) << name_of(t);
  for (auto t : {TensorType::Q8_1, TensorType::Q8_K}) {
    EXPECT_FALSE(can_compute(t));
    EXPECT_TRUE(can_convert(t));
  }
  for (auto t : {TensorType::I8, TensorType::I32, TensorType::F64, TensorType(99)}) {
    EXPECT_FALSE(can_compute(t));
    EXPECT_FALSE(can_convert(t));
  }
}

TEST(TensorApi, BadArgumentsThrowOneClearError) {
  std::vector<float> x(512, 1.0f);
  std::vector<uint8_t> q(1024);
  try {
    dequantize_row(TensorType::Q4_K, q.data(), x.data(), 300);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("300"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("q4_K"), std::string::npos) << e.what();
  }
  EXPECT_THROW(quantize_row(TensorType::Q8_0, x.data(), q.data(), 33), Error);
  EXPECT_THROW(vec_dot(TensorType::Q4_0, q.data(), q.data(), -32), Error);
  EXPECT_THROW(dequantize_row(TensorType::I32, q.data(), x.data(), 4), Error);
  EXPECT_THROW(dequantize_row(TensorType(99), q.data(), x.data(), 4), Error);
  EXPECT_THROW(vec_dot_type(TensorType::Q8_K), Error);
  EXPECT_THROW(vec_dot(TensorType::Q8_1, q.data(), q.data(), 32), Error);
}

TEST(TensorApi, EmptyRowsAreFine) {
  EXPECT_EQ(vec_dot(TensorType::Q4_K, nullptr, nullptr, 0), 0.0f);
  dequantize_row(TensorType::Q6_K, nullptr, nullptr, 0);
  quantize_row(TensorType::Q2_K, nullptr, nullptr, 0);
}

TEST(TensorApi, ActiveKernelsAgreeWithScalarOnEveryEntry) {
  // Any faster kernel set must keep the scalar results (bytes for quantizers
  // and dequantizers; dots within float rounding).
  const KernelTable& active = active_kernels();
  const KernelTable& scalar = scalar_kernels();
  EXPECT_STRNE(kernel_set_name(), "");
  const int64_t n = 1024;
  const auto x = weights(n, 5);
  for (auto t : kWeightTypes) {
    const TypeKernels& a = *active.find(t);
    const TypeKernels& s = *scalar.find(t);
    std::vector<uint8_t> qa(gguf::row_bytes(t, n)), qs(qa.size());
    a.quantize(x.data(), qa.data(), n);
    s.quantize(x.data(), qs.data(), n);
    EXPECT_EQ(qa, qs) << name_of(t);
    std::vector<float> da(static_cast<size_t>(n)), ds(static_cast<size_t>(n));
    a.dequantize(qa.data(), da.data(), n);
    s.dequantize(qs.data(), ds.data(), n);
    EXPECT_EQ(da, ds) << name_of(t);
  }
}

}  // namespace
}  // namespace warden::tensor
