// The SIMD kernel sets against the scalar reference, entry by entry:
// activation quantizers must give identical bytes; dots may differ only by
// float rounding, at most 1e-5 of sum |x_i * y_i| (the integer parts are
// exact; only the order of the float accumulation across blocks changes).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "tensor/kernels.h"
#include "tensor/quant.h"
#include "tensor/vector_ops.h"

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

// n_pos rows of `width` elements of `type` (F16 or Q8_0), row_bytes apart
// (the bytes past each row hold a marker), converted from gaussian floats; the
// floats they stand for in `exact`.
struct TestCacheRows {
  TestCacheRows(TensorType type, int64_t n_pos, int64_t width, size_t row_bytes, uint32_t seed)
      : bytes(size_t(n_pos) * row_bytes, 0xA5), exact(size_t(n_pos * width)) {
    const auto x = gaussian(n_pos * width, seed, 1.0f);
    for (int64_t p = 0; p < n_pos; p++) {
      uint8_t* row = bytes.data() + size_t(p) * row_bytes;
      scalar_kernels().find(type)->quantize(x.data() + p * width, row, width);
      scalar_kernels().find(type)->dequantize(row, exact.data() + p * width, width);
    }
    rows = {bytes.data(), type, row_bytes};
  }
  std::vector<uint8_t> bytes;
  std::vector<float> exact;
  CacheRows rows;
};

// Rows that stress the quantizers' rounding and maximum search: exact ties
// (k + 0.5 steps), a repeated extreme of both signs, far apart and close
// together, all-zero blocks, tiny and huge magnitudes.
std::vector<std::vector<float>> activation_rows(int64_t n) {
  std::vector<std::vector<float>> rows;
  for (uint32_t seed = 1; seed <= 4; seed++) rows.push_back(gaussian(n, seed, seed == 4 ? 3e4f : 1.0f));
  std::vector<float> ties(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; i++) ties[size_t(i)] = float(int(i % 255) - 127) + ((i % 3) ? 0.5f : 0.0f);
  rows.push_back(ties);
  std::vector<float> extremes = gaussian(n, 9, 1e-3f);
  for (int64_t i = 0; i < n; i += 40) extremes[size_t(i)] = (i / 40) % 2 ? -5.0f : 5.0f;
  rows.push_back(extremes);
  // Both signs of the extreme a few elements apart, the negative first
  // (the quantizers keep the first; SIMD searches compare eight at a time).
  std::vector<float> neighbours = gaussian(n, 11, 1e-3f);
  for (int64_t i = 0; i + 6 < n; i += 64) neighbours[size_t(i + 2)] = -5.0f, neighbours[size_t(i + 6)] = 5.0f;
  rows.push_back(neighbours);
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
      // The AVX-512 sets replace some of these kernels (decode attention).
      if (__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl") &&
          __builtin_cpu_supports("avx512bw"))
        sets_.push_back(&avx512vnni_kernels());
      return;
    }
#endif
    GTEST_SKIP() << "this CPU has no SIMD kernel set to compare";
  }
  std::vector<const KernelTable*> sets_;
};

