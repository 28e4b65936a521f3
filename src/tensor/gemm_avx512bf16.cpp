// BF16 weights on CPUs with AVX512-BF16 (Zen 4, Cooper Lake, Sapphire Rapids
// and later). vdpbf16ps multiplies two bf16 pairs per 32-bit lane and adds
// both products to the lane's f32 sum: twice the products per instruction of
// gemm_avx2.cpp's f32 FMAs, and no conversion of the weights. BF16's
// activations are bf16 already (its dot_type), so a token's pair of
// activations at columns (k, k + 1) is one 32-bit word, broadcast against
// eight rows' pairs of weights at the same columns.
//
// Panel layout (this kernel set's own; the packed-weights cache keys on the
// set and on a packed panel): per column pair, eight 32-bit lanes, lane r
// holding row r's values at k (low half) and k + 1 (high half), 32 bytes per
// pair, so a panel is the size of its rows (a row of odd length pads its last
// pair with a zero). A product of two bf16 values is exact in f32; the sums
// are f32 where vec_dot's are double, so the results differ from vec_dot by
// float rounding only (tests/tensor/gemm_test.cpp). vdpbf16ps treats
// denormal inputs and results as zero, far below that tolerance.
//
// kernels_avx2.cpp builds the table (avx512bf16_kernels()); select_kernels()
// checks the CPU first. As in gemm_avx512vnni.cpp, the library headers are
// included before the target pragma so that no template code they emit is
// compiled for AVX-512.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "tensor/kernels.h"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512vl,avx512bf16"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx512bf16")
#endif

#include "tensor/panels.h"

namespace warden::tensor {
namespace {

size_t panel_bytes(int64_t n) { return size_t((n + 1) / 2) * 32; }

// Values k and k + 1 of a bf16 row of n values as one word (zero past the end).
uint32_t pair_at(const uint8_t* row, int64_t k, int64_t n) {
  uint16_t low = 0, high = 0;
  std::memcpy(&low, row + 2 * k, sizeof low);
  if (k + 1 < n) std::memcpy(&high, row + 2 * (k + 1), sizeof high);
  return low | uint32_t(high) << 16;
}

void pack_panel(const uint8_t* w, size_t w_row_bytes, int rows, int64_t n, uint8_t* out) {
  int64_t pair = 0;
  for (; 2 * (pair + 8) <= n; pair += 8) {  // eight pairs of eight rows: one transpose of 32-bit words
    __m256i v[kPanelRows];
    for (int r = 0; r < kPanelRows; r++)
      v[r] = r < rows ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + size_t(r) * w_row_bytes + 4 * pair))
                      : _mm256_setzero_si256();
    transpose_8x8_epi32(v);
    for (int c = 0; c < 8; c++) _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 32 * (pair + c)), v[c]);
  }
  for (; 2 * pair < n; pair++)
    for (int r = 0; r < kPanelRows; r++) {
      const uint32_t word = r < rows ? pair_at(w + size_t(r) * w_row_bytes, 2 * pair, n) : 0;
      std::memcpy(out + 32 * pair + 4 * r, &word, sizeof word);
    }
}

// pack_panel's inverse for one row: values 2p and 2p + 1 of row `row` in the
// word at 32 p + 4 row.
void unpack_row(const uint8_t* panel, int row, int64_t n, uint8_t* out) {
  for (int64_t k = 0; k < n; k++) std::memcpy(out + 2 * k, panel + 32 * (k / 2) + 4 * row + 2 * (k % 2), 2);
}

void pack_rows(const uint8_t* w, size_t w_row_bytes, int64_t rows, int64_t n, uint8_t* out) {
  for (int64_t r0 = 0; r0 < rows; r0 += kPanelRows, out += panel_bytes(n))
    pack_panel(w + size_t(r0) * w_row_bytes, w_row_bytes, int(std::min<int64_t>(kPanelRows, rows - r0)), n, out);
}

inline __m256 add_pair_products(__m256 acc, __m256i weights, uint32_t activations) {
  return _mm256_dpbf16_ps(acc, (__m256bh)weights, (__m256bh)_mm256_set1_epi32(int(activations)));
}

// Independent sums per (panel, token): vdpbf16ps takes several of its issue
// slots to finish, so one panel and one token need eight chains.
constexpr int chains_for(int sums) { return sums == 1 ? 8 : sums == 2 ? 4 : sums <= 4 ? 2 : 1; }

