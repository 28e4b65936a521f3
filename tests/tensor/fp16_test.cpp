// IEEE half and bfloat16 conversions: exactness, rounding (ties to even),
// subnormals, infinities and NaNs.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "tensor/quant.h"

namespace warden::tensor {
namespace {

float bits_to_float(uint32_t u) { return float_from_bits(u); }

// Independent decoding of a half from its fields, in double.
double half_value(uint16_t h) {
  const int sign = h >> 15, exponent = (h >> 10) & 0x1F, mantissa = h & 0x3FF;
  const double magnitude =
      exponent == 0 ? std::ldexp(double(mantissa), -24) : std::ldexp(double(1024 + mantissa), exponent - 25);
  return sign ? -magnitude : magnitude;
}

TEST(TensorFp16, EveryFiniteHalfDecodesExactlyAndRoundTrips) {
  for (uint32_t h = 0; h <= 0xFFFF; h++) {
    if (((h >> 10) & 0x1F) == 0x1F) continue;  // inf/NaN below
    const float f = fp16_to_fp32(uint16_t(h));
    ASSERT_EQ(double(f), half_value(uint16_t(h))) << std::hex << h;
    ASSERT_EQ(std::signbit(f), bool(h & 0x8000)) << std::hex << h;
    ASSERT_EQ(fp32_to_fp16(f), h) << std::hex << h;
  }
}

TEST(TensorFp16, InfinityAndNaN) {
  EXPECT_EQ(fp16_to_fp32(0x7C00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(fp16_to_fp32(0xFC00), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(fp16_to_fp32(0x7E00)));
  EXPECT_TRUE(std::isnan(fp16_to_fp32(0x7C01)));                // signalling half NaN
  EXPECT_EQ(float_bits(fp16_to_fp32(0x7C01)), 0x7FC02000u);      // ... comes back quiet, payload kept
  EXPECT_EQ(fp32_to_fp16(std::numeric_limits<float>::infinity()), 0x7C00);
  EXPECT_EQ(fp32_to_fp16(-std::numeric_limits<float>::infinity()), 0xFC00);
  EXPECT_EQ(fp32_to_fp16(std::numeric_limits<float>::quiet_NaN()), 0x7E00);
  EXPECT_EQ(fp32_to_fp16(bits_to_float(0xFF800001u)), 0xFE00);  // sign kept, made quiet
}

TEST(TensorFp16, OverflowRoundsToInfinityAtTheHalfwayPoint) {
  EXPECT_EQ(fp32_to_fp16(65504.0f), 0x7BFF);
  EXPECT_EQ(fp32_to_fp16(65519.996f), 0x7BFF);  // just below the halfway point 65520
  EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7C00);    // tie: 0x7BFF is odd, so up to inf
  EXPECT_EQ(fp32_to_fp16(1e10f), 0x7C00);
  EXPECT_EQ(fp32_to_fp16(-70000.0f), 0xFC00);
}

TEST(TensorFp16, RoundsToNearestEvenInTheNormalRange) {
  EXPECT_EQ(fp32_to_fp16(1.0f), 0x3C00);
  EXPECT_EQ(fp32_to_fp16(1.0f + 0x1p-11f), 0x3C00);          // tie, 0x3C00 even: down
  EXPECT_EQ(fp32_to_fp16(1.0f + 3 * 0x1p-11f), 0x3C02);      // tie, 0x3C01 odd: up
  EXPECT_EQ(fp32_to_fp16(1.0f + 0x1p-11f + 0x1p-20f), 0x3C01);  // just above the tie
  EXPECT_EQ(fp32_to_fp16(2047.0f / 1024.0f + 0x1p-11f), 0x4000);  // carry into the exponent
  EXPECT_EQ(fp32_to_fp16(-2.0f), 0xC000);
  EXPECT_EQ(fp32_to_fp16(0.0f), 0x0000);
  EXPECT_EQ(fp32_to_fp16(-0.0f), 0x8000);
}

TEST(TensorFp16, Subnormals) {
  EXPECT_EQ(fp32_to_fp16(0x1p-24f), 0x0001);                  // smallest subnormal
  EXPECT_EQ(fp32_to_fp16(0x1p-25f), 0x0000);                  // tie with 0: even
  EXPECT_EQ(fp32_to_fp16(0x1p-25f * 1.0000001f), 0x0001);     // just above the tie
  EXPECT_EQ(fp32_to_fp16(3 * 0x1p-25f), 0x0002);              // 1.5 units: tie to even 2
  EXPECT_EQ(fp32_to_fp16(5 * 0x1p-25f), 0x0002);              // 2.5 units: tie to even 2
  EXPECT_EQ(fp32_to_fp16(0x1p-26f), 0x0000);
  EXPECT_EQ(fp32_to_fp16(-0x1p-24f), 0x8001);
  EXPECT_EQ(fp32_to_fp16(1023 * 0x1p-24f), 0x03FF);           // largest subnormal
  EXPECT_EQ(fp32_to_fp16(0x1p-14f), 0x0400);                  // smallest normal
  EXPECT_EQ(fp32_to_fp16(0x1p-14f - 0x1p-26f), 0x0400);       // rounds up into the normals
  EXPECT_EQ(fp32_to_fp16(bits_to_float(0x00000001u)), 0x0000);  // float subnormal
  EXPECT_EQ(fp16_to_fp32(0x0001), 0x1p-24f);
  EXPECT_EQ(fp16_to_fp32(0x83FF), -1023 * 0x1p-24f);
}

TEST(TensorBf16, DecodeIsTheTopHalfOfAFloat) {
  EXPECT_EQ(bf16_to_fp32(0x3F80), 1.0f);
  EXPECT_EQ(bf16_to_fp32(0xC000), -2.0f);
  EXPECT_EQ(bf16_to_fp32(0x7F80), std::numeric_limits<float>::infinity());
  EXPECT_EQ(float_bits(bf16_to_fp32(0x0001)), 0x00010000u);  // subnormal kept
  for (uint32_t h = 0; h <= 0xFFFF; h++) {
    const float f = bf16_to_fp32(uint16_t(h));
    ASSERT_EQ(float_bits(f), h << 16);
    if (!std::isnan(f)) {
      ASSERT_EQ(fp32_to_bf16(f), h) << std::hex << h;
    }
  }
}

TEST(TensorBf16, RoundsToNearestEvenAndKeepsNaNQuiet) {
  EXPECT_EQ(fp32_to_bf16(bits_to_float(0x3F808000u)), 0x3F80);  // tie, even: down
  EXPECT_EQ(fp32_to_bf16(bits_to_float(0x3F818000u)), 0x3F82);  // tie, odd: up
  EXPECT_EQ(fp32_to_bf16(bits_to_float(0x3F808001u)), 0x3F81);  // above the tie
  EXPECT_EQ(fp32_to_bf16(bits_to_float(0x3F807FFFu)), 0x3F80);  // below the tie
  EXPECT_EQ(fp32_to_bf16(bits_to_float(0x7F7FFFFFu)), 0x7F80);  // max float rounds to inf
  EXPECT_EQ(fp32_to_bf16(std::numeric_limits<float>::infinity()), 0x7F80);
  EXPECT_EQ(fp32_to_bf16(bits_to_float(0x7F800001u)), 0x7FC0);  // signalling NaN made quiet
  EXPECT_EQ(fp32_to_bf16(bits_to_float(0xFFC00000u)), 0xFFC0);
  EXPECT_EQ(fp32_to_bf16(bits_to_float(0x00018000u)), 0x0002);  // subnormal tie, odd: up
}

}  // namespace
}  // namespace warden::tensor
