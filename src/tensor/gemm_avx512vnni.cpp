// The matrix kernels of gemm_avx2.cpp, compiled for CPUs that also have
// AVX512-VNNI, -VL and -BW (Zen 4, Ice Lake and later): the same exact
// integer sums, with vpdpbusd doing in one instruction what AVX2 needs three
// for, and most types in 512-bit registers, some over panels of their own
// order (gemm_avx2.cpp's opening comment). kernels_avx2.cpp builds the table (avx512vnni_kernels());
// select_kernels() checks the CPU first.
//
// This file is compiled with the AVX2 flags, and only the functions defined
// below the target pragma may use AVX-512. Everything gemm_avx2.cpp includes
// is included first on purpose: template code from those headers (std::vector
// and the like) is emitted in every object that uses it and the linker keeps
// one copy for the whole program, so it must not be compiled for AVX-512.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "tensor/blocks.h"
#include "tensor/k_unpack.h"
#include "tensor/kernels.h"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512vl,avx512bw,avx512vnni"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx512bw,avx512vnni")
#endif

// GCC 12 warns of the undefined pass-through operand inside its own 512-bit
// shift and conversion intrinsics, as maybe or as surely uninitialized
// depending on how far it inlines (a false positive of its headers; the
// AVX2 compile of the same file still reports these warnings for
// everything else). Clang has no such warning.
#if !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#define WARDEN_GEMM_VNNI 1
#include "tensor/gemm_avx2.cpp"
#if !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
