#pragma once
// The scheduler: one thread that owns the engine and serves every request
// through N slots (KV-cache sequences) with continuous batching.
//
// Each iteration builds ONE batch from all active slots -- a chunk of the
// prompt for slots still prefilling, the last sampled token for decoding
// ones -- and runs the forward pass once. Logits rows go back to their slots,
// which sample (under their grammar's mask when constrained), stream text to
// their Job, and finish on end-of-generation, a stop string, max_tokens, a
// full context or cancellation.
//
// A new request goes to the free slot whose cached tokens share the longest
// prefix with its prompt (so a conversation's next turn re-evaluates only the
// new tail). When every slot is busy requests wait in a bounded FIFO queue;
// past its bound submit() refuses them.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "engine/engine.h"
#include "grammar/grammar.h"
#include "grammar/matcher.h"
#include "grammar/vocab.h"
#include "sample/sampler.h"
#include "sample/stop_matcher.h"
#include "server/metrics.h"
#include "tokenizer/tokenizer.h"

namespace warden::server {

// A generated token's log-probability under the model, from a log-softmax
// over its raw logits (before bias, penalties, grammar and temperature, as
// llama-server reports them), with the most likely tokens beside it.
struct TokenLogprob {
  int32_t token = -1;
  float logprob = 0;
  std::vector<std::pair<int32_t, float>> top;  // (token, logprob), most likely first
  // Characters this token added to the answer's text (0 while it holds part
  // of a character; the token that completes it counts it).
  size_t text_chars = 0;
};

struct GenerationRequest {
  std::vector<int32_t> prompt;
  // -1: no logprobs; else each generated token's, with this many
  // alternatives.
  int top_logprobs = -1;
  sample::SamplerParams sampling;
  int64_t max_tokens = -1;  // -1: until end of generation or a full context
  std::vector<std::string> stop;
  std::shared_ptr<const grammar::Grammar> grammar;  // null: unconstrained
  bool ignore_eos = false;  // never pick an end-of-generation token (benchmarks)
};

enum class Finish { Stop, Length, Cancelled, Error };

struct JobResult {
  Finish finish = Finish::Stop;
  int64_t prompt_tokens = 0;
  int64_t cached_prompt_tokens = 0;  // reused from the slot's cache
  int64_t completion_tokens = 0;
  std::string error;  // Finish::Error only
  // llama-server's `timings`: from the slot's start to the prompt's logits,
  // from there to the end, and lookup decoding's drafts for this request.
  double prompt_ms = 0, predicted_ms = 0;
  int64_t draft_tokens = 0, draft_accepted = 0;
};

// One request in flight, shared by the HTTP handler (consumer) and the
// scheduler (producer). Text is coalesced: a slow reader gets bigger chunks,
// never an unbounded queue of events.
class Job {
 public:
  struct Chunk {
    std::string text;
    std::vector<TokenLogprob> logprobs;  // of the tokens generated since the last chunk (when asked for)
    bool done = false;
  };
  // Waits up to `timeout` for new text or logprobs or the end; returns an
  // empty chunk, not done, when nothing came, so the caller can look at its
  // client meanwhile.
  Chunk next_for(std::chrono::milliseconds timeout);
  // The outcome; valid once next() returned done.
  JobResult result() const;
  // Asks the scheduler to stop this job (the client went away); idempotent.
  void cancel() { cancelled_ = true; }
  bool cancelled() const { return cancelled_; }

  // Producer side (scheduler thread).
  void push(const std::string& text, std::vector<TokenLogprob> logprobs = {});
  void finish(const JobResult& result);

