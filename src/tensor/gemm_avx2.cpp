// AVX2 matrix kernels for decode, batches and prefill (kernels.h GemmFn,
// PackFn, PackedGemmFn).
//
// Why not one vec_dot per (weight row, token): each dot ends in a horizontal
// sum and a scale multiply per block, and Q8_0 spends two sign instructions
// per 32 products. Here eight weight rows are packed side by side ("panel")
// so that one 256-bit register holds four consecutive codes of each of the
// eight rows. Broadcasting four int8 activations of one token against it gives
// the eight rows' partial dots in the eight 32-bit lanes: no horizontal sums,
// one scale multiply per block for eight rows, and each weight register is
// reused for up to six tokens.
//
// Every weight type but F32 is packed once at model load, in layouts the size
// of the rows they replace (so decode reads no more bytes), and read by the
// kernels as they are: decode gets the same arithmetic. Rows without a packed
// copy (when the memory was short at load) are packed per call into a small
// per-thread buffer, which pays from a few tokens on.
//
// Agreement with vec_dot: every block's integer dot is exact; the per-block
// float scaling and the summation order over blocks differ, so results differ
// from vec_dot by float rounding only (tests/tensor/gemm_test.cpp).
//
// gemm_avx512vnni.cpp compiles this file a second time with
// WARDEN_GEMM_VNNI, for CPUs with AVX512-VNNI (and VL, BW): there the int8 dot
// of four byte pairs into a 32-bit lane is one instruction (vpdpbusd on
// 256-bit registers) instead of three, and Q4_K, the expanded K-quant
// panels and (two blocks a pass) Q8_0, Q4_0, Q5_0, Q4_1, Q5_1, Q5_K, Q6_K,
// Q3_K and Q2_K run in 512-bit registers, some over panels in an order of
// their own (see broadcast8). Same exact integers; the 32-element types add
// their blocks' float products in another order (block_pairs_kernel).
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "tensor/blocks.h"
#include "tensor/k_unpack.h"
#include "tensor/kernels.h"
#include "tensor/panels.h"

namespace warden::tensor {
namespace {

inline __m256i load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// Runs step(0) .. step(n - 1), unrolled or not: unrolled, AVX2 with several
// tokens interleaves steps until its accumulators no longer fit the 16
// registers and spill (AVX-512VL has 32).
template <int n, bool kUnroll, typename Step>
inline void run_steps(Step step) {
  if constexpr (kUnroll) {
#pragma GCC unroll 8
    for (int i = 0; i < n; i++) step(i);
  } else {
#pragma GCC unroll 1
    for (int i = 0; i < n; i++) step(i);
  }
}
#if defined(WARDEN_GEMM_VNNI)
constexpr bool kVnni = true;

// The VNNI set's 512-bit kernels (Q8_0, Q4_0, Q4_1, Q4_K, the expanded K-quant panels
// of super_panel_times_q8_k) hold eight rows' qwords per
// register: each row's eight consecutive codes against a token's eight
// activations broadcast as a qword, so lanes 2r and 2r + 1 both hold sums of
// row r. Per code byte that is half the instructions of the 256-bit steps
// for the same vpdpbusd work (on Zen 4 a 512-bit operation is one
// instruction for two 256-bit halves).
inline __m512i broadcast8(const int8_t* p) {
  int64_t eight;
  std::memcpy(&eight, p, sizeof eight);
  return _mm512_set1_epi64(eight);
}

// Row r's sum (lanes 2r + 2r + 1) in lane r of a 256-bit register.
inline __m256i add_lane_pairs(__m512i v) {
  return _mm512_cvtepi64_epi32(_mm512_add_epi32(v, _mm512_srli_epi64(v, 32)));
}

// 32 bytes at `low` and 32 at `high` as the two halves of a register (two
// blocks' registers side by side, for the kernels that take two a pass).
inline __m512i two_halves(const void* low, const void* high) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(static_cast<const __m256i*>(low))),
                            _mm256_loadu_si256(static_cast<const __m256i*>(high)), 1);
}

// A vpermd index taking dword `low` into lanes 0-7 and dword `high` into
// lanes 8-15: one step's four activations of each of two blocks loaded side
// by side.
inline __m512i step_dwords(int low, int high) {
  return _mm512_inserti64x4(_mm512_set1_epi32(low), _mm256_set1_epi32(high), 1);
}

// Two consecutive 256-bit steps (dword r: four codes of row r) as one
// 512-bit register of qwords (qword r: the eight codes of row r).
inline void store_qword_steps(__m256i first, __m256i second, uint8_t* out) {
  const __m256i rows_0145 = _mm256_unpacklo_epi32(first, second), rows_2367 = _mm256_unpackhi_epi32(first, second);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm256_castsi256_si128(rows_0145));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 16), _mm256_castsi256_si128(rows_2367));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 32), _mm256_extracti128_si256(rows_0145, 1));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 48), _mm256_extracti128_si256(rows_2367, 1));
}

// Each token's sums of 32 four-bit codes per row (stored by
// store_four_bit_codes) times its activations qs[t][0..31], as qword
// lanes (see broadcast8). The high nibbles are used where they stand (16
// times their codes; exact multiples of 16, shifted back once at the end).
template <int NT>
inline void four_bit_code_sums(const uint8_t* codes, const int8_t* const qs[NT], __m512i sums[NT]) {
  const __m512i low4 = _mm512_set1_epi8(0x0F), high4 = _mm512_set1_epi8(char(0xF0));
  __m512i hi_sums[NT];
  for (int t = 0; t < NT; t++) sums[t] = hi_sums[t] = _mm512_setzero_si512();
  for (int m = 0; m < 2; m++) {
    __m512i packed = _mm512_loadu_si512(codes + 64 * m);
    asm("" : "+v"(packed));  // one load for both masks, as in steps_times
    const __m512i lo = _mm512_and_si512(packed, low4), hi = _mm512_and_si512(packed, high4);
    for (int t = 0; t < NT; t++) {
      sums[t] = _mm512_dpbusd_epi32(sums[t], lo, broadcast8(qs[t] + 8 * m));
      hi_sums[t] = _mm512_dpbusd_epi32(hi_sums[t], hi, broadcast8(qs[t] + 16 + 8 * m));
    }
  }
  for (int t = 0; t < NT; t++) sums[t] = _mm512_add_epi32(sums[t], _mm512_srai_epi32(hi_sums[t], 4));
}
#else
constexpr bool kVnni = false;
#endif

// ---- 32-element block types (one scale per block) ---------------------------

// The 32 nibbles of a legacy block: byte j -> element j (low) and j+16 (high).
inline __m256i nibble_codes(const uint8_t* qs) {
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(packed, 4), packed), _mm256_set1_epi8(0x0F));
}

// Q5_0 and Q5_1: the 32 unsigned codes of a block (Q5_0's value is code -
// 16: maddubs takes the codes directly as its unsigned operand, and the
// offset moves into a per-block correction with the activations' block sums).
template <typename Block>
inline __m256i five_bit_codes(const Block& b) {
  uint32_t qh;
  std::memcpy(&qh, b.qh, sizeof qh);
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32(int(qh)), _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0));
  const __m256i bit = _mm256_set1_epi64x(int64_t(0x8040201008040201ull));
  const __m256i high = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit), _mm256_set1_epi8(0x10));
  return _mm256_or_si256(nibble_codes(b.qs), high);
}

inline __m256i broadcast4(const int8_t* p) {
  int32_t four;
  std::memcpy(&four, p, sizeof four);
  return _mm256_set1_epi32(four);
}

// The NT activation rows starting at token t.
template <typename XBlock, int NT>
void token_rows(const uint8_t* x, size_t x_row_bytes, int64_t t, const XBlock* rows[NT]) {
  for (int k = 0; k < NT; k++) rows[k] = reinterpret_cast<const XBlock*>(x + size_t(t + k) * x_row_bytes);
}

// Sum of each Q8_0 activation block's 32 values, [token][block].
void q8_0_block_sums(const uint8_t* x, size_t x_row_bytes, int64_t T, int64_t nb, std::vector<int32_t>& sums) {
  sums.resize(size_t(T * nb));
  for (int64_t t = 0; t < T; t++) {
    const auto* row = reinterpret_cast<const block_q8_0*>(x + size_t(t) * x_row_bytes);
    for (int64_t b = 0; b < nb; b++) {
      const __m256i pairs = _mm256_maddubs_epi16(_mm256_set1_epi8(1), load32(row[b].qs));
      const __m256i quads = _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
      __m128i s = _mm_add_epi32(_mm256_castsi256_si128(quads), _mm256_extracti128_si256(quads, 1));
      s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
      s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
      sums[size_t(t * nb + b)] = _mm_cvtsi128_si32(s);
    }
  }
}


// ---- K-quant types (256-element super-blocks, Q8_K activations) -----------

// Steps (4 codes each, up to a sub-block's 4) whose maddubs pairs can be
// summed in int16 before widening: a pair is at most 2 * max_code * 128.
constexpr int steps_per_int16(int max_code) {
  int steps = 4;
  while (steps * 2 * max_code * 128 > 32767) steps /= 2;
  return steps;
}

// A packed K-quant panel expanded for many tokens (gemm_packed_expanding),
// per super-block: 64 registers of interleaved codes (register s of a
// 32-element group: codes 4s..4s+3 of rows 0..7; on the VNNI set the same
// bytes as qword steps, see store_sub_block), 16 registers of scales per
// 16-element sub-block (lane pair of row r = its scale, twice: int16, or
// int32 in 512-bit registers on the VNNI set), 8 of int16 mins (lane pair of
// row r = its mins of sub-blocks 2j, 2j + 1), and the eight rows' d and dmin.
struct SuperPanel {
  std::vector<uint8_t> q, scale, min;
  std::vector<float> d, dmin;
};

// acc += d_w * d_x * isum - dmin_w * d_x * mins for eight rows: the end of a
// K-quant super-block, where the integer sums meet the float scales.
inline void add_super_block(float acc[8], __m256 wd, __m256 wdmin, float xd, __m256i isum, __m256i mins) {
  const __m256 x = _mm256_set1_ps(xd);
  __m256 a = _mm256_loadu_ps(acc);
  a = _mm256_fmadd_ps(_mm256_mul_ps(wd, x), _mm256_cvtepi32_ps(isum), a);
  a = _mm256_fnmadd_ps(_mm256_mul_ps(wdmin, x), _mm256_cvtepi32_ps(mins), a);
  _mm256_storeu_ps(acc, a);
}

#if defined(WARDEN_GEMM_VNNI)
// Each token's integer sums (a lane per row) of expanded super-block b. On
// the VNNI set: per 16-element sub-block two 512-bit registers of qword
// steps (see broadcast8), each against a qword of a token's activations,
// and the sub-block's row scales as int32 in both lanes of each pair
// (kSteps, AVX2's int16 limit, does not apply to vpdpbusd's int32 sums).
template <int NT, int kSteps>
inline void expanded_super_block_sums(const SuperPanel& p, int64_t b, const block_q8_k* const x[NT],
                                      __m256i row_sums[NT]) {
  const uint8_t* wq = p.q.data() + b * 64 * 32;
  __m512i isum[NT];
  for (int t = 0; t < NT; t++) isum[t] = _mm512_setzero_si512();
  for (int j = 0; j < 16; j++) {
    const __m512i scale = _mm512_loadu_si512(p.scale.data() + (b * 16 + j) * 64);
    const __m512i w0 = _mm512_loadu_si512(wq + 128 * j), w1 = _mm512_loadu_si512(wq + 128 * j + 64);
    for (int t = 0; t < NT; t++) {
      const int8_t* xq = x[t][b].qs + 16 * j;
      const __m512i sum = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), w0, broadcast8(xq)), w1,
                                              broadcast8(xq + 8));
      isum[t] = _mm512_add_epi32(isum[t], _mm512_mullo_epi32(sum, scale));
    }
  }
  for (int t = 0; t < NT; t++) row_sums[t] = add_lane_pairs(isum[t]);
}
#else
// On AVX2: maddubs sums kSteps steps (steps_per_int16 of the largest code)
// in int16 lanes, and madd scales them into int32 sums.
template <int NT, int kSteps>
inline void expanded_super_block_sums(const SuperPanel& p, int64_t b, const block_q8_k* const x[NT],
                                      __m256i isum[NT]) {
  const uint8_t* wq = p.q.data() + b * 64 * 32;
  for (int t = 0; t < NT; t++) isum[t] = _mm256_setzero_si256();
#pragma GCC unroll 1
  for (int g = 0; g < 16; g++) {  // groups of 16 elements = 4 steps, one scale
    const __m256i scale = load32(p.scale.data() + (b * 16 + g) * 32);
    for (int h = 0; h < 4; h += kSteps) {
      __m256i sum16[NT];
      for (int t = 0; t < NT; t++) sum16[t] = _mm256_setzero_si256();
      for (int s = 4 * g + h; s < 4 * g + h + kSteps; s++) {
        const __m256i w = load32(wq + 32 * s);
        for (int t = 0; t < NT; t++) {
          int32_t four;
          std::memcpy(&four, x[t][b].qs + 4 * s, sizeof four);
          sum16[t] = _mm256_add_epi16(sum16[t], _mm256_maddubs_epi16(w, _mm256_set1_epi32(four)));
        }
      }
      for (int t = 0; t < NT; t++) isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(sum16[t], scale));
    }
  }
}
#endif

// The expanded panel times NT tokens: each super-block's integer sums, then
// the mins against the activations' sub-block sums and the float scales.
template <int NT, int kSteps>
void super_panel_times_q8_k(const SuperPanel& p, int64_t nsb, const block_q8_k* const x[NT], float out[NT][8]) {
  float acc[NT][8] = {};
  for (int64_t b = 0; b < nsb; b++) {
    __m256i isum[NT];
    expanded_super_block_sums<NT, kSteps>(p, b, x, isum);
    const __m256 wd = _mm256_loadu_ps(p.d.data() + b * 8), wdmin = _mm256_loadu_ps(p.dmin.data() + b * 8);
    for (int t = 0; t < NT; t++) {
      __m256i mins = _mm256_setzero_si256();
      for (int j = 0; j < 8; j++) {
        int32_t two;
        std::memcpy(&two, x[t][b].bsums + 2 * j, sizeof two);
        mins = _mm256_add_epi32(mins, _mm256_madd_epi16(load32(p.min.data() + (b * 8 + j) * 32), _mm256_set1_epi32(two)));
      }
      add_super_block(acc[t], wd, wdmin, x[t][b].d, isum[t], mins);
    }
  }
  std::memcpy(out, acc, sizeof acc);
}


// ---- Packed layouts: weights rearranged once, read directly ---------------
//
// Every weight type but F32 is packed at load time (kernels.h
// PackFn) into 8-row panels the kernels below read as they are, for any
// number of tokens: decode then gets the eight-rows-per-register arithmetic
// too. Each panel holds exactly the bytes of the rows it replaces, so decode
// reads no more. For a call on unpacked rows, each panel is packed into a
// per-thread buffer first.

