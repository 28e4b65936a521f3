// Sampler tests. Statistical checks draw many tokens with fixed seeds and
// compare the observed frequencies with a reference distribution computed
// here independently (full sorts, no shortcuts); the tolerances are several
// standard deviations wide, while a wrong chain order or a filter that keeps
// the wrong tokens moves frequencies by far more or picks excluded tokens.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "sample/sampler.h"
#include "util/error.h"

namespace warden::sample {
namespace {

SamplerParams plain_params(float temperature, uint64_t seed = 1) {
  SamplerParams p;
  p.temperature = temperature;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.seed = seed;
  return p;
}

std::vector<float> logits_from_probs(const std::vector<double>& probs) {
  std::vector<float> logits;
  for (double p : probs) logits.push_back(static_cast<float>(std::log(p)));
  return logits;
}

// The chain spelled out the slow, obvious way (penalties are not included:
// callers pass already-penalized logits). Returns a probability per id.
std::vector<double> reference_distribution(const std::vector<float>& logits, const SamplerParams& params,
                                           const std::vector<uint8_t>* mask = nullptr) {
  struct Entry {
    int id;
    double logit;
  };
  std::vector<Entry> kept;
  for (size_t i = 0; i < logits.size(); ++i)
    if ((!mask || (*mask)[i]) && std::isfinite(logits[i])) kept.push_back({static_cast<int>(i), logits[i]});
  std::sort(kept.begin(), kept.end(), [](const Entry& a, const Entry& b) {
    return a.logit != b.logit ? a.logit > b.logit : a.id < b.id;
  });
  auto softmax = [](const std::vector<Entry>& entries, double temperature) {
    std::vector<double> probs;
    double total = 0.0;
    for (const Entry& e : entries) total += std::exp((e.logit - entries[0].logit) / temperature);
    for (const Entry& e : entries) probs.push_back(std::exp((e.logit - entries[0].logit) / temperature) / total);
    return probs;
  };
  if (params.top_k > 0 && static_cast<size_t>(params.top_k) < kept.size()) kept.resize(params.top_k);
  if (params.top_p < 1.0f) {
    std::vector<double> probs = softmax(kept, 1.0);
    double cumulative = 0.0;
    for (size_t i = 0; i < probs.size(); ++i) {
      cumulative += probs[i];
      if (cumulative >= params.top_p) {
        kept.resize(i + 1);
        break;
      }
    }
  }
  if (params.min_p > 0.0f) {
    std::vector<double> probs = softmax(kept, 1.0);
    std::vector<Entry> survivors;
    for (size_t i = 0; i < kept.size(); ++i)
      if (probs[i] >= params.min_p * probs[0]) survivors.push_back(kept[i]);
    kept = survivors;
  }
  std::vector<double> result(logits.size(), 0.0);
  std::vector<double> probs = softmax(kept, params.temperature);
  for (size_t i = 0; i < kept.size(); ++i) result[kept[i].id] = probs[i];
  return result;
}

std::vector<double> observed_frequencies(Sampler& sampler, const std::vector<float>& logits, int draws,
                                         const std::vector<uint8_t>* mask = nullptr) {
  std::vector<double> counts(logits.size(), 0.0);
  for (int i = 0; i < draws; ++i) {
    std::vector<float> copy = logits;
    counts[static_cast<size_t>(sampler.sample(copy, mask))] += 1.0;
  }
  for (double& c : counts) c /= draws;
  return counts;
}

// Every token outside the expected support must never be drawn; inside it the
// frequency must be within `tolerance` of the expected probability.
void expect_matches(const std::vector<double>& observed, const std::vector<double>& expected, double tolerance) {
  ASSERT_EQ(observed.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    if (expected[i] == 0.0)
      EXPECT_EQ(observed[i], 0.0) << "token " << i << " is excluded but was drawn";
    else
      EXPECT_NEAR(observed[i], expected[i], tolerance) << "token " << i;
  }
}

std::vector<float> random_logits(size_t n, uint64_t seed, double spread) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, spread);
  std::vector<float> logits(n);
  for (float& l : logits) l = static_cast<float>(normal(rng));
  return logits;
}

// ---------------------------------------------------------------- softmax draw

TEST(Sampler, DrawFollowsSoftmaxAtTemperatureOne) {
  const std::vector<double> probs = {0.05, 0.30, 0.10, 0.25, 0.02, 0.18, 0.07, 0.03};
  const std::vector<float> logits = logits_from_probs(probs);
  Sampler sampler(plain_params(1.0f, 42), static_cast<int>(logits.size()));
  expect_matches(observed_frequencies(sampler, logits, 200000), probs, 0.006);
}

