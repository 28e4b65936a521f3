// The matrix kernels of gemm_avx2.cpp, compiled for CPUs that also have
// AVX512-VNNI and AVX512-VL (Zen 4, Ice Lake and later): the same panel
// layouts and exact integer sums, with vpdpbusd doing in one instruction what
// AVX2 needs three for. Only 256-bit registers are used, so the CPU keeps
// its clock. kernels_avx2.cpp builds the table (avx512vnni_kernels()).
#define WARDEN_GEMM_VNNI 1
#include "tensor/gemm_avx2.cpp"
