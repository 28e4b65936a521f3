// The SIMD kernel sets against the scalar reference, entry by entry:
// activation quantizers must give identical bytes; dots may differ only by
// float rounding, at most 1e-5 of sum |x_i * y_i| (the integer parts are
// exact; only the order of the float accumulation across blocks changes).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "tensor/kernels.h"
#include "tensor/quant.h"

namespace warden::tensor {
namespace {

const std::vector<TensorType> kWeightTypes = {
    TensorType::F32,  TensorType::F16,  TensorType::BF16, TensorType::Q8_0, TensorType::Q4_0,
    TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1, TensorType::Q2_K, TensorType::Q3_K,
    TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K};
const std::vector<TensorType> kActivationTypes = {TensorType::Q8_0, TensorType::Q8_1, TensorType::Q8_K};

std::string name_of(TensorType t) { return std::string(gguf::type_name(t)); }

std::vector<float> gaussian(int64_t n, uint32_t seed, float sigma) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, sigma);
  std::vector<float> x(static_cast<size_t>(n), 0.0f);
  for (auto& v : x) v = normal(rng);
  return x;
}

// Rows that stress the quantizers' rounding and maximum search: exact ties
// (k + 0.5 steps), a repeated extreme of both signs, all-zero blocks, tiny
// and huge magnitudes.
std::vector<std::vector<float>> activation_rows(int64_t n) {
  std::vector<std::vector<float>> rows;
  for (uint32_t seed = 1; seed <= 4; seed++) rows.push_back(gaussian(n, seed, seed == 4 ? 3e4f : 1.0f));
  std::vector<float> ties(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; i++) ties[size_t(i)] = float(int(i % 255) - 127) + ((i % 3) ? 0.5f : 0.0f);
  rows.push_back(ties);
  std::vector<float> extremes = gaussian(n, 9, 1e-3f);
  for (int64_t i = 0; i < n; i += 40) extremes[size_t(i)] = (i / 40) % 2 ? -5.0f : 5.0f;
  rows.push_back(extremes);
  std::vector<float> sparse(static_cast<size_t>(n), 0.0f);
  for (int64_t i = 300; i < n; i += 7) sparse[size_t(i)] = 1e-30f * float(i);
  rows.push_back(sparse);
  return rows;
}

class SimdKernels : public ::testing::Test {
 protected:
  void SetUp() override {
#if defined(WARDEN_HAVE_AVX2_KERNELS)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")) {
      sets_.push_back(&avx2_kernels());
      return;
    }
#endif
    GTEST_SKIP() << "this CPU has no SIMD kernel set to compare";
  }
  std::vector<const KernelTable*> sets_;
};

TEST_F(SimdKernels, ActivationQuantizersMatchScalarBytes) {
  const int64_t n = 1024;
  for (const KernelTable* set : sets_) {
    for (TensorType t : kActivationTypes) {
      for (const auto& row : activation_rows(n)) {
        std::vector<uint8_t> fast(gguf::row_bytes(t, n)), ref(fast.size());
        set->find(t)->quantize(row.data(), fast.data(), n);
        scalar_kernels().find(t)->quantize(row.data(), ref.data(), n);
        EXPECT_EQ(fast, ref) << set->name << " " << name_of(t);
      }
    }
  }
}

TEST_F(SimdKernels, DotsMatchScalarWithinRounding) {
  const int64_t n = 2048;
  for (const KernelTable* set : sets_) {
    for (TensorType t : kWeightTypes) {
      const TypeKernels& ref = *scalar_kernels().find(t);
      const TypeKernels& fast = *set->find(t);
      ASSERT_NE(fast.vec_dot, nullptr) << name_of(t);
      ASSERT_EQ(fast.dot_type, ref.dot_type) << name_of(t);
      const TypeKernels& act = *scalar_kernels().find(ref.dot_type);
      for (uint32_t seed = 1; seed <= 5; seed++) {
        const auto w = gaussian(n, 100 + seed, 0.02f);
        const auto a = gaussian(n, 200 + seed, seed == 5 ? 50.0f : 1.0f);
        std::vector<uint8_t> wq(gguf::row_bytes(t, n)), aq(gguf::row_bytes(ref.dot_type, n));
        ref.quantize(w.data(), wq.data(), n);
        act.quantize(a.data(), aq.data(), n);
        // Magnitude scale of the sum, from the values the quants stand for.
        std::vector<float> wd(static_cast<size_t>(n)), ad(static_cast<size_t>(n));
        ref.dequantize(wq.data(), wd.data(), n);
        act.dequantize(aq.data(), ad.data(), n);
        double magnitude = 0;
        for (int64_t i = 0; i < n; i++) magnitude += std::fabs(double(wd[size_t(i)]) * double(ad[size_t(i)]));
        const float expected = ref.vec_dot(wq.data(), aq.data(), n);
        const float got = fast.vec_dot(wq.data(), aq.data(), n);
        EXPECT_NEAR(got, expected, 1e-5 * magnitude + 1e-30) << set->name << " " << name_of(t) << " seed " << seed;
      }
    }
  }
}

TEST_F(SimdKernels, KQuantDotsOfOneSuperBlockEqualScalar) {
  // One super-block: the K-quant kernels sum its integers exactly and then do
  // the scalar code's float operations, so the result is the same float.
  for (const KernelTable* set : sets_) {
    for (TensorType t : {TensorType::Q2_K, TensorType::Q3_K, TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K}) {
      const TypeKernels& ref = *scalar_kernels().find(t);
      const auto info = gguf::type_info(t);
      const int64_t n = info->block_size;
      std::vector<float> w(static_cast<size_t>(n)), a(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; i++) {
        w[size_t(i)] = float(int(i % 7) - 3);
        a[size_t(i)] = float(int(i % 5) - 2);
      }
      std::vector<uint8_t> wq(gguf::row_bytes(t, n)), aq(gguf::row_bytes(ref.dot_type, n));
      ref.quantize(w.data(), wq.data(), n);
      scalar_kernels().find(ref.dot_type)->quantize(a.data(), aq.data(), n);
      EXPECT_EQ(set->find(t)->vec_dot(wq.data(), aq.data(), n), ref.vec_dot(wq.data(), aq.data(), n))
          << set->name << " " << name_of(t);
    }
  }
}

TEST_F(SimdKernels, FourRowDotsEqualSingleDots) {
  const int64_t n = 1024;
  for (const KernelTable* set : sets_) {
    for (TensorType t : kWeightTypes) {
      const TypeKernels& k = *set->find(t);
      if (!k.vec_dot_4) continue;
      std::vector<uint8_t> wq(gguf::row_bytes(t, n));
      const size_t stride = gguf::row_bytes(k.dot_type, n);
      std::vector<uint8_t> aq(4 * stride);
      const auto w = gaussian(n, 7, 0.02f);
      scalar_kernels().find(t)->quantize(w.data(), wq.data(), n);
      for (int r = 0; r < 4; r++) {
        const auto a = gaussian(n, 20 + uint32_t(r), 1.0f + float(r));
        scalar_kernels().find(k.dot_type)->quantize(a.data(), aq.data() + size_t(r) * stride, n);
      }
      float out[4];
      k.vec_dot_4(wq.data(), aq.data(), stride, n, out);
      for (int r = 0; r < 4; r++)
        EXPECT_EQ(out[r], k.vec_dot(wq.data(), aq.data() + size_t(r) * stride, n)) << name_of(t) << " row " << r;
    }
  }
}

}  // namespace
}  // namespace warden::tensor
