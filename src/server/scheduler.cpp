#include "server/scheduler.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "util/display.h"
#include "util/error.h"
#include "util/log.h"

namespace warden::server {

// ---------------------------------------------------------------- Job

Job::Chunk Job::next_for(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  ready_.wait_for(lock, timeout, [&] { return !pending_.empty() || !pending_logprobs_.empty() || done_; });
  Chunk chunk;
  chunk.text.swap(pending_);
  chunk.logprobs.swap(pending_logprobs_);
  chunk.done = done_;
  return chunk;
}

JobResult Job::result() const {
  std::lock_guard lock(mutex_);
  return result_;
}

void Job::push(const std::string& text, std::vector<TokenLogprob> logprobs) {
  if (text.empty() && logprobs.empty()) return;
  {
    std::lock_guard lock(mutex_);
    pending_ += text;
    pending_logprobs_.insert(pending_logprobs_.end(), std::make_move_iterator(logprobs.begin()),
                             std::make_move_iterator(logprobs.end()));
  }
  ready_.notify_all();
}

void Job::finish(const JobResult& result) {
  {
    std::lock_guard lock(mutex_);
    result_ = result;
    done_ = true;
  }
  ready_.notify_all();
}

// ---------------------------------------------------------------- Scheduler

Scheduler::Scheduler(engine::Engine& engine, std::shared_ptr<const grammar::Vocabulary> vocab, Metrics& metrics,
                     SchedulerOptions options)
    : engine_(engine), vocab_(std::move(vocab)), metrics_(metrics), options_(options) {
  slots_.resize(size_t(engine_.cache().n_seq()));
  for (size_t i = 0; i < slots_.size(); ++i) slots_[i].seq = int(i);
  metrics_.slots_total = int64_t(slots_.size());
  for (size_t id = 0; id < engine_.tokenizer().size(); ++id)
    if (engine_.tokenizer().is_end_of_generation(int32_t(id))) end_ids_.push_back(int32_t(id));
  thread_ = std::thread([this] { run(); });
}

Scheduler::~Scheduler() { stop(); }

void Scheduler::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::shared_ptr<Job> Scheduler::submit(GenerationRequest request) {
  if (request.prompt.empty()) throw Error("the prompt is empty");
  if (int64_t(request.prompt.size()) >= engine_.n_ctx())
    throw Error("the prompt has " + std::to_string(request.prompt.size()) +
                " tokens; the context holds " + std::to_string(engine_.n_ctx()) +
                " (prompt and completion together)");
  auto job = std::make_shared<Job>();
  {
    std::lock_guard lock(mutex_);
    if (stopping_) throw QueueFull("the server is shutting down");
    // Requests in the queue that free slots are about to take do not wait:
    // with --max-queue 0 an idle server still takes a request.
    const size_t free_slots = size_t(std::max<int64_t>(0, int64_t(slots_.size()) - metrics_.slots_busy.load()));
    if (queue_.size() >= options_.max_queue + free_slots)
      throw QueueFull("all " + std::to_string(slots_.size()) + " slots are busy and " +
                      std::to_string(queue_.size()) + " requests are waiting; try again later");
    queue_.push_back(Pending{std::move(request), job});
    metrics_.queue_depth = int64_t(queue_.size());
  }
  wake_.notify_all();
  return job;
}

void Scheduler::run() {
  std::vector<Slot*> owners;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      auto has_active = [&] {
        return std::any_of(slots_.begin(), slots_.end(), [](const Slot& s) { return s.active; });
      };
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty() || has_active(); });
      if (stopping_) break;
    }
    admit_waiting();
    drop_cancelled();
    auto batch = build_batch(owners);
    if (batch.empty()) continue;
    std::vector<float> logits;
    const auto pass_start = std::chrono::steady_clock::now();
    try {
      logits = engine_.forward().run(batch, engine_.cache());
      if (log::level() <= log::Level::debug) {
        double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - pass_start).count();
        log::debug("forward pass: " + std::to_string(batch.size()) + " tokens, " + std::to_string(owners.size()) +
                   " logits rows, " + std::to_string(ms) + " ms");
      }
    } catch (const std::exception& e) {
      // The cache state of every active slot is unknown now: fail them all
      // and forget their caches rather than continue on doubtful state.
      log::error(std::string("forward pass failed: ") + e.what());
      fail_all_active(e.what());
      continue;
    }
    metrics_.forward_passes_total++;
    metrics_.batch_tokens_total += batch.size();
    // The cache now holds the batch's tokens.
    for (size_t i = 0; i < batch.size(); ++i) slots_[size_t(batch[i].seq)].cached.push_back(batch[i].token);
    after_forward(logits, owners);
  }
  // Shutting down: nobody waits forever.
  for (auto& slot : slots_)
    if (slot.active) finish(slot, Finish::Error, "the server is shutting down");
  std::lock_guard lock(mutex_);
  for (auto& p : queue_) p.job->finish(JobResult{Finish::Error, 0, 0, 0, "the server is shutting down"});
  queue_.clear();
}

