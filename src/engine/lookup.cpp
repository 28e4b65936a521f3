#include "engine/lookup.h"

#include <algorithm>

namespace warden::engine {

std::vector<int32_t> lookup_draft(std::span<const int32_t> history, const LookupParams& params, int limit) {
  const size_t n = size_t(params.ngram), len = history.size();
  limit = std::min(limit, params.draft_max);
  if (limit <= 0 || n == 0 || len <= n) return {};
  const auto key = history.subspan(len - n);
  // Most recent first: what the sequence did last is the best guess of what
  // it does next.
  for (size_t start = len - n; start-- > 0;) {
    if (!std::equal(key.begin(), key.end(), history.begin() + long(start))) continue;
    const size_t from = start + n, to = std::min(len, from + size_t(limit));
    return {history.begin() + long(from), history.begin() + long(to)};
  }
  return {};
}

}  // namespace warden::engine
