// The K-quants (256-element super-blocks): Q2_K, Q3_K, Q4_K, Q5_K, Q6_K as
// weights and Q8_K as their activation type. The quantizers reproduce ggml's
// reference algorithms (no importance matrix), including the iterative scale
// searches, operation for operation: the order of float operations decides
// which codes win, and so whether our bytes equal llama-quantize's.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "tensor/blocks.h"
#include "tensor/fp16.h"
#include "tensor/k_unpack.h"
#include "tensor/kernels.h"
#include "tensor/rounding.h"

namespace warden::tensor {
namespace {

using detail::nearest_int;
using namespace kquant;

// Below this magnitude a group counts as all zero.
constexpr float kGroupMaxEps = 1e-15f;

// ===== scale searches =====================================================

// Symmetric codes in [-nmax, nmax) for n values, weighting each by x^2: starts
// at the scale mapping the signed extreme to -nmax, then tries 18 nearby
// scales and keeps the least-squares best. L gets codes + nmax; returns the
// scale (ggml's make_qx_quants with rmse_type 1).
float symmetric_scale_search(int n, int nmax, const float* x, int8_t* L) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < kGroupMaxEps) {
    std::fill(L, L + n, int8_t(0));
    return 0.0f;
  }
  auto code = [&](float iscale, int i) { return std::max(-nmax, std::min(nmax - 1, nearest_int(iscale * x[i]))); };
  float iscale = float(-nmax) / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = code(iscale, i);
    L[i] = int8_t(l + nmax);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * float(l);
    suml2 += w * float(l) * float(l);
  }
  float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(float(nmax) + 0.1f * float(is)) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = code(iscale, i);
      const float w = x[i] * x[i];
      sumlx += w * x[i] * float(l);
      suml2 += w * float(l) * float(l);
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) L[i] = int8_t(nmax + code(iscale, i));
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// Symmetric codes in [-nmax, nmax) refined one value at a time (up to 5
// sweeps) while the x^2-weighted fit improves. L gets codes + nmax; returns
// the scale (ggml's make_q3_quants with do_rmse).
float q3_scale_search(int n, int nmax, const float* x, int8_t* L) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < kGroupMaxEps) {
    std::fill(L, L + n, int8_t(0));
    return 0.0f;
  }
  const float iscale = float(-nmax) / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = std::max(-nmax, std::min(nmax - 1, nearest_int(iscale * x[i])));
    L[i] = int8_t(l);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * float(l);
    suml2 += w * float(l) * float(l);
  }
  for (int itry = 0; itry < 5; ++itry) {
    int n_changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = x[i] * x[i];
      float slx = sumlx - w * x[i] * float(L[i]);
      if (!(slx > 0)) continue;
      float sl2 = suml2 - w * float(L[i]) * float(L[i]);
      const int new_l = std::max(-nmax, std::min(nmax - 1, nearest_int(x[i] * sl2 / slx)));
      if (new_l == L[i]) continue;
      slx += w * x[i] * float(new_l);
      sl2 += w * float(new_l) * float(new_l);
      if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
        L[i] = int8_t(new_l);
        sumlx = slx;
        suml2 = sl2;
        ++n_changed;
      }
    }
    if (!n_changed) break;
  }
  for (int i = 0; i < n; ++i) L[i] = int8_t(L[i] + nmax);
  return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