TEST_F(SimdKernels, ActivationQuantizersMatchScalarBytes) {
  // 1120: 35 blocks of 32, so the Q8_0 quantizer's eight-block batches end
  // in a remainder too.
  for (int64_t n : {int64_t(1024), int64_t(1120)}) {
    for (const KernelTable* set : sets_) {
      for (TensorType t : kActivationTypes) {
        if (n % gguf::type_info(t)->block_size != 0) continue;
        for (const auto& row : activation_rows(n)) {
          std::vector<uint8_t> fast(gguf::row_bytes(t, n)), ref(fast.size());
          set->find(t)->quantize(row.data(), fast.data(), n);
          scalar_kernels().find(t)->quantize(row.data(), ref.data(), n);
          EXPECT_EQ(fast, ref) << set->name << " " << name_of(t) << " " << n;
        }
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

TEST_F(SimdKernels, AttentionMatchesScalarWithinRounding) {
  // Shapes: GQA groups of 1..4 and 7 query heads, head sizes with and without a
  // SIMD-width multiple, position counts around the 8-key steps, and scores
  // large enough that exp underflows for most positions; f16 and Q8_0 keys and
  // values in every combination where the head sizes allow Q8_0 (multiples of
  // 32), rows padded apart.
  struct Shape {
    int n_q;
    int64_t d, dv, n_pos;
    float spread;
  };
  for (const KernelTable* set : sets_) {
    for (const Shape sh : {Shape{2, 128, 128, 1, 1}, Shape{1, 64, 64, 7, 1}, Shape{3, 64, 32, 19, 1},
                           Shape{2, 128, 128, 513, 1}, Shape{2, 12, 20, 9, 1}, Shape{2, 64, 64, 40, 60},
                           Shape{4, 64, 64, 21, 1}, Shape{7, 32, 48, 10, 1}, Shape{4, 128, 128, 77, 3},
                           Shape{1, 256, 256, 33, 1}}) {
      for (TensorType kt : {TensorType::F16, TensorType::Q8_0}) {
        for (TensorType vt : {TensorType::F16, TensorType::Q8_0}) {
          if ((kt == TensorType::Q8_0 && sh.d % 32 != 0) || (vt == TensorType::Q8_0 && sh.dv % 32 != 0)) continue;
          const TestCacheRows k(kt, sh.n_pos, sh.d, gguf::row_bytes(kt, sh.d) + 40, 32);
          const TestCacheRows v(vt, sh.n_pos, sh.dv, gguf::row_bytes(vt, sh.dv) + 34, 33);
          const auto q = gaussian(sh.n_q * sh.d, 31, sh.spread);
          std::vector<float> expected(size_t(sh.n_q * sh.dv)), got(expected.size(), -1.0f);
          const float scale = 1.0f / std::sqrt(float(sh.d));
          scalar_kernels().attend(q.data(), sh.n_q, sh.d, k.rows, v.rows, sh.dv, sh.n_pos, scale, expected.data());
          set->attend(q.data(), sh.n_q, sh.d, k.rows, v.rows, sh.dv, sh.n_pos, scale, got.data());
          // The outputs are convex combinations of values of magnitude ~1.
          for (size_t i = 0; i < got.size(); i++)
            EXPECT_NEAR(got[i], expected[i], 2e-5)
                << set->name << " keys " << name_of(kt) << " values " << name_of(vt) << " n_q " << sh.n_q << " d "
                << sh.d << " positions " << sh.n_pos << " element " << i;

          // A prefill run over the same cache: tokens of n_q query heads each,
          // token t attending n_pos - (tokens - 1 - t) positions; the last
          // token's rows are the queries above.
          const int64_t tokens = std::min<int64_t>(3, sh.n_pos), rows = tokens * sh.n_q;
          auto qr = gaussian(rows * sh.d, 34, sh.spread);
          std::copy(q.begin(), q.end(), qr.end() - sh.n_q * sh.d);
          std::vector<int64_t> n_pos(static_cast<size_t>(rows));
          for (int64_t i = 0; i < rows; i++) n_pos[size_t(i)] = sh.n_pos - (tokens - 1 - i / sh.n_q);
          std::vector<float> want(size_t(rows * sh.dv)), run(want.size(), -1.0f);
          scalar_kernels().attend_causal(qr.data(), rows, n_pos.data(), sh.d, k.rows, v.rows, sh.dv, scale,
                                         want.data());
          set->attend_causal(qr.data(), rows, n_pos.data(), sh.d, k.rows, v.rows, sh.dv, scale, run.data());
          for (size_t i = 0; i < run.size(); i++)
            EXPECT_NEAR(run[i], want[i], 2e-5) << set->name << " run of " << rows << " rows, keys " << name_of(kt)
                                               << " values " << name_of(vt) << " d " << sh.d << " positions "
                                               << sh.n_pos << " element " << i;
          for (size_t i = 0; i < expected.size(); i++)
            EXPECT_NEAR(run[run.size() - expected.size() + i], expected[i], 2e-5)
                << set->name << " the run's last token vs attend, element " << i;
        }
      }
    }
  }
}

TEST_F(SimdKernels, AttendCausalCoversEveryGroupPartAndBlock) {
  // The run goes as groups of four rows by up to three 8-float chunks over
  // blocks of 128 positions: every row count up to five groups (the last
  // partial or full), value widths that leave each chunk tail, and rows
  // staggered so groups attend different numbers of key panels and blocks
  // and the causal mask cuts inside a panel and a block.
  const int64_t d = 64, n_pos = 300;
  for (int64_t dv : {8, 16, 24, 32, 40, 48, 128}) {
    const TestCacheRows k(TensorType::F16, n_pos, d, gguf::row_bytes(TensorType::F16, d) + 16, 51);
    const TestCacheRows v(TensorType::F16, n_pos, dv, gguf::row_bytes(TensorType::F16, dv) + 16, 52);
    const auto q = gaussian(20 * d, 53, 2.0f);
    int64_t positions[20];
    for (int i = 0; i < 20; i++) positions[i] = n_pos - (37 * i) % 299;  // 300, 263, ..., 4 at the least
    for (const KernelTable* set : sets_) {
      for (int rows = 1; rows <= 20; rows++) {
        std::vector<float> want(size_t(rows * dv)), got(want.size(), -1.0f);
        scalar_kernels().attend_causal(q.data(), rows, positions, d, k.rows, v.rows, dv, 0.125f, want.data());
        set->attend_causal(q.data(), rows, positions, d, k.rows, v.rows, dv, 0.125f, got.data());
        for (size_t i = 0; i < got.size(); i++)
          EXPECT_NEAR(got[i], want[i], 2e-5) << set->name << " rows " << rows << " dv " << dv << " element " << i;
      }
    }
  }
}

TEST_F(SimdKernels, AttendCausalRowsAreIndependent) {
  // A row gets the same bits alone as among the others of its run (its
  // group's other rows may attend further, into blocks it does not reach).
  const int64_t d = 128, dv = 128, n_pos = 700, rows = 64;
  const TestCacheRows k(TensorType::F16, n_pos, d, gguf::row_bytes(TensorType::F16, d), 61);
  const TestCacheRows v(TensorType::Q8_0, n_pos, dv, gguf::row_bytes(TensorType::Q8_0, dv), 62);
  const auto q = gaussian(rows * d, 63, 2.0f);
  std::vector<int64_t> positions(static_cast<size_t>(rows));
  for (int64_t i = 0; i < rows; i++) positions[size_t(i)] = n_pos - 11 * i - i % 3;  // 700 ... 7
  const size_t n_out = size_t(rows * dv);
  for (const KernelTable* set : sets_) {
    std::vector<float> whole(n_out, -1.0f);
    set->attend_causal(q.data(), rows, positions.data(), d, k.rows, v.rows, dv, 0.09f, whole.data());
    for (int64_t chunk : {1, 3, 8}) {
      std::vector<float> split(n_out, -1.0f);
      for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
        const int64_t n = std::min(chunk, rows - r0);
        set->attend_causal(q.data() + r0 * d, n, positions.data() + r0, d, k.rows, v.rows, dv, 0.09f,
                           split.data() + r0 * dv);
      }
      EXPECT_EQ(std::memcmp(split.data(), whole.data(), n_out * sizeof(float)), 0)
          << set->name << ": rows in runs of " << chunk << " differ from one run of " << rows;
    }
  }
}

TEST_F(SimdKernels, KeyPanelsHoldEachKeyAtItsPlace) {
  // Exact conversions (a Q8_0 code times its f16 scale fits a float), so
  // every set gives the same bits: element j of position p at
  // (p / 8) * 8 * d + j * 8 + p % 8, and zero padding up to the next multiple
  // of eight positions (every float written).
  for (const KernelTable* set : sets_) {
    for (TensorType type : {TensorType::F16, TensorType::Q8_0}) {
      for (int64_t d : {8, 12, 32, 64, 128}) {
        if (type == TensorType::Q8_0 && d % 32 != 0) continue;
        for (int64_t n_pos : {1, 8, 13, 64}) {
          const TestCacheRows k(type, n_pos, d, gguf::row_bytes(type, d) + 24, 54);
          std::vector<float> got(size_t(key_panel_floats(n_pos, d)), NAN);
          set->key_panels(k.rows, n_pos, d, got.data());
          const int64_t padded = (n_pos + 7) / 8 * 8;
          ASSERT_EQ(int64_t(got.size()), padded * d);
          for (int64_t p = 0; p < padded; p++)
            for (int64_t j = 0; j < d; j++)
              EXPECT_EQ(got[size_t(p / 8 * 8 * d + j * 8 + p % 8)], p < n_pos ? k.exact[size_t(p * d + j)] : 0.0f)
                  << set->name << " " << name_of(type) << " d " << d << " positions " << n_pos << " position " << p
                  << " element " << j;
        }
      }
    }
  }
}

TEST_F(SimdKernels, HalfConversionEqualsScalarBits) {
  // Ties, subnormals, overflow to infinity and signed zeros included.
  std::vector<float> x = gaussian(1000, 41, 300.0f);
  for (float v : {0.0f, -0.0f, 65504.0f, 65519.0f, 65520.0f, -1e6f, 6e-8f, 3e-8f, 1e-5f, 1.0009765625f + 0.00048828125f,
                  INFINITY, -INFINITY})
    x.push_back(v);
  for (const KernelTable* set : sets_) {
    std::vector<uint16_t> expected(x.size()), got(x.size());
    scalar_kernels().f32_to_f16_row(x.data(), expected.data(), int64_t(x.size()));
    set->f32_to_f16_row(x.data(), got.data(), int64_t(x.size()));
    for (size_t i = 0; i < x.size(); i++) EXPECT_EQ(got[i], expected[i]) << set->name << " value " << x[i];
  }
}

TEST_F(SimdKernels, SwigluMatchesScalarWithinRounding) {
  std::vector<float> gate = gaussian(1003, 42, 4.0f), up = gaussian(1003, 43, 1.0f);
  for (float g : {-200.0f, -90.0f, -20.0f, 0.0f, 20.0f, 90.0f, 200.0f}) {
    gate.push_back(g);
    up.push_back(1.5f);
  }
  for (const KernelTable* set : sets_) {
    std::vector<float> expected(gate.size()), got(gate.size());
    scalar_kernels().swiglu(gate.data(), up.data(), expected.data(), int64_t(gate.size()));
    set->swiglu(gate.data(), up.data(), got.data(), int64_t(gate.size()));
    for (size_t i = 0; i < gate.size(); i++)
      EXPECT_NEAR(got[i], expected[i], 1e-6f * std::fabs(expected[i]) + 1e-30f) << set->name << " gate " << gate[i];
  }
}

TEST_F(SimdKernels, RmsNormMatchesScalarWithinRounding) {
  for (int64_t n : {1, 7, 8, 128, 1003, 4096}) {
    std::vector<float> x = gaussian(n, 44, 3.0f), weight = gaussian(n, 45, 1.0f);
    for (const KernelTable* set : sets_) {
      std::vector<float> expected(x.size()), got(x.size());
      scalar_kernels().rms_norm(x.data(), weight.data(), expected.data(), n, 1e-6f);
      set->rms_norm(x.data(), weight.data(), got.data(), n, 1e-6f);
      for (size_t i = 0; i < x.size(); i++)
        EXPECT_NEAR(got[i], expected[i], 1e-6f * std::fabs(expected[i]) + 1e-30f) << set->name << " n " << n << " i " << i;
      // In place, as the attention's per-head norms call it.
      std::vector<float> in_place = x;
      set->rms_norm(in_place.data(), weight.data(), in_place.data(), n, 1e-6f);
      EXPECT_EQ(in_place, got) << set->name << " n " << n;
    }
  }
}

}  // namespace
}  // namespace warden::tensor
