#pragma once
// The in-process engine: a model, its tokenizer, a KV cache and a thread
// pool, plus the generation loop (prompt prefill with prefix reuse, sampling,
// stop strings, streaming UTF-8 output). Knows nothing of agents or servers.
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/lookup.h"
#include "model/forward.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "sample/sampler.h"
#include "sample/stop_matcher.h"
#include "tokenizer/tokenizer.h"
#include "util/thread_pool.h"

namespace warden::engine {

struct EngineOptions {
  std::string model_path;
  int64_t n_ctx = 0;    // 0: the file's context length
  int threads = 0;      // 0: all cores
  int n_seq = 1;        // independent sequences (server slots)
  int64_t n_batch = 512;  // prompt tokens evaluated per forward pass
  model::KvCacheTypes cache_types;  // -ctk / -ctv
};

class Engine {
 public:
  explicit Engine(const EngineOptions& options);

  const model::Model& model() const { return *model_; }
  const tokenizer::Tokenizer& tokenizer() const { return *tokenizer_; }
  model::KvCache& cache() { return *cache_; }
  model::Forward& forward() { return *forward_; }
  ThreadPool& pool() { return *pool_; }
  int64_t n_ctx() const { return cache_->n_ctx(); }
  int64_t n_batch() const { return n_batch_; }

  // Makes sequence `seq` hold exactly `tokens`: keeps the longest cached
  // prefix, evaluates the rest in batches, and returns the logits after the
  // last token. At least the last token is always re-evaluated.
  std::vector<float> prefill(int seq, const std::vector<int32_t>& tokens);
  // Evaluates more tokens of `seq` in one forward pass; returns one row of
  // logits per token.
  std::vector<float> step(int seq, std::span<const int32_t> tokens);
  // The same into `logits` (model::Forward::run: a loop that passes the same
  // vector reuses its memory).
  void step(int seq, std::span<const int32_t> tokens, std::vector<float>& logits);
  // Forgets all but the first `length` cached tokens of `seq`.
  void truncate(int seq, size_t length);
  // Tokens currently cached for a sequence.
  const std::vector<int32_t>& cached_tokens(int seq) const { return cached_[size_t(seq)]; }

 private:
  std::unique_ptr<model::Model> model_;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer_;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<model::KvCache> cache_;
  std::unique_ptr<model::Forward> forward_;
  std::vector<std::vector<int32_t>> cached_;
  int64_t n_batch_;
};

struct GenerateParams {
  sample::SamplerParams sampling;
  int64_t max_tokens = -1;  // -1: until end of generation or the context is full
  std::vector<std::string> stop;
  // Lookup decoding: the same tokens, fewer forward passes where the text
  // repeats itself. Each position is still sampled, in order, from the
  // logits after the tokens before it, so the result is the one-token-at-a-
  // time result (exactly for f32 and quantized weights, whose passes of a
  // few tokens give the logits of single steps; f16 and bf16 sums may
  // differ in their last bits).
  LookupParams lookup;
};

enum class FinishReason { Stop, Length, Cancelled };

struct GenerateResult {
  std::string text;
  std::vector<int32_t> tokens;
  FinishReason finish = FinishReason::Stop;
  int64_t prompt_tokens = 0;
  double prompt_seconds = 0;
  double generate_seconds = 0;
  int64_t drafted = 0, accepted = 0;  // lookup decoding's drafted tokens, and those the model confirmed
};

// Called with each piece of complete UTF-8 text as it is produced; return
// false to cancel.
using TextCallback = std::function<bool(std::string_view)>;

GenerateResult generate(Engine& engine, int seq, const std::vector<int32_t>& prompt, const GenerateParams& params,
                        const TextCallback& on_text = {});

}  // namespace warden::engine
