#pragma once
// The order in which the members of a decode team (forward_team.cpp) read
// the packed weights of a single-token step, so that Model::pack_weights can
// lay each member's panels out one after another.
//
// Why: a team splits every stage's rows into one share per member (wq, wk
// and wv as one loop, wo, ffn_gate and ffn_up as one loop, ffn_down, the
// output matrix). Packed matrix by matrix, a member's reads were a run per
// stage, beside the other member's run in the same matrix; two threads
// reading those runs, with no arithmetic and no barrier, took 6-7 % longer
// than reading the same bytes as one run per member (qwen3-0.6b shapes, 113
// runs a token; 2 % for llama-3.2-1b's larger matrices). Laid out per member,
// decode steps were 1.7-1.9 % shorter on qwen3-0.6b q4_0 and q4_K_M in the
// fast memory regime, 1.3 % in the slow one, level on llama-3.2-1b q6_K
// (docs/performance.md).
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
