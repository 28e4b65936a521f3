#pragma once
// Token sampling over one step's logits, engine-agnostic.
//
// The chain and its semantics follow llama.cpp's default sampler chain:
//
//   mask -> logit bias -> penalties -> top_k -> top_p -> min_p -> temperature -> draw
//
// * logit bias: each (id, bias) pair adds bias to that token's logit (as
//   OpenAI's logit_bias and llama.cpp's --logit-bias do).
// * mask: ids with allowed_mask[id] == 0 (constrained decoding) are never
//   chosen; ids whose logit is -inf are treated the same way.
// * penalties over the last repeat_last_n accepted tokens (-1: all of them,
//   0: none): a token seen `count` times has its logit divided by
//   repeat_penalty when positive or multiplied by it otherwise, then reduced
//   by count * frequency_penalty + presence_penalty (OpenAI's definition).
// * top_k keeps the k highest logits (ties broken towards the lower id);
//   k <= 0 disables it.
// * top_p keeps the smallest prefix of the candidates, by falling
//   probability, whose mass reaches p (the token that crosses p included);
//   p >= 1 disables it. Probabilities are a softmax over the candidates that
//   survived top_k, at temperature 1.
// * min_p keeps the candidates whose probability is at least p times the
//   largest one; p <= 0 disables it.
// * temperature divides the surviving logits before the softmax the token is
//   drawn from. temperature <= 0 means greedy: the highest logit after the
//   mask and penalties, ties going to the lowest id, whatever the other
//   samplers say.
// * draw: a seeded 64-bit Mersenne Twister turned into uniform doubles by
//   bit arithmetic (no standard-library distribution), so the same seed,
//   parameters, logits and accepted history give the same tokens.
//
// Every filter keeps at least one token, so sample() always returns an id
// unless the mask and -inf logits leave nothing, which is an error.
#include <cstdint>
#include <deque>
#include <random>
#include <span>
#include <unordered_map>
#include <utility>
#include <vector>

namespace warden::sample {

// A fresh seed from the operating system's entropy source.
uint64_t random_seed();

struct SamplerParams {
  float temperature = 0.8f;
  int top_k = 40;
  float top_p = 0.95f;
  float min_p = 0.05f;
  float repeat_penalty = 1.0f;
  int repeat_last_n = 64;  // -1: the whole accepted history; 0: no penalties
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  uint64_t seed = random_seed();
  std::vector<std::pair<int32_t, float>> logit_bias;  // (token id, added to its logit)
};

// Throws warden::Error naming the first parameter that is out of range.
void validate(const SamplerParams& params);

class Sampler {
 public:
  // Throws warden::Error for bad parameters or n_vocab <= 0.
  Sampler(SamplerParams params, int n_vocab);

  // Picks the next token. `logits` must hold n_vocab values; the logit bias
  // and the penalties are applied to it in place (as llama.cpp does),
  // nothing else is changed.
  // `allowed_mask`, when given, must hold n_vocab entries (1 = allowed).
  // Throws warden::Error on a size mismatch, on a NaN or +inf logit, or when
  // no token is left to choose from.
  int32_t sample(std::span<float> logits, const std::vector<uint8_t>* allowed_mask = nullptr);

  // Records a token (generated or forced) in the penalty history.
  // Throws warden::Error for an id outside [0, n_vocab).
  void accept(int32_t token);

  // Forgets the history and restarts the random sequence from the seed.
  void reset();

  // Applies only the penalty step to `logits` (n_vocab values), in place.
  void apply_penalties(std::span<float> logits) const;

  const SamplerParams& params() const { return params_; }
  int n_vocab() const { return n_vocab_; }

 private:
  struct Candidate {
    int32_t id;
    float logit;
  };

  // Ranking used by every sorting step: higher logit first, lower id on
  // ties, so results never depend on the sort algorithm.
  static bool ranks_before(const Candidate& a, const Candidate& b);

  void check_sizes(std::span<const float> logits, const std::vector<uint8_t>* allowed_mask) const;
  // Throws on a NaN or +inf logit.
  static void check_finite_or_minus_inf(std::span<const float> logits);
  int32_t greedy_choice(std::span<const float> logits, const std::vector<uint8_t>* allowed_mask) const;
  // Fills candidates_ with the allowed tokens, or only the top_k best of them
  // when top_k is active (sorted then). Throws when none is allowed.
  void collect_candidates(std::span<const float> logits, const std::vector<uint8_t>* allowed_mask);
  void collect_top_k(std::span<const float> logits, const std::vector<uint8_t>* allowed_mask, size_t k);
  void keep_top_p();
  // Moves the candidates most likely to hold top_p's mass to the front and
  // returns how many there are; everything before the returned index ranks
  // before everything after it.
  size_t partition_likely_top_p(float max_logit, double target);
  void keep_min_p();
  int32_t draw_with_temperature();
  double uniform01();

  SamplerParams params_;
  int n_vocab_;
  std::mt19937_64 rng_;
  // Penalty window: the accepted tokens it holds and how often each occurs.
  std::deque<int32_t> window_;
  std::unordered_map<int32_t, int> window_counts_;
  // Reused across calls so a step allocates nothing once warmed up.
  std::vector<Candidate> candidates_;
  std::vector<double> weights_;
  bool candidates_sorted_ = false;  // in ranks_before order
};

}  // namespace warden::sample
