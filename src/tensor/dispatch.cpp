// quant.h's entry points: validate once, then call the active kernel table.
#include <cmath>
#include <cpuid.h>
#include <cstdlib>
#include <string>

#include "tensor/blocks.h"
#include "tensor/kernels.h"
#include "tensor/quant.h"
#include "util/error.h"

namespace warden::tensor {
namespace {

using gguf::TensorType;

// Our structs must be exactly the sizes the file format (gguf::type_info) says.
template <typename Block>
void check_block_size(TensorType t, int elements) {
  const auto info = gguf::type_info(t);
  if (!info || info->type_size != sizeof(Block) || info->block_size != uint32_t(elements))
    throw Error("internal: block layout of " + std::string(gguf::type_name(t)) +
                " disagrees with gguf::type_info");
}

void check_all_block_sizes() {
  check_block_size<float>(TensorType::F32, 1);
  check_block_size<uint16_t>(TensorType::F16, 1);
  check_block_size<uint16_t>(TensorType::BF16, 1);
  check_block_size<block_q4_0>(TensorType::Q4_0, kQK);
  check_block_size<block_q4_1>(TensorType::Q4_1, kQK);
  check_block_size<block_q5_0>(TensorType::Q5_0, kQK);
  check_block_size<block_q5_1>(TensorType::Q5_1, kQK);
  check_block_size<block_q8_0>(TensorType::Q8_0, kQK);
  check_block_size<block_q8_1>(TensorType::Q8_1, kQK);
  check_block_size<block_q2_k>(TensorType::Q2_K, kQK_K);
  check_block_size<block_q3_k>(TensorType::Q3_K, kQK_K);
  check_block_size<block_q4_k>(TensorType::Q4_K, kQK_K);
  check_block_size<block_q5_k>(TensorType::Q5_K, kQK_K);
  check_block_size<block_q6_k>(TensorType::Q6_K, kQK_K);
  check_block_size<block_q8_k>(TensorType::Q8_K, kQK_K);
}

KernelTable build_scalar_table() {
  check_all_block_sizes();
  KernelTable table;
  table.name = "scalar";
  add_float_kernels(table);
  add_legacy_kernels(table);
  add_k_kernels(table);
  add_vector_kernels(table);
  return table;
}

#if defined(WARDEN_HAVE_AVX2_KERNELS)
// AVX2, FMA and F16C from CPUID, plus the OS saving the YMM state (XGETBV);
// read directly because clang's __builtin_cpu_supports knows no "f16c".
bool cpu_has_avx2_fma_f16c() {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
  const bool fma = c & (1u << 12), osxsave = c & (1u << 27), avx = c & (1u << 28), f16c = c & (1u << 29);
  if (!(fma && osxsave && avx && f16c)) return false;
  unsigned xcr0_lo, xcr0_hi;
  __asm__("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
  if ((xcr0_lo & 0x6) != 0x6) return false;  // XMM and YMM state enabled by the OS
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  return b & (1u << 5);  // AVX2
}

// AVX512-F, -VL, -BW and -VNNI from CPUID (every CPU with VNNI has the
// other three), plus the OS saving the opmask and ZMM state (EVEX-encoded
// instructions need it even on 256-bit registers).
bool cpu_has_avx512vnni_vl() {
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  const bool f = b & (1u << 16), bw = b & (1u << 30), vl = b & (1u << 31), vnni = c & (1u << 11);
  if (!(f && bw && vl && vnni)) return false;
  unsigned xcr0_lo, xcr0_hi;
  __asm__("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
  return (xcr0_lo & 0xE6) == 0xE6;  // XMM, YMM, opmask, ZMM0-15 upper, ZMM16-31
}

// AVX512-BF16 (CPUID leaf 7, sub-leaf 1); the OS state is the one checked above.
bool cpu_has_avx512bf16() {
  unsigned a, b, c, d;
  return __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 5));
}
#endif

// The single place where a faster kernel set is chosen (see kernels.h).
// WARDEN_KERNELS=scalar forces the reference kernels, and =avx2 or
// =avx512vnni a lesser set on a CPU that has more (for comparisons and
// benchmarks); otherwise the fastest set the CPU supports is used.
const KernelTable& select_kernels() {
  const std::string forced = std::getenv("WARDEN_KERNELS") ? std::getenv("WARDEN_KERNELS") : "";
  if (forced == "scalar") return scalar_kernels();
#if defined(WARDEN_HAVE_AVX2_KERNELS)
  if (!cpu_has_avx2_fma_f16c()) return scalar_kernels();
  if (forced == "avx2" || !cpu_has_avx512vnni_vl()) return avx2_kernels();
  if (forced == "avx512vnni" || !cpu_has_avx512bf16()) return avx512vnni_kernels();
  return avx512bf16_kernels();
#else
  return scalar_kernels();
#endif
}

std::string describe(TensorType t) {
  const auto info = gguf::type_info(t);
  return info ? std::string(info->name) : "type id " + std::to_string(uint32_t(t));
}

const TypeKernels& kernels_or_throw(TensorType t, const char* what) {
  const TypeKernels* k = active_kernels().find(t);
  if (!k || !k->dequantize) throw Error(std::string(what) + ": tensor type " + describe(t) + " is not supported");
  return *k;
}

void check_row_length(TensorType t, int64_t n, const char* what) {
  const auto info = gguf::type_info(t);
  if (n < 0 || !info || n % info->block_size != 0)
    throw Error(std::string(what) + ": row of " + std::to_string(n) + " elements is not a multiple of the " +
                describe(t) + " block size " + (info ? std::to_string(info->block_size) : std::string("?")));
}

}  // namespace

const KernelTable& scalar_kernels() {
  static const KernelTable table = build_scalar_table();
  return table;
}

const KernelTable& active_kernels() {
  static const KernelTable& table = select_kernels();
  return table;
}

const char* kernel_set_name() { return active_kernels().name; }

bool can_convert(TensorType t) {
  const TypeKernels* k = active_kernels().find(t);
  return k && k->dequantize && k->quantize;
}

bool can_compute(TensorType t) {
  const TypeKernels* k = active_kernels().find(t);
  return k && k->dequantize && k->vec_dot;
}

void dequantize_row(TensorType t, const void* src, float* dst, int64_t n) {
  const TypeKernels& k = kernels_or_throw(t, "dequantize");
  check_row_length(t, n, "dequantize");
  if (n > 0) k.dequantize(src, dst, n);
}

void quantize_row(TensorType t, const float* src, void* dst, int64_t n) {
  const TypeKernels& k = kernels_or_throw(t, "quantize");
  check_row_length(t, n, "quantize");
  if (n > 0) k.quantize(src, dst, n);
}

int64_t first_non_finite(const float* src, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    if (!std::isfinite(src[i])) return i;
  return -1;
}

TensorType vec_dot_type(TensorType t) {
  const TypeKernels& k = kernels_or_throw(t, "vec_dot");
  if (!k.vec_dot) throw Error("vec_dot: tensor type " + describe(t) + " is an activation type, not a weight type");
  return k.dot_type;
}

float vec_dot(TensorType t, const void* x, const void* y, int64_t n) {
  const TypeKernels& k = kernels_or_throw(t, "vec_dot");
  if (!k.vec_dot) throw Error("vec_dot: tensor type " + describe(t) + " is an activation type, not a weight type");
  check_row_length(t, n, "vec_dot");
  return n > 0 ? k.vec_dot(x, y, n) : 0.0f;
}

}  // namespace warden::tensor