inline __m256 load_f16x8(const uint8_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline void store_f16(uint8_t* p, uint16_t h) { std::memcpy(p, &h, sizeof h); }

// Every panel block is laid out in the order its kernel reads it, front to
// back (the K-quants' scales, which the kernel needs first, come before the
// codes). Decode streams the panels from memory, and a jump back within a
// block breaks the sequence the hardware prefetchers follow: with the K-quant
// scales at the end of the block, two cores streamed Q4_K panels at 50 GB/s
// and Q6_K at 43 GB/s where plain reads got 58; scales first, both stream at
// 56-59 GB/s (2-core EPYC, AVX-512 VNNI kernels).

// Q8_0: per block, 8 registers of interleaved int8 weights, then 8 f16 scales.
constexpr size_t kQ8_0Codes = 8 * 32, kQ8_0PanelBlock = kQ8_0Codes + 8 * 2;
// Q4_0: per block, 4 registers whose low nibbles are codes of steps 0..3 and
// high nibbles steps 4..7 (on the VNNI set the same bytes as qword steps:
// store_four_bit_codes), then 8 f16 scales.
constexpr size_t kQ4_0Codes = 4 * 32, kQ4_0PanelBlock = kQ4_0Codes + 8 * 2;
// Q5_0: per block, a register of fifth bits and the low nibbles as Q5_K's
// groups hold them (steps_times), then 8 f16 scales.
constexpr size_t kQ5_0Codes = 32 + 4 * 32, kQ5_0PanelBlock = kQ5_0Codes + 8 * 2;
// Q4_1 and Q5_1: the codes as Q4_0's or Q5_0's, then 8 f16 scales d and 8
// f16 mins m (value = d * code + m).
constexpr size_t kQ4_1Codes = kQ4_0Codes, kQ4_1PanelBlock = kQ4_1Codes + 2 * 8 * 2;
constexpr size_t kQ5_1Codes = kQ5_0Codes, kQ5_1PanelBlock = kQ5_1Codes + 2 * 8 * 2;
// Q4_K: per super-block, the rows' 12 bytes of 6-bit scales and mins as in
// the file, byte k of row r at 8k + r (so the panel is no larger than the
// rows), 8 f16 d, 8 f16 dmin, then 32 registers of codes (per 32-element
// group, 4 registers: low nibbles steps 0..3, high nibbles 4..7; on the VNNI
// set the same bytes as qword steps, see pack_q4_k_panel).
constexpr size_t kQ4_KScales = 0, kQ4_KD = 96, kQ4_KCodes = kQ4_KD + 16 + 16;
constexpr size_t kQ4_KPanelBlock = kQ4_KCodes + 32 * 32;
// Q5_K: the same scales, d and dmin, then per 32-element group g one
// register of fifth bits (bit s of byte i: the fifth bit of code i of step
// s) and the group's four registers of low nibbles as Q4_K's: 1408 bytes per
// super-block of eight rows, 176 per row as in the file.
constexpr size_t kQ5_KGroups = kQ4_KCodes, kQ5_KGroupBytes = 32 + 4 * 32;
constexpr size_t kQ5_KPanelBlock = kQ5_KGroups + 8 * kQ5_KGroupBytes;

// Eight rows' registers of 32 codes each (zero past `rows`), transposed into
// steps: out[s] = codes 4s..4s+3 of rows 0..7.
template <typename CodesOfRow>
void transpose_rows(int rows, CodesOfRow codes_of_row, __m256i out[8]) {
  for (int r = 0; r < kPanelRows; r++) out[r] = r < rows ? codes_of_row(r) : _mm256_setzero_si256();
  transpose_8x8_epi32(out);
}

// Steps s and s + 4 (codes <= 15) in one register: s low, s + 4 high nibble.
inline void store_nibble_pairs(const __m256i steps[8], uint8_t* out) {
  for (int k = 0; k < 4; k++)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 32 * k),
                        _mm256_or_si256(steps[k], _mm256_slli_epi16(steps[k + 4], 4)));
}

// 32 four-bit codes per row (Q4_0, Q4_1, a Q4_K group) as block_code_sums
// and the Q4_K kernels read them: store_nibble_pairs' registers, and on the
// VNNI set the same bytes as qword steps, two steps to a 512-bit register
// (register m's qword r: row r's codes 8m..8m+7 in its low nibbles and
// 16+8m..16+8m+7 in its high ones).
inline void store_four_bit_codes(const __m256i steps[8], uint8_t* out) {
#if defined(WARDEN_GEMM_VNNI)
  for (int m = 0; m < 2; m++)
    store_qword_steps(_mm256_or_si256(steps[2 * m], _mm256_slli_epi16(steps[2 * m + 4], 4)),
                      _mm256_or_si256(steps[2 * m + 1], _mm256_slli_epi16(steps[2 * m + 5], 4)), out + 64 * m);
#else
  store_nibble_pairs(steps, out);
#endif
}

template <typename Block>
const Block& block_of_row(const uint8_t* w, size_t w_row_bytes, int r, int64_t b) {
  return reinterpret_cast<const Block*>(w + size_t(r) * w_row_bytes)[b];
}

void pack_q8_0_panel(const uint8_t* w, size_t w_row_bytes, int rows, int64_t n, uint8_t* out) {
  for (int64_t b = 0; b < n / kQK; b++, out += kQ8_0PanelBlock) {
    __m256i steps[8];
    transpose_rows(rows, [&](int r) { return load32(block_of_row<block_q8_0>(w, w_row_bytes, r, b).qs); }, steps);
#if defined(WARDEN_GEMM_VNNI)
    // For Q8_0BlockSums: qword steps (register m's qword r: row r's codes
    // 8m..8m+7), each code plus 128 (0..255, vpdpbusd's unsigned operand).
    const __m256i plus_128 = _mm256_set1_epi8(char(0x80));
    for (int m = 0; m < 4; m++)
      store_qword_steps(_mm256_xor_si256(steps[2 * m], plus_128), _mm256_xor_si256(steps[2 * m + 1], plus_128),
                        out + 64 * m);
#else
    for (int s = 0; s < 8; s++) _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 32 * s), steps[s]);
#endif
    for (int r = 0; r < kPanelRows; r++)
      store_f16(out + 256 + 2 * r, r < rows ? block_of_row<block_q8_0>(w, w_row_bytes, r, b).d : 0);
  }
}

// pack_q8_0_panel's inverse for one row.
void unpack_q8_0_row(const uint8_t* panel, int row, int64_t n, uint8_t* out) {
  auto* blocks = reinterpret_cast<block_q8_0*>(out);
  for (int64_t b = 0; b < n / kQK; b++, panel += kQ8_0PanelBlock) {
    uint8_t* codes = reinterpret_cast<uint8_t*>(blocks[b].qs);
#if defined(WARDEN_GEMM_VNNI)
    for (int m = 0; m < 4; m++)  // qword steps, each code plus 128
      for (int i = 0; i < 8; i++) codes[8 * m + i] = uint8_t(panel[64 * m + 8 * row + i] ^ 0x80);
#else
    for (int s = 0; s < 8; s++)  // step s: dword `row` holds codes 4s..4s+3
      for (int i = 0; i < 4; i++) codes[4 * s + i] = panel[32 * s + 4 * row + i];
#endif
    std::memcpy(&blocks[b].d, panel + 256 + 2 * row, sizeof blocks[b].d);
  }
}

// Eight steps of codes <= 31 as steps_times reads them: a register
// of fifth bits (bit s of byte i: code i of step s), then the low nibbles as
// store_nibble_pairs stores them.
void store_five_bit_steps(__m256i steps[8], uint8_t* out) {
  const __m256i low4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
  __m256i fifth = _mm256_setzero_si256();
  for (int s = 0; s < 8; s++) {  // bit 4 of each code to bit s of its byte (bytes are 0 or 1 before the shift)
    fifth = _mm256_or_si256(fifth, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(steps[s], 4), one), s));
    steps[s] = _mm256_and_si256(steps[s], low4);
  }
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), fifth);
  store_nibble_pairs(steps, out + 32);
}

void pack_q5_0_panel(const uint8_t* w, size_t w_row_bytes, int rows, int64_t n, uint8_t* out) {
  for (int64_t b = 0; b < n / kQK; b++, out += kQ5_0PanelBlock) {
    __m256i steps[8];
    transpose_rows(rows, [&](int r) { return five_bit_codes(block_of_row<block_q5_0>(w, w_row_bytes, r, b)); }, steps);
    store_five_bit_steps(steps, out);
    for (int r = 0; r < kPanelRows; r++)
      store_f16(out + kQ5_0Codes + 2 * r, r < rows ? block_of_row<block_q5_0>(w, w_row_bytes, r, b).d : 0);
  }
}

// The f16 scales and mins of block b of eight rows of Q4_1 or Q5_1, at `out`.
template <typename Block>
void store_scales_and_mins(const uint8_t* w, size_t w_row_bytes, int rows, int64_t b, uint8_t* out) {
  for (int r = 0; r < kPanelRows; r++) {
    const Block* blk = r < rows ? &block_of_row<Block>(w, w_row_bytes, r, b) : nullptr;
    store_f16(out + 2 * r, blk ? blk->d : 0);
    store_f16(out + 16 + 2 * r, blk ? blk->m : 0);
  }
}

void pack_q4_1_panel(const uint8_t* w, size_t w_row_bytes, int rows, int64_t n, uint8_t* out) {
  for (int64_t b = 0; b < n / kQK; b++, out += kQ4_1PanelBlock) {
    __m256i steps[8];
    transpose_rows(rows, [&](int r) { return nibble_codes(block_of_row<block_q4_1>(w, w_row_bytes, r, b).qs); },
                   steps);
    store_four_bit_codes(steps, out);
    store_scales_and_mins<block_q4_1>(w, w_row_bytes, rows, b, out + kQ4_1Codes);
  }
}

void pack_q5_1_panel(const uint8_t* w, size_t w_row_bytes, int rows, int64_t n, uint8_t* out) {
  for (int64_t b = 0; b < n / kQK; b++, out += kQ5_1PanelBlock) {
    __m256i steps[8];
    transpose_rows(rows, [&](int r) { return five_bit_codes(block_of_row<block_q5_1>(w, w_row_bytes, r, b)); }, steps);
    store_five_bit_steps(steps, out);
    store_scales_and_mins<block_q5_1>(w, w_row_bytes, rows, b, out + kQ5_1Codes);
  }
}

void pack_q4_0_panel(const uint8_t* w, size_t w_row_bytes, int rows, int64_t n, uint8_t* out) {
  for (int64_t b = 0; b < n / kQK; b++, out += kQ4_0PanelBlock) {
    __m256i steps[8];
    transpose_rows(rows, [&](int r) { return nibble_codes(block_of_row<block_q4_0>(w, w_row_bytes, r, b).qs); },
                   steps);
    store_four_bit_codes(steps, out);
    for (int r = 0; r < kPanelRows; r++)
      store_f16(out + kQ4_0Codes + 2 * r, r < rows ? block_of_row<block_q4_0>(w, w_row_bytes, r, b).d : 0);
  }
}

// pack_q4_0_panel's inverse for one row: each byte of store_four_bit_codes'
// registers is one byte of the block's qs (code j low, code 16 + j high).
void unpack_q4_0_row(const uint8_t* panel, int row, int64_t n, uint8_t* out) {
  auto* blocks = reinterpret_cast<block_q4_0*>(out);
  for (int64_t b = 0; b < n / kQK; b++, panel += kQ4_0PanelBlock) {
#if defined(WARDEN_GEMM_VNNI)
    for (int m = 0; m < 2; m++) std::memcpy(blocks[b].qs + 8 * m, panel + 64 * m + 8 * row, 8);  // qword steps
#else
    for (int k = 0; k < 4; k++) std::memcpy(blocks[b].qs + 4 * k, panel + 32 * k + 4 * row, 4);  // dword `row`
#endif
    std::memcpy(&blocks[b].d, panel + kQ4_0Codes + 2 * row, sizeof blocks[b].d);
  }
}

// Eight rows' codes of super-block b (unsigned, rows past `rows` zero).
template <typename Block, int kOffset>
void super_block_codes(const uint8_t* w, size_t w_row_bytes, int rows, int64_t b, uint8_t codes[kPanelRows][kQK_K]) {
  for (int r = 0; r < rows; r++) {
    int q[kQK_K];
    const Block& blk = block_of_row<Block>(w, w_row_bytes, r, b);
    if constexpr (std::is_same_v<Block, block_q2_k>) kquant::unpack_q2_k(blk, q);
    if constexpr (std::is_same_v<Block, block_q3_k>) kquant::unpack_q3_k(blk, q);
    if constexpr (std::is_same_v<Block, block_q5_k>) kquant::unpack_q5_k(blk, q);
    if constexpr (std::is_same_v<Block, block_q6_k>) kquant::unpack_q6_k(blk, q);
    for (int e = 0; e < kQK_K; e++) codes[r][e] = uint8_t(q[e] + kOffset);
  }
}

// The scales, d and dmin of super-block b of eight rows of Q4_K or Q5_K.
template <typename Block>
void pack_k4_panel_header(const uint8_t* w, size_t w_row_bytes, int rows, int64_t b, uint8_t* out) {
  for (int r = 0; r < kPanelRows; r++) {
    const Block* blk = r < rows ? &block_of_row<Block>(w, w_row_bytes, r, b) : nullptr;
    for (int k = 0; k < 12; k++) out[kQ4_KScales + 8 * k + r] = blk ? blk->scales[k] : 0;
    store_f16(out + kQ4_KD + 2 * r, blk ? blk->d : 0);
    store_f16(out + kQ4_KD + 16 + 2 * r, blk ? blk->dmin : 0);
  }
}

void pack_q4_k_panel(const uint8_t* w, size_t w_row_bytes, int rows, int64_t n, uint8_t* out) {
  for (int64_t b = 0; b < n / kQK_K; b++, out += kQ4_KPanelBlock) {
    for (int g = 0; g < 8; g++) {  // 32-element group g: nibble g%2 of qs[32*(g/2) ..]
      __m256i steps[8];
      transpose_rows(
          rows,
          [&](int r) {
            const __m256i packed = load32(block_of_row<block_q4_k>(w, w_row_bytes, r, b).qs + 32 * (g / 2));
            return _mm256_and_si256(_mm256_srli_epi16(packed, 4 * (g % 2)), _mm256_set1_epi8(0x0F));
          },
          steps);
      store_four_bit_codes(steps, out + kQ4_KCodes + 128 * g);
    }
    pack_k4_panel_header<block_q4_k>(w, w_row_bytes, rows, b, out);
  }
}

void pack_q5_k_panel(const uint8_t* w, size_t w_row_bytes, int rows, int64_t n, uint8_t* out) {
  alignas(32) uint8_t codes[kPanelRows][kQK_K] = {};  // rows past `rows` stay zero
  for (int64_t b = 0; b < n / kQK_K; b++, out += kQ5_KPanelBlock) {
    super_block_codes<block_q5_k, 0>(w, w_row_bytes, rows, b, codes);  // 0..31
    for (int g = 0; g < 8; g++) {
      __m256i steps[8];
      transpose_rows(kPanelRows, [&](int r) { return load32(codes[r] + 32 * g); }, steps);
      store_five_bit_steps(steps, out + kQ5_KGroups + g * kQ5_KGroupBytes);
    }
    pack_k4_panel_header<block_q5_k>(w, w_row_bytes, rows, b, out);
  }
}

// A Q4_K panel's 6-bit scales and mins (kquant::unpack_scale_min_k4 for eight
// rows at once) as the kernel reads them: scales[8g + r] of group g, row r,
// and mins[16j + 2r + i] of group 2j + i (the pairs madd meets with the
// activations' pairs of group sums). Groups 0-3 are the low six bits of bytes
// 0-3 (scales) and 4-7 (mins); groups 4-7 take their low four bits from bytes
// 8-11 and their top two from the spare top bits of bytes 0-7.
inline void unpack_q4_k_panel_scales(const uint8_t* packed, uint8_t scales[64], uint8_t mins[64]) {
  const __m256i low6 = _mm256_set1_epi8(0x3F), low4 = _mm256_set1_epi8(0x0F);
  const __m256i b0_3 = load32(packed), b4_7 = load32(packed + 32), b8_11 = load32(packed + 64);
  // Top two bits of a byte to bits 4-5 (only masked bits move, within their byte).
  auto top_two = [&](__m256i v) { return _mm256_srli_epi16(_mm256_andnot_si256(low6, v), 2); };
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(scales), _mm256_and_si256(b0_3, low6));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(scales + 32),
                      _mm256_or_si256(_mm256_and_si256(b8_11, low4), top_two(b0_3)));
  const __m256i mins_0_3 = _mm256_and_si256(b4_7, low6);
  const __m256i mins_4_7 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b8_11, 4), low4), top_two(b4_7));
  for (int half = 0; half < 2; half++) {
    const __m256i m = half ? mins_4_7 : mins_0_3;  // lane i: groups 4 half + 2i, 4 half + 2i + 1
    for (int i = 0; i < 2; i++) {
      const __m128i groups = i ? _mm256_extracti128_si256(m, 1) : _mm256_castsi256_si128(m);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(mins + 32 * half + 16 * i),
                       _mm_unpacklo_epi8(groups, _mm_srli_si128(groups, 8)));
    }
  }
}