TEST(Sampler, TemperatureSharpensAndFlattens) {
  const std::vector<float> logits = {1.0f, 2.0f, 0.5f, -1.0f, 1.5f};
  for (float temperature : {0.5f, 2.0f}) {
    SamplerParams params = plain_params(temperature, 7);
    Sampler sampler(params, static_cast<int>(logits.size()));
    expect_matches(observed_frequencies(sampler, logits, 200000), reference_distribution(logits, params), 0.006);
  }
}

TEST(Sampler, MinusInfinityLogitsAreNeverDrawn) {
  const float minus_inf = -std::numeric_limits<float>::infinity();
  const std::vector<float> logits = {minus_inf, 0.0f, minus_inf, 0.0f};
  Sampler sampler(plain_params(1.0f, 3), 4);
  expect_matches(observed_frequencies(sampler, logits, 20000), {0.0, 0.5, 0.0, 0.5}, 0.02);
}

// ---------------------------------------------------------------- filters

TEST(Sampler, TopKKeepsOnlyTheKHighest) {
  const std::vector<float> logits = random_logits(100, 11, 1.0);
  SamplerParams params = plain_params(1.0f, 5);
  params.top_k = 5;
  Sampler sampler(params, 100);
  const std::vector<double> expected = reference_distribution(logits, params);
  EXPECT_EQ(std::count_if(expected.begin(), expected.end(), [](double p) { return p > 0; }), 5);
  expect_matches(observed_frequencies(sampler, logits, 100000), expected, 0.008);
}

TEST(Sampler, TopKTiesAtTheBoundaryKeepTheLowerIds) {
  // Tokens 1..4 tie; top_k = 3 keeps token 0 and the two lowest tied ids.
  const std::vector<float> logits = {5.0f, 1.0f, 1.0f, 1.0f, 1.0f};
  SamplerParams params = plain_params(1.0f, 9);
  params.top_k = 3;
  Sampler sampler(params, 5);
  const std::vector<double> observed = observed_frequencies(sampler, logits, 20000);
  EXPECT_GT(observed[1], 0.0);
  EXPECT_GT(observed[2], 0.0);
  EXPECT_EQ(observed[3], 0.0);
  EXPECT_EQ(observed[4], 0.0);
}

TEST(Sampler, TopPKeepsTheSmallestPrefixReachingP) {
  // Sorted probabilities 0.4, 0.3, 0.2, 0.1 (stored out of order): with
  // p = 0.65 the prefix {0.4, 0.3} is the first whose mass reaches p.
  const std::vector<double> probs = {0.2, 0.4, 0.1, 0.3};
  const std::vector<float> logits = logits_from_probs(probs);
  SamplerParams params = plain_params(1.0f, 13);
  params.top_p = 0.65f;
  Sampler sampler(params, 4);
  expect_matches(observed_frequencies(sampler, logits, 100000), {0.0, 0.4 / 0.7, 0.0, 0.3 / 0.7}, 0.006);
}

TEST(Sampler, TopPZeroKeepsOnlyTheMostLikely) {
  const std::vector<float> logits = {0.1f, 0.3f, 0.2f};
  SamplerParams params = plain_params(1.0f, 1);
  params.top_p = 0.0f;
  Sampler sampler(params, 3);
  expect_matches(observed_frequencies(sampler, logits, 1000), {0.0, 1.0, 0.0}, 0.0);
}

TEST(Sampler, TopPOverAFlatLargeVocabularyNeedsManyCandidates) {
  // A flat distribution puts p's mass in hundreds of tokens, so the sampler
  // must locate the cut without top_k's help. Besides never drawing a token
  // past the cut, the kept tokens, grouped by rank into eight equal groups,
  // must get each group's expected share.
  const std::vector<float> logits = random_logits(5000, 21, 0.3);
  SamplerParams params = plain_params(1.0f, 17);
  params.top_p = 0.3f;
  Sampler sampler(params, 5000);
  const std::vector<double> expected = reference_distribution(logits, params);
  std::vector<size_t> kept;
  for (size_t i = 0; i < expected.size(); ++i)
    if (expected[i] > 0) kept.push_back(i);
  ASSERT_GT(kept.size(), 500u);
  std::sort(kept.begin(), kept.end(), [&](size_t a, size_t b) { return expected[a] > expected[b]; });

  const std::vector<double> observed = observed_frequencies(sampler, logits, 20000);
  for (size_t i = 0; i < expected.size(); ++i) {
    if (expected[i] == 0.0) {
      EXPECT_EQ(observed[i], 0.0) << "token " << i << " is outside top-p but was drawn";
    }
  }
  constexpr size_t kGroups = 8;
  for (size_t g = 0; g < kGroups; ++g) {
    double expected_share = 0.0;
    double observed_share = 0.0;
    for (size_t r = g * kept.size() / kGroups; r < (g + 1) * kept.size() / kGroups; ++r) {
      expected_share += expected[kept[r]];
      observed_share += observed[kept[r]];
    }
    EXPECT_NEAR(observed_share, expected_share, 0.01) << "rank group " << g;
  }
}

