#pragma once
// The per-type kernel table behind quant.h. Callers never see it: quant.h's
// functions validate their arguments once and jump through the active table.
//
// Adding a SIMD kernel set (issue 6): write e.g. kernels_avx2.cpp compiled
// with -mavx2 -mfma -mf16c, build its table by copying scalar_kernels() and
// overriding the entries it speeds up, and make select_kernels() in
// dispatch.cpp return it when the CPU reports the features at run time.
// Tests can compare any table's entries against scalar_kernels().
#include <array>
#include <cstdint>

#include "gguf/types.h"

namespace warden::tensor {

// n is a positive multiple of the type's block size (checked by the caller).
using DequantizeFn = void (*)(const void* src, float* dst, int64_t n);
using QuantizeFn = void (*)(const float* src, void* dst, int64_t n);
using VecDotFn = float (*)(const void* x, const void* y, int64_t n);
// Four dots of one weight row x against four activation rows y, y + y_stride,
// ... (bytes), each equal to vec_dot's result for that row; prefill uses it
// to unpack each weight block once per four tokens. Optional (may be null).
using VecDot4Fn = void (*)(const void* x, const void* y, size_t y_stride, int64_t n, float out[4]);
// Matrix product for several tokens at once: weight rows [0, n_rows) of w
// (w_row_bytes apart) times T activation rows x (x_row_bytes apart, each in
// the type's dot_type), y[t * ldy + r] = vec_dot(row r, token t) up to float
// rounding. Optional (may be null); worth calling from a few tokens up.
using GemmFn = void (*)(const uint8_t* w, size_t w_row_bytes, int64_t n_rows, const uint8_t* x, size_t x_row_bytes,
                        int64_t T, int64_t n, float* y, int64_t ldy);

// Load-time repacking (optional; all three or none): `pack` rearranges `rows`
// rows into ceil(rows / 8) panels of panel_bytes(n) bytes each (the last
// padded with zero rows), which gemm_packed reads directly for any number of
// tokens, a single decode token included. panels points at the panel of the
// first row; n_rows rows from there are computed, y as in GemmFn.
using PanelBytesFn = size_t (*)(int64_t n);
using PackFn = void (*)(const uint8_t* w, size_t w_row_bytes, int64_t rows, int64_t n, uint8_t* out);
using PackedGemmFn = void (*)(const uint8_t* panels, int64_t n_rows, const uint8_t* x, size_t x_row_bytes, int64_t T,
                              int64_t n, float* y, int64_t ldy);
// Row `row` (0-7) of the panel at `panel` (rows of n elements) back in the
// type's own blocks, byte for byte the row pack read: one row read from a
// packed copy (a tied embedding, whose lookups would otherwise read the
// file). Optional: null where no type-specific inverse is written.
using UnpackFn = void (*)(const uint8_t* panel, int row, int64_t n, uint8_t* out);

struct TypeKernels {
  DequantizeFn dequantize = nullptr;
  QuantizeFn quantize = nullptr;
  VecDotFn vec_dot = nullptr;  // null for types that are never weights
  gguf::TensorType dot_type = gguf::TensorType::F32;  // y's type in vec_dot
  VecDot4Fn vec_dot_4 = nullptr;
  GemmFn gemm = nullptr;
  // Fewest tokens for which gemm beats one vec_dot (or vec_dot_4) per token:
  // gemm repacks the weights on every call (bench_kernel_sets BM_Gemm).
  int64_t gemm_min_tokens = 2;
  PanelBytesFn panel_bytes = nullptr;
  PackFn pack = nullptr;
  PackedGemmFn gemm_packed = nullptr;
  UnpackFn unpack = nullptr;
};

// Indexed by the numeric type id; ids beyond the table have no kernels.
constexpr size_t kMaxTypeId = 32;

// Attention over the KV cache (vector_ops.h).
struct CacheRows;
using AttendFn = void (*)(const float* q, int n_q, int64_t d, const CacheRows& k, const CacheRows& v, int64_t dv,
                          int64_t n_pos, float scale, float* out);

struct KernelTable {
  const char* name = "";
  std::array<TypeKernels, kMaxTypeId> by_type{};
  AttendFn attend = nullptr;
  void (*attend_causal)(const float* q, int64_t n_rows, const int64_t* n_pos, int64_t d, const CacheRows& k,
                        const CacheRows& v, int64_t dv, float scale, float* out) = nullptr;
  // Keys of positions [0, n_pos) as f32 panels (vector_ops.h), the padding up
  // to the next multiple of 8 positions zero; attend_causal's SIMD kernels use it.
  void (*key_panels)(const CacheRows& k, int64_t n_pos, int64_t d, float* panels) = nullptr;
  void (*f32_to_f16_row)(const float* x, uint16_t* y, int64_t n) = nullptr;
  void (*swiglu)(const float* gate, const float* up, float* out, int64_t n) = nullptr;
  void (*rms_norm)(const float* x, const float* weight, float* out, int64_t n, float eps) = nullptr;

  const TypeKernels* find(gguf::TensorType t) const {
    const auto id = static_cast<uint32_t>(t);
    return id < kMaxTypeId ? &by_type[id] : nullptr;
  }
};

// The portable reference kernels; every other table must agree with it.
const KernelTable& scalar_kernels();
// The table quant.h uses, chosen once on first use.
const KernelTable& active_kernels();

#if defined(WARDEN_HAVE_AVX2_KERNELS)
// AVX2 + FMA + F16C kernels (kernels_avx2.cpp). Call only when the CPU has
// all three; select_kernels() checks.
const KernelTable& avx2_kernels();
// Fills in the GemmFn entries (gemm_avx2.cpp).
void add_avx2_gemm_kernels(KernelTable& table);
// The AVX2 table with the matrix kernels of gemm_avx512vnni.cpp. Call only
// when the CPU also has AVX512-VNNI, -VL and -BW; select_kernels() checks.
const KernelTable& avx512vnni_kernels();
void add_avx512vnni_gemm_kernels(KernelTable& table);
// Decode attention over f16 or Q8_0 caches in 512-bit registers (attend_avx512.cpp),
// for the same CPUs; it shares the AVX2 softmax: w = exp(w - max w) in
// place over [0, n), returning the sum.
void add_avx512_attention_kernels(KernelTable& table);
float softmax_weights_avx2(float* w, int64_t n);
// The VNNI table with gemm_avx512bf16.cpp's BF16 matrix kernels. Call only
// when the CPU also has AVX512-BF16; select_kernels() checks.
const KernelTable& avx512bf16_kernels();
void add_avx512bf16_gemm_kernels(KernelTable& table);
#endif

// Registration helpers used to build the scalar table (one per source file).
void add_float_kernels(KernelTable& table);   // F32, F16, BF16
void add_legacy_kernels(KernelTable& table);  // Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q8_1
void add_k_kernels(KernelTable& table);       // Q2_K..Q6_K, Q8_K
void add_vector_kernels(KernelTable& table);  // vector_ops.h

}  // namespace warden::tensor