#if !defined(WARDEN_GEMM_VNNI)
// Q8_0 on AVX2: maddubs takes an unsigned and a signed operand, so w * x is
// |w| * (x with w's sign); the pairs' int16 sums cannot saturate (|w| <= 128,
// |x| <= 127).
template <int NT>
void q8_0_panel_kernel(const uint8_t* panel, int64_t nb, const block_q8_0* const x[NT], const float* const xd[NT],
                       float out[NT][8]) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[NT];
  for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; b++, panel += kQ8_0PanelBlock) {
    __m256i isum[NT];
    for (int t = 0; t < NT; t++) isum[t] = _mm256_setzero_si256();
    run_steps<8, false>([&](int s) {
      const __m256i w = load32(panel + 32 * s);
      const __m256i w_abs = _mm256_sign_epi8(w, w);
      for (int t = 0; t < NT; t++) {
        const __m256i pairs = _mm256_maddubs_epi16(w_abs, _mm256_sign_epi8(broadcast4(x[t][b].qs + 4 * s), w));
        isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(pairs, ones));
      }
    });
    const __m256 wd = load_f16x8(panel + 256);
    for (int t = 0; t < NT; t++) {
      const __m256 scale = _mm256_mul_ps(wd, _mm256_broadcast_ss(xd[t] + b));
      acc[t] = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(isum[t]), acc[t]);
    }
  }
  for (int t = 0; t < NT; t++) _mm256_storeu_ps(out[t], acc[t]);
}
#else
// Each token's pair lanes of a block for block_pairs_kernel. Q8_0 (layout
// at pack_q8_0_panel): the codes plus 128 go into vpdpbusd as they are, one
// instruction per 64 bytes and token where 256-bit steps spent two sign
// instructions and a vpdpbusd per 32 (in cache, BM_Gemm/Q8_0_packed at 64
// tokens: 85-90 -> 119-126 G multiply-adds/s); one token takes two chains of
// dependent vpdpbusd.
struct Q8_0BlockSums {
  template <int NT>
  static void of(const uint8_t* codes, const int8_t* const qs[NT], __m512i sums[NT]) {
    constexpr int kChains = NT == 1 ? 2 : 1;
    __m512i chain[NT][kChains];
    for (auto& token : chain)
      for (auto& c : token) c = _mm512_setzero_si512();
    for (int m = 0; m < 4; m++) {
      const __m512i w = _mm512_loadu_si512(codes + 64 * m);
      for (int t = 0; t < NT; t++)
        chain[t][m % kChains] = _mm512_dpbusd_epi32(chain[t][m % kChains], w, broadcast8(qs[t] + 8 * m));
    }
    for (int t = 0; t < NT; t++) {
      sums[t] = chain[t][0];
      for (int c = 1; c < kChains; c++) sums[t] = _mm512_add_epi32(sums[t], chain[t][c]);
    }
  }
};
struct FourBitBlockSums {
  template <int NT>
  static void of(const uint8_t* codes, const int8_t* const qs[NT], __m512i sums[NT]) {
    four_bit_code_sums<NT>(codes, qs, sums);
  }
};
#endif

// Eight steps of codes against NT tokens' activations at qs[t] (32 int8
// each), added into sums[t]. Four-bit codes (Q4_0, Q4_1, Q4_K; the AVX2 set
// only, the VNNI set reads them with four_bit_code_sums): four registers of
// nibble pairs, step k low and step k + 4 high. Five-bit codes (Q5_0, Q5_1,
// Q5_K): a register of fifth bits first (bit s of byte i: code i of step s),
// then the nibble pairs. With VNNI the sums are int32 lanes, one per row;
// the low and the high steps accumulate apart: two chains of dependent
// vpdpbusd per token (measured: as fast as four for one token). With AVX2,
// four-bit sums stay int16 lanes (codes <= 15 keep eight steps' pair sums
// within int16: 8 * 2 * 15 * 128 < 32768), which group_sum and
// scaled_group_sum turn into each row's int32 sum; five-bit codes sum steps
// 0-3 and 4-7 in int16 apart (4 * 2 * 31 * 128 < 32768) and are widened to
// int32 lanes here.
template <int NT, bool kFiveBit>
inline void steps_times(const uint8_t* codes, const int8_t* const qs[NT], __m256i sums[NT]) {
  const __m256i low4 = _mm256_set1_epi8(0x0F), bit4 = _mm256_set1_epi8(0x10);
  const uint8_t* nibbles = kFiveBit ? codes + 32 : codes;
  const __m256i fifth = kFiveBit ? load32(codes) : _mm256_setzero_si256();
#if defined(WARDEN_GEMM_VNNI)
  static_assert(kFiveBit, "the VNNI set reads four-bit codes with four_bit_code_sums");
  __m256i hi_sums[NT];
  for (int t = 0; t < NT; t++) hi_sums[t] = _mm256_setzero_si256();
#else
  __m256i lo16[NT], hi16[NT];  // five-bit codes only
  for (int t = 0; t < NT; t++) lo16[t] = hi16[t] = _mm256_setzero_si256();
#endif
  // AVX2 unrolls one token only (measured: more tokens spill).
  run_steps<4, kVnni || NT == 1>([&](int k) {
    __m256i packed = load32(nibbles + 32 * k);
    // Four-bit codes, one load for both nibbles: left to itself the compiler
    // folds the load into each mask, reading the same 32 bytes twice, and the
    // load ports are what this loop runs short of (Q4_K faster in cache on
    // AVX2, and Q4_K and Q4_0 about 5 % on the VNNI set when it ran them
    // here; five-bit codes measured level to slower, so they are left be).
    if constexpr (!kFiveBit) asm("" : "+v"(packed));
    __m256i lo = _mm256_and_si256(packed, low4);
    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(packed, 4), low4);
    if constexpr (kFiveBit) {  // bits k and k + 4 of `fifth` to bit 4; the 16-bit shifts' strays are masked off
      lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi16(fifth, 4 - k), bit4));
      hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_srli_epi16(fifth, k), bit4));
    }
    for (int t = 0; t < NT; t++) {
      const __m256i x_lo = broadcast4(qs[t] + 4 * k), x_hi = broadcast4(qs[t] + 4 * k + 16);
#if defined(WARDEN_GEMM_VNNI)
      sums[t] = _mm256_dpbusd_epi32(sums[t], lo, x_lo);
      hi_sums[t] = _mm256_dpbusd_epi32(hi_sums[t], hi, x_hi);
#else
      __m256i& a = kFiveBit ? lo16[t] : sums[t];
      __m256i& b = kFiveBit ? hi16[t] : sums[t];
      a = _mm256_add_epi16(a, _mm256_maddubs_epi16(lo, x_lo));
      b = _mm256_add_epi16(b, _mm256_maddubs_epi16(hi, x_hi));
#endif
    }
  });
#if defined(WARDEN_GEMM_VNNI)
  for (int t = 0; t < NT; t++) sums[t] = _mm256_add_epi32(sums[t], hi_sums[t]);
#else
  if constexpr (kFiveBit) {
    const __m256i ones = _mm256_set1_epi16(1);
    for (int t = 0; t < NT; t++)
      sums[t] = _mm256_add_epi32(sums[t], _mm256_add_epi32(_mm256_madd_epi16(lo16[t], ones), _mm256_madd_epi16(hi16[t], ones)));
  }
#endif
}

// Each row's sum of what steps_times accumulated for four-bit codes.
inline __m256i group_sum(__m256i sums) {
#if defined(WARDEN_GEMM_VNNI)
  return sums;
#else
  return _mm256_madd_epi16(sums, _mm256_set1_epi16(1));
#endif
}

#if !defined(WARDEN_GEMM_VNNI)  // the VNNI set's Q4_K is q4_k_wide_kernel
// The same times each row's scale (8 unsigned bytes, one per row): lane
// pair of row r = its scale twice, madd gives scale * (a + b).
inline __m256i scaled_group_sum(__m256i sums, const uint8_t* row_scales) {
  const __m128i sc8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(row_scales));
  return _mm256_madd_epi16(sums, _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(sc8, sc8)));
}
#endif

// Each token's int32 sums (a lane per row) of block b's codes times its 32
// activations: four-bit codes (Q4_0, Q4_1) or five-bit ones (Q5_0, Q5_1).
template <int NT, bool kFiveBit, typename XBlock>
inline void block_code_sums(const uint8_t* codes, const XBlock* const x[NT], int64_t b, __m256i sums[NT]) {
  const int8_t* qs[NT];
  for (int t = 0; t < NT; t++) {
    sums[t] = _mm256_setzero_si256();
    qs[t] = x[t][b].qs;
  }
  static_assert(kFiveBit || !kVnni, "the VNNI set's four-bit blocks go through block_pairs_kernel");
  steps_times<NT, kFiveBit>(codes, qs, sums);
  if constexpr (!kFiveBit)
    for (int t = 0; t < NT; t++) sums[t] = group_sum(sums[t]);
}

// Q4_0 and Q5_0, whose codes carry an offset o (8, 16): sum((code - o) x) =
// sum(code x) - o sum(x), with the activations' block sums.
template <int NT, bool kFiveBit>
void offset_panel_kernel(const uint8_t* panel, int64_t nb, const block_q8_0* const x[NT], const float* const xd[NT],
                         const int32_t* const xsum[NT], float out[NT][8]) {
  constexpr size_t kCodes = kFiveBit ? kQ5_0Codes : kQ4_0Codes;
  constexpr size_t kBlock = kFiveBit ? kQ5_0PanelBlock : kQ4_0PanelBlock;
  constexpr int kOffset = kFiveBit ? 16 : 8;
  __m256 acc[NT];
  for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; b++, panel += kBlock) {
    __m256i sums[NT];
    block_code_sums<NT, kFiveBit>(panel, x, b, sums);
    const __m256 wd = load_f16x8(panel + kCodes);
    for (int t = 0; t < NT; t++) {
      const __m256i isum = _mm256_sub_epi32(sums[t], _mm256_set1_epi32(kOffset * xsum[t][b]));
      const __m256 scale = _mm256_mul_ps(wd, _mm256_broadcast_ss(xd[t] + b));
      acc[t] = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(isum), acc[t]);
    }
  }
  for (int t = 0; t < NT; t++) _mm256_storeu_ps(out[t], acc[t]);
}

// Q4_1 and Q5_1 against Q8_1 activations (the AVX2 set; the VNNI set's is
// block_pairs_kernel): the sum over a block of (d code + m) d_x q is
// d d_x sum(code q) + m s_x, where s_x = d_x sum(q) comes with each
// activation block.
template <int NT, bool kFiveBit>
void with_min_panel_kernel(const uint8_t* panel, int64_t nb, const block_q8_1* const x[NT], const float* const xd[NT],
                           const float* const xs[NT], float out[NT][8]) {
  constexpr size_t kCodes = kFiveBit ? kQ5_1Codes : kQ4_1Codes;
  constexpr size_t kBlock = kFiveBit ? kQ5_1PanelBlock : kQ4_1PanelBlock;
  __m256 acc[NT];
  for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; b++, panel += kBlock) {
    __m256i sums[NT];
    block_code_sums<NT, kFiveBit>(panel, x, b, sums);
    const __m256 wd = load_f16x8(panel + kCodes), wm = load_f16x8(panel + kCodes + 16);
    for (int t = 0; t < NT; t++) {
      acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(wd, _mm256_broadcast_ss(xd[t] + b)), _mm256_cvtepi32_ps(sums[t]), acc[t]);
      acc[t] = _mm256_fmadd_ps(wm, _mm256_broadcast_ss(xs[t] + b), acc[t]);
    }
  }
  for (int t = 0; t < NT; t++) _mm256_storeu_ps(out[t], acc[t]);
}

// The end of a Q4_K or Q5_K super-block: each row's mins against the
// activations' group sums (two bsums of 16 each, as int16 pairs of groups 2j
// and 2j + 1), then the float scales.
template <int NT>
inline void finish_k4_super_block(const uint8_t* panel, const uint8_t mins[64], const block_q8_k* const x[NT],
                                  int64_t b, const __m256i isum[NT], float acc[NT][8]) {
  const __m256 wd = load_f16x8(panel + kQ4_KD), wdmin = load_f16x8(panel + kQ4_KD + 16);
  for (int t = 0; t < NT; t++) {
    const __m128i b16 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[t][b].bsums));
    const __m128i b16_hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[t][b].bsums + 8));
    alignas(16) int32_t group_pairs[4];
    _mm_store_si128(reinterpret_cast<__m128i*>(group_pairs), _mm_hadd_epi16(b16, b16_hi));
    __m256i corr = _mm256_setzero_si256();
    for (int j = 0; j < 4; j++) {
      const __m256i m = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(mins + 16 * j)));
      corr = _mm256_add_epi32(corr, _mm256_madd_epi16(m, _mm256_set1_epi32(group_pairs[j])));
    }
    add_super_block(acc[t], wd, wdmin, x[t][b].d, isum[t], corr);
  }
}

#if defined(WARDEN_GEMM_VNNI)
// Each token's sums of two blocks of five-bit codes (store_five_bit_steps'
// layout, the second `stride` bytes after the first) times its activations
// xs[t] (the two blocks' 32 side by side), as steps_times does for one
// block in 256 bits: lanes 0-7 the first block's rows, 8-15 the second's.
// Each step's activations are permuted out of xs.
template <int NT>
inline void five_bit_pair_sums(const uint8_t* first, size_t stride, const __m512i xs[NT], __m512i sums[NT]) {
  const __m512i low4 = _mm512_set1_epi8(0x0F), bit4 = _mm512_set1_epi8(0x10);
  __m512i high_sums[NT];
  for (int t = 0; t < NT; t++) sums[t] = high_sums[t] = _mm512_setzero_si512();
  const __m512i fifth = two_halves(first, first + stride);
  for (int k = 0; k < 4; k++) {
    const uint8_t* nibbles = first + 32 + 32 * k;
    const __m512i packed = two_halves(nibbles, nibbles + stride);
    // Bits k and k + 4 of `fifth` to bit 4; the 16-bit shifts' strays are masked off.
    const __m512i low = _mm512_or_si512(_mm512_and_si512(packed, low4),
                                        _mm512_and_si512(_mm512_slli_epi16(fifth, unsigned(4 - k)), bit4));
    const __m512i high = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(packed, 4), low4),
                                         _mm512_and_si512(_mm512_srli_epi16(fifth, unsigned(k)), bit4));
    // The activation dwords of step k (codes 4k..4k + 3) and of step k + 4, of each block.
    const __m512i low_step = step_dwords(k, 8 + k), high_step = step_dwords(4 + k, 12 + k);
    for (int t = 0; t < NT; t++) {
      sums[t] = _mm512_dpbusd_epi32(sums[t], low, _mm512_permutexvar_epi32(low_step, xs[t]));
      high_sums[t] = _mm512_dpbusd_epi32(high_sums[t], high, _mm512_permutexvar_epi32(high_step, xs[t]));
    }
  }
  for (int t = 0; t < NT; t++) sums[t] = _mm512_add_epi32(sums[t], high_sums[t]);
}