TEST(Sampler, MinPDropsTokensBelowAFractionOfTheBest) {
  // min_p = 0.1 of the best (0.5) -> keep probabilities >= 0.05.
  const std::vector<double> probs = {0.04, 0.5, 0.2, 0.06, 0.2};
  const std::vector<float> logits = logits_from_probs(probs);
  SamplerParams params = plain_params(1.0f, 19);
  params.min_p = 0.1f;
  Sampler sampler(params, 5);
  expect_matches(observed_frequencies(sampler, logits, 100000), {0.0, 0.5 / 0.96, 0.2 / 0.96, 0.06 / 0.96, 0.2 / 0.96},
                 0.006);
}

TEST(Sampler, TopPSeesProbabilitiesRenormalizedAfterTopK) {
  // Probabilities 0.4, 0.3, 0.2, 0.1. top_k = 3 renormalizes to
  // 0.444, 0.333, 0.222; top_p = 0.75 then stops after two tokens. Applied to
  // the original probabilities top_p would keep three (0.4 + 0.3 < 0.75).
  const std::vector<float> logits = logits_from_probs({0.4, 0.3, 0.2, 0.1});
  SamplerParams params = plain_params(1.0f, 23);
  params.top_k = 3;
  params.top_p = 0.75f;
  Sampler sampler(params, 4);
  expect_matches(observed_frequencies(sampler, logits, 100000), {4.0 / 7, 3.0 / 7, 0.0, 0.0}, 0.006);
}

TEST(Sampler, MinPIsAppliedBeforeTemperature) {
  // At temperature 3 token 0 would have 0.43 of the best's probability and
  // pass min_p = 0.1; at temperature 1 (where min_p runs) it has 0.08.
  const std::vector<float> logits = logits_from_probs({0.04, 0.5, 0.46});
  SamplerParams params = plain_params(3.0f, 29);
  params.min_p = 0.1f;
  Sampler sampler(params, 3);
  const std::vector<double> expected = reference_distribution(logits, params);
  EXPECT_EQ(expected[0], 0.0);
  expect_matches(observed_frequencies(sampler, logits, 100000), expected, 0.006);
}

TEST(Sampler, FullChainMatchesTheReferenceOnARandomVocabulary) {
  const std::vector<float> logits = random_logits(2000, 31, 2.0);
  SamplerParams params;  // defaults: temp 0.8, top_k 40, top_p 0.95, min_p 0.05
  params.seed = 37;
  Sampler sampler(params, 2000);
  expect_matches(observed_frequencies(sampler, logits, 100000), reference_distribution(logits, params), 0.006);
}

TEST(Sampler, DefaultChainOnAQwenSizedVocabularyPicksFromTheTopK) {
  const int n_vocab = 151936;
  const std::vector<float> logits = random_logits(n_vocab, 41, 3.0);
  SamplerParams params;
  params.seed = 43;
  Sampler sampler(params, n_vocab);
  const std::vector<double> expected = reference_distribution(logits, params);
  for (int i = 0; i < 200; ++i) {
    std::vector<float> copy = logits;
    const int32_t token = sampler.sample(copy);
    ASSERT_GT(expected[static_cast<size_t>(token)], 0.0) << "token " << token << " is outside the filtered set";
  }
}

// ---------------------------------------------------------------- greedy

TEST(Sampler, GreedyPicksTheArgmaxWithTiesToTheLowestId) {
  const std::vector<float> logits = {0.5f, 3.0f, -1.0f, 3.0f, 2.9f};
  for (float temperature : {0.0f, -1.0f}) {
    SamplerParams params;
    params.temperature = temperature;
    Sampler sampler(params, 5);
    for (int i = 0; i < 10; ++i) {
      std::vector<float> copy = logits;
      EXPECT_EQ(sampler.sample(copy), 1);
    }
  }
}