 private:
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::string pending_;
  std::vector<TokenLogprob> pending_logprobs_;
  bool done_ = false;
  JobResult result_;
  std::atomic<bool> cancelled_{false};
};

class QueueFull : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct SchedulerOptions {
  size_t max_queue = 64;  // waiting requests when all slots are busy
  // Lookup decoding (engine/lookup.h): a decoding slot's pass may carry
  // drafted tokens after its sampled one, as long as the pass's decoding
  // tokens stay within 1 + draft_max (so several busy slots draft less,
  // and a full batch not at all).
  engine::LookupParams lookup;
};

class Scheduler {
 public:
  // The engine must have been built with n_seq slots; the scheduler thread
  // is the only user of the engine from now on.
  Scheduler(engine::Engine& engine, std::shared_ptr<const grammar::Vocabulary> vocab, Metrics& metrics,
            SchedulerOptions options = {});
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues a request. Throws QueueFull when the queue is at its bound and
  // warden::Error for a prompt that is empty or does not fit the context.
  std::shared_ptr<Job> submit(GenerationRequest request);

  // Finishes every running and queued job with an error and stops the
  // thread (so HTTP workers waiting on jobs return); idempotent.
  void stop();

  int slots() const { return int(slots_.size()); }
  int64_t n_ctx() const { return engine_.n_ctx(); }

 private:
  struct Pending {
    GenerationRequest request;
    std::shared_ptr<Job> job;
  };
  struct Slot {
    int seq = 0;
    std::vector<int32_t> cached;  // tokens whose keys/values the cache holds
    bool active = false;
    bool decoding = false;        // false: still prefilling the prompt
    size_t prompt_done = 0;       // prompt tokens in the cache (prefill)
    int32_t next_token = -1;      // sampled, evaluated in the next batch
    std::vector<int32_t> drafts;  // evaluated after next_token in this batch, not yet confirmed
    GenerationRequest request;
    std::shared_ptr<Job> job;
    JobResult result;
    std::optional<sample::Sampler> sampler;
    std::optional<sample::StopMatcher> stops;
    std::optional<tokenizer::StreamDecoder> decoder;
    // Logprobs of tokens whose text the stop matcher still holds, with the
    // bytes the decoder gave for each: they go out as that text does, and
    // those of a stop string's tokens never do.
    std::deque<std::pair<TokenLogprob, size_t>> held_logprobs;
    size_t emitted_bytes = 0, released_logprob_bytes = 0;
    std::unique_ptr<grammar::Matcher> matcher;
    std::chrono::steady_clock::time_point started, prompt_done_at;
  };
  void run();
  void admit_waiting();
  void drop_cancelled_waiting();
  Slot* best_free_slot(const std::vector<int32_t>& prompt);
  void start(Slot& slot, Pending pending);
  void drop_cancelled();
  // owners: the slot of each logits row, in row order.
  std::vector<model::BatchToken> build_batch(std::vector<Slot*>& owners);
  std::vector<int32_t> drafts_for(const Slot& slot, size_t room) const;
  void after_forward(const std::vector<float>& logits, const std::vector<Slot*>& owners);
  // Samples from one slot's consecutive logits rows (one, or one per draft
  // and one more) until a sampled token differs from its draft, then drops
  // the rejected drafts from the cache.
  void sample_rows(Slot& slot, const float* logits, size_t rows);
  // `pos`: the position the sampled token takes in the sequence.
  // `logits`: a copy of the row, which sampling changes; `raw`: the row as
  // the model gave it, for logprobs.
  void sample_and_emit(Slot& slot, float* logits, const float* raw, int64_t pos);
  // The sampled token's logprob and the `top` most likely tokens' from a
  // row of raw logits.
  TokenLogprob token_logprobs(const float* raw, int32_t token, int top) const;
  // Sends `text` (what the stop matcher let out) with the held logprobs it
  // covers; `all`: every held one (nothing more is held back).
  void emit(Slot& slot, const std::string& text, bool all);
  void finish(Slot& slot, Finish how, const std::string& error = "");
  void fail_all_active(const std::string& error);

  engine::Engine& engine_;
  std::shared_ptr<const grammar::Vocabulary> vocab_;
  Metrics& metrics_;
  SchedulerOptions options_;
  std::vector<Slot> slots_;
  std::vector<int32_t> end_ids_;     // end-of-generation tokens
  std::vector<uint8_t> mask_bytes_;  // allowed-token mask in the sampler's form
  grammar::TokenMask mask_;

  std::mutex mutex_;  // guards queue_ and stopping_
  std::condition_variable wake_;
  std::deque<Pending> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace warden::server