// Each token's integer sums (a lane per row) of a Q5_K super-block's eight
// 32-element groups times their scales, on the VNNI set: two groups a pass
// in 512-bit registers (the groups lie one after the other). The same
// exact integers as steps_times group by group in 256 bits, in about half
// the instructions (BM_Gemm/Q5_K_packed/1/64: docs/performance.md).
template <int NT>
inline void five_bit_group_pair_sums(const uint8_t* groups, const uint8_t* scales, const block_q8_k* const x[NT],
                                     int64_t b, __m256i isum[NT]) {
  __m512i wide[NT];
  for (int t = 0; t < NT; t++) wide[t] = _mm512_setzero_si512();
  for (int g = 0; g < 8; g += 2) {
    __m512i xs[NT], sums[NT];
    for (int t = 0; t < NT; t++) xs[t] = _mm512_loadu_si512(x[t][b].qs + 32 * g);
    five_bit_pair_sums<NT>(groups + g * kQ5_KGroupBytes, kQ5_KGroupBytes, xs, sums);
    const __m512i scale = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(scales + 8 * g)));
    for (int t = 0; t < NT; t++) wide[t] = _mm512_add_epi32(wide[t], _mm512_mullo_epi32(sums[t], scale));
  }
  for (int t = 0; t < NT; t++)
    isum[t] = _mm256_add_epi32(_mm512_castsi512_si256(wide[t]), _mm512_extracti64x4_epi64(wide[t], 1));
}

// Where the kernels that take two 32-element blocks a pass keep them in a
// 512-bit register. Interleaved (the qword kernels' pair lanes, see
// broadcast8): lane 2r row r of the even block, 2r + 1 of the odd one.
struct InterleavedBlocks {
  // Eight f16 values of the even block (one per row) and eight of the odd one.
  static __m512 f16(const uint8_t* even, const uint8_t* odd) {
    const __m128i e = _mm_loadu_si128(reinterpret_cast<const __m128i*>(even));
    const __m128i o = _mm_loadu_si128(reinterpret_cast<const __m128i*>(odd));
    return _mm512_cvtph_ps(_mm256_set_m128i(_mm_unpackhi_epi16(e, o), _mm_unpacklo_epi16(e, o)));
  }
  // A 32-bit value per block (two[0] the even block's, two[1] the odd one's) in its lanes.
  static __m512i per_block(const void* two) {
    int64_t both;
    std::memcpy(&both, two, sizeof both);
    return _mm512_set1_epi64(both);
  }
  // Each row's two lanes added, in lane r.
  static __m256 rows(__m512 v) {
    const __m512 odd_lanes = _mm512_castsi512_ps(_mm512_srli_epi64(_mm512_castps_si512(v), 32));
    return _mm256_castsi256_ps(_mm512_cvtepi64_epi32(_mm512_castps_si512(_mm512_add_ps(v, odd_lanes))));
  }
};
// Halves (five_bit_pair_sums): lanes 0-7 the even block's rows, 8-15 the odd one's.
struct HalvedBlocks {
  static constexpr __mmask16 kOddHalf = 0xFF00;
  static __m512 f16(const uint8_t* even, const uint8_t* odd) {
    return _mm512_cvtph_ps(_mm256_set_m128i(_mm_loadu_si128(reinterpret_cast<const __m128i*>(odd)),
                                            _mm_loadu_si128(reinterpret_cast<const __m128i*>(even))));
  }
  // Broadcasts from memory rather than a permute: the five-bit kernels'
  // permutes keep the shuffle port busy (a permute here cost Q5_0 4 % in cache).
  static __m512i per_block(const int32_t* two) {
    return _mm512_mask_blend_epi32(kOddHalf, _mm512_set1_epi32(two[0]), _mm512_set1_epi32(two[1]));
  }
  static __m512i per_block(const float* two) {
    return _mm512_castps_si512(_mm512_mask_blend_ps(kOddHalf, _mm512_set1_ps(two[0]), _mm512_set1_ps(two[1])));
  }
  static __m256 rows(__m512 v) {
    return _mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
  }
};

// The integer sums of a block's codes times the activations, for
// block_pairs_kernel: of two blocks (`pair`: two registers per token, which
// `merge` joins into Layout's lanes) or of one (`one`: lane r row r). Codes
// whose BlockSums gives pair lanes per block (Q8_0, Q4_0, Q4_1) go
// interleaved, so that no block needs narrowing; they merge inside the
// kernel's loop over the tokens, which measured up to 3 % faster in cache
// for four tokens than merging them all first.
template <typename BlockSums>
struct QwordCodes {
  using Layout = InterleavedBlocks;
  template <int NT, size_t kBlock, typename XBlock>
  static void pair(const uint8_t* panel, const XBlock* const x[NT], int64_t b, __m512i even[NT], __m512i odd[NT]) {
    const int8_t* qs_even[NT];
    const int8_t* qs_odd[NT];
    for (int t = 0; t < NT; t++) qs_even[t] = x[t][b].qs, qs_odd[t] = x[t][b + 1].qs;
    BlockSums::template of<NT>(panel, qs_even, even);
    BlockSums::template of<NT>(panel + kBlock, qs_odd, odd);
  }
  // The two blocks' pair lanes (halves of each row's sum) as one register.
  static __m512i merge(__m512i even, __m512i odd) {
    return _mm512_mask_blend_epi32(__mmask16(0xAAAA), _mm512_add_epi32(even, _mm512_srli_epi64(even, 32)),
                                   _mm512_add_epi32(odd, _mm512_slli_epi64(odd, 32)));
  }
  template <int NT, typename XBlock>
  static void one(const uint8_t* panel, const XBlock* const x[NT], int64_t b, __m256i sums[NT]) {
    const int8_t* qs[NT];
    for (int t = 0; t < NT; t++) qs[t] = x[t][b].qs;
    __m512i wide[NT];
    BlockSums::template of<NT>(panel, qs, wide);
    for (int t = 0; t < NT; t++) sums[t] = add_lane_pairs(wide[t]);
  }
};
// Five-bit codes (Q5_0, Q5_1; store_five_bit_steps' layout), in halves,
// which five_bit_pair_sums gives joined.
struct FiveBitCodes {
  using Layout = HalvedBlocks;
  template <int NT, size_t kBlock, typename XBlock>
  static void pair(const uint8_t* panel, const XBlock* const x[NT], int64_t b, __m512i sums[NT], __m512i[NT]) {
    __m512i xs[NT];
    for (int t = 0; t < NT; t++) xs[t] = two_halves(x[t][b].qs, x[t][b + 1].qs);
    five_bit_pair_sums<NT>(panel, kBlock, xs, sums);
  }
  static __m512i merge(__m512i sums, __m512i) { return sums; }
  template <int NT, typename XBlock>
  static void one(const uint8_t* panel, const XBlock* const x[NT], int64_t b, __m256i sums[NT]) {
    block_code_sums<NT, true>(panel, x, b, sums);
  }
};

// The VNNI set's kernel for the 32-element types (Q8_0, Q4_0, Q5_0, Q4_1,
// Q5_1): per kBlock bytes the codes, then eight f16 scales d at kScales and,
// for Q4_1 and Q5_1, eight f16 mins m after them. The codes are stored plus
// kOffset (a power of two; Q8_0's plus 128 for vpdpbusd, Q4_0's and Q5_0's
// offsets of their own), taken off with each activation block's integer sum
// (Correction = int32_t, xc); or, with a min (Correction = float), value =
// d code + m, and m times the activation block's scaled sum (xc) is added.
// Two blocks a pass (Codes::pair, in Codes::Layout's lanes): the scales,
// offsets, mins and float products take one 512-bit instruction for both.
// The even and the odd blocks' float sums meet at the end, in the same
// order for any number of tokens (lookup decoding needs a pass of a few
// tokens to give exactly the logits of single steps); an odd count's last
// block goes alone. Why: one token streams these panels from memory, and
// these types spend the most instructions per byte of weights (a scale per
// 32 codes), which limits how far ahead their loads run: in cache, one
// token's Q4_0 119 -> 137, Q5_0 52-55 -> 73-89, Q4_1 101-110 -> 120-123,
// Q5_1 66-70 -> 82-88 G multiply-adds/s (BM_Gemm/*_packed/1/64); decode of
// qwen3-0.6b q8_0 2.2 % and q4_0 0.5-1.4 % faster, prefill of files of
// Q4_1 and Q5_1 rows 8-14 % (docs/performance.md).
template <int NT, size_t kBlock, size_t kScales, int kOffset, typename Codes, typename XBlock, typename Correction>
void block_pairs_kernel(const uint8_t* panel, int64_t nb, const XBlock* const x[NT], const float* const xd[NT],
                        const Correction* const xc[NT], float out[NT][8]) {
  constexpr bool kWithMin = std::is_same_v<Correction, float>;
  static_assert(kWithMin ? kOffset == 0 : std::is_same_v<Correction, int32_t>);
  constexpr int kOffsetShift = kOffset == 0 ? 0 : __builtin_ctz(kOffset);
  static_assert(kOffset == 0 || kOffset == 1 << kOffsetShift);
  using Layout = typename Codes::Layout;
  __m512 acc[NT];
  for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2, panel += 2 * kBlock) {
    __m512i sums[NT], odd[NT];
    Codes::template pair<NT, kBlock>(panel, x, b, sums, odd);
    const __m512 wd = Layout::f16(panel + kScales, panel + kBlock + kScales);
    [[maybe_unused]] __m512 wm;
    if constexpr (kWithMin) wm = Layout::f16(panel + kScales + 16, panel + kBlock + kScales + 16);
    for (int t = 0; t < NT; t++) {
      sums[t] = Codes::merge(sums[t], odd[t]);
      if constexpr (kOffset != 0)
        sums[t] = _mm512_sub_epi32(sums[t], _mm512_slli_epi32(Layout::per_block(xc[t] + b), kOffsetShift));
      const __m512 scale = _mm512_mul_ps(wd, _mm512_castsi512_ps(Layout::per_block(xd[t] + b)));
      acc[t] = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(sums[t]), acc[t]);
      if constexpr (kWithMin)
        acc[t] = _mm512_fmadd_ps(wm, _mm512_castsi512_ps(Layout::per_block(xc[t] + b)), acc[t]);
    }
  }
  __m256 total[NT];
  for (int t = 0; t < NT; t++) total[t] = Layout::rows(acc[t]);
  if (b < nb) {
    __m256i sums[NT];
    Codes::template one<NT>(panel, x, b, sums);
    const __m256 wd = load_f16x8(panel + kScales);
    for (int t = 0; t < NT; t++) {
      if constexpr (kOffset != 0) sums[t] = _mm256_sub_epi32(sums[t], _mm256_set1_epi32(kOffset * xc[t][b]));
      const __m256 scale = _mm256_mul_ps(wd, _mm256_broadcast_ss(xd[t] + b));
      total[t] = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(sums[t]), total[t]);
      if constexpr (kWithMin)
        total[t] = _mm256_fmadd_ps(load_f16x8(panel + kScales + 16), _mm256_broadcast_ss(xc[t] + b), total[t]);
    }
  }
  for (int t = 0; t < NT; t++) _mm256_storeu_ps(out[t], total[t]);
}
#endif

// Q4_K and Q5_K: per 32-element group, the codes' sums times the group's
// scale (four-bit sums as int16 lanes on AVX2, see steps_times; the VNNI
// set's Q4_K is q4_k_wide_kernel).
template <int NT, bool kFiveBit>
void k4_panel_kernel(const uint8_t* panel, int64_t nsb, const block_q8_k* const x[NT], float out[NT][8]) {
  static_assert(kFiveBit || !kVnni);
  constexpr size_t kBlock = kFiveBit ? kQ5_KPanelBlock : kQ4_KPanelBlock;
  float acc[NT][8] = {};
  for (int64_t b = 0; b < nsb; b++, panel += kBlock) {
    alignas(32) uint8_t scales[64], mins[64];
    unpack_q4_k_panel_scales(panel + kQ4_KScales, scales, mins);
    __m256i isum[NT];
#if defined(WARDEN_GEMM_VNNI)
    five_bit_group_pair_sums<NT>(panel + kQ5_KGroups, scales, x, b, isum);
#else
    constexpr size_t kGroups = kFiveBit ? kQ5_KGroups : kQ4_KCodes, kGroupBytes = kFiveBit ? kQ5_KGroupBytes : 128;
    for (int t = 0; t < NT; t++) isum[t] = _mm256_setzero_si256();
    for (int g = 0; g < 8; g++) {
      __m256i sums[NT];
      const int8_t* qs[NT];
      for (int t = 0; t < NT; t++) {
        sums[t] = _mm256_setzero_si256();
        qs[t] = x[t][b].qs + 32 * g;
      }
      steps_times<NT, kFiveBit>(panel + kGroups + g * kGroupBytes, qs, sums);
      if constexpr (kFiveBit) {  // int32 sums on both kernel sets
        const __m256i scale = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(scales + 8 * g)));
        for (int t = 0; t < NT; t++) isum[t] = _mm256_add_epi32(isum[t], _mm256_mullo_epi32(sums[t], scale));
      }
      else {
        for (int t = 0; t < NT; t++) isum[t] = _mm256_add_epi32(isum[t], scaled_group_sum(sums[t], scales + 8 * g));
      }
    }
#endif
    finish_k4_super_block<NT>(panel, mins, x, b, isum, acc);
  }
  std::memcpy(out, acc, sizeof acc);
}

#if defined(WARDEN_GEMM_VNNI)
// A Q4_K panel's scales and mins (layout at kQ4_KScales) as q4_k_wide_kernel
// multiplies them in, unpacked in 512-bit registers.
struct Q4_KWideScales {
  // Pair p (groups 2p, 2p + 1): dword j of 128-bit lane k holds the scale of
  // row 2k + j % 2 in group 2p + j / 2, twice as int16 (vpdpwssd's operand
  // against the packed sums of two groups, see q4_k_wide_kernel).
  __m512i pair[4];
  // Group pair j (groups 2j, 2j + 1) in dwords 8 (j % 2) + r of register
  // j / 2: row r's two mins as int16, against the activations' two group sums.
  __m512i min_pairs[2];
};

inline Q4_KWideScales unpack_q4_k_wide_scales(const uint8_t* packed) {
  // Groups 0-3 are the low six bits of bytes 0-31 (scales) and 32-63 (mins),
  // byte 8g + r of row r; groups 4-7 take their low four bits from bytes
  // 64-95 (scales low, mins high nibble) and their top two from the spare top
  // bits of bytes 0-63. So each register: scales of four groups, then mins.
  const __m512i low6 = _mm512_set1_epi8(0x3F);
  const __m512i bytes0_63 = _mm512_loadu_si512(packed);
  const __m256i bytes64_95 = load32(packed + 64);
  const __m512i nibbles = _mm512_inserti64x4(_mm512_castsi256_si512(bytes64_95), _mm256_srli_epi16(bytes64_95, 4), 1);
  const __m512i groups0_3 = _mm512_and_si512(bytes0_63, low6);
  const __m512i groups4_7 = _mm512_or_si512(_mm512_and_si512(nibbles, _mm512_set1_epi8(0x0F)),
                                            _mm512_srli_epi16(_mm512_andnot_si512(low6, bytes0_63), 2));
  Q4_KWideScales out;
  // Each pair's 16 scale bytes in every lane, then spread: byte 0 and 2 of
  // dword j in lane k from byte 8 (j / 2) + 2k + j % 2, bytes 1 and 3 zero
  // (the -128 index bytes keep bit 7 after the add, and vpshufb writes zero).
  const __m512i spread = _mm512_add_epi8(
      _mm512_broadcast_i32x4(_mm_setr_epi8(0, -128, 0, -128, 1, -128, 1, -128, 8, -128, 8, -128, 9, -128, 9, -128)),
      _mm512_set_epi64(0x0606060606060606, 0x0606060606060606, 0x0404040404040404, 0x0404040404040404,
                       0x0202020202020202, 0x0202020202020202, 0, 0));
  out.pair[0] = _mm512_shuffle_epi8(_mm512_shuffle_i32x4(groups0_3, groups0_3, 0x00), spread);
  out.pair[1] = _mm512_shuffle_epi8(_mm512_shuffle_i32x4(groups0_3, groups0_3, 0x55), spread);
  out.pair[2] = _mm512_shuffle_epi8(_mm512_shuffle_i32x4(groups4_7, groups4_7, 0x00), spread);
  out.pair[3] = _mm512_shuffle_epi8(_mm512_shuffle_i32x4(groups4_7, groups4_7, 0x55), spread);
  // The mins of group pairs 0-3 in lanes 0-3, each lane's two groups
  // interleaved row by row, then widened to int16.
  const __m512i mins = _mm512_shuffle_i32x4(groups0_3, groups4_7, 0xEE);
  const __m512i interleaved = _mm512_unpacklo_epi8(mins, _mm512_bsrli_epi128(mins, 8));
  out.min_pairs[0] = _mm512_cvtepu8_epi16(_mm512_castsi512_si256(interleaved));
  out.min_pairs[1] = _mm512_cvtepu8_epi16(_mm512_extracti64x4_epi64(interleaved, 1));
  return out;
}