// Codes in [0, nmax] for x ~ scale * L - the_min: starts from the min..max
// range, then tries nstep+1 scales around it, solving weighted least squares
// for scale and min at each, and keeps the lowest weighted error (squared,
// or absolute with use_mad). Returns the scale (ggml's make_qkx2_quants).
float asymmetric_scale_search(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                              float* the_min, uint8_t* Laux, float rmin, float rdelta, int nstep,
                              bool use_mad) {
  float min = x[0], max = x[0];
  float sum_w = weights[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    const float w = weights[i];
    sum_w += w;
    sum_x += w * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    std::fill(L, L + n, uint8_t(0));
    *the_min = -min;
    return 0.0f;
  }
  auto error_of = [&](float diff) { return use_mad ? std::fabs(diff) : diff * diff; };
  float iscale = float(nmax) / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    L[i] = uint8_t(std::max(0, std::min(nmax, nearest_int(iscale * (x[i] - min)))));
    const float diff = scale * float(L[i]) + min - x[i];
    best_error += weights[i] * error_of(diff);
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * float(is) + float(nmax)) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::max(0, std::min(nmax, nearest_int(iscale * (x[i] - min))));
      Laux[i] = uint8_t(l);
      const float w = weights[i];
      sum_l += w * float(l);
      sum_l2 += w * float(l) * float(l);
      sum_xl += w * float(l) * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (!(D > 0)) continue;
    float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
    float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
    if (this_min > 0) {
      this_min = 0;
      this_scale = sum_xl / sum_l2;
    }
    float cur_error = 0;
    for (int i = 0; i < n; ++i) {
      const float diff = this_scale * float(Laux[i]) + this_min - x[i];
      cur_error += weights[i] * error_of(diff);
    }
    if (cur_error < best_error) {
      std::copy(Laux, Laux + n, L);
      best_error = cur_error;
      scale = this_scale;
      min = this_min;
    }
  }
  *the_min = -min;
  return scale;
}

// ===== packed scales ======================================================

void pack_scale_min_k4(uint8_t* packed, int group, uint8_t scale, uint8_t min) {
  if (group < 4) {
    packed[group] = scale;
    packed[group + 4] = min;
  } else {
    packed[group + 4] = uint8_t((scale & 0x0F) | ((min & 0x0F) << 4));
    packed[group - 4] |= uint8_t((scale >> 4) << 6);
    packed[group] |= uint8_t((min >> 4) << 6);
  }
}

// ===== dequantization ====================================================
// Per group: x = (d * scale) * q - (dmin * min), the float operations in
// ggml's order so results are bit-identical.

void dequantize_q2_k(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const block_q2_k*>(src);
  for (int64_t i = 0; i < n / kQK_K; i++, dst += kQK_K) {
    const block_q2_k& b = blocks[i];
    int q[kQK_K];
    unpack_q2_k(b, q);
    const float d = fp16_to_fp32(b.d), dmin = fp16_to_fp32(b.dmin);
    for (int g = 0; g < 16; g++) {
      const float dl = d * float(b.scales[g] & 0x0F), ml = dmin * float(b.scales[g] >> 4);
      for (int e = 16 * g; e < 16 * g + 16; e++) dst[e] = dl * float(q[e]) - ml;
    }
  }
}

void dequantize_q3_k(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const block_q3_k*>(src);
  for (int64_t i = 0; i < n / kQK_K; i++, dst += kQK_K) {
    const block_q3_k& b = blocks[i];
    int q[kQK_K];
    unpack_q3_k(b, q);
    const float d = fp16_to_fp32(b.d);
    for (int g = 0; g < 16; g++) {
      const float dl = d * float(unpack_scale_q3_k(b.scales, g));
      for (int e = 16 * g; e < 16 * g + 16; e++) dst[e] = dl * float(q[e]);
    }
  }
}

template <typename Block, void (*Unpack)(const Block&, int*)>
void dequantize_q45_k(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const Block*>(src);
  for (int64_t i = 0; i < n / kQK_K; i++, dst += kQK_K) {
    const Block& b = blocks[i];
    int q[kQK_K];
    Unpack(b, q);
    const float d = fp16_to_fp32(b.d), dmin = fp16_to_fp32(b.dmin);
    for (int g = 0; g < 8; g++) {
      uint8_t sc, m;
      unpack_scale_min_k4(b.scales, g, sc, m);
      const float dl = d * float(sc), ml = dmin * float(m);
      for (int e = 32 * g; e < 32 * g + 32; e++) dst[e] = dl * float(q[e]) - ml;
    }
  }
}

void dequantize_q6_k(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const block_q6_k*>(src);
  for (int64_t i = 0; i < n / kQK_K; i++, dst += kQK_K) {
    const block_q6_k& b = blocks[i];
    int q[kQK_K];
    unpack_q6_k(b, q);
    const float d = fp16_to_fp32(b.d);
    for (int e = 0; e < kQK_K; e++) dst[e] = d * float(b.scales[e / 16]) * float(q[e]);
  }
}