void Scheduler::admit_waiting() {
  for (;;) {
    Pending pending;
    Slot* slot = nullptr;
    {
      std::lock_guard lock(mutex_);
      drop_cancelled_waiting();
      if (queue_.empty()) break;
      slot = best_free_slot(queue_.front().request.prompt);
      if (!slot) break;
      pending = std::move(queue_.front());
      queue_.pop_front();
      metrics_.queue_depth = int64_t(queue_.size());
    }
    const std::shared_ptr<Job> job = pending.job;
    try {
      start(*slot, std::move(pending));
    } catch (const std::exception& e) {  // this request's failure, not the server's
      log::error(std::string("starting a request failed: ") + e.what());
      if (slot->active) finish(*slot, Finish::Error, e.what());
      else job->finish(JobResult{Finish::Error, 0, 0, 0, e.what()});
    }
  }
}

// Requests whose client left while waiting never take a slot, wherever they
// are in the queue (so they stop holding queue places at once). Caller holds mutex_.
void Scheduler::drop_cancelled_waiting() {
  auto cancelled = [](const Pending& p) { return p.job->cancelled(); };
  for (auto& p : queue_) {
    if (!cancelled(p)) continue;
    p.job->finish(JobResult{Finish::Cancelled, 0, 0, 0, ""});
    metrics_.cancelled_total++;
  }
  queue_.erase(std::remove_if(queue_.begin(), queue_.end(), cancelled), queue_.end());
  metrics_.queue_depth = int64_t(queue_.size());
}

Scheduler::Slot* Scheduler::best_free_slot(const std::vector<int32_t>& prompt) {
  Slot* best = nullptr;
  size_t best_common = 0;
  for (auto& slot : slots_) {
    if (slot.active) continue;
    size_t common = 0;
    while (common < slot.cached.size() && common < prompt.size() && slot.cached[common] == prompt[common]) ++common;
    if (!best || common > best_common) {
      best = &slot;
      best_common = common;
    }
  }
  return best;
}

void Scheduler::start(Slot& slot, Pending pending) {
  // First what can fail on the request's own account (a grammar too
  // ambiguous to start), before the slot changes.
  std::unique_ptr<grammar::Matcher> matcher;
  if (pending.request.grammar) matcher = std::make_unique<grammar::Matcher>(pending.request.grammar, vocab_);
  const auto& prompt = pending.request.prompt;
  size_t keep = 0;
  while (keep < slot.cached.size() && keep < prompt.size() && slot.cached[keep] == prompt[keep]) ++keep;
  keep = std::min(keep, prompt.size() - 1);  // the last prompt token is evaluated for its logits
  engine_.cache().truncate(slot.seq, int64_t(keep));
  slot.cached.resize(keep);

  slot.request = std::move(pending.request);
  slot.job = std::move(pending.job);
  slot.active = true;
  slot.decoding = false;
  slot.prompt_done = keep;
  slot.next_token = -1;
  slot.drafts.clear();  // a pass that failed (fail_all_active) left its drafts behind
  slot.result = JobResult{};
  slot.started = std::chrono::steady_clock::now();
  slot.result.prompt_tokens = int64_t(slot.request.prompt.size());
  slot.result.cached_prompt_tokens = int64_t(keep);
  metrics_.cached_prompt_tokens_total += keep;
  metrics_.slots_busy++;

  const auto& tok = engine_.tokenizer();
  slot.sampler.emplace(slot.request.sampling, int(tok.size()));
  for (int32_t t : slot.request.prompt) slot.sampler->accept(t);
  slot.stops.emplace(slot.request.stop);
  slot.decoder.emplace(tok);
  slot.held_logprobs.clear();
  slot.emitted_bytes = slot.released_logprob_bytes = 0;
  slot.decoder->continue_after(slot.request.prompt);
  slot.matcher = std::move(matcher);
}

