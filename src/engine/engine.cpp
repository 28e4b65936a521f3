#include "engine/engine.h"

#include <algorithm>
#include <chrono>

#include "util/error.h"
#include "util/log.h"

namespace warden::engine {

Engine::Engine(const EngineOptions& o) : n_batch_(std::max<int64_t>(1, o.n_batch)) {
  // The tokenizer is built while the model loads: afterwards the vocabulary
  // arrays it reads are released (see Model::load).
  model_ = model::Model::load(o.model_path, [this](const gguf::File& file) {
    tokenizer_ = std::make_unique<tokenizer::Tokenizer>(tokenizer::Tokenizer::from_gguf(file));
  });
  const auto& c = model_->config();
  if (int64_t(tokenizer_->size()) != c.n_vocab)
    throw Error(o.model_path + ": the vocabulary has " + std::to_string(tokenizer_->size()) +
                " tokens but the embedding has " + std::to_string(c.n_vocab) + " rows");
  int64_t n_ctx = o.n_ctx > 0 ? o.n_ctx : c.n_ctx_train;
  if (o.n_ctx > c.n_ctx_train)
    log::warn("context " + std::to_string(o.n_ctx) + " is longer than the " + std::to_string(c.n_ctx_train) +
              " tokens the model was trained with; quality may degrade past that");
  pool_ = std::make_unique<ThreadPool>(o.threads > 0 ? o.threads : ThreadPool::default_threads());
  cache_ = std::make_unique<model::KvCache>(c, n_ctx, o.n_seq, o.cache_types);
  forward_ = std::make_unique<model::Forward>(*model_, *pool_);
  cached_.resize(size_t(std::max(1, o.n_seq)));
}

std::vector<float> Engine::prefill(int seq, const std::vector<int32_t>& tokens) {
  if (tokens.empty()) throw Error("cannot evaluate an empty prompt");
  if (int64_t(tokens.size()) > n_ctx())
    throw Error("the prompt has " + std::to_string(tokens.size()) + " tokens, more than the context of " +
                std::to_string(n_ctx()) + " (use -c)");
  auto& cached = cached_.at(size_t(seq));
  size_t keep = 0;
  while (keep < cached.size() && keep < tokens.size() && cached[keep] == tokens[keep]) keep++;
  keep = std::min(keep, tokens.size() - 1);  // the last token is evaluated for its logits
  cache_->truncate(seq, int64_t(keep));
  cached.resize(keep);

  std::vector<float> logits;
  for (size_t start = keep; start < tokens.size(); start += size_t(n_batch_)) {
    size_t end = std::min(tokens.size(), start + size_t(n_batch_));
    std::vector<model::BatchToken> batch;
    for (size_t i = start; i < end; i++) batch.push_back({tokens[i], int64_t(i), seq, i + 1 == tokens.size()});
    logits = forward_->run(batch, *cache_);
    cached.insert(cached.end(), tokens.begin() + long(start), tokens.begin() + long(end));
  }
  return logits;
}

std::vector<float> Engine::step(int seq, std::span<const int32_t> tokens) {
  std::vector<float> logits;
  step(seq, tokens, logits);
  return logits;
}

void Engine::step(int seq, std::span<const int32_t> tokens, std::vector<float>& logits) {
  auto& cached = cached_.at(size_t(seq));
  std::vector<model::BatchToken> batch;
  for (int32_t t : tokens) batch.push_back({t, int64_t(cached.size() + batch.size()), seq, true});
  forward_->run(batch, *cache_, logits);
  cached.insert(cached.end(), tokens.begin(), tokens.end());
}

void Engine::truncate(int seq, size_t length) {
  auto& cached = cached_.at(size_t(seq));
  if (length >= cached.size()) return;
  cache_->truncate(seq, int64_t(length));
  cached.resize(length);
}

GenerateResult generate(Engine& engine, int seq, const std::vector<int32_t>& prompt, const GenerateParams& params,
                        const TextCallback& on_text) {
  using clock = std::chrono::steady_clock;
  GenerateResult result;
  result.prompt_tokens = int64_t(prompt.size());
  const auto& tok = engine.tokenizer();
  sample::Sampler sampler(params.sampling, int(tok.size()));
  for (int32_t t : prompt) sampler.accept(t);
  sample::StopMatcher stops(params.stop);
  tokenizer::StreamDecoder decoder(tok);
  decoder.continue_after(prompt);  // so the first piece keeps its leading space after a prompt

  auto t0 = clock::now();
  std::vector<float> logits = engine.prefill(seq, prompt);
  auto t1 = clock::now();
  result.prompt_seconds = std::chrono::duration<double>(t1 - t0).count();
  if (params.max_tokens == 0) {  // the prompt evaluated, nothing generated (llama.cpp's -n 0)
    result.finish = FinishReason::Length;
    return result;
  }

  auto emit = [&](const std::string& text) {
    if (text.empty()) return true;
    result.text += text;
    return on_text ? on_text(text) : true;
  };

  int64_t sampled = 0;
  result.finish = FinishReason::Length;
  // Takes a sampled token that would sit at `pos`; false once the
  // generation ends with it.
  auto take = [&](int32_t token, int64_t pos) {
    sampled++;
    if (tok.is_end_of_generation(token)) {
      result.finish = FinishReason::Stop;
      return false;
    }
    result.tokens.push_back(token);
    auto r = stops.feed(decoder.push(token));
    if (!emit(r.emit)) {
      result.finish = FinishReason::Cancelled;
      return false;
    }
    if (r.stopped) {
      result.finish = FinishReason::Stop;
      return false;
    }
    return pos < engine.n_ctx() && (params.max_tokens < 0 || sampled < params.max_tokens);
  };

  // The last forward pass evaluated the last sampled token and then
  // `drafts`: logits row i follows that token (i = 0) or drafts[i - 1].
  const size_t n_vocab = tok.size();
  std::vector<int32_t> drafts;
  for (;;) {
    const int64_t first_pos = int64_t(engine.cached_tokens(seq).size() - drafts.size());
    int32_t token = -1;
    size_t confirmed = 0;
    bool going = true;
    for (size_t i = 0; i <= drafts.size(); i++) {
      token = sampler.sample(std::span<float>(logits.data() + i * n_vocab, n_vocab));
      sampler.accept(token);
      going = take(token, first_pos + int64_t(i));
      if (!going || i == drafts.size() || token != drafts[i]) break;
      confirmed++;
    }
    result.accepted += int64_t(confirmed);
    engine.truncate(seq, size_t(first_pos) + confirmed);  // the rejected drafts' keys and values
    if (!going) break;
    // The next pass evaluates `token` at first_pos + confirmed, then new
    // drafts: as many as fit the context and the tokens still to sample.
    int64_t room = engine.n_ctx() - (first_pos + int64_t(confirmed)) - 1;
    if (params.max_tokens >= 0) room = std::min(room, params.max_tokens - sampled - 1);
    drafts.clear();
    if (params.lookup.enabled()) {  // drafts come from the whole sequence: the cache's tokens, then `token`
      std::vector<int32_t> sequence = engine.cached_tokens(seq);
      sequence.push_back(token);
      drafts = lookup_draft(sequence, params.lookup, int(std::min<int64_t>(room, params.lookup.draft_max)));
    }
    result.drafted += int64_t(drafts.size());
    std::vector<int32_t> pass{token};
    pass.insert(pass.end(), drafts.begin(), drafts.end());
    engine.step(seq, pass, logits);
  }
  if (result.finish != FinishReason::Cancelled) {
    auto r = stops.feed(decoder.flush());
    emit(r.emit);
    if (!r.stopped) emit(stops.flush());
  }
  result.generate_seconds = std::chrono::duration<double>(clock::now() - t1).count();
  return result;
}

}  // namespace warden::engine
