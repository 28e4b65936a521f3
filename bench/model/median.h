#pragma once
// The median the model benchmarks report (the upper one of an even count).
#include <algorithm>
#include <vector>

namespace warden::bench {

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace warden::bench
