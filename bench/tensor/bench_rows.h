#pragma once
// Test data shared by the tensor micro-benchmarks: one 4096-wide row of
// normally distributed floats, deterministic per seed.
#include <cstdint>
#include <random>
#include <vector>

namespace warden::bench {

constexpr int64_t kRow = 4096;

inline std::vector<float> gaussian_row(uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(kRow));
  for (float& v : x) v = normal(rng);
  return x;
}

}  // namespace warden::bench