void Scheduler::drop_cancelled() {
  for (auto& slot : slots_)
    if (slot.active && slot.job->cancelled()) finish(slot, Finish::Cancelled);
}

std::vector<model::BatchToken> Scheduler::build_batch(std::vector<Slot*>& owners) {
  std::vector<model::BatchToken> batch;
  owners.clear();
  // Decoding slots first: one token each (and their drafts), so streams
  // keep flowing while long prompts are prefilled in chunks beside them.
  const size_t decoding =
      size_t(std::count_if(slots_.begin(), slots_.end(), [](const Slot& s) { return s.active && s.decoding; }));
  const size_t pass = options_.lookup.enabled() ? size_t(1 + options_.lookup.draft_max) : 0;
  size_t draft_room = pass - std::min(decoding, pass);
  for (auto& slot : slots_) {
    if (!slot.active || !slot.decoding) continue;
    const int64_t pos = int64_t(slot.cached.size());
    batch.push_back({slot.next_token, pos, slot.seq, true});
    owners.push_back(&slot);
    slot.drafts = drafts_for(slot, draft_room);
    draft_room -= slot.drafts.size();
    slot.result.draft_tokens += int64_t(slot.drafts.size());
    metrics_.draft_tokens_total += slot.drafts.size();
    for (size_t i = 0; i < slot.drafts.size(); ++i) {
      batch.push_back({slot.drafts[i], pos + 1 + int64_t(i), slot.seq, true});
      owners.push_back(&slot);
    }
  }
  int64_t budget = std::max<int64_t>(engine_.n_batch() - int64_t(batch.size()), 1);
  for (auto& slot : slots_) {
    if (!slot.active || slot.decoding || budget <= 0) continue;
    const auto& prompt = slot.request.prompt;
    size_t take = std::min(prompt.size() - slot.prompt_done, size_t(budget));
    for (size_t i = slot.prompt_done; i < slot.prompt_done + take; ++i) {
      bool last = i + 1 == prompt.size();
      batch.push_back({prompt[i], int64_t(i), slot.seq, last});
      if (last) owners.push_back(&slot);
    }
    slot.prompt_done += take;
    metrics_.prompt_tokens_total += take;
    budget -= int64_t(take);
  }
  // Rows come back in batch order of want_logits tokens; owners were pushed
  // in that order except that decoding slots all precede prefill slots,
  // which is also their order in the batch.
  return batch;
}

// Drafts that fit `room`, the context and the tokens the request may still
// generate (each draft brings one more logits row to sample from).
std::vector<int32_t> Scheduler::drafts_for(const Slot& slot, size_t room) const {
  if (room == 0) return {};
  int64_t limit = std::min<int64_t>(int64_t(room), engine_.n_ctx() - int64_t(slot.cached.size()) - 1);
  if (slot.request.max_tokens >= 0)
    limit = std::min(limit, slot.request.max_tokens - slot.result.completion_tokens - 1);
  if (limit <= 0) return {};
  std::vector<int32_t> history = slot.cached;
  history.push_back(slot.next_token);
  return engine::lookup_draft(history, options_.lookup, int(limit));
}

void Scheduler::after_forward(const std::vector<float>& logits, const std::vector<Slot*>& owners) {
  const size_t n_vocab = engine_.tokenizer().size();
  uint64_t generated = 0;
  for (size_t r = 0; r < owners.size();) {
    Slot& slot = *owners[r];
    size_t rows = 1;
    while (r + rows < owners.size() && owners[r + rows] == &slot) ++rows;
    const int64_t completed = slot.result.completion_tokens;
    sample_rows(slot, logits.data() + r * n_vocab, rows);
    generated += uint64_t(slot.result.completion_tokens - completed);
    r += rows;
  }
  if (generated) metrics_.note_generated(generated);
}