TEST(Sampler, GreedyIgnoresTheOtherFiltersButNotTheMaskOrPenalties) {
  std::vector<float> logits = {0.5f, 3.0f, -1.0f, 2.0f, 2.9f};
  SamplerParams params;
  params.temperature = 0.0f;
  params.top_k = 1;
  params.top_p = 0.01f;
  params.min_p = 0.99f;
  params.repeat_penalty = 2.0f;
  Sampler sampler(params, 5);

  std::vector<uint8_t> mask = {1, 0, 1, 1, 1};
  std::vector<float> copy = logits;
  EXPECT_EQ(sampler.sample(copy, &mask), 4);  // 1 is masked out

  sampler.accept(4);  // 2.9 / 2 = 1.45 < 2.0
  copy = logits;
  EXPECT_EQ(sampler.sample(copy, &mask), 3);
}

// Logit bias comes before the penalties, and -inf from a bias bans a token.
// A penalty near 0 (a model file may recommend one) divides a positive
// logit past the largest float: it stays the largest float, a sure choice,
// not +inf, which the sampler refuses as a broken model.
TEST(Sampler, APenaltyNearZeroCannotMakeALogitInfinite) {
  SamplerParams params;
  params.temperature = 0.0f;
  params.repeat_penalty = 1e-45f;
  Sampler sampler(params, 3);
  sampler.accept(0);
  std::vector<float> logits = {2.0f, 5.0f, 1.0f};
  EXPECT_EQ(sampler.sample(logits), 0);
  EXPECT_EQ(logits[0], std::numeric_limits<float>::max());
  params.frequency_penalty = -1e38f;  // a negative frequency penalty the same way
  params.repeat_penalty = 1.0f;
  Sampler pulled(params, 3);
  for (int i = 0; i < 10; ++i) pulled.accept(2);
  logits = {2.0f, 5.0f, 1.0f};
  EXPECT_EQ(pulled.sample(logits), 2);
}

TEST(Sampler, LogitBiasIsAddedBeforeThePenalties) {
  const std::vector<float> logits = {0.5f, 3.0f, -1.0f, 2.0f, 2.9f};
  SamplerParams params;
  params.temperature = 0.0f;
  params.logit_bias = {{2, 4.5f}, {1, -0.5f}};  // 2: 3.5, now the argmax; 1: 2.5
  Sampler sampler(params, 5);
  std::vector<float> copy = logits;
  EXPECT_EQ(sampler.sample(copy), 2);
  EXPECT_FLOAT_EQ(copy[2], 3.5f);  // applied in place, as the penalties are
  params.repeat_penalty = 2.0f;
  Sampler penalized(params, 5);
  penalized.accept(2);  // (-1 + 4.5) / 2 = 1.75: the bias first, then the penalty
  copy = logits;
  EXPECT_EQ(penalized.sample(copy), 4);
  EXPECT_FLOAT_EQ(copy[2], 1.75f);
  params.repeat_penalty = 1.0f;
  params.logit_bias = {{0, 100.0f}};
  params.temperature = 1.0f;
  Sampler forced(params, 5);
  for (int i = 0; i < 20; ++i) {
    copy = logits;
    EXPECT_EQ(forced.sample(copy), 0);
  }
  EXPECT_THROW(Sampler(SamplerParams{.logit_bias = {{5, 1.0f}}}, 5), Error);   // outside the vocabulary
  EXPECT_THROW(Sampler(SamplerParams{.logit_bias = {{-1, 1.0f}}}, 5), Error);
  EXPECT_THROW(Sampler(SamplerParams{.logit_bias = {{1, std::numeric_limits<float>::quiet_NaN()}}}, 5), Error);
}

// ---------------------------------------------------------------- mask

TEST(Sampler, MaskedTokensAreNeverDrawn) {
  const std::vector<float> logits = random_logits(50, 47, 2.0);
  std::vector<uint8_t> mask(50, 0);
  for (int id : {3, 8, 9, 20, 44}) mask[static_cast<size_t>(id)] = 1;
  SamplerParams params = plain_params(1.0f, 53);
  Sampler sampler(params, 50);
  expect_matches(observed_frequencies(sampler, logits, 100000, &mask), reference_distribution(logits, params, &mask),
                 0.006);
}