void dequantize_q8_k(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const block_q8_k*>(src);
  for (int64_t i = 0; i < n / kQK_K; i++, dst += kQK_K)
    for (int e = 0; e < kQK_K; e++) dst[e] = blocks[i].d * float(blocks[i].qs[e]);
}

// ===== quantization =======================================================

// Two-bit codes of elements j, j+32, j+64, j+96 share a byte (per 128 elements).
void pack_two_bits(const uint8_t* L, uint8_t* qs) {
  for (int j = 0; j < kQK_K; j += 128)
    for (int l = 0; l < 32; ++l)
      qs[j / 4 + l] = uint8_t(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
}

// Re-derives codes against the scales as stored (rounded to 4/6 bits and
// fp16) so the codes fit what the decoder will compute.
void requantize_with_min(const float* x, int group_size, float d, float dm, int nmax, uint8_t* L) {
  for (int ii = 0; ii < group_size; ++ii) L[ii] = uint8_t(std::max(0, std::min(nmax, nearest_int((x[ii] + dm) / d))));
}

void quantize_q2_k(const float* x, void* dst, int64_t n) {
  auto* blocks = static_cast<block_q2_k*>(dst);
  constexpr float q4scale = 15.0f;
  for (int64_t i = 0; i < n / kQK_K; i++, x += kQK_K) {
    block_q2_k& y = blocks[i];
    uint8_t L[kQK_K], Laux[16];
    float weights[16], mins[16], scales[16];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 16; ++j) {
      for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
      scales[j] = asymmetric_scale_search(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15, true);
      max_scale = std::max(max_scale, scales[j]);
      max_min = std::max(max_min, mins[j]);
    }
    if (max_scale > 0) {
      const float iscale = q4scale / max_scale;
      for (int j = 0; j < 16; ++j) y.scales[j] = uint8_t(nearest_int(iscale * scales[j]));
      y.d = fp32_to_fp16(max_scale / q4scale);
    } else {
      std::fill(y.scales, y.scales + 16, uint8_t(0));
      y.d = fp32_to_fp16(0.0f);
    }
    if (max_min > 0) {
      const float iscale = q4scale / max_min;
      for (int j = 0; j < 16; ++j) y.scales[j] |= uint8_t(nearest_int(iscale * mins[j]) << 4);
      y.dmin = fp32_to_fp16(max_min / q4scale);
    } else {
      y.dmin = fp32_to_fp16(0.0f);
    }
    for (int j = 0; j < 16; ++j) {
      const float d = fp16_to_fp32(y.d) * float(y.scales[j] & 0x0F);
      if (d == 0.0f) continue;  // keep the search's codes
      const float dm = fp16_to_fp32(y.dmin) * float(y.scales[j] >> 4);
      requantize_with_min(x + 16 * j, 16, d, dm, 3, L + 16 * j);
    }
    pack_two_bits(L, y.qs);
  }
}

