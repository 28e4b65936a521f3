// One sampling step over a Qwen-sized vocabulary (151936 logits) for the
// sampler configurations that matter: llama.cpp's defaults, greedy, top-p
// alone over the whole vocabulary (the case that cannot lean on top-k),
// OpenAI's defaults (no filter at all), and
// the defaults with a constrained-decoding mask and a penalty window.
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "sample/sampler.h"

namespace {

using warden::sample::Sampler;
using warden::sample::SamplerParams;

constexpr int kVocab = 151936;

// Logits shaped like a language model's: most tokens far below a handful of
// plausible ones.
std::vector<float> model_like_logits(double spread) {
  std::mt19937_64 rng(1);
  std::normal_distribution<double> normal(0.0, spread);
  std::vector<float> logits(kVocab);
  for (float& l : logits) l = static_cast<float>(normal(rng));
  return logits;
}

void run_steps(benchmark::State& state, SamplerParams params, const std::vector<uint8_t>* mask) {
  const std::vector<float> logits = model_like_logits(static_cast<double>(state.range(0)) / 10.0);
  params.seed = 7;
  Sampler sampler(params, kVocab);
  for (int t = 0; t < 64; ++t) sampler.accept(t * 97 % kVocab);
  std::vector<float> step = logits;
  for (auto _ : state) {
    state.PauseTiming();
    step = logits;  // penalties edit the logits in place
    state.ResumeTiming();
    benchmark::DoNotOptimize(sampler.sample(step, mask));
  }
}

void BM_DefaultChain(benchmark::State& state) { run_steps(state, SamplerParams{}, nullptr); }

void BM_Greedy(benchmark::State& state) {
  SamplerParams params;
  params.temperature = 0.0f;
  run_steps(state, params, nullptr);
}

void BM_TopPOnly(benchmark::State& state) {
  SamplerParams params;
  params.top_k = 0;
  params.min_p = 0.0f;
  run_steps(state, params, nullptr);
}

// OpenAI's defaults (temperature 1, no top-k, top-p or min-p: every token
// a candidate), which warden serve used before it took llama-server's.
void BM_WholeVocabulary(benchmark::State& state) {
  SamplerParams params;
  params.temperature = 1.0f;
  params.top_k = 0;
  params.top_p = 1.0f;
  params.min_p = 0.0f;
  run_steps(state, params, nullptr);
}

void BM_DefaultChainWithMaskAndPenalties(benchmark::State& state) {
  SamplerParams params;
  params.repeat_penalty = 1.1f;
  params.frequency_penalty = 0.2f;
  std::vector<uint8_t> mask(kVocab, 0);
  for (int i = 0; i < kVocab; i += 3) mask[static_cast<size_t>(i)] = 1;
  run_steps(state, params, &mask);
}

// The argument is ten times the logits' standard deviation: 10 is flat
// (top-p keeps many tokens), 40 is peaked.
BENCHMARK(BM_DefaultChain)->Arg(10)->Arg(40)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Greedy)->Arg(40)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_TopPOnly)->Arg(10)->Arg(40)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_WholeVocabulary)->Arg(10)->Arg(40)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_DefaultChainWithMaskAndPenalties)->Arg(40)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
