#include "sample/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "util/error.h"

namespace warden::sample {
namespace {

std::string param_error(const char* name, const std::string& rule, double value) {
  return "sampler parameter " + std::string(name) + " " + rule + " (got " + std::to_string(value) + ")";
}

// A token can be chosen when the mask allows it and its logit is not -inf.
bool is_allowed(std::span<const float> logits, const std::vector<uint8_t>* allowed_mask, size_t id) {
  return logits[id] != -std::numeric_limits<float>::infinity() && (!allowed_mask || (*allowed_mask)[id] != 0);
}

Error nothing_allowed() {
  return Error("sampler: no token can be chosen: every token is disallowed by the mask or has logit -inf");
}

}  // namespace

uint64_t random_seed() {
  std::random_device device;
  return (static_cast<uint64_t>(device()) << 32) ^ static_cast<uint64_t>(device());
}

void validate(const SamplerParams& p) {
  if (!std::isfinite(p.temperature)) throw Error(param_error("temperature", "must be a finite number", p.temperature));
  if (!(p.top_p >= 0.0f) || !std::isfinite(p.top_p))
    throw Error(param_error("top_p", "must be a finite number >= 0", p.top_p));
  if (!(p.min_p <= 1.0f) || !std::isfinite(p.min_p))
    throw Error(param_error("min_p", "must be a finite number <= 1", p.min_p));
  if (!(p.repeat_penalty > 0.0f) || !std::isfinite(p.repeat_penalty))
    throw Error(param_error("repeat_penalty", "must be a finite number > 0", p.repeat_penalty));
  if (p.repeat_last_n < -1)
    throw Error(param_error("repeat_last_n", "must be -1 (whole history), 0 (off) or positive", p.repeat_last_n));
  for (const auto& [token, bias] : p.logit_bias)
    if (!std::isfinite(bias)) throw Error(param_error("logit_bias", "must be finite numbers", bias));
  if (!std::isfinite(p.presence_penalty))
    throw Error(param_error("presence_penalty", "must be a finite number", p.presence_penalty));
  if (!std::isfinite(p.frequency_penalty))
    throw Error(param_error("frequency_penalty", "must be a finite number", p.frequency_penalty));
}

Sampler::Sampler(SamplerParams params, int n_vocab) : params_(params), n_vocab_(n_vocab), rng_(params.seed) {
  validate(params_);
  if (n_vocab <= 0) throw Error("sampler: vocabulary size must be positive (got " + std::to_string(n_vocab) + ")");
  for (const auto& [token, bias] : params_.logit_bias)
    if (token < 0 || token >= n_vocab)
      throw Error("sampler: logit bias for token id " + std::to_string(token) + ", outside the vocabulary [0, " +
                  std::to_string(n_vocab) + ")");
  candidates_.reserve(static_cast<size_t>(n_vocab));
}

void Sampler::accept(int32_t token) {
  if (token < 0 || token >= n_vocab_)
    throw Error("sampler: accepted token id " + std::to_string(token) + " is outside the vocabulary [0, " +
                std::to_string(n_vocab_) + ")");
  if (params_.repeat_last_n == 0) return;
  window_.push_back(token);
  ++window_counts_[token];
  if (params_.repeat_last_n > 0 && window_.size() > static_cast<size_t>(params_.repeat_last_n)) {
    const int32_t oldest = window_.front();
    window_.pop_front();
    auto it = window_counts_.find(oldest);
    if (--it->second == 0) window_counts_.erase(it);
  }
}

void Sampler::reset() {
  window_.clear();
  window_counts_.clear();
  rng_.seed(params_.seed);
}

void Sampler::apply_penalties(std::span<float> logits) const {
  check_sizes(logits, nullptr);
  const bool disabled = params_.repeat_penalty == 1.0f && params_.frequency_penalty == 0.0f &&
                        params_.presence_penalty == 0.0f;
  if (disabled) return;
  for (const auto& [token, count] : window_counts_) {
    float& logit = logits[static_cast<size_t>(token)];
    // Dividing a negative logit would raise it, so negative ones are
    // multiplied instead: both push the token towards less likely.
    if (logit <= 0.0f)
      logit *= params_.repeat_penalty;
    else
      logit /= params_.repeat_penalty;
    // A penalty near 0 (or a negative frequency penalty) could make the
    // logit +inf, which sample() refuses as a broken model: the largest
    // float is as sure a choice.
    logit = std::min(logit, std::numeric_limits<float>::max());
    logit -= static_cast<float>(count) * params_.frequency_penalty + params_.presence_penalty;
    logit = std::min(logit, std::numeric_limits<float>::max());
  }
}

void Sampler::check_sizes(std::span<const float> logits, const std::vector<uint8_t>* allowed_mask) const {
  if (logits.size() != static_cast<size_t>(n_vocab_))
    throw Error("sampler: got " + std::to_string(logits.size()) + " logits for a vocabulary of " +
                std::to_string(n_vocab_));
  if (allowed_mask && allowed_mask->size() != static_cast<size_t>(n_vocab_))
    throw Error("sampler: allowed-token mask has " + std::to_string(allowed_mask->size()) +
                " entries for a vocabulary of " + std::to_string(n_vocab_));
}

void Sampler::check_finite_or_minus_inf(std::span<const float> logits) {
  // A NaN or +inf logit means the model computation went wrong; refusing is
  // safer than sampling from something that is not a distribution. The
  // branch-free scan stays cheap; the slow search only runs on failure.
  constexpr float kInf = std::numeric_limits<float>::infinity();
  bool all_ok = true;
  for (float logit : logits) all_ok &= (logit < kInf);  // false for NaN and +inf
  if (all_ok) return;
  for (size_t id = 0; id < logits.size(); ++id)
    if (!(logits[id] < kInf))
      throw Error("sampler: logit of token " + std::to_string(id) + " is " + (std::isnan(logits[id]) ? "NaN" : "+inf"));
}

bool Sampler::ranks_before(const Candidate& a, const Candidate& b) {
  if (a.logit != b.logit) return a.logit > b.logit;
  return a.id < b.id;
}

int32_t Sampler::greedy_choice(std::span<const float> logits, const std::vector<uint8_t>* allowed_mask) const {
  // Two passes: the largest allowed logit, then the first id holding it (the
  // lowest id wins ties). The first pass keeps kLanes independent maxima so
  // the loop is not one long chain of dependent comparisons.
  constexpr size_t kLanes = 8;
  constexpr float kMinusInf = -std::numeric_limits<float>::infinity();
  const auto allowed_logit = [&](size_t id) {
    return (!allowed_mask || (*allowed_mask)[id] != 0) ? logits[id] : kMinusInf;
  };
  float lane_max[kLanes];
  std::fill(std::begin(lane_max), std::end(lane_max), kMinusInf);
  const size_t n = logits.size();
  size_t id = 0;
  for (; id + kLanes <= n; id += kLanes)
    for (size_t lane = 0; lane < kLanes; ++lane) lane_max[lane] = std::max(lane_max[lane], allowed_logit(id + lane));
  for (; id < n; ++id) lane_max[0] = std::max(lane_max[0], allowed_logit(id));
  const float best_logit = *std::max_element(std::begin(lane_max), std::end(lane_max));
  if (best_logit == kMinusInf) throw nothing_allowed();
  for (id = 0; id < n; ++id)
    if (allowed_logit(id) == best_logit) break;
  return static_cast<int32_t>(id);
}

void Sampler::collect_candidates(std::span<const float> logits, const std::vector<uint8_t>* allowed_mask) {
  candidates_.clear();
  candidates_sorted_ = false;
  const int k = params_.top_k;
  if (k > 0 && static_cast<size_t>(k) < logits.size()) {
    collect_top_k(logits, allowed_mask, static_cast<size_t>(k));
  } else {
    for (size_t id = 0; id < logits.size(); ++id)
      if (is_allowed(logits, allowed_mask, id)) candidates_.push_back({static_cast<int32_t>(id), logits[id]});
  }
  if (candidates_.empty()) throw nothing_allowed();
}

void Sampler::collect_top_k(std::span<const float> logits, const std::vector<uint8_t>* allowed_mask, size_t k) {
  // A heap of the best k seen so far whose top is the worst of them: most
  // tokens lose one float comparison against it, so one pass over the
  // vocabulary does the whole selection without materializing all of it.
  float worst_kept = -std::numeric_limits<float>::infinity();
  for (size_t id = 0; id < logits.size(); ++id) {
    if (logits[id] < worst_kept || !is_allowed(logits, allowed_mask, id)) continue;
    const Candidate candidate{static_cast<int32_t>(id), logits[id]};
    if (candidates_.size() < k) {
      candidates_.push_back(candidate);
      std::push_heap(candidates_.begin(), candidates_.end(), ranks_before);
      if (candidates_.size() == k) worst_kept = candidates_.front().logit;
    } else if (ranks_before(candidate, candidates_.front())) {
      std::pop_heap(candidates_.begin(), candidates_.end(), ranks_before);
      candidates_.back() = candidate;
      std::push_heap(candidates_.begin(), candidates_.end(), ranks_before);
      worst_kept = candidates_.front().logit;
    }
  }
  std::sort(candidates_.begin(), candidates_.end(), ranks_before);
  candidates_sorted_ = true;
}

void Sampler::keep_top_p() {
  const float p = params_.top_p;
  const size_t n = candidates_.size();
  if (p >= 1.0f || n <= 1) return;

  float max_logit = candidates_.front().logit;
  for (const Candidate& c : candidates_) max_logit = std::max(max_logit, c.logit);
  double total = 0.0;
  for (const Candidate& c : candidates_) total += std::exp(c.logit - max_logit);
  // Compare unnormalized mass against p * total instead of dividing each term.
  const double target = static_cast<double>(p) * total;

  // Only the front part that holds the mass gets sorted; should rounding
  // leave the scan short of the target there, the rest is sorted too (it all
  // ranks after the front part).
  const size_t front = candidates_sorted_ ? n : partition_likely_top_p(max_logit, target);
  const auto sort_range = [this](size_t from, size_t to) {
    std::sort(candidates_.begin() + static_cast<std::ptrdiff_t>(from),
              candidates_.begin() + static_cast<std::ptrdiff_t>(to), ranks_before);
  };
  if (!candidates_sorted_) sort_range(0, front);
  double mass = 0.0;
  for (size_t i = 0; i < n; ++i) {
    if (i == front && !candidates_sorted_) sort_range(front, n);
    mass += std::exp(candidates_[i].logit - max_logit);
    if (mass >= target) {
      candidates_.resize(i + 1);
      break;
    }
  }
  candidates_sorted_ = true;
}

size_t Sampler::partition_likely_top_p(float max_logit, double target) {
  // Histogram the probability mass over equal-width logit buckets (bucket 0
  // holds the highest logits), find the bucket where the cumulative mass from
  // the top reaches the target, and move every candidate of that bucket or a
  // higher one to the front. A bucket is a monotone function of the logit,
  // so the front ranks before the rest, ties included.
  constexpr size_t kBuckets = 512;
  float min_logit = max_logit;
  for (const Candidate& c : candidates_) min_logit = std::min(min_logit, c.logit);
  // All equal, or a range too wide for float: one bucket, everything in front.
  if (!(max_logit > min_logit) || !std::isfinite(max_logit - min_logit)) return candidates_.size();
  const float scale = static_cast<float>(kBuckets - 1) / (max_logit - min_logit);
  const auto bucket_of = [=](float logit) {
    return std::min(kBuckets - 1, static_cast<size_t>((max_logit - logit) * scale));
  };
  double bucket_mass[kBuckets] = {};
  for (const Candidate& c : candidates_) bucket_mass[bucket_of(c.logit)] += std::exp(c.logit - max_logit);
  size_t last_bucket = 0;
  double mass = 0.0;
  for (; last_bucket < kBuckets - 1; ++last_bucket) {
    mass += bucket_mass[last_bucket];
    if (mass >= target) break;
  }
  const auto front_end = std::partition(candidates_.begin(), candidates_.end(),
                                        [&](const Candidate& c) { return bucket_of(c.logit) <= last_bucket; });
  return static_cast<size_t>(front_end - candidates_.begin());
}

void Sampler::keep_min_p() {
  const float p = params_.min_p;
  if (p <= 0.0f || candidates_.size() <= 1) return;
  float max_logit = candidates_.front().logit;
  for (const Candidate& c : candidates_) max_logit = std::max(max_logit, c.logit);
  // prob_i >= p * prob_max  <=>  logit_i >= logit_max + log(p); the max
  // always passes because log(p) <= 0.
  const float threshold = max_logit + std::log(p);
  auto below = [threshold](const Candidate& c) { return c.logit < threshold; };
  candidates_.erase(std::remove_if(candidates_.begin(), candidates_.end(), below), candidates_.end());
}

double Sampler::uniform01() {
  // 53 random bits -> [0, 1): exact and identical on every standard library,
  // unlike std::uniform_real_distribution.
  return static_cast<double>(rng_() >> 11) * 0x1.0p-53;
}

int32_t Sampler::draw_with_temperature() {
  const double temperature = params_.temperature;
  float max_logit = candidates_.front().logit;
  for (const Candidate& c : candidates_) max_logit = std::max(max_logit, c.logit);
  weights_.clear();
  double total = 0.0;
  for (const Candidate& c : candidates_) {
    weights_.push_back(std::exp((c.logit - max_logit) / temperature));
    total += weights_.back();
  }
  const double point = uniform01() * total;
  double mass = 0.0;
  for (size_t i = 0; i < candidates_.size(); ++i) {
    mass += weights_[i];
    if (point < mass) return candidates_[i].id;
  }
  // Only reachable through rounding at the very top of the range: the point
  // fell on the last candidate with a non-zero weight.
  for (size_t i = candidates_.size(); i-- > 0;)
    if (weights_[i] > 0.0) return candidates_[i].id;
  return candidates_.front().id;
}

int32_t Sampler::sample(std::span<float> logits, const std::vector<uint8_t>* allowed_mask) {
  check_sizes(logits, allowed_mask);
  for (const auto& [token, bias] : params_.logit_bias) logits[size_t(token)] += bias;
  apply_penalties(logits);
  check_finite_or_minus_inf(logits);  // after penalties, which could overflow
  if (params_.temperature <= 0.0f) return greedy_choice(logits, allowed_mask);
  collect_candidates(logits, allowed_mask);
  keep_top_p();
  keep_min_p();
  return draw_with_temperature();
}

}  // namespace warden::sample
