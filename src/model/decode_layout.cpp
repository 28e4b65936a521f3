#include "model/decode_layout.h"

#include <algorithm>

#include "util/thread_pool.h"

namespace warden::model {
namespace {

// One team loop over the panels of `matrices` laid end to end: member k's
// share, split at the matrices' boundaries, appended to reads[k].
void add_stage(const std::vector<const Matrix*>& matrices, std::vector<std::vector<PanelRange>>& reads) {
  int64_t total = 0;
  for (const Matrix* w : matrices) total += w->panels();
  const int members = int(reads.size());
  for (int k = 0; k < members; k++) {
    const int64_t begin = ThreadPool::share_begin(total, k, members), end = ThreadPool::share_begin(total, k + 1, members);
    int64_t first = 0;  // of the current matrix in the loop
    for (const Matrix* w : matrices) {
      const int64_t b = std::max(begin, first), e = std::min(end, first + w->panels());
      if (b < e) reads[size_t(k)].push_back({w, b - first, e - first});
      first += w->panels();
    }
  }
}

}  // namespace

std::vector<std::vector<PanelRange>> decode_reads(const Model& m, int members) {
  std::vector<std::vector<PanelRange>> reads(size_t(std::max(1, members)));
  for (const Layer& l : m.layers) {
    add_stage({&l.wq, &l.wk, &l.wv}, reads);
    add_stage({&l.wo}, reads);
    if (l.router) {
      add_stage({&l.router}, reads);
    } else {
      add_stage({&l.ffn_gate, &l.ffn_up}, reads);
      add_stage({&l.ffn_down}, reads);
    }
  }
  add_stage({&m.output}, reads);
  return reads;
}

}  // namespace warden::model