void quantize_q3_k(const float* x, void* dst, int64_t n) {
  auto* blocks = static_cast<block_q3_k*>(dst);
  for (int64_t i = 0; i < n / kQK_K; i++, x += kQK_K) {
    block_q3_k& y = blocks[i];
    int8_t L[kQK_K];
    float scales[16];
    float max_scale = 0, amax = 0;
    for (int j = 0; j < 16; ++j) {
      scales[j] = q3_scale_search(16, 4, x + 16 * j, L + 16 * j);
      const float scale = std::fabs(scales[j]);
      if (scale > amax) {
        amax = scale;
        max_scale = scales[j];
      }
    }
    std::memset(y.scales, 0, sizeof y.scales);
    if (max_scale != 0.0f) {
      const float iscale = -32.0f / max_scale;
      for (int j = 0; j < 16; ++j) {
        // ggml narrows to int8 before clamping; the value always fits.
        int l = int8_t(nearest_int(iscale * scales[j]));
        l = std::max(-32, std::min(31, l)) + 32;
        if (j < 8)
          y.scales[j] = uint8_t(l & 0x0F);
        else
          y.scales[j - 8] |= uint8_t((l & 0x0F) << 4);
        y.scales[j % 4 + 8] |= uint8_t((l >> 4) << (2 * (j / 4)));
      }
      y.d = fp32_to_fp16(1 / iscale);
    } else {
      y.d = fp32_to_fp16(0.0f);
    }
    for (int j = 0; j < 16; ++j) {
      const float d = fp16_to_fp32(y.d) * float(unpack_scale_q3_k(y.scales, j));
      if (d == 0.0f) continue;
      for (int ii = 0; ii < 16; ++ii)
        L[16 * j + ii] = int8_t(std::max(-4, std::min(3, nearest_int(x[16 * j + ii] / d))) + 4);
    }
    // Codes 0..7: bit 2 goes to hmask (bit e/32 of byte e%32), bits 0-1 to qs.
    std::memset(y.hmask, 0, sizeof y.hmask);
    uint8_t low[kQK_K];
    for (int e = 0; e < kQK_K; ++e) {
      if (L[e] > 3) y.hmask[e % 32] |= uint8_t(1u << (e / 32));
      low[e] = uint8_t(L[e] & 3);
    }
    pack_two_bits(low, y.qs);
  }
}

// Q4_K and Q5_K share everything but the code range and the bit packing.
template <typename Block, int kNmax>
void quantize_q45_k_scales(const float* x, Block& y, uint8_t L[kQK_K], float rmin, int nstep) {
  uint8_t Laux[32];
  float weights[32], mins[8], scales[8];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; ++j) {
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(x[32 * j + l]);
    scales[j] = asymmetric_scale_search(32, kNmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, rmin, 0.1f,
                                        nstep, false);
    max_scale = std::max(max_scale, scales[j]);
    max_min = std::max(max_min, mins[j]);
  }
  std::memset(y.scales, 0, sizeof y.scales);  // pack_scale_min_k4 ORs in the top bits
  const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
  const float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
  for (int j = 0; j < 8; ++j) {
    const uint8_t ls = std::min<uint8_t>(63, uint8_t(nearest_int(inv_scale * scales[j])));
    const uint8_t lm = std::min<uint8_t>(63, uint8_t(nearest_int(inv_min * mins[j])));
    pack_scale_min_k4(y.scales, j, ls, lm);
  }
  y.d = fp32_to_fp16(max_scale / 63.0f);
  y.dmin = fp32_to_fp16(max_min / 63.0f);
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    unpack_scale_min_k4(y.scales, j, sc, m);
    const float d = fp16_to_fp32(y.d) * float(sc);
    if (d == 0.0f) continue;
    const float dm = fp16_to_fp32(y.dmin) * float(m);
    requantize_with_min(x + 32 * j, 32, d, dm, kNmax, L + 32 * j);
  }
}

void quantize_q4_k(const float* x, void* dst, int64_t n) {
  auto* blocks = static_cast<block_q4_k*>(dst);
  for (int64_t i = 0; i < n / kQK_K; i++, x += kQK_K) {
    block_q4_k& y = blocks[i];
    uint8_t L[kQK_K];
    quantize_q45_k_scales<block_q4_k, 15>(x, y, L, -1.0f, 20);
    for (int e = 0; e < kQK_K; e += 64)
      for (int l = 0; l < 32; ++l) y.qs[e / 2 + l] = uint8_t(L[e + l] | (L[e + l + 32] << 4));
  }
}