void Scheduler::sample_rows(Slot& slot, const float* logits, size_t rows) {
  const size_t n_vocab = engine_.tokenizer().size();
  // The batch put next_token and every draft in the cache; row i samples
  // the token after drafts[i - 1], at position first_pos + i.
  const size_t cached_after_pass = slot.cached.size();
  const int64_t first_pos = int64_t(cached_after_pass - slot.drafts.size());
  std::vector<float> row(n_vocab);
  size_t confirmed = 0;
  if (!slot.decoding) slot.prompt_done_at = std::chrono::steady_clock::now();
  slot.decoding = true;
  for (size_t i = 0; i < rows; ++i) {
    std::copy(logits + i * n_vocab, logits + (i + 1) * n_vocab, row.begin());
    try {
      sample_and_emit(slot, row.data(), logits + i * n_vocab, first_pos + int64_t(i));
    } catch (const std::exception& e) {
      log::error(std::string("sampling failed: ") + e.what());
      finish(slot, Finish::Error, e.what());
    }
    if (!slot.active || i == slot.drafts.size() || slot.next_token != slot.drafts[i]) break;
    ++confirmed;
    ++slot.result.draft_accepted;  // before a later row of this pass finishes the job
  }
  metrics_.draft_accepted_total += confirmed;
  // The rejected drafts' keys and values go (a finished slot whose cache
  // was dropped has nothing left to cut).
  const size_t keep = cached_after_pass - (slot.drafts.size() - confirmed);
  if (slot.cached.size() > keep) {
    engine_.cache().truncate(slot.seq, int64_t(keep));
    slot.cached.resize(keep);
  }
  slot.drafts.clear();
}

void Scheduler::sample_and_emit(Slot& slot, float* logits, const float* raw, int64_t pos) {
  const auto& tok = engine_.tokenizer();
  const size_t n_vocab = tok.size();
  const std::vector<uint8_t>* allowed = nullptr;
  if (slot.matcher) {
    auto t0 = std::chrono::steady_clock::now();
    slot.matcher->fill_mask(mask_);
    mask_bytes_.assign(n_vocab, 0);
    const auto& words = mask_.words();
    for (size_t w = 0; w < words.size(); ++w) {
      uint64_t bits = words[w];
      while (bits) {
        size_t id = w * 64 + size_t(__builtin_ctzll(bits));
        if (id < n_vocab) mask_bytes_[id] = 1;
        bits &= bits - 1;
      }
    }
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count();
    metrics_.grammar_masks_total++;
    metrics_.grammar_mask_ns_total += uint64_t(ns);
    allowed = &mask_bytes_;
  }
  if (slot.request.ignore_eos && !slot.matcher)
    for (int32_t id : end_ids_) logits[id] = -std::numeric_limits<float>::infinity();
  int32_t token = slot.sampler->sample(std::span<float>(logits, n_vocab), allowed);
  slot.sampler->accept(token);
  slot.result.completion_tokens++;
  if (tok.is_end_of_generation(token)) return finish(slot, Finish::Stop);
  if (slot.matcher && !slot.matcher->accept_token(token))
    throw Error("the grammar refused token " + std::to_string(token) + " that its own mask allowed");

  const std::string text = slot.decoder->push(token);
  if (slot.request.top_logprobs >= 0) {
    TokenLogprob entry = token_logprobs(raw, token, slot.request.top_logprobs);
    entry.text_chars = display::utf8_length(text);
    slot.held_logprobs.emplace_back(std::move(entry), text.size());
  }
  auto r = slot.stops->feed(text);
  emit(slot, r.emit, false);
  if (r.stopped) {
    // The tokens of the stop string, held until now, are not part of the
    // answer, nor are their logprobs (as llama-server trims them).
    slot.held_logprobs.clear();
    return finish(slot, Finish::Stop);
  }
  // A constrained value that is complete and cannot grow only allows an end
  // token next: stop now instead of spending a forward pass on it.
  if (slot.matcher && slot.matcher->is_complete() && !slot.matcher->can_continue()) return finish(slot, Finish::Stop);
  if (slot.request.max_tokens >= 0 && slot.result.completion_tokens >= slot.request.max_tokens)
    return finish(slot, Finish::Length);
  if (pos >= engine_.n_ctx()) return finish(slot, Finish::Length);
  slot.next_token = token;
}