// Each row's mins against a token's group sums (Q8_K's bsums, added in
// pairs: dword j holds the sums of groups 2j and 2j + 1 as int16).
inline __m256i q4_k_wide_min_sums(const Q4_KWideScales& s, const block_q8_k& x) {
  const __m128i group_pairs = _mm_hadd_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x.bsums)),
                                             _mm_loadu_si128(reinterpret_cast<const __m128i*>(x.bsums + 8)));
  const __m512i pairs = _mm512_castsi128_si512(group_pairs);
  // Dwords 0-7 the sums of group pair 0, 8-15 of pair 1, as min_pairs[0]
  // holds the rows' mins; then pairs 2 and 3 for min_pairs[1].
  const __m512i first_two = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
  const __m512i pairs01 = _mm512_permutexvar_epi32(first_two, pairs);
  const __m512i pairs23 = _mm512_permutexvar_epi32(_mm512_add_epi32(first_two, _mm512_set1_epi32(2)), pairs);
  const __m512i sums = _mm512_dpwssd_epi32(_mm512_madd_epi16(s.min_pairs[0], pairs01), s.min_pairs[1], pairs23);
  return _mm256_add_epi32(_mm512_castsi512_si256(sums), _mm512_extracti64x4_epi64(sums, 1));
}

// Q4_K on the VNNI set, in 512-bit registers (see broadcast8; layout at
// pack_q4_k_panel). A group's sums (lo + hi / 16, lanes 2r and 2r + 1 of row
// r) are at most 8 x 15 x 128 = 15360 each, so two groups' sums pack into
// int16 pairs (vpackssdw: per 128-bit lane, rows 2k and 2k + 1 of group g,
// then of group g + 1) and one vpdpwssd multiplies them by their rows' scales
// and adds each row's two halves into the super-block's sums, where a
// conversion, a vpmulld and an add per group did that before. In cache
// (BM_Gemm/Q4_K_packed, alternating runs): one token 87-91 -> 99-100 G
// multiply-adds/s, 64 tokens 130 -> 142-143.
template <int NT>
void q4_k_wide_kernel(const uint8_t* panel, int64_t nsb, const block_q8_k* const x[NT], float out[NT][8]) {
  // Dwords 0-3 of lane k of the sums: rows 2k, 2k + 1 (even groups), rows 2k, 2k + 1 (odd groups).
  const __m512i rows_in_order = _mm512_set_epi64(0, 0, 0, 0, 6, 4, 2, 0);
  float acc[NT][8] = {};
  for (int64_t b = 0; b < nsb; b++, panel += kQ4_KPanelBlock) {
    const Q4_KWideScales scales = unpack_q4_k_wide_scales(panel + kQ4_KScales);
    __m512i isum[NT];
    for (int t = 0; t < NT; t++) isum[t] = _mm512_setzero_si512();
    for (int pair = 0; pair < 4; pair++) {
      __m512i group_sums[2][NT];
      for (int i = 0; i < 2; i++) {
        const int g = 2 * pair + i;
        const int8_t* qs[NT];
        for (int t = 0; t < NT; t++) qs[t] = x[t][b].qs + 32 * g;
        four_bit_code_sums<NT>(panel + kQ4_KCodes + 128 * g, qs, group_sums[i]);
      }
      for (int t = 0; t < NT; t++)
        isum[t] = _mm512_dpwssd_epi32(isum[t], _mm512_packs_epi32(group_sums[0][t], group_sums[1][t]),
                                      scales.pair[pair]);
    }
    const __m256 wd = load_f16x8(panel + kQ4_KD), wdmin = load_f16x8(panel + kQ4_KD + 16);
    for (int t = 0; t < NT; t++) {
      const __m512i both = _mm512_add_epi32(isum[t], _mm512_shuffle_epi32(isum[t], _MM_PERM_BADC));
      const __m256i row_sums = _mm512_castsi512_si256(_mm512_permutexvar_epi64(rows_in_order, both));
      add_super_block(acc[t], wd, wdmin, x[t][b].d, row_sums, q4_k_wide_min_sums(scales, x[t][b]));
    }
  }
  std::memcpy(out, acc, sizeof acc);
}
#endif

// ---- K-quants with 16-element sub-blocks: Q2_K, Q3_K, Q6_K ----------------
//
// One int8 scale per (sub-block, row), stored [sub-block][row] (byte 8j + r)
// or unpacked to that order from the file's fields, then per sub-block four
// steps of unsigned codes. Signed codes carry an offset (Q3_K 4, Q6_K 32):
// sum((code - o) x) over sub-block j is sum(code x) - o bsum_j, so each
// super-block is corrected by o * sum_j sc_j bsum_j; Q2_K's codes are
// unsigned with a min per sub-block instead, corrected by dmin * sum_j m_j
// bsum_j. Both corrections are the same pairs of (sub-block 2i, 2i + 1)
// terms against the activations' (bsum_2i, bsum_2i+1).

// Q6_K: per super-block, 16 x 8 int8 scales [sub-block][row], 8 f16 d, then
// per 16-element sub-block j (4 steps of 6-bit codes 0..63) three registers:
// steps 0, 1 and 2 in the low six bits of each byte and step 3's bits 4-5,
// 2-3 and 0-1 in their top two bits. The same bytes as the file's
// 4+2-bit split, but rebuilding a step's codes costs under three
// instructions on average instead of over four.
constexpr size_t kQ6_KSubBlockBytes = 3 * 32;
constexpr size_t kQ6_KScales = 0, kQ6_KD = 128, kQ6_KCodes = kQ6_KD + 16;
constexpr size_t kQ6_KPanelBlock = kQ6_KCodes + 16 * kQ6_KSubBlockBytes;
// Q3_K: per super-block, the rows' 12 bytes of 6-bit scales as in the file
// (byte k of row r at 8k + r), 8 f16 d, then per 32-element group (sub-
// blocks 2g and 2g + 1, steps 0..7) three registers of 3-bit codes: steps 0
// and 1, 2 and 3, 4 and 5 in bits 0-2 and 3-5 of registers A, B and C; step
// 6 in bits 6-7 of A and bit 6 of B, step 7 in bit 7 of B and bits 6-7 of C.
// 880 bytes, 110 per row as in the file; a group's codes cost 19
// instructions to rebuild where a separate register of third bits cost 40.
constexpr size_t kQ3_KScales = 0, kQ3_KD = 96, kQ3_KGroups = kQ3_KD + 16, kQ3_KGroupBytes = 3 * 32;
constexpr size_t kQ3_KPanelBlock = kQ3_KGroups + 8 * kQ3_KGroupBytes;
// Q2_K: per super-block, 16 x 8 scale bytes [sub-block][row] as in the file
// (scale in the low nibble, min in the high one), 8 f16 d, 8 f16 dmin, then
// one register per sub-block of 2-bit fields (bits 2k..2k + 1 of byte i:
// code i of step k). 672 bytes, 84 per row as in the file.
constexpr size_t kQ2_KScales = 0, kQ2_KD = 128, kQ2_KCodes = kQ2_KD + 16 + 16;
constexpr size_t kQ2_KPanelBlock = kQ2_KCodes + 16 * 32;

// Four steps of codes <= 3 in one register: step k in bits 2k..2k + 1.
inline __m256i two_bit_fields(const __m256i steps[4]) {
  __m256i v = steps[0];
  for (int k = 1; k < 4; k++) v = _mm256_or_si256(v, _mm256_slli_epi16(steps[k], 2 * k));
  return v;
}

void pack_q6_k_panel(const uint8_t* w, size_t w_row_bytes, int rows, int64_t n, uint8_t* out) {
  alignas(32) uint8_t codes[kPanelRows][kQK_K] = {};
  const __m256i low2 = _mm256_set1_epi8(0x03);
  // Bits (shift .. shift + 1) of step 3's codes, moved to the top of each byte.
  auto top_bits = [&](__m256i c3, int shift) {
    return _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(c3, shift), low2), 6);
  };
  for (int64_t b = 0; b < n / kQK_K; b++, out += kQ6_KPanelBlock) {
    super_block_codes<block_q6_k, 32>(w, w_row_bytes, rows, b, codes);  // 0..63
    for (int g = 0; g < 8; g++) {  // 32 elements: sub-blocks 2g and 2g + 1
      __m256i steps[8];
      transpose_rows(kPanelRows, [&](int r) { return load32(codes[r] + 32 * g); }, steps);
      for (int half = 0; half < 2; half++) {
        const __m256i* s = steps + 4 * half;
        uint8_t* sub = out + kQ6_KCodes + (2 * g + half) * kQ6_KSubBlockBytes;
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(sub), _mm256_or_si256(s[0], top_bits(s[3], 4)));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(sub + 32), _mm256_or_si256(s[1], top_bits(s[3], 2)));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(sub + 64), _mm256_or_si256(s[2], top_bits(s[3], 0)));
      }
    }
    for (int r = 0; r < kPanelRows; r++) {
      const block_q6_k* blk = r < rows ? &block_of_row<block_q6_k>(w, w_row_bytes, r, b) : nullptr;
      for (int j = 0; j < 16; j++) out[kQ6_KScales + 8 * j + r] = blk ? uint8_t(blk->scales[j]) : 0;
      store_f16(out + kQ6_KD + 2 * r, blk ? blk->d : 0);
    }
  }
}

// pack_q6_k_panel's inverse for one row: each 16-element sub-block's three
// registers hold the codes of its steps 0-2 (dword `row`, a code a byte,
// bits 0-5) and, in the bytes' top bits, bits 4-5, 2-3 and 0-1 of step 3's.
void unpack_q6_k_row(const uint8_t* panel, int row, int64_t n, uint8_t* out) {
  auto* blocks = reinterpret_cast<block_q6_k*>(out);
  for (int64_t b = 0; b < n / kQK_K; b++, panel += kQ6_KPanelBlock) {
    int codes[kQK_K];  // 0..63
    for (int sub = 0; sub < 16; sub++) {  // elements 16 sub .. 16 sub + 15, steps of four
      const uint8_t* regs = panel + kQ6_KCodes + sub * kQ6_KSubBlockBytes + 4 * row;
      for (int i = 0; i < 4; i++) {
        const uint8_t c0 = regs[i], c1 = regs[32 + i], c2 = regs[64 + i];
        int* step = codes + 16 * sub + i;
        step[0] = c0 & 63;
        step[4] = c1 & 63;
        step[8] = c2 & 63;
        step[12] = ((c0 >> 6) << 4) | ((c1 >> 6) << 2) | (c2 >> 6);
      }
    }
    block_q6_k& y = blocks[b];
    kquant::pack_q6_k_codes(codes, y);
    for (int j = 0; j < 16; j++) y.scales[j] = int8_t(panel[kQ6_KScales + 8 * j + row]);
    std::memcpy(&y.d, panel + kQ6_KD + 2 * row, sizeof y.d);
  }
}

void pack_q3_k_panel(const uint8_t* w, size_t w_row_bytes, int rows, int64_t n, uint8_t* out) {
  alignas(32) uint8_t codes[kPanelRows][kQK_K] = {};
  // Codes (0..7) shifted within their bytes: 16-bit shifts that move no set
  // bit across a byte boundary, or whose strays the mask drops.
  auto bits = [](__m256i c, int from, int count, int to) {
    const __m256i field = _mm256_and_si256(_mm256_srli_epi16(c, from), _mm256_set1_epi8(char((1 << count) - 1)));
    return _mm256_slli_epi16(field, to);
  };
  for (int64_t b = 0; b < n / kQK_K; b++, out += kQ3_KPanelBlock) {
    super_block_codes<block_q3_k, 4>(w, w_row_bytes, rows, b, codes);  // 0..7
    for (int g = 0; g < 8; g++) {
      __m256i c[8];
      transpose_rows(kPanelRows, [&](int r) { return load32(codes[r] + 32 * g); }, c);
      const __m256i a = _mm256_or_si256(_mm256_or_si256(c[0], bits(c[1], 0, 3, 3)), bits(c[6], 0, 2, 6));
      const __m256i b3 = _mm256_or_si256(_mm256_or_si256(c[2], bits(c[3], 0, 3, 3)),
                                         _mm256_or_si256(bits(c[6], 2, 1, 6), bits(c[7], 0, 1, 7)));
      const __m256i cc = _mm256_or_si256(_mm256_or_si256(c[4], bits(c[5], 0, 3, 3)), bits(c[7], 1, 2, 6));
      uint8_t* group = out + kQ3_KGroups + g * kQ3_KGroupBytes;
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(group), a);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(group + 32), b3);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(group + 64), cc);
    }
    for (int r = 0; r < kPanelRows; r++) {
      const block_q3_k* blk = r < rows ? &block_of_row<block_q3_k>(w, w_row_bytes, r, b) : nullptr;
      for (int k = 0; k < 12; k++) out[kQ3_KScales + 8 * k + r] = blk ? blk->scales[k] : 0;
      store_f16(out + kQ3_KD + 2 * r, blk ? blk->d : 0);
    }
  }
}

void pack_q2_k_panel(const uint8_t* w, size_t w_row_bytes, int rows, int64_t n, uint8_t* out) {
  alignas(32) uint8_t codes[kPanelRows][kQK_K] = {};
  for (int64_t b = 0; b < n / kQK_K; b++, out += kQ2_KPanelBlock) {
    super_block_codes<block_q2_k, 0>(w, w_row_bytes, rows, b, codes);  // 0..3
    for (int g = 0; g < 8; g++) {
      __m256i steps[8];
      transpose_rows(kPanelRows, [&](int r) { return load32(codes[r] + 32 * g); }, steps);
      for (int half = 0; half < 2; half++)
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + kQ2_KCodes + (2 * g + half) * 32),
                            two_bit_fields(steps + 4 * half));
    }
    for (int r = 0; r < kPanelRows; r++) {
      const block_q2_k* blk = r < rows ? &block_of_row<block_q2_k>(w, w_row_bytes, r, b) : nullptr;
      for (int j = 0; j < 16; j++) out[kQ2_KScales + 8 * j + r] = blk ? blk->scales[j] : 0;
      store_f16(out + kQ2_KD + 2 * r, blk ? blk->d : 0);
      store_f16(out + kQ2_KD + 16 + 2 * r, blk ? blk->dmin : 0);
    }
  }
}

// Step k's codes of a register of 2-bit fields (the 16-bit shift carries
// bits across bytes only where the mask drops them).
inline __m256i two_bit_step(__m256i fields, int k) {
  return _mm256_and_si256(_mm256_srli_epi16(fields, 2 * k), _mm256_set1_epi8(0x03));
}

