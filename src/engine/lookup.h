#pragma once
// Lookup decoding (llama.cpp's `--spec-type ngram-simple`): drafts for
// speculative decoding taken from the sequence itself. Where the last n
// tokens appeared before, the tokens that followed them then are proposed as
// the next ones; the model checks them all in one forward pass, and each
// position is still sampled from the model's own logits, so the output is
// exactly what decoding one token at a time gives (see engine.h). Agents
// repeat a lot of what they read (a file's lines in an edit, a path, a tool
// call's arguments), and a step of a few tokens reads the weights once,
// as a one-token step does.
#include <cstdint>
#include <span>
#include <vector>

namespace warden::engine {

struct LookupParams {
  bool on = false;    // --spec-type ngram-simple
  int draft_max = 3;  // tokens drafted per step at most (--draft-max): a pass of
                      // four tokens costs 1.0-1.25 one-token passes on a
                      // 2-core CPU, five 1.6-2 (build/bench/bench_step_tokens)
  int ngram = 3;      // tokens that must match before the draft (--spec-ngram-size-n)
  bool enabled() const { return on && draft_max > 0; }
};

// Up to `limit` tokens that followed the most recent earlier occurrence of
// the history's last `params.ngram` tokens; empty where there is none.
std::vector<int32_t> lookup_draft(std::span<const int32_t> history, const LookupParams& params, int limit);

}  // namespace warden::engine