void quantize_q5_k(const float* x, void* dst, int64_t n) {
  auto* blocks = static_cast<block_q5_k*>(dst);
  for (int64_t i = 0; i < n / kQK_K; i++, x += kQK_K) {
    block_q5_k& y = blocks[i];
    uint8_t L[kQK_K];
    quantize_q45_k_scales<block_q5_k, 31>(x, y, L, -0.5f, 15);
    // Bit 4 of element e goes to bit e/32 of qh[e%32]; the low nibbles pack as in Q4_K.
    std::memset(y.qh, 0, sizeof y.qh);
    for (int e = 0; e < kQK_K; e++)
      if (L[e] > 15) y.qh[e % 32] |= uint8_t(1u << (e / 32));
    for (int e = 0; e < kQK_K; e += 64)
      for (int l = 0; l < 32; ++l) y.qs[e / 2 + l] = uint8_t((L[e + l] & 0x0F) | ((L[e + l + 32] & 0x0F) << 4));
  }
}

void quantize_q6_k(const float* x, void* dst, int64_t n) {
  auto* blocks = static_cast<block_q6_k*>(dst);
  for (int64_t i = 0; i < n / kQK_K; i++, x += kQK_K) {
    block_q6_k& y = blocks[i];
    int8_t L[kQK_K];
    float scales[16];
    float max_scale = 0, max_abs_scale = 0;
    for (int ib = 0; ib < 16; ++ib) {
      scales[ib] = symmetric_scale_search(16, 32, x + 16 * ib, L + 16 * ib);
      if (std::fabs(scales[ib]) > max_abs_scale) {
        max_abs_scale = std::fabs(scales[ib]);
        max_scale = scales[ib];
      }
    }
    if (max_abs_scale < kGroupMaxEps) {
      std::memset(&y, 0, sizeof y);
      continue;
    }
    const float iscale = -128.0f / max_scale;
    y.d = fp32_to_fp16(1 / iscale);
    for (int ib = 0; ib < 16; ++ib) y.scales[ib] = int8_t(std::min(127, nearest_int(iscale * scales[ib])));
    for (int j = 0; j < 16; ++j) {
      const float d = fp16_to_fp32(y.d) * float(y.scales[j]);
      if (d == 0.0f) continue;
      for (int ii = 0; ii < 16; ++ii)
        L[16 * j + ii] = int8_t(std::max(-32, std::min(31, nearest_int(x[16 * j + ii] / d))) + 32);
    }
    int codes[kQK_K];
    for (int e = 0; e < kQK_K; e++) codes[e] = L[e];
    pack_q6_k_codes(codes, y);
  }
}

