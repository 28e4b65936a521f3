#pragma once
// IEEE binary16 and bfloat16 <-> binary32 conversions, inline because the
// engine calls them per element (KV cache, F16/BF16 weights).
#include <cstdint>
#include <cstring>

namespace warden::tensor {

inline uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

inline float float_from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// Exact (every half is a float). NaNs keep their payload and come back quiet,
// as the F16C instruction does.
inline float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1Fu;
  const uint32_t mantissa = h & 0x3FFu;
  if (exponent == 0x1F) {  // inf or NaN
    const uint32_t quiet = mantissa ? 0x00400000u : 0u;
    return float_from_bits(sign | 0x7F800000u | (mantissa << 13) | quiet);
  }
  if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24, exact in float
    const float magnitude = float(mantissa) * 0x1p-24f;
    return float_from_bits(sign | float_bits(magnitude));
  }
  return float_from_bits(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

// Round to nearest, ties to even; overflow gives inf; NaN gives the canonical
// quiet NaN 0x7E00 with the sign kept (as ggml's reference conversion does).
inline uint16_t fp32_to_fp16(float f) {
  const uint32_t bits = float_bits(f);
  const uint16_t sign = uint16_t((bits >> 16) & 0x8000u);
  const uint32_t magnitude = bits & 0x7FFFFFFFu;
  if (magnitude > 0x7F800000u) return sign | 0x7E00u;
  if (magnitude >= 0x477FF000u) return sign | 0x7C00u;  // >= 65520 rounds to inf
  const uint32_t exponent = magnitude >> 23;
  if (exponent < 113) {  // below 2^-14: a half subnormal, in units of 2^-24
    const uint32_t shift = 126 - exponent;  // value = mantissa_with_one >> shift
    if (shift >= 25) return sign;           // below half the smallest subnormal
    const uint32_t full = (magnitude & 0x7FFFFFu) | 0x800000u;
    uint32_t q = full >> shift;
    const uint32_t rest = full & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rest > half || (rest == half && (q & 1))) q++;
    return sign | uint16_t(q);
  }
  uint32_t h = ((exponent - 112) << 10) | ((magnitude >> 13) & 0x3FFu);
  const uint32_t rest = magnitude & 0x1FFFu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1))) h++;  // carry may bump the exponent
  return sign | uint16_t(h);
}

inline float bf16_to_fp32(uint16_t h) { return float_from_bits(uint32_t(h) << 16); }

// Round to nearest, ties to even; NaN keeps its top payload bits and is made
// quiet; subnormals are kept (as ggml does).
inline uint16_t fp32_to_bf16(float f) {
  const uint32_t bits = float_bits(f);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return uint16_t((bits >> 16) | 0x40u);
  const uint32_t rounding = 0x7FFFu + ((bits >> 16) & 1u);
  return uint16_t((bits + rounding) >> 16);
}

}  // namespace warden::tensor
