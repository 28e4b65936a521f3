// The matrix kernels (GemmFn) against one vec_dot per (row, token) of the same
// table: block integer sums are exact, so they may differ by float rounding
// only, at most 1e-5 of sum |w_i * x_i| per output. Shapes cover row counts
// that are not a multiple of the packing width, every token-group tail, and
// one token against pairs of panels with and without a panel left over (the
// AVX-512 decode path), and for the float types rows whose length is not a
// multiple of eight.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "tensor/blocks.h"
#include "tensor/fp16.h"
#include "tensor/kernels.h"
#include "tensor/quant.h"

namespace warden::tensor {
namespace {

std::vector<float> gaussian(int64_t n, std::mt19937& rng, float sigma) {
  std::normal_distribution<float> normal(0.0f, sigma);
  std::vector<float> x(static_cast<size_t>(n));
  for (auto& v : x) v = normal(rng);
  return x;
}

struct Case {
  int64_t rows, tokens, n;
};

void check_gemm(const KernelTable& set, TensorType t, const Case& c) {
  const TypeKernels& k = *set.find(t);
  std::mt19937 rng(uint32_t(c.rows * 1000 + c.tokens * 10 + c.n));
  const size_t w_row = gguf::row_bytes(t, c.n), x_row = gguf::row_bytes(k.dot_type, c.n);
  std::vector<uint8_t> wq(w_row * size_t(c.rows)), xq(x_row * size_t(c.tokens));
  std::vector<std::vector<float>> w, x;
  for (int64_t r = 0; r < c.rows; r++) {
    w.push_back(gaussian(c.n, rng, 0.02f * float(1 + r % 5)));
    if (r % 7 == 3) std::fill_n(w.back().begin(), std::min<int64_t>(32, c.n), 0.0f);  // an all-zero block
    scalar_kernels().find(t)->quantize(w.back().data(), wq.data() + size_t(r) * w_row, c.n);
  }
  for (int64_t i = 0; i < c.tokens; i++) {
    x.push_back(gaussian(c.n, rng, 1.0f + float(i % 3)));
    set.find(k.dot_type)->quantize(x.back().data(), xq.data() + size_t(i) * x_row, c.n);
  }
  const int64_t ldy = c.rows + 3;  // a leading dimension wider than the rows
  // Every output within rounding of vec_dot, and nothing written outside the
  // rows [first, rows) of each token.
  auto check = [&](const std::vector<float>& y, int64_t first, const char* path) {
    for (int64_t i = 0; i < c.tokens; i++) {
      for (int64_t r = 0; r < ldy; r++) {
        const float got = y[size_t(i * ldy + r)];
        if (r < first || r >= c.rows) {
          ASSERT_EQ(got, -7.0f) << path << ": wrote outside rows " << first << ".." << c.rows;
          continue;
        }
        double magnitude = 0;
        for (int64_t e = 0; e < c.n; e++)
          magnitude += std::fabs(double(w[size_t(r)][size_t(e)]) * x[size_t(i)][size_t(e)]);
        const float expected = k.vec_dot(wq.data() + size_t(r) * w_row, xq.data() + size_t(i) * x_row, c.n);
        ASSERT_NEAR(got, expected, 1e-5 * magnitude + 1e-30)
            << set.name << " " << gguf::type_name(t) << " " << path << " rows " << c.rows << " tokens " << c.tokens
            << " row " << r << " token " << i;
      }
    }
  };
  std::vector<float> y(size_t(ldy * c.tokens), -7.0f);
  k.gemm(wq.data(), w_row, c.rows, xq.data(), x_row, c.tokens, c.n, y.data(), ldy);
  check(y, 0, "gemm");
  if (!k.pack) return;

  // Packed once, then computed from the second panel on (as a thread does
  // with its share of the panels).
  const int64_t panels = (c.rows + 7) / 8;
  std::vector<uint8_t> packed(size_t(panels) * k.panel_bytes(c.n));
  k.pack(wq.data(), w_row, c.rows, c.n, packed.data());
  const int64_t first = c.rows > 8 ? 8 : 0;
  std::vector<float> yp(size_t(ldy * c.tokens), -7.0f);
  k.gemm_packed(packed.data() + size_t(first / 8) * k.panel_bytes(c.n), c.rows - first, xq.data(), x_row, c.tokens,
                c.n, yp.data() + first, ldy);
  check(yp, first, "packed");
}

// Every kernel set this CPU can run.
std::vector<const KernelTable*> runnable_sets() {
  std::vector<const KernelTable*> sets = {&scalar_kernels()};
#if defined(WARDEN_HAVE_AVX2_KERNELS)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")) {
    sets.push_back(&avx2_kernels());
    // The same kernels with vpdpbusd, where the CPU has it (otherwise skipped).
    if (__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512bw")) {
      sets.push_back(&avx512vnni_kernels());
      // And its BF16 kernels with vdpbf16ps, in their own panel layout.
      if (__builtin_cpu_supports("avx512bf16")) sets.push_back(&avx512bf16_kernels());
    }
  }
#endif
  return sets;
}

TEST(GemmKernels, MatchOneDotPerRowAndToken) {
  const std::vector<const KernelTable*> sets = runnable_sets();
  int tested = 0;
  for (const KernelTable* set : sets) {
    for (uint32_t id = 0; id < kMaxTypeId; id++) {
      const TensorType t = TensorType(id);
      if (!set->find(t)->gemm) continue;
      for (const Case& c : {Case{8, 4, 256}, Case{13, 7, 512}, Case{5, 1, 256}, Case{24, 9, 768}, Case{3, 2, 256},
                             Case{16, 11, 256}, Case{9, 16, 256}, Case{17, 21, 512}, Case{40, 1, 512},
                             Case{29, 1, 768}})
        check_gemm(*set, t, c);
      if (gguf::type_info(t)->block_size == 32)  // odd numbers of blocks (decode kernels that take two a pass)
        for (const Case& c : {Case{11, 1, 96}, Case{16, 1, 288}, Case{9, 3, 160}, Case{8, 1, 32}})
          check_gemm(*set, t, c);
      if (gguf::type_info(t)->block_size == 1)  // float types take rows of any length
        for (const Case& c : {Case{11, 3, 37}, Case{8, 1, 13}, Case{17, 7, 5}, Case{19, 9, 21}})
          check_gemm(*set, t, c);
      tested++;
    }
  }
#if defined(WARDEN_HAVE_AVX2_KERNELS)
  if (sets.size() > 1) {
    EXPECT_GT(tested, 0) << "the AVX2 set has no matrix kernels";
  }
#endif
}

// Where a type has an unpacking routine, every row of a packed copy comes
// back byte for byte as it was in the file, those of a last, part-filled
// panel too (for the float types, rows of an odd length as well).
void check_unpack(const KernelTable& set, TensorType t, int64_t n) {
  const TypeKernels& k = *set.find(t);
  ASSERT_TRUE(k.pack) << set.name << " " << gguf::type_name(t) << ": unpack without pack";
  constexpr int64_t kRows = 13;
  std::mt19937 rng(uint32_t(t) * 1000 + uint32_t(n));
  const size_t row_bytes = gguf::row_bytes(t, n);
  std::vector<uint8_t> rows(row_bytes * kRows);
  for (int64_t r = 0; r < kRows; r++) {
    std::vector<float> x = gaussian(n, rng, 0.02f * float(1 + r % 5));
    if (r == 4) std::fill_n(x.begin(), std::min<int64_t>(256, n), 0.0f);  // an all-zero super-block
    scalar_kernels().find(t)->quantize(x.data(), rows.data() + size_t(r) * row_bytes, n);
  }
  std::vector<uint8_t> packed(size_t((kRows + 7) / 8) * k.panel_bytes(n));
  k.pack(rows.data(), row_bytes, kRows, n, packed.data());
  std::vector<uint8_t> row(row_bytes);
  for (int64_t r = 0; r < kRows; r++) {
    k.unpack(packed.data() + size_t(r / 8) * k.panel_bytes(n), int(r % 8), n, row.data());
    const auto first = rows.begin() + int64_t(size_t(r) * row_bytes);
    EXPECT_EQ(row, std::vector<uint8_t>(first, first + int64_t(row_bytes)))
        << set.name << " " << gguf::type_name(t) << " n " << n << " row " << r;
  }
}

TEST(GemmKernels, PackedRowsUnpackToTheirOwnBytes) {
  int tested = 0;
  for (const KernelTable* set : runnable_sets()) {
    for (uint32_t id = 0; id < kMaxTypeId; id++) {
      const TensorType t = TensorType(id);
      if (!set->find(t)->unpack) continue;
      check_unpack(*set, t, 768);
      if (gguf::type_info(t)->block_size == 1) check_unpack(*set, t, 37);
      tested++;
    }
  }
#if defined(WARDEN_HAVE_AVX2_KERNELS)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")) {
    EXPECT_GE(tested, 5) << "the AVX2 set unpacks Q6_K, Q8_0, Q4_0, F16 and BF16";
  }
#endif
}

