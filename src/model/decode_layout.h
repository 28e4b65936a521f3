#pragma once
// The order in which the members of a decode team (forward_team.cpp) read
// the packed weights of a single-token step, so that Model::pack_weights can
// lay each member's panels out one after another.
//
// Why: a team splits every stage's rows into one share per member (wq, wk
// and wv as one loop, wo, ffn_gate and ffn_up as one loop, ffn_down, the
// output matrix). Packed matrix by matrix, a member's reads were a run per
// stage, beside the other member's run in the same matrix; two threads
// reading those runs, with no arithmetic and no barrier, took 4-7 % longer
// than reading the same bytes as one run per member (qwen3-0.6b shapes, 113
// runs a token; 0-2 % for llama-3.2-1b's larger matrices:
// bench/model/bench_read_order). Laid out per member, decode steps were
// 0.4-1.3 % shorter on qwen3-0.6b q4_0 and q4_K_M and llama-3.2-1b q4_K_M
// and q6_K in the fast memory regime, measured with both layouts taking
// turns in the same two buffers (bench/model/bench_layout_swap): which
// pages a copy lands in moves decode by up to 9 % on this VM, more than the
// layout does, so a comparison of two separately packed copies measures
// their pages (docs/performance.md).
#include <cstdint>
#include <vector>

#include "model/model.h"

namespace warden::model {

// Panels [begin, end) of a matrix.
struct PanelRange {
  const Matrix* w;
  int64_t begin, end;
};

// For each member of a team of `members` threads, the panel ranges of the
// dense matrices it reads in a decode step, in the order it reads them (its
// share of each stage, as ThreadPool::team_share splits a loop; stealing at
// the end of a stage reads from the other end of another member's share).
// MoE experts are shared out expert by expert as routing picks them, so they
// have no fixed order and are not listed.
std::vector<std::vector<PanelRange>> decode_reads(const Model& m, int members);

}  // namespace warden::model
