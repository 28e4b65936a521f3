#pragma once
// The numeric building blocks of the forward pass, on f32 activations.
#include <cstdint>
#include <vector>

#include "model/config.h"
#include "model/model.h"
#include "util/thread_pool.h"

namespace warden::model {

// y[t][r] = dot(w.row(r, slice), x[t]) for T input rows of w.cols values.
// The activation rows are first converted to the weight type's dot-product
// format (e.g. Q8_0, Q8_K) once, then rows of w are split across threads.
void matmul(const Matrix& w, int64_t slice, const float* x, int64_t T, float* y, ThreadPool& pool);

// Several independent products y = w[slice] x at once (Q, K and V; gate and
// up; the selected experts of a MoE layer): each distinct input is converted
// once per activation type, and all products run in one parallel loop, one
// wait for the threads instead of one per matrix. Same results as one matmul
// each.
struct Product {
  const Matrix* w;
  int64_t slice;
  const float* x;
  int64_t T;
  float* y;
};
void matmul_many(const std::vector<Product>& products, ThreadPool& pool);

// One thread's part of y = w[slice] x: rows [r0, r1), y[t * ldy + r] for r
// in [r0, r1), each exactly as matmul computes it. x holds T activation rows
// already in w's dot type (tensor::vec_dot_type), x_row_bytes apart. r0 is a
// multiple of 8: packed weights and the matrix kernel work in panels of 8.
void product_rows(const Matrix& w, int64_t slice, int64_t r0, int64_t r1, const uint8_t* x, size_t x_row_bytes,
                  int64_t T, float* y, int64_t ldy);

// Rotary position embedding in two steps: the rope_dim/2 cosines and sines of
// position pos (the same for every head and layer), then rotating the first
// rope_dim values of one head with them.
void rope_angles(int64_t pos, const Config& c, const std::vector<float>& freq_factors, float* cos_out, float* sin_out);
void rope_apply(float* head, const Config& c, const float* cos_a, const float* sin_a);

}  // namespace warden::model
