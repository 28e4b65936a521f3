#pragma once
// The exact ggml block layouts, byte for byte as GGUF files store them.
// Scales named `d`, `m`, `dmin`, `s` are IEEE halves (see fp16.h) except in
// block_q8_k, whose `d` is a float. Sizes are checked against gguf::type_info
// in dispatch.cpp; the static_asserts here pin them without it.
#include <cstdint>

namespace warden::tensor {

constexpr int kQK = 32;    // elements per block of the legacy types
constexpr int kQK_K = 256; // elements per super-block of the K-quants

#pragma pack(push, 1)

// 4-bit, x = d * (q - 8). qs[j] holds element j (low nibble) and j+16 (high).
struct block_q4_0 {
  uint16_t d;
  uint8_t qs[kQK / 2];
};

// 4-bit with offset, x = d * q + m; nibbles as in q4_0.
struct block_q4_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qs[kQK / 2];
};

// 5-bit, x = d * (q - 16); low 4 bits as in q4_0, bit 4 of element j in bit j
// of the little-endian 32-bit qh.
struct block_q5_0 {
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};

// 5-bit with offset, x = d * q + m; bits as in q5_0.
struct block_q5_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};

// 8-bit, x = d * q.
struct block_q8_0 {
  uint16_t d;
  int8_t qs[kQK];
};

// 8-bit with s = d * sum(qs) precomputed (activations for q4_1/q5_1 dots).
struct block_q8_1 {
  uint16_t d;
  uint16_t s;
  int8_t qs[kQK];
};

// 2-bit K-quant: 16 groups of 16. scales[g]: low nibble scale, high nibble
// min; x = d * sc * q - dmin * m. Element e's 2 bits sit in
// qs[32*(e/128) + e%32] at bit 2*((e%128)/32).
struct block_q2_k {
  uint8_t scales[kQK_K / 16];
  uint8_t qs[kQK_K / 4];
  uint16_t d;
  uint16_t dmin;
};

// 3-bit K-quant: 16 groups of 16 with 6-bit signed scales (packed in 12
// bytes, offset 32). Low 2 bits as in q2_K; the high bit of element e is bit
// (e/32) of hmask[e%32], and a clear bit means "subtract 4".
struct block_q3_k {
  uint8_t hmask[kQK_K / 8];
  uint8_t qs[kQK_K / 4];
  uint8_t scales[12];
  uint16_t d;
};

// 4-bit K-quant: 8 groups of 32 with 6-bit scales and mins packed in 12 bytes;
// x = d * sc * q - dmin * m. Element e is in qs[32*(e/64) + e%32], low nibble
// when (e%64) < 32.
struct block_q4_k {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qs[kQK_K / 2];
};

// 5-bit K-quant: q4_K plus a fifth bit, bit (e/32) of qh[e%32].
struct block_q5_k {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qh[kQK_K / 8];
  uint8_t qs[kQK_K / 2];
};

// 6-bit K-quant: 16 groups of 16 with int8 scales; x = d * sc * (q - 32).
// Writing element e = 128*h + 32*k + l (h in 0..1, k in 0..3, l in 0..31):
// its low 4 bits are in ql[64*h + 32*(k%2) + l] (high nibble when k >= 2),
// its high 2 bits are bits 2k..2k+1 of qh[32*h + l], its scale scales[e/16].
struct block_q6_k {
  uint8_t ql[kQK_K / 2];
  uint8_t qh[kQK_K / 4];
  int8_t scales[kQK_K / 16];
  uint16_t d;
};

// 8-bit activations for the K-quant dots: float scale and the sums of each
// group of 16 quants (so the K-quants' mins cost one multiply per group).
struct block_q8_k {
  float d;
  int8_t qs[kQK_K];
  int16_t bsums[kQK_K / 16];
};

#pragma pack(pop)

static_assert(sizeof(block_q4_0) == 18);
static_assert(sizeof(block_q4_1) == 20);
static_assert(sizeof(block_q5_0) == 22);
static_assert(sizeof(block_q5_1) == 24);
static_assert(sizeof(block_q8_0) == 34);
static_assert(sizeof(block_q8_1) == 36);
static_assert(sizeof(block_q2_k) == 84);
static_assert(sizeof(block_q3_k) == 110);
static_assert(sizeof(block_q4_k) == 144);
static_assert(sizeof(block_q5_k) == 176);
static_assert(sizeof(block_q6_k) == 210);
static_assert(sizeof(block_q8_k) == 292);

}  // namespace warden::tensor
