#pragma once
// Deterministic random weights, and encoding rows into a tensor type on
// several threads.
//
// Every row is generated from (seed, tensor name, row index) alone, so the
// result does not depend on the thread count or on the order of generation.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "modelgen/plan.h"

namespace warden::modelgen {

class Progress;

class WeightGenerator {
 public:
  // `normal_token`: which vocab ids are ordinary (non-special) tokens; used
  // by --peaked to build output.weight as a permutation of token_embd.
  WeightGenerator(const ModelPlan& plan, uint64_t seed, const std::vector<bool>& normal_token);

  // Writes row `row` of tensor `t` (t.dims[0] floats) into `out`.
  void row(const PlannedTensor& t, int64_t row, float* out) const;

 private:
  void normal_row(const std::string& stream, int64_t row, float scale, int64_t n, float* out) const;

  const ModelPlan& plan_;
  uint64_t seed_;
  std::vector<int64_t> output_source_row_;  // peaked output: row j copies token_embd row [j] (or -1)
  std::vector<float> rope_factors_;
};

// Runs fill(first_row, n_rows) over [0, rows) in chunks on `threads` threads
// (the caller's thread included). The first exception thrown stops the work
// and is rethrown here.
void parallel_rows(int64_t rows, int threads, const std::function<void(int64_t, int64_t)>& fill);

// Encodes the rows of one tensor: make(row, float_buffer) supplies each row
// as floats; the result is row_bytes(type, n) * rows bytes in `type`.
std::vector<uint8_t> encode_tensor(gguf::TensorType type, int64_t n, int64_t rows, int threads,
                                   const std::function<void(int64_t, float*)>& make, Progress* progress);

}  // namespace warden::modelgen