// The layouts as sub_block_panel_kernel reads them: kPanelBlock, kD and kDmin
// (the f16 factors of the integer sums and of the correction), kHasMins (or
// codes with an offset of 2^kOffsetShift), codes(panel, j, c) for sub-block j's
// four steps, and Scales: the scales and correction terms of a super-block,
// 16 x 8 int8 each, [sub-block][row].
struct Q6_KLayout {
  static constexpr size_t kPanelBlock = kQ6_KPanelBlock, kD = kQ6_KD, kDmin = kQ6_KD;
  static constexpr int kOffsetShift = 5;
  static constexpr bool kHasMins = false;
  static void codes(const uint8_t* panel, int j, __m256i c[4]) {
    const __m256i low6 = _mm256_set1_epi8(0x3F);
    const uint8_t* sub = panel + kQ6_KCodes + j * kQ6_KSubBlockBytes;
    const __m256i a = load32(sub), b = load32(sub + 32), d = load32(sub + 64);
    c[0] = _mm256_and_si256(a, low6);
    c[1] = _mm256_and_si256(b, low6);
    c[2] = _mm256_and_si256(d, low6);
    // Step 3's bits from the three top-bit pairs (only masked bits move).
    const __m256i top = _mm256_or_si256(_mm256_andnot_si256(low6, a),
                                        _mm256_or_si256(_mm256_srli_epi16(_mm256_andnot_si256(low6, b), 2),
                                                        _mm256_srli_epi16(_mm256_andnot_si256(low6, d), 4)));
    c[3] = _mm256_srli_epi16(top, 2);
  }
#if defined(WARDEN_GEMM_VNNI)
  // codes() for sub-blocks j and j + 1 at once, j's in the low 256 bits of
  // each register (the 96-byte sub-blocks lie one after the other): 25 %
  // faster in cache than unpacking the two apart (BM_Gemm/Q6_K_packed/1/64,
  // 90-92 against 72-74 G multiply-adds/s, alternating builds).
  static void codes_pair(const uint8_t* panel, int j, __m512i c[4]) {
    const uint8_t* sub = panel + kQ6_KCodes + j * kQ6_KSubBlockBytes;
    auto both = [&](size_t offset) { return two_halves(sub + offset, sub + kQ6_KSubBlockBytes + offset); };
    const __m512i low6 = _mm512_set1_epi8(0x3F), a = both(0), b = both(32), d = both(64);
    c[0] = _mm512_and_si512(a, low6);
    c[1] = _mm512_and_si512(b, low6);
    c[2] = _mm512_and_si512(d, low6);
    const __m512i top = _mm512_or_si512(_mm512_andnot_si512(low6, a),
                                        _mm512_or_si512(_mm512_srli_epi16(_mm512_andnot_si512(low6, b), 2),
                                                        _mm512_srli_epi16(_mm512_andnot_si512(low6, d), 4)));
    c[3] = _mm512_srli_epi16(top, 2);
  }
#endif
  struct Scales {
    explicit Scales(const uint8_t* panel) : stored(reinterpret_cast<const int8_t*>(panel + kQ6_KScales)) {}
    const int8_t* scales() const { return stored; }
    const int8_t* corrections() const { return stored; }
    const int8_t* stored;
  };
};

struct Q3_KLayout {
  static constexpr size_t kPanelBlock = kQ3_KPanelBlock, kD = kQ3_KD, kDmin = kQ3_KD;
  static constexpr int kOffsetShift = 2;
  static constexpr bool kHasMins = false;
  static void codes(const uint8_t* panel, int j, __m256i c[4]) {
    const uint8_t* group = panel + kQ3_KGroups + (j / 2) * kQ3_KGroupBytes;
    const __m256i a = load32(group), b = load32(group + 32);
    // Bits `from`.. of each byte, `mask` applied after the shift (the 16-bit
    // shift's strays from the next byte land above the mask).
    auto field = [](__m256i v, int from, int mask) {
      return _mm256_and_si256(_mm256_srli_epi16(v, from), _mm256_set1_epi8(char(mask)));
    };
    if (j % 2 == 0) {
      c[0] = field(a, 0, 7);
      c[1] = field(a, 3, 7);
      c[2] = field(b, 0, 7);
      c[3] = field(b, 3, 7);
    } else {
      const __m256i cc = load32(group + 64);
      c[0] = field(cc, 0, 7);
      c[1] = field(cc, 3, 7);
      c[2] = _mm256_or_si256(field(a, 6, 3), field(b, 4, 4));
      c[3] = _mm256_or_si256(field(b, 7, 1), field(cc, 5, 6));
    }
  }
  // kquant::unpack_scale_q3_k for eight rows at once: sub-blocks 4i..4i + 3
  // take their low four bits from the low (i < 2) or high nibbles of bytes
  // 0-3 or 4-7 and their top two from bits 2i..2i + 1 of bytes 8-11.
  struct Scales {
    explicit Scales(const uint8_t* panel) {
      const __m256i low4 = _mm256_set1_epi8(0x0F), low2 = _mm256_set1_epi8(0x03), bias = _mm256_set1_epi8(32);
      const __m256i b0_3 = load32(panel + kQ3_KScales), b4_7 = load32(panel + kQ3_KScales + 32);
      const __m256i b8_11 = load32(panel + kQ3_KScales + 64);
      for (int i = 0; i < 4; i++) {
        const __m256i bytes = i % 2 ? b4_7 : b0_3;
        const __m256i low = _mm256_and_si256(i < 2 ? bytes : _mm256_srli_epi16(bytes, 4), low4);
        const __m256i high = _mm256_and_si256(_mm256_srli_epi16(b8_11, 2 * i), low2);
        const __m256i scale = _mm256_sub_epi8(_mm256_or_si256(low, _mm256_slli_epi16(high, 4)), bias);
        _mm256_store_si256(reinterpret_cast<__m256i*>(unpacked + 32 * i), scale);
      }
    }
    const int8_t* scales() const { return unpacked; }
    const int8_t* corrections() const { return unpacked; }
    alignas(32) int8_t unpacked[128];
  };
};

struct Q2_KLayout {
  static constexpr size_t kPanelBlock = kQ2_KPanelBlock, kD = kQ2_KD, kDmin = kQ2_KD + 16;
  static constexpr int kOffsetShift = 0;
  static constexpr bool kHasMins = true;
  static void codes(const uint8_t* panel, int j, __m256i c[4]) {
    const __m256i fields = load32(panel + kQ2_KCodes + 32 * j);
    for (int k = 0; k < 4; k++) c[k] = two_bit_step(fields, k);
  }
  struct Scales {
    explicit Scales(const uint8_t* panel) {
      const __m256i low4 = _mm256_set1_epi8(0x0F);
      for (int i = 0; i < 4; i++) {
        const __m256i bytes = load32(panel + kQ2_KScales + 32 * i);
        _mm256_store_si256(reinterpret_cast<__m256i*>(scale_of + 32 * i), _mm256_and_si256(bytes, low4));
        _mm256_store_si256(reinterpret_cast<__m256i*>(min_of + 32 * i),
                           _mm256_and_si256(_mm256_srli_epi16(bytes, 4), low4));
      }
    }
    const int8_t* scales() const { return scale_of; }
    const int8_t* corrections() const { return min_of; }
    alignas(32) int8_t scale_of[128], min_of[128];
  };
};

// The correction terms of sub-blocks (2i, 2i + 1) per row, as int16 pairs.
inline void correction_pairs(const int8_t* terms, __m256i pairs[8]) {
  for (int i = 0; i < 8; i++) {
    const __m128i a = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(terms + 16 * i));
    const __m128i c = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(terms + 16 * i + 8));
    pairs[i] = _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(a, c));
  }
}

#if defined(WARDEN_GEMM_VNNI)
// Sub-blocks j and j + 1's four steps of codes, j's in the low 256 bits of
// each register and j + 1's in the high: Q6_K's unpacked from both at once
// (Q6_KLayout::codes_pair), the others' side by side.
template <typename L>
inline void sub_block_pair_codes(const uint8_t* panel, int j, __m512i c[4]) {
  if constexpr (requires { L::codes_pair(panel, j, c); }) {
    L::codes_pair(panel, j, c);
  } else {
    __m256i low[4], high[4];
    L::codes(panel, j, low);
    L::codes(panel, j + 1, high);
    for (int k = 0; k < 4; k++) c[k] = _mm512_inserti64x4(_mm512_castsi256_si512(low[k]), high[k], 1);
  }
}

// Each token's integer sums (a lane per row) of super-block b's sixteen
// sub-blocks times their scales, on the VNNI set: two sub-blocks a pass in
// 512-bit registers, step k of each against its four activations (lanes
// 0-7: sub-block j's, 8-15: j + 1's, both permuted out of one load), the
// halves added at the end. The same exact integers as one sub-block a pass
// in 256 bits, in half the instructions (Q6_K's decode kernel in cache,
// BM_Gemm/Q6_K_packed/1/64: see docs/performance.md).
template <int NT, typename L>
inline void sub_block_pair_sums(const uint8_t* panel, const int8_t* scales, const block_q8_k* const x[NT], int64_t b,
                                __m256i isum[NT]) {
  __m512i steps[4];  // which activation dwords step k takes: k of sub-block j, k of j + 1
  for (int k = 0; k < 4; k++) steps[k] = step_dwords(k, 4 + k);
  __m512i wide[NT];
  for (int t = 0; t < NT; t++) wide[t] = _mm512_setzero_si512();
  for (int j = 0; j < 16; j += 2) {
    __m512i c[4];
    sub_block_pair_codes<L>(panel, j, c);
    const __m512i scale = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(scales + 8 * j)));
    for (int t = 0; t < NT; t++) {
      const __m512i xq = _mm512_castsi256_si512(load32(x[t][b].qs + 16 * j));
      __m512i sum = _mm512_dpbusd_epi32(_mm512_setzero_si512(), c[0], _mm512_permutexvar_epi32(steps[0], xq));
      for (int k = 1; k < 4; k++) sum = _mm512_dpbusd_epi32(sum, c[k], _mm512_permutexvar_epi32(steps[k], xq));
      wide[t] = _mm512_add_epi32(wide[t], _mm512_mullo_epi32(sum, scale));
    }
  }
  for (int t = 0; t < NT; t++)
    isum[t] = _mm256_add_epi32(_mm512_castsi512_si256(wide[t]), _mm512_extracti64x4_epi64(wide[t], 1));
}
#endif

// Codes as maddubs' unsigned operand: two steps' pairs (each at most
// 2 * 63 * 128) fit int16.
template <int NT, typename L>
void sub_block_panel_kernel(const uint8_t* panel, int64_t nsb, const block_q8_k* const x[NT], float out[NT][8]) {
  float acc[NT][8] = {};
  for (int64_t b = 0; b < nsb; b++, panel += L::kPanelBlock) {
    const typename L::Scales sc(panel);
    __m256i isum[NT];
#if defined(WARDEN_GEMM_VNNI)
    sub_block_pair_sums<NT, L>(panel, sc.scales(), x, b, isum);
#else
    for (int t = 0; t < NT; t++) isum[t] = _mm256_setzero_si256();
    for (int j = 0; j < 16; j++) {  // sub-blocks of 16 elements = 4 steps, one scale
      __m256i c[4];
      L::codes(panel, j, c);
      const __m128i sc8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(sc.scales() + 8 * j));
      const __m256i scale = _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(sc8, sc8));
      for (int t = 0; t < NT; t++) {
        const int8_t* xq = x[t][b].qs + 16 * j;
        const __m256i s01 = _mm256_add_epi16(_mm256_maddubs_epi16(c[0], broadcast4(xq)),
                                             _mm256_maddubs_epi16(c[1], broadcast4(xq + 4)));
        const __m256i s23 = _mm256_add_epi16(_mm256_maddubs_epi16(c[2], broadcast4(xq + 8)),
                                             _mm256_maddubs_epi16(c[3], broadcast4(xq + 12)));
        isum[t] = _mm256_add_epi32(isum[t], _mm256_add_epi32(_mm256_madd_epi16(s01, scale), _mm256_madd_epi16(s23, scale)));
      }
    }
#endif
    __m256i pairs[8];
    correction_pairs(sc.corrections(), pairs);
    const __m256 wd = load_f16x8(panel + L::kD), wdmin = load_f16x8(panel + L::kDmin);
    for (int t = 0; t < NT; t++) {
      __m256i corr = _mm256_setzero_si256();
      for (int i = 0; i < 8; i++) {
        int32_t two;
        std::memcpy(&two, x[t][b].bsums + 2 * i, sizeof two);
        corr = _mm256_add_epi32(corr, _mm256_madd_epi16(pairs[i], _mm256_set1_epi32(two)));
      }
      if constexpr (L::kHasMins) {
        add_super_block(acc[t], wd, wdmin, x[t][b].d, isum[t], corr);
      } else {  // the offset's correction in the integer sums: one float product
        const __m256i total = _mm256_sub_epi32(isum[t], _mm256_slli_epi32(corr, L::kOffsetShift));
        __m256 a = _mm256_loadu_ps(acc[t]);
        a = _mm256_fmadd_ps(_mm256_mul_ps(wd, _mm256_set1_ps(x[t][b].d)), _mm256_cvtepi32_ps(total), a);
        _mm256_storeu_ps(acc[t], a);
      }
    }
  }
  std::memcpy(out, acc, sizeof acc);
}

// The per-type pieces of a packed kernel: panel size and packer, the token
// group, and one call of the panel kernel for NT tokens from token t.
// K-quant types: the panel kernel needs only the Q8_K activation rows.
template <size_t kPanelBlock, void (*PackPanel)(const uint8_t*, size_t, int, int64_t, uint8_t*), typename Kernel>
struct PackedKQuant {
  static constexpr int kGroup = 4;
  static size_t panel_bytes(int64_t n) { return size_t(n / kQK_K) * kPanelBlock; }
  static void pack(const uint8_t* w, size_t w_row_bytes, int rows, int64_t n, uint8_t* out) {
    PackPanel(w, w_row_bytes, rows, n, out);
  }
  struct Tokens {
    Tokens(const uint8_t* x, size_t x_row_bytes, int64_t, int64_t n)
        : x(x), x_row_bytes(x_row_bytes), super_blocks(n / kQK_K) {}
    template <int NT>
    void run(const uint8_t* panel, int64_t t, float out[NT][8]) const {
      const block_q8_k* xs[NT];
      token_rows<block_q8_k, NT>(x, x_row_bytes, t, xs);
      Kernel::template run<NT>(panel, super_blocks, xs, out);
    }
    const uint8_t* x;
    size_t x_row_bytes;
    int64_t super_blocks;
  };
};

struct Q4_KPanelKernel {
  template <int NT>
  static void run(const uint8_t* panel, int64_t nsb, const block_q8_k* const x[NT], float out[NT][8]) {
#if defined(WARDEN_GEMM_VNNI)
    q4_k_wide_kernel<NT>(panel, nsb, x, out);
#else
    k4_panel_kernel<NT, false>(panel, nsb, x, out);
#endif
  }
};
struct Q5_KPanelKernel {
  template <int NT>
  static void run(const uint8_t* panel, int64_t nsb, const block_q8_k* const x[NT], float out[NT][8]) {
    k4_panel_kernel<NT, true>(panel, nsb, x, out);
  }
};
template <typename L>
struct SubBlockPanelKernel {
  template <int NT>
  static void run(const uint8_t* panel, int64_t nsb, const block_q8_k* const x[NT], float out[NT][8]) {
    sub_block_panel_kernel<NT, L>(panel, nsb, x, out);
  }
};

