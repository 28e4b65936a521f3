// Decode attention's query heads in groups that share each converted key and
// value chunk (kernels_avx2.cpp and attend_avx512.cpp).
#pragma once

#include <type_traits>

namespace warden::tensor {

// Calls run(std::integral_constant<int, NQ>{}, first) over the query heads
// [0, n_q) in groups of NQ = 4, then 2, then 1.
template <typename Fn>
void for_query_groups(int n_q, Fn run) {
  int i = 0;
  for (; i + 4 <= n_q; i += 4) run(std::integral_constant<int, 4>{}, i);
  for (; i + 2 <= n_q; i += 2) run(std::integral_constant<int, 2>{}, i);
  for (; i < n_q; i++) run(std::integral_constant<int, 1>{}, i);
}

}  // namespace warden::tensor