TEST(Sampler, MaskIsAppliedBeforeTopK) {
  // top_k = 1 over the allowed tokens: the best allowed one, always.
  const std::vector<float> logits = {5.0f, 4.0f, 3.0f, 2.0f};
  std::vector<uint8_t> mask = {0, 0, 1, 1};
  SamplerParams params = plain_params(1.0f, 59);
  params.top_k = 1;
  Sampler sampler(params, 4);
  expect_matches(observed_frequencies(sampler, logits, 1000, &mask), {0.0, 0.0, 1.0, 0.0}, 0.0);
}

TEST(Sampler, NothingAllowedIsAnError) {
  std::vector<float> logits = {1.0f, 2.0f, -std::numeric_limits<float>::infinity()};
  std::vector<uint8_t> mask = {0, 0, 1};
  Sampler sampler(plain_params(1.0f), 3);
  EXPECT_THROW(sampler.sample(logits, &mask), Error);
  SamplerParams greedy = plain_params(0.0f);
  Sampler greedy_sampler(greedy, 3);
  EXPECT_THROW(greedy_sampler.sample(logits, &mask), Error);
}

// ---------------------------------------------------------------- penalties

TEST(Sampler, PenaltiesChangeExactlyTheSeenTokensByTheRightAmounts) {
  SamplerParams params = plain_params(1.0f);
  params.repeat_penalty = 2.0f;
  params.frequency_penalty = 0.5f;
  params.presence_penalty = 0.25f;
  Sampler sampler(params, 6);
  for (int32_t token : {0, 0, 1, 2, 0}) sampler.accept(token);

  std::vector<float> logits = {2.0f, -2.0f, 0.0f, 3.0f, 1.0f, -1.0f};
  sampler.apply_penalties(logits);
  EXPECT_FLOAT_EQ(logits[0], 2.0f / 2 - (3 * 0.5f + 0.25f));  // positive: divided; seen 3 times
  EXPECT_FLOAT_EQ(logits[1], -2.0f * 2 - (1 * 0.5f + 0.25f));  // negative: multiplied
  EXPECT_FLOAT_EQ(logits[2], 0.0f - (1 * 0.5f + 0.25f));
  EXPECT_FLOAT_EQ(logits[3], 3.0f);  // never seen: untouched
  EXPECT_FLOAT_EQ(logits[4], 1.0f);
  EXPECT_FLOAT_EQ(logits[5], -1.0f);
}

TEST(Sampler, PenaltiesOnlyCountTheLastNTokens) {
  SamplerParams params = plain_params(1.0f);
  params.repeat_penalty = 2.0f;
  params.frequency_penalty = 1.0f;
  params.repeat_last_n = 3;
  Sampler sampler(params, 4);
  for (int32_t token : {0, 0, 1, 2, 1}) sampler.accept(token);  // window: 1 2 1

  std::vector<float> logits = {4.0f, 4.0f, 4.0f, 4.0f};
  sampler.apply_penalties(logits);
  EXPECT_FLOAT_EQ(logits[0], 4.0f);
  EXPECT_FLOAT_EQ(logits[1], 4.0f / 2 - 2.0f);
  EXPECT_FLOAT_EQ(logits[2], 4.0f / 2 - 1.0f);
  EXPECT_FLOAT_EQ(logits[3], 4.0f);
}

TEST(Sampler, RepeatLastNMinusOneCountsEverythingAndZeroNothing) {
  SamplerParams params = plain_params(1.0f);
  params.frequency_penalty = 1.0f;
  params.repeat_last_n = -1;
  Sampler whole(params, 2);
  params.repeat_last_n = 0;
  Sampler none(params, 2);
  for (int i = 0; i < 500; ++i) {
    whole.accept(0);
    none.accept(0);
  }
  std::vector<float> logits = {1.0f, 1.0f};
  whole.apply_penalties(logits);
  EXPECT_FLOAT_EQ(logits[0], 1.0f - 500.0f);
  logits = {1.0f, 1.0f};
  none.apply_penalties(logits);
  EXPECT_FLOAT_EQ(logits[0], 1.0f);
}

TEST(Sampler, SampleAppliesPenaltiesInPlaceAndResetForgetsHistory) {
  SamplerParams params = plain_params(0.0f);
  params.presence_penalty = 10.0f;
  Sampler sampler(params, 3);
  sampler.accept(2);
  std::vector<float> logits = {0.0f, 1.0f, 5.0f};
  EXPECT_EQ(sampler.sample(logits), 1);
  EXPECT_FLOAT_EQ(logits[2], -5.0f);
  EXPECT_FLOAT_EQ(logits[1], 1.0f);

  sampler.reset();
  logits = {0.0f, 1.0f, 5.0f};
  EXPECT_EQ(sampler.sample(logits), 2);
}