// NP panels (8 NP rows) times NT tokens; x[t] is token t's bf16 row.
template <int NP, int NT>
void panels_kernel(const uint8_t* const panel[NP], int64_t n, const uint8_t* const x[NT], float out[NP][NT][8]) {
  constexpr int kChains = chains_for(NP * NT);
  __m256 acc[NP][NT][kChains];
  for (auto& p : acc)
    for (auto& t : p)
      for (auto& c : t) c = _mm256_setzero_ps();
  auto step = [&](int c, int64_t pair, const uint32_t word[NT]) {
    for (int p = 0; p < NP; p++) {
      const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(panel[p] + 32 * pair));
      for (int t = 0; t < NT; t++) acc[p][t][c] = add_pair_products(acc[p][t][c], w, word[t]);
    }
  };
  const int64_t full_pairs = n / 2;
  int64_t pair = 0;
  for (; pair + kChains <= full_pairs; pair += kChains)
    for (int c = 0; c < kChains; c++) {
      uint32_t word[NT];
      for (int t = 0; t < NT; t++) std::memcpy(&word[t], x[t] + 4 * (pair + c), sizeof word[t]);
      step(c, pair + c, word);
    }
  for (; pair < (n + 1) / 2; pair++) {  // the rest, and an odd row's last value
    uint32_t word[NT];
    for (int t = 0; t < NT; t++) word[t] = pair_at(x[t], 2 * pair, n);
    step(0, pair, word);
  }
  for (int p = 0; p < NP; p++)
    for (int t = 0; t < NT; t++) {
      __m256 sum = acc[p][t][0];
      for (int c = 1; c < kChains; c++) sum = _mm256_add_ps(sum, acc[p][t][c]);
      _mm256_storeu_ps(out[p][t], sum);
    }
}

// From kWideTokens tokens on, full panels go kWidePanels at a time, so each
// broadcast activation serves that many weight registers.
constexpr int64_t kWideTokens = 8;
constexpr int kWidePanels = 2;
constexpr int kGroup = 6;  // tokens per weight register

template <int NP>
void panels_over_tokens(const uint8_t* first, size_t bytes, int rows, const uint8_t* x, size_t x_row_bytes,
                        int64_t T, int64_t n, float* y, int64_t ldy) {
  over_token_groups<kGroup>(T, rows, y, ldy, [&](auto nt_tag, int64_t t, float out[][8]) {
    constexpr int NT = decltype(nt_tag)::value;
    const uint8_t* panel[NP];
    for (int p = 0; p < NP; p++) panel[p] = first + size_t(p) * bytes;
    const uint8_t* xs[NT];
    for (int k = 0; k < NT; k++) xs[k] = x + size_t(t + k) * x_row_bytes;
    float sums[NP][NT][8];
    panels_kernel<NP, NT>(panel, n, xs, sums);
    for (int k = 0; k < NT; k++) {
      std::memcpy(out[k], sums[0][k], sizeof out[k]);  // over_token_groups stores the first panel's
      for (int p = 1; p < NP; p++)
        std::memcpy(y + (t + k) * ldy + p * kPanelRows, sums[p][k], sizeof sums[p][k]);
    }
  });
}

void gemm_packed(const uint8_t* panels, int64_t n_rows, const uint8_t* x, size_t x_row_bytes, int64_t T, int64_t n,
                 float* y, int64_t ldy) {
  const size_t bytes = panel_bytes(n);
  int64_t r0 = 0;
  if (T >= kWideTokens)
    for (; r0 + kWidePanels * kPanelRows <= n_rows; r0 += kWidePanels * kPanelRows, panels += kWidePanels * bytes)
      panels_over_tokens<kWidePanels>(panels, bytes, kPanelRows, x, x_row_bytes, T, n, y + r0, ldy);
  for (; r0 < n_rows; r0 += kPanelRows, panels += bytes)
    panels_over_tokens<1>(panels, bytes, int(std::min<int64_t>(kPanelRows, n_rows - r0)), x, x_row_bytes, T, n,
                          y + r0, ldy);
}

// Rows without a packed copy: each panel packed into a per-thread buffer.
void gemm_packing(const uint8_t* w, size_t w_row_bytes, int64_t n_rows, const uint8_t* x, size_t x_row_bytes,
                  int64_t T, int64_t n, float* y, int64_t ldy) {
  thread_local std::vector<uint8_t> panel;
  panel.resize(panel_bytes(n));
  for (int64_t r0 = 0; r0 < n_rows; r0 += kPanelRows) {
    const int rows = int(std::min<int64_t>(kPanelRows, n_rows - r0));
    pack_panel(w + size_t(r0) * w_row_bytes, w_row_bytes, rows, n, panel.data());
    panels_over_tokens<1>(panel.data(), 0, rows, x, x_row_bytes, T, n, y + r0, ldy);
  }
}

}  // namespace

void add_avx512bf16_gemm_kernels(KernelTable& table) {
  TypeKernels& k = table.by_type[size_t(gguf::TensorType::BF16)];
  k.gemm = gemm_packing;
  k.panel_bytes = panel_bytes;
  k.pack = pack_rows;
  k.gemm_packed = gemm_packed;
  k.unpack = unpack_row;
}

}  // namespace warden::tensor

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
