// Exact block layouts: blocks packed by hand from the format's description
// must decode to the values the description gives. Each test packs codes
// element by element (the inverse of the decoder's view), so a swapped nibble,
// bit or byte in the decoder shows up.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "tensor/blocks.h"
#include "tensor/quant.h"

namespace warden::tensor {
namespace {

template <typename Block>
std::vector<float> decode(TensorType t, const Block& b) {
  const auto n = int64_t(gguf::type_info(t)->block_size);
  std::vector<float> out(static_cast<size_t>(n));
  dequantize_row(t, &b, out.data(), n);
  return out;
}

TEST(TensorLayout, StructSizesMatchTheFileFormat) {
  EXPECT_EQ(sizeof(block_q4_0), gguf::type_info(TensorType::Q4_0)->type_size);
  EXPECT_EQ(sizeof(block_q4_1), gguf::type_info(TensorType::Q4_1)->type_size);
  EXPECT_EQ(sizeof(block_q5_0), gguf::type_info(TensorType::Q5_0)->type_size);
  EXPECT_EQ(sizeof(block_q5_1), gguf::type_info(TensorType::Q5_1)->type_size);
  EXPECT_EQ(sizeof(block_q8_0), gguf::type_info(TensorType::Q8_0)->type_size);
  EXPECT_EQ(sizeof(block_q8_1), gguf::type_info(TensorType::Q8_1)->type_size);
  EXPECT_EQ(sizeof(block_q2_k), gguf::type_info(TensorType::Q2_K)->type_size);
  EXPECT_EQ(sizeof(block_q3_k), gguf::type_info(TensorType::Q3_K)->type_size);
  EXPECT_EQ(sizeof(block_q4_k), gguf::type_info(TensorType::Q4_K)->type_size);
  EXPECT_EQ(sizeof(block_q5_k), gguf::type_info(TensorType::Q5_K)->type_size);
  EXPECT_EQ(sizeof(block_q6_k), gguf::type_info(TensorType::Q6_K)->type_size);
  EXPECT_EQ(sizeof(block_q8_k), gguf::type_info(TensorType::Q8_K)->type_size);
}

TEST(TensorLayout, Q4_0KnownBlock) {
  // d = 0.5; byte j holds element j (low nibble) and element j+16 (high).
  block_q4_0 b{};
  b.d = 0x3800;
  for (int j = 0; j < 16; j++) b.qs[j] = uint8_t(j | ((15 - j) << 4));
  const auto y = decode(TensorType::Q4_0, b);
  EXPECT_EQ(y[0], -4.0f);   // (0 - 8) * 0.5
  EXPECT_EQ(y[15], 3.5f);   // (15 - 8) * 0.5
  EXPECT_EQ(y[16], 3.5f);   // high nibble of byte 0 is 15
  EXPECT_EQ(y[31], -4.0f);  // high nibble of byte 15 is 0
  for (int e = 0; e < 32; e++) {
    const int code = e < 16 ? e : 15 - (e - 16);
    EXPECT_EQ(y[size_t(e)], float(code - 8) * 0.5f) << e;
  }
}

TEST(TensorLayout, Q4_1KnownBlock) {
  block_q4_1 b{};
  b.d = 0x3C00;  // 1.0
  b.m = 0xC000;  // -2.0
  for (int j = 0; j < 16; j++) b.qs[j] = uint8_t(j | ((j ^ 5) << 4));
  const auto y = decode(TensorType::Q4_1, b);
  for (int e = 0; e < 32; e++) {
    const int code = e < 16 ? e : ((e - 16) ^ 5);
    EXPECT_EQ(y[size_t(e)], float(code) - 2.0f) << e;
  }
}

// Element e's fifth bit is bit e of the little-endian 32-bit qh.
template <typename Block>
void pack_five_bit_codes(Block& b, const int code[32]) {
  uint32_t qh = 0;
  for (int e = 0; e < 32; e++) {
    if (e < 16)
      b.qs[e] = uint8_t((b.qs[e] & 0xF0) | (code[e] & 0x0F));
    else
      b.qs[e - 16] = uint8_t((b.qs[e - 16] & 0x0F) | ((code[e] & 0x0F) << 4));
    if (code[e] & 0x10) qh |= 1u << e;
  }
  b.qh[0] = uint8_t(qh);
  b.qh[1] = uint8_t(qh >> 8);
  b.qh[2] = uint8_t(qh >> 16);
  b.qh[3] = uint8_t(qh >> 24);
}

TEST(TensorLayout, Q5_0KnownBlock) {
  block_q5_0 b{};
  b.d = 0x3400;  // 0.25
  int code[32];
  for (int e = 0; e < 32; e++) code[e] = (e * 13 + 7) % 32;
  pack_five_bit_codes(b, code);
  const auto y = decode(TensorType::Q5_0, b);
  for (int e = 0; e < 32; e++) EXPECT_EQ(y[size_t(e)], float(code[e] - 16) * 0.25f) << e;
}

TEST(TensorLayout, Q5_1KnownBlock) {
  block_q5_1 b{};
  b.d = 0x3800;  // 0.5
  b.m = 0x3C00;  // 1.0
  int code[32];
  for (int e = 0; e < 32; e++) code[e] = (e * 19 + 3) % 32;
  pack_five_bit_codes(b, code);
  const auto y = decode(TensorType::Q5_1, b);
  for (int e = 0; e < 32; e++) EXPECT_EQ(y[size_t(e)], float(code[e]) * 0.5f + 1.0f) << e;
}

TEST(TensorLayout, Q8_0AndQ8_1KnownBlocks) {
  block_q8_0 a{};
  a.d = 0x4000;  // 2.0
  block_q8_1 b{};
  b.d = 0xB800;  // -0.5
  b.s = 0x1234;  // precomputed sum, not used for decoding
  for (int e = 0; e < 32; e++) a.qs[e] = b.qs[e] = int8_t(e * 8 - 128);
  const auto ya = decode(TensorType::Q8_0, a);
  const auto yb = decode(TensorType::Q8_1, b);
  for (int e = 0; e < 32; e++) {
    EXPECT_EQ(ya[size_t(e)], float(e * 8 - 128) * 2.0f) << e;
    EXPECT_EQ(yb[size_t(e)], float(e * 8 - 128) * -0.5f) << e;
  }
}

// K-quant 2-bit fields: element e = 128*h + 32*k + l lives in byte 32*h + l at bits 2k..2k+1.
void put_two_bits(uint8_t* qs, int e, int code) {
  const int h = e / 128, k = (e % 128) / 32, l = e % 32;
  qs[32 * h + l] = uint8_t(qs[32 * h + l] | ((code & 3) << (2 * k)));
}

TEST(TensorLayout, Q2_KKnownBlock) {
  block_q2_k b{};
  b.d = 0x3C00;     // 1.0
  b.dmin = 0x3800;  // 0.5
  for (int g = 0; g < 16; g++) b.scales[g] = uint8_t(g | ((15 - g) << 4));  // scale g, min 15-g
  int code[256];
  for (int e = 0; e < 256; e++) {
    code[e] = (e * 7 + e / 64) % 4;
    put_two_bits(b.qs, e, code[e]);
  }
  const auto y = decode(TensorType::Q2_K, b);
  for (int e = 0; e < 256; e++) {
    const int g = e / 16;
    EXPECT_EQ(y[size_t(e)], float(g) * float(code[e]) - 0.5f * float(15 - g)) << e;
  }
}

TEST(TensorLayout, Q3_KKnownBlock) {
  block_q3_k b{};
  b.d = 0x3800;  // 0.5
  int scale[16];
  for (int g = 0; g < 16; g++) {
    scale[g] = g * 4 - 32;  // -32..28
    const int stored = scale[g] + 32;
    if (g < 8)
      b.scales[g] = uint8_t(b.scales[g] | (stored & 0x0F));
    else
      b.scales[g - 8] = uint8_t(b.scales[g - 8] | ((stored & 0x0F) << 4));
    b.scales[8 + g % 4] = uint8_t(b.scales[8 + g % 4] | ((stored >> 4) << (2 * (g / 4))));
  }
  int code[256];  // 0..7 stands for code - 4; bit 2 set means "high bit present"
  for (int e = 0; e < 256; e++) {
    code[e] = (e * 5 + e / 32) % 8;
    put_two_bits(b.qs, e, code[e] & 3);
    if (code[e] & 4) b.hmask[e % 32] = uint8_t(b.hmask[e % 32] | (1 << (e / 32)));
  }
  const auto y = decode(TensorType::Q3_K, b);
  for (int e = 0; e < 256; e++)
    EXPECT_EQ(y[size_t(e)], 0.5f * float(scale[e / 16]) * float(code[e] - 4)) << e;
}

// Q4_K/Q5_K 6-bit scale and min of group g (0..7) in the 12 scale bytes.
void put_scale_min(uint8_t* s, int g, int scale, int min) {
  if (g < 4) {
    s[g] = uint8_t((s[g] & 0xC0) | scale);
    s[g + 4] = uint8_t((s[g + 4] & 0xC0) | min);
  } else {
    s[g + 4] = uint8_t((scale & 0x0F) | ((min & 0x0F) << 4));
    s[g - 4] = uint8_t(s[g - 4] | ((scale >> 4) << 6));
    s[g] = uint8_t(s[g] | ((min >> 4) << 6));
  }
}

// 4-bit field of element e = 64*c + 32*half + l: byte 32*c + l, high nibble when half is 1.
void put_nibble(uint8_t* qs, int e, int code) {
  const int c = e / 64, half = (e % 64) / 32, l = e % 32;
  qs[32 * c + l] = uint8_t(qs[32 * c + l] | ((code & 0x0F) << (4 * half)));
}

TEST(TensorLayout, Q4_KKnownBlock) {
  block_q4_k b{};
  b.d = 0x3C00;     // 1.0
  b.dmin = 0x3400;  // 0.25
  int scale[8], min[8];
  for (int g = 0; g < 8; g++) {
    scale[g] = 63 - 7 * g;  // exercises the top 2 bits for g >= 4
    min[g] = 5 + 8 * g;
    put_scale_min(b.scales, g, scale[g], min[g]);
  }
  int code[256];
  for (int e = 0; e < 256; e++) {
    code[e] = (e * 11 + 1) % 16;
    put_nibble(b.qs, e, code[e]);
  }
  const auto y = decode(TensorType::Q4_K, b);
  for (int e = 0; e < 256; e++) {
    const int g = e / 32;
    EXPECT_EQ(y[size_t(e)], float(scale[g]) * float(code[e]) - 0.25f * float(min[g])) << e;
  }
}

TEST(TensorLayout, Q5_KKnownBlock) {
  block_q5_k b{};
  b.d = 0x3800;     // 0.5
  b.dmin = 0x3C00;  // 1.0
  int scale[8], min[8];
  for (int g = 0; g < 8; g++) {
    scale[g] = 1 + 8 * g;
    min[g] = 60 - 3 * g;
    put_scale_min(b.scales, g, scale[g], min[g]);
  }
  int code[256];
  for (int e = 0; e < 256; e++) {
    code[e] = (e * 23 + e / 32) % 32;
    put_nibble(b.qs, e, code[e]);
    if (code[e] & 0x10) b.qh[e % 32] = uint8_t(b.qh[e % 32] | (1 << (e / 32)));
  }
  const auto y = decode(TensorType::Q5_K, b);
  for (int e = 0; e < 256; e++) {
    const int g = e / 32;
    EXPECT_EQ(y[size_t(e)], 0.5f * float(scale[g]) * float(code[e]) - float(min[g])) << e;
  }
}

TEST(TensorLayout, Q6_KKnownBlock) {
  block_q6_k b{};
  b.d = 0x3400;  // 0.25
  for (int g = 0; g < 16; g++) b.scales[g] = int8_t(g % 2 ? -3 * g : 5 * g + 1);
  int code[256];  // 0..63 stands for code - 32
  for (int e = 0; e < 256; e++) {
    code[e] = (e * 29 + 17) % 64;
    const int h = e / 128, k = (e % 128) / 32, l = e % 32;
    uint8_t& low = b.ql[64 * h + 32 * (k % 2) + l];
    low = uint8_t(low | ((code[e] & 0x0F) << (4 * (k / 2))));
    b.qh[32 * h + l] = uint8_t(b.qh[32 * h + l] | ((code[e] >> 4) << (2 * k)));
  }
  const auto y = decode(TensorType::Q6_K, b);
  for (int e = 0; e < 256; e++)
    EXPECT_EQ(y[size_t(e)], 0.25f * float(b.scales[e / 16]) * float(code[e] - 32)) << e;
}

TEST(TensorLayout, Q8_KKnownBlock) {
  block_q8_k b{};
  b.d = 0.125f;
  for (int e = 0; e < 256; e++) b.qs[e] = int8_t(e - 128);
  const auto y = decode(TensorType::Q8_K, b);
  for (int e = 0; e < 256; e++) EXPECT_EQ(y[size_t(e)], 0.125f * float(e - 128)) << e;
}

TEST(TensorLayout, HalfAndBf16RowsAreLittleEndianElements) {
  const uint8_t f16_bytes[4] = {0x00, 0x3C, 0x00, 0xC0};   // 1.0, -2.0
  const uint8_t bf16_bytes[4] = {0x80, 0x3F, 0x40, 0x40};  // 1.0, 3.0
  float y[2];
  dequantize_row(TensorType::F16, f16_bytes, y, 2);
  EXPECT_EQ(y[0], 1.0f);
  EXPECT_EQ(y[1], -2.0f);
  dequantize_row(TensorType::BF16, bf16_bytes, y, 2);
  EXPECT_EQ(y[0], 1.0f);
  EXPECT_EQ(y[1], 3.0f);
}

}  // namespace
}  // namespace warden::tensor