using PackedQ4_K = PackedKQuant<kQ4_KPanelBlock, pack_q4_k_panel, Q4_KPanelKernel>;
using PackedQ5_K = PackedKQuant<kQ5_KPanelBlock, pack_q5_k_panel, Q5_KPanelKernel>;
using PackedQ2_K = PackedKQuant<kQ2_KPanelBlock, pack_q2_k_panel, SubBlockPanelKernel<Q2_KLayout>>;
using PackedQ3_K = PackedKQuant<kQ3_KPanelBlock, pack_q3_k_panel, SubBlockPanelKernel<Q3_KLayout>>;
using PackedQ6_K = PackedKQuant<kQ6_KPanelBlock, pack_q6_k_panel, SubBlockPanelKernel<Q6_KLayout>>;

// The panel kernels against Q8_0 activations, with the offset their codes
// carry (the kernel then needs each activation block's sum) and the tokens
// that share each weight register. Q8_0's kernel keeps no int16 sums, so six
// tokens' accumulators still fit the registers (BM_Gemm Q8_0 at 64 tokens:
// 62 -> 66 GMAC/s); Q4_0 gained nothing measurable from six.
struct Q8_0PanelKernel {
  static constexpr int kOffset = kVnni ? 128 : 0, kGroup = 6;  // the VNNI set stores its codes plus 128
  template <int NT>
  static void run(const uint8_t* panel, int64_t nb, const block_q8_0* const x[NT], const float* const xd[NT],
                  const int32_t* const xsum[NT], float out[NT][8]) {
#if defined(WARDEN_GEMM_VNNI)
    block_pairs_kernel<NT, kQ8_0PanelBlock, kQ8_0Codes, kOffset, QwordCodes<Q8_0BlockSums>>(panel, nb, x, xd, xsum,
                                                                                      out);
#else
    q8_0_panel_kernel<NT>(panel, nb, x, xd, out);
#endif
  }
};
struct Q4_0PanelKernel {
  static constexpr int kOffset = 8, kGroup = 4;
  template <int NT>
  static void run(const uint8_t* panel, int64_t nb, const block_q8_0* const x[NT], const float* const xd[NT],
                  const int32_t* const xsum[NT], float out[NT][8]) {
#if defined(WARDEN_GEMM_VNNI)
    block_pairs_kernel<NT, kQ4_0PanelBlock, kQ4_0Codes, kOffset, QwordCodes<FourBitBlockSums>>(panel, nb, x, xd, xsum,
                                                                                         out);
#else
    offset_panel_kernel<NT, false>(panel, nb, x, xd, xsum, out);
#endif
  }
};
struct Q5_0PanelKernel {
  static constexpr int kOffset = 16, kGroup = 4;
  template <int NT>
  static void run(const uint8_t* panel, int64_t nb, const block_q8_0* const x[NT], const float* const xd[NT],
                  const int32_t* const xsum[NT], float out[NT][8]) {
#if defined(WARDEN_GEMM_VNNI)
    block_pairs_kernel<NT, kQ5_0PanelBlock, kQ5_0Codes, kOffset, FiveBitCodes>(panel, nb, x, xd, xsum, out);
#else
    offset_panel_kernel<NT, true>(panel, nb, x, xd, xsum, out);
#endif
  }
};

// Q8_0 activation rows with each block's scale as f32 (and, for codes with
// an offset, each block's sum), converted once per call instead of once per
// panel of weight rows.
template <typename Kernel>
struct Q8_0Tokens {
  Q8_0Tokens(const uint8_t* x, size_t x_row_bytes, int64_t T, int64_t n) : x(x), x_row_bytes(x_row_bytes), nb(n / kQK) {
    thread_local std::vector<float> scale_storage;
    scale_storage.resize(size_t(T * nb));
    for (int64_t t = 0; t < T; t++) {
      const auto* row = reinterpret_cast<const block_q8_0*>(x + size_t(t) * x_row_bytes);
      for (int64_t b = 0; b < nb; b++) scale_storage[size_t(t * nb + b)] = _cvtsh_ss(row[b].d);
    }
    scales = scale_storage.data();
    if constexpr (Kernel::kOffset != 0) {
      thread_local std::vector<int32_t> sum_storage;
      q8_0_block_sums(x, x_row_bytes, T, nb, sum_storage);
      sums = sum_storage.data();
    }
  }
  template <int NT>
  void run(const uint8_t* panel, int64_t t, float out[NT][8]) const {
    const block_q8_0* xs[NT];
    const float* xd[NT];
    token_rows<block_q8_0, NT>(x, x_row_bytes, t, xs);
    const int32_t* xsum[NT] = {};
    for (int k = 0; k < NT; k++) {
      xd[k] = scales + (t + k) * nb;
      if constexpr (Kernel::kOffset != 0) xsum[k] = sums + (t + k) * nb;
    }
    Kernel::template run<NT>(panel, nb, xs, xd, xsum, out);
  }
  const uint8_t* x;
  size_t x_row_bytes;
  int64_t nb;
  const float* scales = nullptr;
  const int32_t* sums = nullptr;
};

// The 32-element types.
template <size_t kPanelBlock, void (*PackPanel)(const uint8_t*, size_t, int, int64_t, uint8_t*), typename Kernel>
struct PackedQ8_0Activations {
  static constexpr int kGroup = Kernel::kGroup;
  static size_t panel_bytes(int64_t n) { return size_t(n / kQK) * kPanelBlock; }
  static void pack(const uint8_t* w, size_t w_row_bytes, int rows, int64_t n, uint8_t* out) {
    PackPanel(w, w_row_bytes, rows, n, out);
  }
  using Tokens = Q8_0Tokens<Kernel>;
};
using PackedQ8_0 = PackedQ8_0Activations<kQ8_0PanelBlock, pack_q8_0_panel, Q8_0PanelKernel>;
using PackedQ4_0 = PackedQ8_0Activations<kQ4_0PanelBlock, pack_q4_0_panel, Q4_0PanelKernel>;
using PackedQ5_0 = PackedQ8_0Activations<kQ5_0PanelBlock, pack_q5_0_panel, Q5_0PanelKernel>;

// Q4_1 and Q5_1, against Q8_1 activation rows whose block scales d and
// scaled sums s are converted to f32 once per call.
template <bool kFiveBit>
struct PackedWithMin {
  static constexpr int kGroup = 4;
  static size_t panel_bytes(int64_t n) { return size_t(n / kQK) * (kFiveBit ? kQ5_1PanelBlock : kQ4_1PanelBlock); }
  static void pack(const uint8_t* w, size_t w_row_bytes, int rows, int64_t n, uint8_t* out) {
    if constexpr (kFiveBit)
      pack_q5_1_panel(w, w_row_bytes, rows, n, out);
    else
      pack_q4_1_panel(w, w_row_bytes, rows, n, out);
  }
  struct Tokens {
    Tokens(const uint8_t* x, size_t x_row_bytes, int64_t T, int64_t n) : x(x), x_row_bytes(x_row_bytes), nb(n / kQK) {
      thread_local std::vector<float> storage;
      storage.resize(size_t(2 * T * nb));
      for (int64_t t = 0; t < T; t++) {
        const auto* row = reinterpret_cast<const block_q8_1*>(x + size_t(t) * x_row_bytes);
        for (int64_t b = 0; b < nb; b++) {
          storage[size_t(t * nb + b)] = _cvtsh_ss(row[b].d);
          storage[size_t((T + t) * nb + b)] = _cvtsh_ss(row[b].s);
        }
      }
      scales = storage.data();
      sums = storage.data() + T * nb;
    }
    template <int NT>
    void run(const uint8_t* panel, int64_t t, float out[NT][8]) const {
      const block_q8_1* xs[NT];
      const float *xd[NT], *xsum[NT];
      token_rows<block_q8_1, NT>(x, x_row_bytes, t, xs);
      for (int k = 0; k < NT; k++) {
        xd[k] = scales + (t + k) * nb;
        xsum[k] = sums + (t + k) * nb;
      }
#if defined(WARDEN_GEMM_VNNI)
      if constexpr (kFiveBit)
        block_pairs_kernel<NT, kQ5_1PanelBlock, kQ5_1Codes, 0, FiveBitCodes>(panel, nb, xs, xd, xsum, out);
      else
        block_pairs_kernel<NT, kQ4_1PanelBlock, kQ4_1Codes, 0, QwordCodes<FourBitBlockSums>>(panel, nb, xs, xd, xsum,
                                                                                            out);
#else
      with_min_panel_kernel<NT, kFiveBit>(panel, nb, xs, xd, xsum, out);
#endif
    }
    const uint8_t* x;
    size_t x_row_bytes;
    int64_t nb;
    const float *scales = nullptr, *sums = nullptr;
  };
};
using PackedQ4_1 = PackedWithMin<false>;
using PackedQ5_1 = PackedWithMin<true>;

#if !defined(WARDEN_GEMM_VNNI)  // the VNNI table keeps the AVX2 builds (see the end of this file)
// ---- F16 and BF16: eight rows' values per column ----------------------------
//
// A panel holds, per column k, the eight rows' 16-bit values at k (16 bytes,
// as many as the rows): converted to f32 they are one register, multiplied by
// each token's activation at k broadcast, so there are no horizontal sums and
// each weight register serves up to six tokens. The activations (rows of the
// types' dot_type, f16 or bf16) are converted to f32 once per call. Sums are
// f32 where vec_dot's are double: they differ by float rounding only.

struct F16Values {
  static __m256 load8(const uint8_t* p) { return load_f16x8(p); }
};
struct BF16Values {
  static __m256 load8(const uint8_t* p) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
};

// 8x8 transpose of 16-bit elements: out[k] holds element k of in[0..7].
inline void transpose_8x8_epi16(__m128i v[8]) {
  __m128i a[8], b[8];
  for (int i = 0; i < 8; i += 2) {
    a[i] = _mm_unpacklo_epi16(v[i], v[i + 1]);
    a[i + 1] = _mm_unpackhi_epi16(v[i], v[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    b[i] = _mm_unpacklo_epi32(a[i], a[i + 2]);
    b[i + 1] = _mm_unpackhi_epi32(a[i], a[i + 2]);
    b[i + 2] = _mm_unpacklo_epi32(a[i + 1], a[i + 3]);
    b[i + 3] = _mm_unpackhi_epi32(a[i + 1], a[i + 3]);
  }
  for (int i = 0; i < 4; i++) {
    v[2 * i] = _mm_unpacklo_epi64(b[i], b[i + 4]);
    v[2 * i + 1] = _mm_unpackhi_epi64(b[i], b[i + 4]);
  }
}

void pack_16bit_panel(const uint8_t* w, size_t w_row_bytes, int rows, int64_t n, uint8_t* out) {
  auto value = [&](int r, int64_t k) {
    uint16_t h = 0;
    if (r < rows) std::memcpy(&h, w + size_t(r) * w_row_bytes + 2 * size_t(k), sizeof h);
    return h;
  };
  int64_t k = 0;
  for (; k + 8 <= n; k += 8) {
    __m128i v[8];
    for (int r = 0; r < kPanelRows; r++)
      v[r] = r < rows ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + size_t(r) * w_row_bytes + 2 * size_t(k)))
                      : _mm_setzero_si128();
    transpose_8x8_epi16(v);
    for (int c = 0; c < 8; c++) _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 16 * (k + c)), v[c]);
  }
  for (; k < n; k++)
    for (int r = 0; r < kPanelRows; r++) {
      const uint16_t h = value(r, k);
      std::memcpy(out + 16 * k + 2 * r, &h, sizeof h);
    }
}

// pack_16bit_panel's inverse for one row: value k of row `row` at 16 k + 2 row.
void unpack_16bit_row(const uint8_t* panel, int row, int64_t n, uint8_t* out) {
  for (int64_t k = 0; k < n; k++) std::memcpy(out + 2 * k, panel + 16 * k + 2 * row, 2);
}

// Independent accumulator chains per token: an FMA's latency is four of its
// issue slots, so one token needs eight chains to keep both FMA units busy.
template <int NT>
constexpr int kFloatChains = NT == 1 ? 8 : NT == 2 ? 4 : NT <= 4 ? 2 : 1;

template <int NT, typename Values>
void half_panel_kernel(const uint8_t* panel, int64_t n, const float* const x[NT], float out[NT][8]) {
  constexpr int kChains = kFloatChains<NT>;
  __m256 acc[NT][kChains];
  for (auto& token : acc)
    for (auto& a : token) a = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + kChains <= n; k += kChains)
    for (int c = 0; c < kChains; c++) {
      const __m256 w = Values::load8(panel + 16 * (k + c));
      for (int t = 0; t < NT; t++) acc[t][c] = _mm256_fmadd_ps(w, _mm256_broadcast_ss(x[t] + k + c), acc[t][c]);
    }
  for (; k < n; k++) {
    const __m256 w = Values::load8(panel + 16 * k);
    for (int t = 0; t < NT; t++) acc[t][0] = _mm256_fmadd_ps(w, _mm256_broadcast_ss(x[t] + k), acc[t][0]);
  }
  for (int t = 0; t < NT; t++) {
    __m256 sum = acc[t][0];
    for (int c = 1; c < kChains; c++) sum = _mm256_add_ps(sum, acc[t][c]);
    _mm256_storeu_ps(out[t], sum);
  }
}

// Two panels (sixteen rows) at once: each broadcast activation then serves
// two weight registers, so a column costs 2 + NT loads for 2 NT FMAs where
// one panel costs 1 + NT for NT, which bound prefill by the loads.
template <int NT, typename Values>
void half_panel_pair_kernel(const uint8_t* first, const uint8_t* second, int64_t n, const float* const x[NT],
                            float out_first[NT][8], float out_second[NT][8]) {
  __m256 a[NT], b[NT];
  for (int t = 0; t < NT; t++) a[t] = b[t] = _mm256_setzero_ps();
  for (int64_t k = 0; k < n; k++) {
    const __m256 w0 = Values::load8(first + 16 * k), w1 = Values::load8(second + 16 * k);
    for (int t = 0; t < NT; t++) {
      const __m256 xk = _mm256_broadcast_ss(x[t] + k);
      a[t] = _mm256_fmadd_ps(w0, xk, a[t]);
      b[t] = _mm256_fmadd_ps(w1, xk, b[t]);
    }
  }
  for (int t = 0; t < NT; t++) {
    _mm256_storeu_ps(out_first[t], a[t]);
    _mm256_storeu_ps(out_second[t], b[t]);
  }
}

template <typename Values>
struct PackedHalf {
  static constexpr int kGroup = 6;
  static size_t panel_bytes(int64_t n) { return size_t(n) * 16; }
  static void pack(const uint8_t* w, size_t w_row_bytes, int rows, int64_t n, uint8_t* out) {
    pack_16bit_panel(w, w_row_bytes, rows, n, out);
  }
  struct Tokens {
    Tokens(const uint8_t* x, size_t x_row_bytes, int64_t T, int64_t n) : n(n) {
      thread_local std::vector<float> storage;
      storage.resize(size_t(T * n));
      for (int64_t t = 0; t < T; t++) {
        const uint8_t* row = x + size_t(t) * x_row_bytes;
        float* out = storage.data() + t * n;
        int64_t k = 0;
        for (; k + 8 <= n; k += 8) _mm256_storeu_ps(out + k, Values::load8(row + 2 * k));
        for (; k < n; k++) {  // the last few through a zero-padded register
          alignas(16) uint8_t tail[16] = {};
          std::memcpy(tail, row + 2 * k, 2);
          out[k] = _mm256_cvtss_f32(Values::load8(tail));
        }
      }
      values = storage.data();
    }
    template <int NT>
    void run(const uint8_t* panel, int64_t t, float out[NT][8]) const {
      const float* xs[NT];
      for (int k = 0; k < NT; k++) xs[k] = values + (t + k) * n;
      half_panel_kernel<NT, Values>(panel, n, xs, out);
    }
    template <int NT>
    void run_pair(const uint8_t* first, const uint8_t* second, int64_t t, float out_first[NT][8],
                  float out_second[NT][8]) const {
      const float* xs[NT];
      for (int k = 0; k < NT; k++) xs[k] = values + (t + k) * n;
      half_panel_pair_kernel<NT, Values>(first, second, n, xs, out_first, out_second);
    }
    int64_t n;
    const float* values = nullptr;
  };
};
using PackedF16 = PackedHalf<F16Values>;
using PackedBF16 = PackedHalf<BF16Values>;
#endif  // !WARDEN_GEMM_VNNI

