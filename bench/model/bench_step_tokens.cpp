// What a decode step costs by the number of tokens it carries: the price of
// checking drafted tokens (lookup decoding, src/engine/lookup.h) next to a
// plain one-token step. Each iteration runs one step of T consecutive tokens
// of one sequence after 64 cached positions, then cuts the cache back.
// The model comes from WARDEN_BENCH_MODEL (a GGUF file), two threads:
//   WARDEN_BENCH_MODEL=q3-q4km.gguf build/bench/bench_step_tokens
#include <benchmark/benchmark.h>

#include <cstdlib>
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
  std::unique_ptr<warden::model::KvCache> cache;
};

Loaded* loaded() {
  static Loaded* l = [] {
    const char* path = std::getenv("WARDEN_BENCH_MODEL");
    if (!path) return static_cast<Loaded*>(nullptr);
    auto* m = new Loaded;
    m->model = warden::model::Model::load(path);
    m->pool = std::make_unique<warden::ThreadPool>(2);
    m->forward = std::make_unique<warden::model::Forward>(*m->model, *m->pool);
    m->cache = std::make_unique<warden::model::KvCache>(m->model->config(), 256, 1);
    std::vector<warden::model::BatchToken> prompt;
    for (int64_t i = 0; i < 64; i++) prompt.push_back({int32_t(100 + i), i, 0, i == 63});
    m->forward->run(prompt, *m->cache);
    return m;
  }();
  return l;
}

void BM_DecodeStep(benchmark::State& state) {
  Loaded* l = loaded();
  if (!l) return state.SkipWithError("set WARDEN_BENCH_MODEL to a GGUF file");
  const int64_t tokens = state.range(0);
  std::vector<warden::model::BatchToken> step;
  for (int64_t i = 0; i < tokens; i++) step.push_back({int32_t(500 + i), 64 + i, 0, true});
  for (auto _ : state) {
    benchmark::DoNotOptimize(l->forward->run(step, *l->cache));
    l->cache->truncate(0, 64);
  }
  state.counters["tokens_per_s"] = benchmark::Counter(double(tokens), benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

BENCHMARK(BM_DecodeStep)->DenseRange(1, 8)->Arg(12)->Arg(16)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_MAIN();
