#include "model/ops.h"

#include <algorithm>
#include <cmath>

#include "tensor/kernels.h"
#include "tensor/quant.h"

namespace warden::model {

namespace {

// Prefill tiles: a tile of weight rows times a tile of activation rows is
// computed before moving on, so both stay in L2 (a few hundred KiB) and each
// weight row is read from memory once per activation tile, not per token.
constexpr int64_t kRowTile = 32;
constexpr int64_t kTokenTile = 32;
// Matrix kernels (tensor::GemmFn) pack weight rows in panels of 8.
constexpr int64_t kGemmPanelRows = 8;

// x's T rows of n floats converted to type vt (the weights' vec_dot type) in
// `out` (or x itself for f32), split over the pool from two rows on.
const uint8_t* convert_activations(gguf::TensorType vt, const float* x, int64_t T, int64_t n, std::vector<uint8_t>& out,
                                   ThreadPool& pool) {
  if (vt == gguf::TensorType::F32) return reinterpret_cast<const uint8_t*>(x);
  const size_t row_bytes = gguf::row_bytes(vt, n);
  out.resize(row_bytes * size_t(T));
  auto convert = [&](int64_t begin, int64_t end, int) {
    for (int64_t t = begin; t < end; t++) tensor::quantize_row(vt, x + t * n, out.data() + size_t(t) * row_bytes, n);
  };
  if (T > 1)
    pool.parallel_for(T, convert);
  else
    convert(0, T, 0);
  return out.data();
}

}  // namespace

void matmul(const Matrix& w, int64_t slice, const float* x, int64_t T, float* y, ThreadPool& pool) {
  // Repacked at load: the matrix kernel for every batch size, decode too.
  if (w.packed) return matmul_many({{&w, slice, x, T, y}}, pool);
  const gguf::TensorType vt = tensor::vec_dot_type(w.type);
  const tensor::TypeKernels& kernels = *tensor::active_kernels().find(w.type);
  // Scratch for the converted activations, reused across calls on this thread.
  thread_local std::vector<uint8_t> converted;
  const uint8_t* xq = convert_activations(vt, x, T, w.cols, converted, pool);
  // The matrix kernel packs whole panels of rows, so no two threads may share one.
  const int64_t unit = kernels.gemm && T >= kernels.gemm_min_tokens ? kGemmPanelRows : 1;
  pool.parallel_for((w.rows + unit - 1) / unit, [&](int64_t begin, int64_t end, int) {
    product_rows(w, slice, begin * unit, std::min(w.rows, end * unit), xq, gguf::row_bytes(vt, w.cols), T, y, w.rows);
  });
}

void matmul_many(const std::vector<Product>& products, ThreadPool& pool) {
  for (const Product& p : products)
    if (!p.w->packed) {
      for (const Product& q : products) matmul(*q.w, q.slice, q.x, q.T, q.y, pool);
      return;
    }
  // Each distinct input converted once per activation type it meets.
  struct Converted {
    const float* x;
    int64_t T, n;
    gguf::TensorType type;
    const uint8_t* data;
  };
  thread_local std::vector<std::vector<uint8_t>> buffers;
  std::vector<Converted> inputs;
  std::vector<size_t> input_of;
  for (const Product& p : products) {
    const gguf::TensorType vt = tensor::vec_dot_type(p.w->type);
    size_t k = 0;
    while (k < inputs.size() &&
           !(inputs[k].x == p.x && inputs[k].T == p.T && inputs[k].n == p.w->cols && inputs[k].type == vt))
      k++;
    if (k == inputs.size()) {
      if (buffers.size() <= k) buffers.resize(k + 1);
      inputs.push_back({p.x, p.T, p.w->cols, vt, convert_activations(vt, p.x, p.T, p.w->cols, buffers[k], pool)});
    }
    input_of.push_back(k);
  }
  // One loop over every matrix's panels: one wait for all the threads
  // instead of one per matrix.
  std::vector<int64_t> first_panel{0};
  for (const Product& p : products) first_panel.push_back(first_panel.back() + (p.w->rows + kGemmPanelRows - 1) / kGemmPanelRows);
  pool.parallel_for(first_panel.back(), [&](int64_t begin, int64_t end, int) {
    for (size_t m = 0; m < products.size(); m++) {
      const int64_t b = std::max(begin, first_panel[m]), e = std::min(end, first_panel[m + 1]);
      if (b >= e) continue;
      const Product& p = products[m];
      const Matrix& w = *p.w;
      const Converted& in = inputs[input_of[m]];
      const int64_t r0 = (b - first_panel[m]) * kGemmPanelRows;
      const int64_t r1 = std::min(w.rows, (e - first_panel[m]) * kGemmPanelRows);
      product_rows(w, p.slice, r0, r1, in.data, gguf::row_bytes(in.type, in.n), in.T, p.y, w.rows);
    }
  });
}

void product_rows(const Matrix& w, int64_t slice, int64_t r0, int64_t r1, const uint8_t* x, size_t x_row_bytes,
                  int64_t T, float* y, int64_t ldy) {
  const tensor::TypeKernels& k = *tensor::active_kernels().find(w.type);
  if (w.packed) {  // a run of panels at a time (decode_layout.h)
    for (int64_t r = r0, run_end = 0; r < r1; r = std::min(r1, run_end * kGemmPanelRows)) {
      const uint8_t* panel = w.packed_panel(r / kGemmPanelRows, slice, run_end);
      k.gemm_packed(panel, std::min(r1, run_end * kGemmPanelRows) - r, x, x_row_bytes, T, w.cols, y + r, ldy);
    }
    return;
  }
  if (k.gemm && T >= k.gemm_min_tokens) {
    k.gemm(w.row(r0, slice), w.row_bytes, r1 - r0, x, x_row_bytes, T, w.cols, y + r0, ldy);
    return;
  }
  for (int64_t rt = r0; rt < r1; rt += kRowTile) {
    const int64_t rt_end = std::min(r1, rt + kRowTile);
    for (int64_t t0 = 0; t0 < T; t0 += kTokenTile) {
      const int64_t t1 = std::min(T, t0 + kTokenTile);
      for (int64_t r = rt; r < rt_end; r++) {
        const uint8_t* row = w.row(r, slice);
        int64_t t = t0;
        if (k.vec_dot_4)  // four tokens per pass over the weight row where the kernel set can
          for (; t + 4 <= t1; t += 4) {
            float out[4];
            k.vec_dot_4(row, x + size_t(t) * x_row_bytes, x_row_bytes, w.cols, out);
            for (int j = 0; j < 4; j++) y[(t + j) * ldy + r] = out[j];
          }
        for (; t < t1; t++) y[t * ldy + r] = k.vec_dot(row, x + size_t(t) * x_row_bytes, w.cols);
      }
    }
  }
}

void rope_angles(int64_t pos, const Config& c, const std::vector<float>& freq_factors, float* cos_out, float* sin_out) {
  const int64_t d = c.rope_dim;
  const float theta_scale = std::pow(c.rope_base, -2.0f / float(d));
  float theta = float(pos) * c.rope_freq_scale;
  for (int64_t i = 0; i < d / 2; i++, theta *= theta_scale) {
    const float angle = freq_factors.empty() ? theta : theta / freq_factors[size_t(i)];
    cos_out[i] = std::cos(angle);
    sin_out[i] = std::sin(angle);
  }
}

void rope_apply(float* head, const Config& c, const float* cos_a, const float* sin_a) {
  const int64_t d = c.rope_dim;
  for (int64_t i = 0; i < d / 2; i++) {
    const int64_t a = c.rope_style == RopeStyle::Normal ? 2 * i : i;
    const int64_t b = c.rope_style == RopeStyle::Normal ? 2 * i + 1 : i + d / 2;
    const float x0 = head[a], x1 = head[b];
    head[a] = x0 * cos_a[i] - x1 * sin_a[i];
    head[b] = x0 * sin_a[i] + x1 * cos_a[i];
  }
}

}  // namespace warden::model
