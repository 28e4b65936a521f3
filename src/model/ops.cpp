#include "model/ops.h"

#include <cmath>

#include "tensor/quant.h"

namespace warden::model {

void matmul(const Matrix& w, int64_t slice, const float* x, int64_t T, float* y, ThreadPool& pool) {
  const gguf::TensorType vt = tensor::vec_dot_type(w.type);
  const size_t x_row_bytes = gguf::row_bytes(vt, w.cols);
  // Scratch for the converted activations, reused across calls on this thread.
  thread_local std::vector<uint8_t> converted;
  const uint8_t* xq;
  if (vt == gguf::TensorType::F32) {
    xq = reinterpret_cast<const uint8_t*>(x);
  } else {
    converted.resize(x_row_bytes * size_t(T));
    for (int64_t t = 0; t < T; t++)
      tensor::quantize_row(vt, x + t * w.cols, converted.data() + size_t(t) * x_row_bytes, w.cols);
    xq = converted.data();
  }
  pool.parallel_for(w.rows, [&](int64_t begin, int64_t end, int) {
    for (int64_t r = begin; r < end; r++) {
      const uint8_t* row = w.row(r, slice);
      for (int64_t t = 0; t < T; t++)
        y[t * w.rows + r] = tensor::vec_dot(w.type, row, xq + size_t(t) * x_row_bytes, w.cols);
    }
  });
}

void rms_norm(const float* x, const float* weight, float* out, int64_t n, float eps) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; i++) sum += double(x[i] * x[i]);
  const float scale = 1.0f / std::sqrt(float(sum / double(n)) + eps);
  for (int64_t i = 0; i < n; i++) out[i] = x[i] * scale * weight[i];
}

void rope(float* head, int64_t pos, const Config& c, const std::vector<float>& freq_factors) {
  const int64_t d = c.rope_dim;
  const float theta_scale = std::pow(c.rope_base, -2.0f / float(d));
  float theta = float(pos) * c.rope_freq_scale;
  for (int64_t i = 0; i < d / 2; i++, theta *= theta_scale) {
    const float angle = freq_factors.empty() ? theta : theta / freq_factors[size_t(i)];
    const float cos_a = std::cos(angle), sin_a = std::sin(angle);
    const int64_t a = c.rope_style == RopeStyle::Normal ? 2 * i : i;
    const int64_t b = c.rope_style == RopeStyle::Normal ? 2 * i + 1 : i + d / 2;
    const float x0 = head[a], x1 = head[b];
    head[a] = x0 * cos_a - x1 * sin_a;
    head[b] = x0 * sin_a + x1 * cos_a;
  }
}

float silu(float x) { return x / (1.0f + std::exp(-x)); }

}  // namespace warden::model