TEST(Sampler, PenaltiesShiftTheDrawnDistribution) {
  // Token 0 seen twice with frequency penalty ln(2): its weight halves twice.
  SamplerParams params = plain_params(1.0f, 61);
  params.frequency_penalty = static_cast<float>(std::log(2.0));
  Sampler sampler(params, 2);
  sampler.accept(0);
  sampler.accept(0);
  const std::vector<float> logits = {0.0f, 0.0f};
  expect_matches(observed_frequencies(sampler, logits, 100000), {0.2, 0.8}, 0.006);
}

// ---------------------------------------------------------------- seeds

std::vector<int32_t> draw_sequence(Sampler& sampler, const std::vector<float>& logits, int count) {
  std::vector<int32_t> tokens;
  for (int i = 0; i < count; ++i) {
    std::vector<float> copy = logits;
    tokens.push_back(sampler.sample(copy));
  }
  return tokens;
}

TEST(Sampler, SameSeedSameSequenceDifferentSeedDifferentSequence) {
  const std::vector<float> logits = random_logits(1000, 67, 1.0);
  SamplerParams params;
  params.seed = 12345;
  Sampler a(params, 1000);
  Sampler b(params, 1000);
  params.seed = 12346;
  Sampler c(params, 1000);
  const std::vector<int32_t> seq_a = draw_sequence(a, logits, 500);
  EXPECT_EQ(seq_a, draw_sequence(b, logits, 500));
  EXPECT_NE(seq_a, draw_sequence(c, logits, 500));

  a.reset();  // restarts the random sequence from the seed
  EXPECT_EQ(seq_a, draw_sequence(a, logits, 500));
}

TEST(Sampler, UnsetSeedIsRandom) {
  SamplerParams first;
  SamplerParams second;
  EXPECT_NE(first.seed, second.seed);
}

// ---------------------------------------------------------------- bad input

TEST(Sampler, RejectsBadParameters) {
  auto with = [](auto change) {
    SamplerParams p;
    change(p);
    return p;
  };
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(Sampler(with([&](SamplerParams& p) { p.temperature = nan; }), 10), Error);
  EXPECT_THROW(Sampler(with([&](SamplerParams& p) { p.top_p = -0.1f; }), 10), Error);
  EXPECT_THROW(Sampler(with([&](SamplerParams& p) { p.top_p = nan; }), 10), Error);
  EXPECT_THROW(Sampler(with([&](SamplerParams& p) { p.min_p = 1.5f; }), 10), Error);
  EXPECT_THROW(Sampler(with([&](SamplerParams& p) { p.repeat_penalty = 0.0f; }), 10), Error);
  EXPECT_THROW(Sampler(with([&](SamplerParams& p) { p.repeat_last_n = -2; }), 10), Error);
  EXPECT_THROW(Sampler(with([&](SamplerParams& p) { p.frequency_penalty = nan; }), 10), Error);
  EXPECT_THROW(Sampler(SamplerParams{}, 0), Error);
  try {
    Sampler(with([](SamplerParams& p) { p.repeat_penalty = -1.0f; }), 10);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("repeat_penalty"), std::string::npos) << e.what();
  }
}

TEST(Sampler, RejectsMismatchedSizesBadLogitsAndBadTokens) {
  Sampler sampler(plain_params(1.0f), 4);
  std::vector<float> short_logits = {1.0f, 2.0f};
  EXPECT_THROW(sampler.sample(short_logits), Error);
  std::vector<float> logits = {1.0f, 2.0f, 3.0f, 4.0f};
  std::vector<uint8_t> short_mask = {1, 1};
  EXPECT_THROW(sampler.sample(logits, &short_mask), Error);
  std::vector<float> nan_logits = {1.0f, std::numeric_limits<float>::quiet_NaN(), 3.0f, 4.0f};
  EXPECT_THROW(sampler.sample(nan_logits), Error);
  std::vector<float> inf_logits = {1.0f, std::numeric_limits<float>::infinity(), 3.0f, 4.0f};
  EXPECT_THROW(sampler.sample(inf_logits), Error);
  EXPECT_THROW(sampler.accept(4), Error);
  EXPECT_THROW(sampler.accept(-1), Error);
}

}  // namespace
}  // namespace warden::sample
