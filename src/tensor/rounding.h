#pragma once
// Float -> integer steps of ggml's reference quantizers, reproduced exactly
// (their rounding decides the bytes) yet free of undefined behaviour for any
// input, NaN and infinity included.
#include <cmath>

#include "tensor/fp16.h"

namespace warden::tensor::detail {

// Round to nearest, ties to even, exact for |v| <= 2^22 (every value the
// quantizers round): adding 1.5 * 2^23 leaves the integer in the low
// mantissa bits. Outside that range the result is meaningless but defined.
inline int nearest_int(float v) {
  const float shifted = v + 12582912.0f;
  return int(float_bits(shifted) & 0x7FFFFFu) - 0x400000;
}

// C's (int)v (truncation toward zero) for |v| < 2^31; NaN and out-of-range give 0.
inline int truncate_to_int(float v) {
  if (!(v > -2147483648.0f && v < 2147483648.0f)) return 0;
  return int(v);
}

// C's roundf (ties away from zero) converted to int, with truncate_to_int's guard.
inline int round_half_away(float v) { return truncate_to_int(std::round(v)); }

}  // namespace warden::tensor::detail