void Scheduler::emit(Slot& slot, const std::string& text, bool all) {
  slot.emitted_bytes += text.size();
  std::vector<TokenLogprob> released;
  auto& held = slot.held_logprobs;
  while (!held.empty()) {
    // A token that only starts a character has no text of its own: it goes
    // out with the token whose text completes the character.
    size_t last = 0;
    while (last + 1 < held.size() && held[last].second == 0) ++last;
    const bool let_out = slot.released_logprob_bytes + held[last].second <= slot.emitted_bytes;
    if (!all && (held[last].second == 0 || !let_out)) break;
    for (size_t i = 0; i <= last; ++i) {
      slot.released_logprob_bytes += held.front().second;
      released.push_back(std::move(held.front().first));
      held.pop_front();
    }
  }
  slot.job->push(text, std::move(released));
}

TokenLogprob Scheduler::token_logprobs(const float* raw, int32_t token, int top) const {
  const size_t n_vocab = engine_.tokenizer().size();
  float max = -std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < n_vocab; ++i) max = std::max(max, raw[i]);
  double sum = 0;
  for (size_t i = 0; i < n_vocab; ++i) sum += std::exp(double(raw[i] - max));
  const float log_normalizer = max + float(std::log(sum));
  TokenLogprob entry;
  entry.token = token;
  entry.logprob = raw[token] - log_normalizer;
  // The `top` largest logits, most likely first (ties: the lower id), kept
  // in a small sorted list as the vocabulary goes by.
  auto before = [](const std::pair<int32_t, float>& a, const std::pair<int32_t, float>& b) {
    return a.second > b.second || (a.second == b.second && a.first < b.first);
  };
  for (size_t i = 0; i < n_vocab && top > 0; ++i) {
    const std::pair<int32_t, float> candidate{int32_t(i), raw[i]};
    if (entry.top.size() == size_t(top) && !before(candidate, entry.top.back())) continue;
    entry.top.insert(std::upper_bound(entry.top.begin(), entry.top.end(), candidate, before), candidate);
    if (entry.top.size() > size_t(top)) entry.top.pop_back();
  }
  for (auto& [id, value] : entry.top) value -= log_normalizer;
  return entry;
}

void Scheduler::finish(Slot& slot, Finish how, const std::string& error) {
  if (how == Finish::Stop || how == Finish::Length) {
    // Whatever the decoder and stop matcher held back belongs to the answer.
    auto r = slot.stops->feed(slot.decoder->flush());
    std::string tail = r.emit;
    if (!r.stopped) tail += slot.stops->flush();
    emit(slot, tail, !r.stopped);
  }
  slot.result.finish = how;
  if (slot.decoding) {
    using ms = std::chrono::duration<double, std::milli>;
    slot.result.prompt_ms = ms(slot.prompt_done_at - slot.started).count();
    slot.result.predicted_ms = ms(std::chrono::steady_clock::now() - slot.prompt_done_at).count();
  }
  slot.result.error = error;
  if (how == Finish::Cancelled) metrics_.cancelled_total++;
  metrics_.completions_total++;
  // The gauge drops before the client can see the end, so a client that
  // reads /metrics after its answer never sees its own slot busy.
  metrics_.slots_busy--;
  slot.job->finish(slot.result);
  slot.job.reset();
  slot.active = false;
  slot.decoding = false;
  slot.matcher.reset();
  if (how == Finish::Error) {
    engine_.cache().truncate(slot.seq, 0);
    slot.cached.clear();
  }
}

void Scheduler::fail_all_active(const std::string& error) {
  for (auto& slot : slots_) {
    if (!slot.active) continue;
    finish(slot, Finish::Error, error);
  }
}


}  // namespace warden::server