template <typename P>
void panels_over_tokens(const typename P::Tokens& tokens, const uint8_t* panel, int rows, int64_t T, float* y,
                        int64_t ldy) {
  over_token_groups<P::kGroup>(T, rows, y, ldy, [&](auto nt_tag, int64_t t, float out[][8]) {
    tokens.template run<decltype(nt_tag)::value>(panel, t, out);
  });
}

template <typename P>
size_t packed_panel_bytes(int64_t n) {
  return P::panel_bytes(n);
}

template <typename P>
void pack_rows(const uint8_t* w, size_t w_row_bytes, int64_t rows, int64_t n, uint8_t* out) {
  for (int64_t r0 = 0; r0 < rows; r0 += kPanelRows, out += P::panel_bytes(n))
    P::pack(w + size_t(r0) * w_row_bytes, w_row_bytes, int(std::min<int64_t>(kPanelRows, rows - r0)), n, out);
}

template <typename P>
void gemm_packed(const uint8_t* panels, int64_t n_rows, const uint8_t* x, size_t x_row_bytes, int64_t T, int64_t n,
                 float* y, int64_t ldy) {
  const typename P::Tokens tokens(x, x_row_bytes, T, n);
  for (int64_t r0 = 0; r0 < n_rows; r0 += kPanelRows, panels += P::panel_bytes(n))
    panels_over_tokens<P>(tokens, panels, int(std::min<int64_t>(kPanelRows, n_rows - r0)), T, y + r0, ldy);
}

// Unpacked rows: each panel packed into a per-thread buffer, then as above.
template <typename P>
void gemm_packing(const uint8_t* w, size_t w_row_bytes, int64_t n_rows, const uint8_t* x, size_t x_row_bytes,
                  int64_t T, int64_t n, float* y, int64_t ldy) {
  const typename P::Tokens tokens(x, x_row_bytes, T, n);
  thread_local std::vector<uint8_t> panel;
  panel.resize(P::panel_bytes(n));
  for (int64_t r0 = 0; r0 < n_rows; r0 += kPanelRows) {
    const int rows = int(std::min<int64_t>(kPanelRows, n_rows - r0));
    P::pack(w + size_t(r0) * w_row_bytes, w_row_bytes, rows, n, panel.data());
    panels_over_tokens<P>(tokens, panel.data(), rows, T, y + r0, ldy);
  }
}

// The K-quants but Q4_K for many tokens: rebuilding their codes from the
// packed fields (2-bit fields, a third or fifth bit, 6-bit codes from three
// fields) costs more per step than the products of a few tokens, so from
// kExpandTokens tokens on each packed panel is first expanded into byte codes
// (a SuperPanel), once for all the tokens.
constexpr int64_t kExpandTokens = 16;

// A sub-block's bytes in a SuperPanel: 128 of codes, the scale register.
constexpr size_t kExpandedScaleBytes = kVnni ? 64 : 32;

void resize_super_panel(SuperPanel& p, int64_t nsb) {
  p.q.resize(size_t(nsb) * 64 * 32);
  p.scale.resize(size_t(nsb) * 16 * kExpandedScaleBytes);
  p.min.resize(size_t(nsb) * 8 * 32);
  p.d.resize(size_t(nsb) * 8);
  p.dmin.resize(size_t(nsb) * 8);
}

// A 16-element sub-block's four steps of codes, as super_panel_times_q8_k reads them.
inline void store_sub_block(const __m256i steps[4], uint8_t* out) {
#if defined(WARDEN_GEMM_VNNI)
  store_qword_steps(steps[0], steps[1], out);
  store_qword_steps(steps[2], steps[3], out + 64);
#else
  for (int k = 0; k < 4; k++) _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 32 * k), steps[k]);
#endif
}

// A sub-block's eight row scales (the low 8 bytes of sc8, signed or not),
// each twice, as super_panel_times_q8_k reads them.
template <bool kSigned>
inline void store_sub_block_scale(__m128i sc8, uint8_t* out) {
  const __m128i twice = _mm_unpacklo_epi8(sc8, sc8);
#if defined(WARDEN_GEMM_VNNI)
  _mm512_storeu_si512(out, kSigned ? _mm512_cvtepi8_epi32(twice) : _mm512_cvtepu8_epi32(twice));
#else
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), kSigned ? _mm256_cvtepi8_epi16(twice) : _mm256_cvtepu8_epi16(twice));
#endif
}

void expand_q5_k_panel(const uint8_t* panel, int64_t nsb, SuperPanel& p) {
  resize_super_panel(p, nsb);
  const __m256i low4 = _mm256_set1_epi8(0x0F), bit4 = _mm256_set1_epi8(0x10);
  for (int64_t b = 0; b < nsb; b++, panel += kQ5_KPanelBlock) {
    for (int g = 0; g < 8; g++) {  // as steps_times reads them
      const uint8_t* group = panel + kQ5_KGroups + g * kQ5_KGroupBytes;
      const __m256i fifth = load32(group);
      __m256i lo[4], hi[4];  // steps 0-3 (sub-block 2g) and 4-7 (2g + 1)
      for (int k = 0; k < 4; k++) {
        const __m256i packed = load32(group + 32 + 32 * k);
        lo[k] = _mm256_or_si256(_mm256_and_si256(packed, low4), _mm256_and_si256(_mm256_slli_epi16(fifth, 4 - k), bit4));
        hi[k] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(packed, 4), low4),
                                _mm256_and_si256(_mm256_srli_epi16(fifth, k), bit4));
      }
      store_sub_block(lo, p.q.data() + (b * 16 + 2 * g) * 128);
      store_sub_block(hi, p.q.data() + (b * 16 + 2 * g + 1) * 128);
    }
    alignas(32) uint8_t scales[64], mins[64];
    unpack_q4_k_panel_scales(panel + kQ4_KScales, scales, mins);
    for (int j = 0; j < 16; j++) {  // (sc, sc) per row: 16-element sub-block j is in group j / 2
      const __m128i sc8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(scales + 8 * (j / 2)));
      store_sub_block_scale<false>(sc8, p.scale.data() + (b * 16 + j) * kExpandedScaleBytes);
    }
    for (int g = 0; g < 8; g++) {  // (min, min) per row: both sub-blocks of group g
      auto* pair = reinterpret_cast<int16_t*>(p.min.data() + (b * 8 + g) * 32);
      for (int r = 0; r < kPanelRows; r++) pair[2 * r] = pair[2 * r + 1] = mins[16 * (g / 2) + 2 * r + g % 2];
    }
    _mm256_storeu_ps(p.d.data() + b * 8, load_f16x8(panel + kQ4_KD));
    _mm256_storeu_ps(p.dmin.data() + b * 8, load_f16x8(panel + kQ4_KD + 16));
  }
}

template <typename L>
void expand_sub_block_panel(const uint8_t* panel, int64_t nsb, SuperPanel& p) {
  resize_super_panel(p, nsb);
  for (int64_t b = 0; b < nsb; b++, panel += L::kPanelBlock) {
    for (int j = 0; j < 16; j++) {  // steps 4j .. 4j + 3
      __m256i c[4];
      L::codes(panel, j, c);
      store_sub_block(c, p.q.data() + (b * 16 + j) * 128);
    }
    const typename L::Scales sc(panel);
    for (int j = 0; j < 16; j++) {  // (sc, sc) per row
      const __m128i sc8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(sc.scales() + 8 * j));
      store_sub_block_scale<true>(sc8, p.scale.data() + (b * 16 + j) * kExpandedScaleBytes);
    }
    __m256i pairs[8];  // the corrections as mins: a code offset o is a min of o * sc
    correction_pairs(sc.corrections(), pairs);
    for (int i = 0; i < 8; i++)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(p.min.data() + (b * 8 + i) * 32),
                          _mm256_slli_epi16(pairs[i], L::kOffsetShift));
    _mm256_storeu_ps(p.d.data() + b * 8, load_f16x8(panel + L::kD));
    _mm256_storeu_ps(p.dmin.data() + b * 8, load_f16x8(panel + L::kDmin));
  }
}

// kSteps: steps_per_int16 of the type's largest code.
template <typename P, void (*Expand)(const uint8_t*, int64_t, SuperPanel&), int kSteps>
void gemm_packed_expanding(const uint8_t* panels, int64_t n_rows, const uint8_t* x, size_t x_row_bytes, int64_t T,
                           int64_t n, float* y, int64_t ldy) {
  if (T < kExpandTokens) {
    gemm_packed<P>(panels, n_rows, x, x_row_bytes, T, n, y, ldy);
    return;
  }
  const int64_t nsb = n / kQK_K;
  thread_local SuperPanel expanded;
  for (int64_t r0 = 0; r0 < n_rows; r0 += kPanelRows, panels += P::panel_bytes(n)) {
    Expand(panels, nsb, expanded);
    over_token_groups<4>(T, int(std::min<int64_t>(kPanelRows, n_rows - r0)), y + r0, ldy,
                         [&](auto nt_tag, int64_t t, float out[][8]) {
                           constexpr int NT = decltype(nt_tag)::value;
                           const block_q8_k* xs[NT];
                           token_rows<block_q8_k, NT>(x, x_row_bytes, t, xs);
                           super_panel_times_q8_k<NT, kSteps>(expanded, nsb, xs, out);
                         });
  }
}

#if !defined(WARDEN_GEMM_VNNI)
// F16 and BF16 from kHalfPairTokens tokens on: full panels in pairs
// (half_panel_pair_kernel), the rest one at a time.
constexpr int64_t kHalfPairTokens = 8;

template <typename Values>
void gemm_packed_half(const uint8_t* panels, int64_t n_rows, const uint8_t* x, size_t x_row_bytes, int64_t T,
                      int64_t n, float* y, int64_t ldy) {
  using P = PackedHalf<Values>;
  if (T < kHalfPairTokens) return gemm_packed<P>(panels, n_rows, x, x_row_bytes, T, n, y, ldy);
  const typename P::Tokens tokens(x, x_row_bytes, T, n);
  const size_t bytes = P::panel_bytes(n);
  int64_t r0 = 0;
  for (; r0 + 2 * kPanelRows <= n_rows; r0 += 2 * kPanelRows, panels += 2 * bytes)
    over_token_groups<P::kGroup>(T, kPanelRows, y + r0, ldy, [&](auto nt_tag, int64_t t, float out[][8]) {
      constexpr int NT = decltype(nt_tag)::value;
      float second[NT][8];
      tokens.template run_pair<NT>(panels, panels + bytes, t, out, second);
      for (int k = 0; k < NT; k++) std::memcpy(y + (t + k) * ldy + r0 + kPanelRows, second[k], sizeof second[k]);
    });
  for (; r0 < n_rows; r0 += kPanelRows, panels += bytes)
    panels_over_tokens<P>(tokens, panels, int(std::min<int64_t>(kPanelRows, n_rows - r0)), T, y + r0, ldy);
}
#endif  // !WARDEN_GEMM_VNNI

template <typename P>
void set_packed(TypeKernels& k) {
  k.gemm = gemm_packing<P>;
  k.panel_bytes = packed_panel_bytes<P>;
  k.pack = pack_rows<P>;
  k.gemm_packed = gemm_packed<P>;
}

}  // namespace

#if defined(WARDEN_GEMM_VNNI)
void add_avx512vnni_gemm_kernels(KernelTable& table) {
#else
void add_avx2_gemm_kernels(KernelTable& table) {
#endif
#if !defined(WARDEN_GEMM_VNNI)
  // The VNNI table keeps these AVX2 builds: compiled for AVX-512 the same
  // code decoded q3-f16 20 % slower from memory (34.5-35.9 against 42.3-42.9
  // tokens/s, alternating, fast regime; BM_Gemm F16_packed/1/8192 10.6
  // against 12.8 GMAC/s), and it has no integer products for VNNI to speed up.
  // (The avx512bf16 table then replaces BF16's with gemm_avx512bf16.cpp's.)
  set_packed<PackedF16>(table.by_type[size_t(gguf::TensorType::F16)]);
  table.by_type[size_t(gguf::TensorType::F16)].gemm_packed = gemm_packed_half<F16Values>;
  table.by_type[size_t(gguf::TensorType::F16)].unpack = unpack_16bit_row;
  set_packed<PackedBF16>(table.by_type[size_t(gguf::TensorType::BF16)]);
  table.by_type[size_t(gguf::TensorType::BF16)].gemm_packed = gemm_packed_half<BF16Values>;
  table.by_type[size_t(gguf::TensorType::BF16)].unpack = unpack_16bit_row;
#endif
  set_packed<PackedQ8_0>(table.by_type[size_t(gguf::TensorType::Q8_0)]);
  set_packed<PackedQ4_0>(table.by_type[size_t(gguf::TensorType::Q4_0)]);
  set_packed<PackedQ5_0>(table.by_type[size_t(gguf::TensorType::Q5_0)]);
  set_packed<PackedQ4_1>(table.by_type[size_t(gguf::TensorType::Q4_1)]);
  set_packed<PackedQ5_1>(table.by_type[size_t(gguf::TensorType::Q5_1)]);
  set_packed<PackedQ4_K>(table.by_type[size_t(gguf::TensorType::Q4_K)]);
  set_packed<PackedQ5_K>(table.by_type[size_t(gguf::TensorType::Q5_K)]);
  table.by_type[size_t(gguf::TensorType::Q5_K)].gemm_packed =
      gemm_packed_expanding<PackedQ5_K, expand_q5_k_panel, steps_per_int16(31)>;
  set_packed<PackedQ6_K>(table.by_type[size_t(gguf::TensorType::Q6_K)]);
  // The usual types of a tied embedding (llama.cpp gives it Q6_K in most
  // mixes, Q8_0 in Q8_0 files, Q4_0 in --pure Q4_0 ones; F16 and BF16 above).
  table.by_type[size_t(gguf::TensorType::Q6_K)].unpack = unpack_q6_k_row;
  table.by_type[size_t(gguf::TensorType::Q8_0)].unpack = unpack_q8_0_row;
  table.by_type[size_t(gguf::TensorType::Q4_0)].unpack = unpack_q4_0_row;
  table.by_type[size_t(gguf::TensorType::Q6_K)].gemm_packed =
      gemm_packed_expanding<PackedQ6_K, expand_sub_block_panel<Q6_KLayout>, steps_per_int16(63)>;
  set_packed<PackedQ3_K>(table.by_type[size_t(gguf::TensorType::Q3_K)]);
  table.by_type[size_t(gguf::TensorType::Q3_K)].gemm_packed =
      gemm_packed_expanding<PackedQ3_K, expand_sub_block_panel<Q3_KLayout>, steps_per_int16(7)>;
  set_packed<PackedQ2_K>(table.by_type[size_t(gguf::TensorType::Q2_K)]);
  table.by_type[size_t(gguf::TensorType::Q2_K)].gemm_packed =
      gemm_packed_expanding<PackedQ2_K, expand_sub_block_panel<Q2_KLayout>, steps_per_int16(3)>;
  // Their rows are slow to pack per call (the codes are rebuilt one by one),
  // so rows not packed at load take the per-token dots below six tokens
  // (BM_Gemm Q5_K_gemm/2 11.6 against vec_dot 22.4 GMAC/s; at 8 tokens 35.9).
  for (gguf::TensorType t : {gguf::TensorType::Q2_K, gguf::TensorType::Q3_K, gguf::TensorType::Q5_K,
                             gguf::TensorType::Q6_K})
    table.by_type[size_t(t)].gemm_min_tokens = 6;
}

}  // namespace warden::tensor
