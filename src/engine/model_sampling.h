#pragma once
// The sampling a model file recommends: its general.sampling.* keys, which
// converters write from the model's generation_config.json and llama.cpp
// reads since its pull request 17120. The order is llama.cpp's: what the
// user set, then what the file recommends, then warden's defaults.
#include <set>
#include <string>

#include "gguf/gguf.h"
#include "sample/sampler.h"

namespace warden::engine {

// The keys read, by their name after "general.sampling.": temp, top_k,
// top_p, min_p, penalty_last_n, penalty_repeat; each a number of any type
// or a string holding one, in the range the flags take.
//
// Sets each field of `params` that the file recommends and `user_set` does
// not name, in the file's order. A value that is not a number, or out of
// range, and a key of a sampler warden does not have (sequence, mirostat,
// xtc_*) are skipped with a warning: a file's recommendation never stops a
// run. Returns what was taken ("temp 0.6, top_k 20"), "" for nothing.
std::string apply_model_sampling(const gguf::File& file, sample::SamplerParams& params,
                                 const std::set<std::string>& user_set);

}  // namespace warden::engine
