// What a decode step costs by the number of tokens it carries: the price of
// checking drafted tokens (lookup decoding, src/engine/lookup.h) next to a
// plain one-token step. Each iteration runs one step of T consecutive tokens
// of one sequence after D cached positions (BM_DecodeStep/T/D; D = 64, and
// 4096 where reading the KV cache costs as much as the weights), then cuts
// the cache back. The model comes from WARDEN_BENCH_MODEL (a GGUF file), two
// threads:
//   WARDEN_BENCH_MODEL=q3-q4km.gguf build/bench/bench_step_tokens
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <vector>

#include "model/forward.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "util/thread_pool.h"

namespace {

struct Loaded {
  std::unique_ptr<warden::model::Model> model;
  std::unique_ptr<warden::ThreadPool> pool;
  std::unique_ptr<warden::model::Forward> forward;
  std::map<int64_t, std::unique_ptr<warden::model::KvCache>> caches;  // by depth
};

Loaded* loaded() {
  static Loaded* l = [] {
    const char* path = std::getenv("WARDEN_BENCH_MODEL");
    if (!path) return static_cast<Loaded*>(nullptr);
    auto* m = new Loaded;
    m->model = warden::model::Model::load(path);
    m->pool = std::make_unique<warden::ThreadPool>(2);
    m->forward = std::make_unique<warden::model::Forward>(*m->model, *m->pool);
    return m;
  }();
  return l;
}

// A cache holding `depth` prompt positions (filled on first use).
warden::model::KvCache& cache_at(Loaded& l, int64_t depth) {
  auto& cache = l.caches[depth];
  if (!cache) {
    cache = std::make_unique<warden::model::KvCache>(l.model->config(), depth + 32, 1);
    std::vector<warden::model::BatchToken> prompt;
    for (int64_t i = 0; i < depth; i++) prompt.push_back({int32_t(100 + i % 1000), i, 0, i == depth - 1});
    for (size_t i = 0; i < prompt.size(); i += 512)
      l.forward->run({prompt.begin() + long(i), prompt.begin() + long(std::min(prompt.size(), i + 512))}, *cache);
  }
  return *cache;
}

void BM_DecodeStep(benchmark::State& state) {
  Loaded* l = loaded();
  if (!l) return state.SkipWithError("set WARDEN_BENCH_MODEL to a GGUF file");
  const int64_t tokens = state.range(0), depth = state.range(1);
  warden::model::KvCache& cache = cache_at(*l, depth);
  std::vector<warden::model::BatchToken> step;
  for (int64_t i = 0; i < tokens; i++) step.push_back({int32_t(500 + i), depth + i, 0, true});
  for (auto _ : state) {
    benchmark::DoNotOptimize(l->forward->run(step, cache));
    cache.truncate(0, depth);
  }
  state.counters["tokens_per_s"] = benchmark::Counter(double(tokens), benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

BENCHMARK(BM_DecodeStep)
    ->ArgsProduct({{1, 2, 3, 4, 5, 6, 7, 8, 12, 16}, {64}})
    ->ArgsProduct({{1, 2, 4, 8}, {4096}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_MAIN();