// The largest sums a Q4_K product can reach: every code 15, every scale and
// min 63, every activation -128 or 127. The VNNI kernel packs two groups'
// sums into int16 (at most 8 x 15 x 128 + 8 x 15 x 128 = 30720 each), so a
// bound miscounted there saturates and shows here as a wrong result.
TEST(GemmKernels, Q4_KAtItsLargestSumsStaysExact) {
  constexpr int64_t kRows = 16, kN = 2 * kQK_K;
  std::vector<block_q4_k> w(size_t(kRows * kN / kQK_K));
  for (block_q4_k& b : w) {
    b.d = b.dmin = fp32_to_fp16(1.0f);
    std::fill(std::begin(b.scales), std::end(b.scales), uint8_t(0xFF));  // every 6-bit scale and min 63
    std::fill(std::begin(b.qs), std::end(b.qs), uint8_t(0xFF));          // every code 15
  }
  for (const int8_t activation : {int8_t(-128), int8_t(127)}) {
    std::vector<block_q8_k> x(size_t(kN / kQK_K));
    for (block_q8_k& b : x) {
      b.d = 1.0f;
      std::fill(std::begin(b.qs), std::end(b.qs), activation);
      std::fill(std::begin(b.bsums), std::end(b.bsums), int16_t(16 * activation));
    }
    const size_t w_row = gguf::row_bytes(TensorType::Q4_K, kN), x_row = gguf::row_bytes(TensorType::Q8_K, kN);
    const auto* wq = reinterpret_cast<const uint8_t*>(w.data());
    const auto* xq = reinterpret_cast<const uint8_t*>(x.data());
    const float expected = scalar_kernels().find(TensorType::Q4_K)->vec_dot(wq, xq, kN);
    ASSERT_NE(expected, 0.0f);
    int tested = 0;
    for (const KernelTable* set : runnable_sets()) {
      const TypeKernels& k = *set->find(TensorType::Q4_K);
      if (!k.gemm) continue;
      tested++;
      std::vector<float> y(kRows, 0.0f);
      k.gemm(wq, w_row, kRows, xq, x_row, 1, kN, y.data(), kRows);
      for (float v : y)
        ASSERT_NEAR(v, expected, 1e-6 * std::fabs(expected)) << set->name << " gemm, activations " << int(activation);
      if (!k.pack) continue;
      std::vector<uint8_t> packed(size_t(kRows / 8) * k.panel_bytes(kN));
      k.pack(wq, w_row, kRows, kN, packed.data());
      k.gemm_packed(packed.data(), kRows, xq, x_row, 1, kN, y.data(), kRows);
      for (float v : y)
        ASSERT_NEAR(v, expected, 1e-6 * std::fabs(expected)) << set->name << " packed, activations " << int(activation);
    }
#if defined(WARDEN_HAVE_AVX2_KERNELS)
    EXPECT_GT(tested, 0) << "no set has a Q4_K matrix kernel";
#endif
  }
}

}  // namespace
}  // namespace warden::tensor