void quantize_q8_k(const float* x, void* dst, int64_t n) {
  auto* blocks = static_cast<block_q8_k*>(dst);
  for (int64_t i = 0; i < n / kQK_K; i++, x += kQK_K) {
    block_q8_k& y = blocks[i];
    float max = 0, amax = 0;
    for (int j = 0; j < kQK_K; ++j) {
      if (std::fabs(x[j]) > amax) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    if (amax == 0.0f) {
      std::memset(&y, 0, sizeof y);
      continue;
    }
    // -127 rather than -128 keeps every code in [-127, 127] (as ggml does).
    const float iscale = -127.0f / max;
    for (int j = 0; j < kQK_K; ++j) y.qs[j] = int8_t(std::min(127, nearest_int(iscale * x[j])));
    for (int g = 0; g < 16; ++g) {
      int sum = 0;
      for (int j = 16 * g; j < 16 * g + 16; ++j) sum += y.qs[j];
      y.bsums[g] = int16_t(sum);
    }
    y.d = 1 / iscale;
  }
}

// ===== dot products against Q8_K ==========================================
// Integer sums per group, one float multiply per super-block; the mins of
// Q2_K/Q4_K/Q5_K use the activation's per-16 sums (bsums).

// sum over elements [first, first+count) of q * y
inline int int_dot(const int* q, const int8_t* y, int first, int count) {
  int sum = 0;
  for (int e = first; e < first + count; e++) sum += q[e] * y[e];
  return sum;
}

float dot_q2_k(const void* xv, const void* yv, int64_t n) {
  const auto* x = static_cast<const block_q2_k*>(xv);
  const auto* y = static_cast<const block_q8_k*>(yv);
  float sum = 0;
  for (int64_t i = 0; i < n / kQK_K; i++) {
    int q[kQK_K];
    unpack_q2_k(x[i], q);
    int isum = 0, summs = 0;
    for (int g = 0; g < 16; g++) {
      isum += (x[i].scales[g] & 0x0F) * int_dot(q, y[i].qs, 16 * g, 16);
      summs += (x[i].scales[g] >> 4) * y[i].bsums[g];
    }
    const float dall = y[i].d * fp16_to_fp32(x[i].d);
    const float dmin = y[i].d * fp16_to_fp32(x[i].dmin);
    sum += dall * float(isum) - dmin * float(summs);
  }
  return sum;
}

float dot_q3_k(const void* xv, const void* yv, int64_t n) {
  const auto* x = static_cast<const block_q3_k*>(xv);
  const auto* y = static_cast<const block_q8_k*>(yv);
  float sum = 0;
  for (int64_t i = 0; i < n / kQK_K; i++) {
    int q[kQK_K];
    unpack_q3_k(x[i], q);
    int isum = 0;
    for (int g = 0; g < 16; g++) isum += unpack_scale_q3_k(x[i].scales, g) * int_dot(q, y[i].qs, 16 * g, 16);
    sum += y[i].d * fp16_to_fp32(x[i].d) * float(isum);
  }
  return sum;
}

template <typename Block, void (*Unpack)(const Block&, int*)>
float dot_q45_k(const void* xv, const void* yv, int64_t n) {
  const auto* x = static_cast<const Block*>(xv);
  const auto* y = static_cast<const block_q8_k*>(yv);
  float sum = 0;
  for (int64_t i = 0; i < n / kQK_K; i++) {
    int q[kQK_K];
    Unpack(x[i], q);
    int isum = 0, summs = 0;
    for (int g = 0; g < 8; g++) {
      uint8_t sc, m;
      unpack_scale_min_k4(x[i].scales, g, sc, m);
      isum += sc * int_dot(q, y[i].qs, 32 * g, 32);
      summs += m * (y[i].bsums[2 * g] + y[i].bsums[2 * g + 1]);
    }
    const float dall = y[i].d * fp16_to_fp32(x[i].d);
    const float dmin = y[i].d * fp16_to_fp32(x[i].dmin);
    sum += dall * float(isum) - dmin * float(summs);
  }
  return sum;
}

float dot_q6_k(const void* xv, const void* yv, int64_t n) {
  const auto* x = static_cast<const block_q6_k*>(xv);
  const auto* y = static_cast<const block_q8_k*>(yv);
  float sum = 0;
  for (int64_t i = 0; i < n / kQK_K; i++) {
    int q[kQK_K];
    unpack_q6_k(x[i], q);
    int isum = 0;
    for (int g = 0; g < 16; g++) isum += x[i].scales[g] * int_dot(q, y[i].qs, 16 * g, 16);
    sum += y[i].d * fp16_to_fp32(x[i].d) * float(isum);
  }
  return sum;
}

}  // namespace

void add_k_kernels(KernelTable& table) {
  using gguf::TensorType;
  auto set = [&](TensorType t, TypeKernels k) { table.by_type[size_t(t)] = k; };
  set(TensorType::Q2_K, {dequantize_q2_k, quantize_q2_k, dot_q2_k, TensorType::Q8_K});
  set(TensorType::Q3_K, {dequantize_q3_k, quantize_q3_k, dot_q3_k, TensorType::Q8_K});
  set(TensorType::Q4_K, {dequantize_q45_k<block_q4_k, unpack_q4_k>, quantize_q4_k,
                         dot_q45_k<block_q4_k, unpack_q4_k>, TensorType::Q8_K});
  set(TensorType::Q5_K, {dequantize_q45_k<block_q5_k, unpack_q5_k>, quantize_q5_k,
                         dot_q45_k<block_q5_k, unpack_q5_k>, TensorType::Q8_K});
  set(TensorType::Q6_K, {dequantize_q6_k, quantize_q6_k, dot_q6_k, TensorType::Q8_K});
  // Q8_K is only ever an activation: no vec_dot with it as x.
  set(TensorType::Q8_K, {dequantize_q8_k, quantize_q8_k, nullptr, TensorType::Q8_K});
}

}  // namespace warden::tensor
