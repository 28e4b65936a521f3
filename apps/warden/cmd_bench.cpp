// warden bench -m FILE [-p 512] [-n 128] [-d 0] [-r REPS] [-t THREADS] [--json]:
// prompt processing (one batch of p tokens) and generation (n single-token
// steps) speed in tokens/s, mean ± sd over REPS runs, and the process's peak
// RSS, printed as a table like llama-bench's. With -d (llama-bench's
// --n-depth), both tests start after d tokens already in the KV cache (a
// long conversation), prefilled once and untimed. Tokens are random ids (the speed
// of a forward pass does not depend on which tokens it sees), so no tokenizer
// is needed and any loadable model file can be measured. With -n, the decode
// roofline too: the tokens/s at which reading the weights one token needs
// would take all the time (model/roofline.h), measured right after each
// generation run, and what fraction of it that run reached. The KV cache a
// token attends over is read too: its mean bytes per generated token are
// added at the bandwidth the passes measured. Per run, because
// this VM's memory bandwidth moves between runs (35 to 60 GB/s with two
// threads): a run is compared with the memory of its own moment.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <random>

#include <nlohmann/json.hpp>

#include "command.h"
#include "model/forward.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "model/roofline.h"
#include "tensor/quant.h"
#include "util/error.h"
#include "util/log.h"
#include "util/thread_pool.h"

namespace {

using namespace warden;

struct BenchArgs {
  std::string model;
  int64_t n_prompt = 512;
  int64_t n_gen = 128;
  int64_t n_depth = 0;
  int reps = 5;
  int threads = 0;
  model::KvCacheTypes cache_types;
  bool json = false;
};

struct Stats {
  double mean = 0, sd = 0;
};

Stats stats_of(const std::vector<double>& v) {
  Stats s;
  if (v.empty()) return s;
  for (double x : v) s.mean += x;
  s.mean /= double(v.size());
  if (v.size() > 1) {
    double sq = 0;
    for (double x : v) sq += (x - s.mean) * (x - s.mean);
    s.sd = std::sqrt(sq / double(v.size() - 1));
  }
  return s;
}

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::vector<int32_t> random_tokens(int64_t n, int64_t n_vocab, std::mt19937& rng) {
  std::uniform_int_distribution<int32_t> pick(0, int32_t(n_vocab - 1));
  std::vector<int32_t> tokens(static_cast<size_t>(n));
  for (auto& t : tokens) t = pick(rng);
  return tokens;
}

// The tokens as one batch at positions depth, depth + 1, ...
void run_batch(model::Forward& fwd, model::KvCache& cache, const std::vector<int32_t>& tokens, int64_t depth) {
  std::vector<model::BatchToken> batch(tokens.size());
  for (size_t i = 0; i < tokens.size(); i++) batch[i] = {tokens[i], depth + int64_t(i), 0, i + 1 == tokens.size()};
  fwd.run(batch, cache);
}

// One prefill of n tokens as a single batch after the first `depth`
// positions of the cache (what a previous test wrote past them is
// forgotten); tokens/s.
double run_prompt(model::Forward& fwd, model::KvCache& cache, const std::vector<int32_t>& tokens, int64_t depth) {
  cache.truncate(0, depth);
  const auto start = Clock::now();
  run_batch(fwd, cache, tokens, depth);
  return double(tokens.size()) / seconds_since(start);
}

// n single-token steps after the first `depth` positions, as llama-bench's
// tg test; tokens/s.
double run_generation(model::Forward& fwd, model::KvCache& cache, const std::vector<int32_t>& tokens, int64_t depth) {
  cache.truncate(0, depth);
  const auto start = Clock::now();
  for (size_t i = 0; i < tokens.size(); i++) fwd.run({{tokens[i], depth + int64_t(i), 0, true}}, cache);
  return double(tokens.size()) / seconds_since(start);
}

// The median of `v` (v is not empty).
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t h = v.size() / 2;
  return v.size() % 2 ? v[h] : (v[h - 1] + v[h]) / 2;
}

struct Roofline {
  size_t bytes_per_token = 0;               // weights, as the read passes read them
  double kv_bytes_per_token = 0;            // the KV cache attended over, mean per generated token
  std::vector<std::vector<double>> read_s;  // per generation run, the weights' read passes right after it
  std::vector<double> fractions;            // per run: its tokens/s over the roofline of its moment

  // A token's time at the roofline from the weights' read time: the KV
  // cache is read at the same bandwidth.
  double token_s(double weights_read_s) const {
    return weights_read_s * (1.0 + kv_bytes_per_token / double(bytes_per_token));
  }
  void add_run(double tg_tokens_per_s, std::vector<double> passes) {
    fractions.push_back(tg_tokens_per_s * token_s(median(passes)));
    read_s.push_back(std::move(passes));
  }
  double median_read_s() const {
    std::vector<double> all;
    for (const auto& passes : read_s) all.insert(all.end(), passes.begin(), passes.end());
    return median(all);
  }
  double tokens_per_s() const { return 1.0 / token_s(median_read_s()); }
  double gb_per_s() const { return double(bytes_per_token) / median_read_s() / 1e9; }
};

double peak_rss_mib() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return double(usage.ru_maxrss) / 1024.0;  // Linux reports KiB
}

// What the load line says of the repacked weights: whether they were mapped
// from the cache, and how much of them decode reaches through huge pages.
std::string packed_note(const model::Model& m) {
  if (m.packed_bytes() == 0) return "";
  char note[160];
  std::snprintf(note, sizeof note, " (packed weights %s; %.0f of %.0f MiB in huge pages)",
                m.packed_from_cache() ? "mapped from the cache" : "packed by this load",
                double(m.packed_huge_bytes()) / (1024.0 * 1024.0), double(m.packed_bytes()) / (1024.0 * 1024.0));
  return note;
}

void print_table(const BenchArgs& a, const model::Model& m, double file_mib, int threads, const Stats& pp,
                 const Stats& tg, const Roofline& roof, double load_s, double rss_mib) {
  std::printf("| %-24s | %10s | %7s | %-10s | %14s | %16s |\n", "model", "size", "threads", "kernel", "test", "t/s");
  std::printf("| %-24s | %10s | %7s | %-10s | %14s | %16s |\n", "------------------------", "---------:", "------:",
              "----------", "-------------:", "---------------:");
  auto row = [&](const char* test, int64_t n, const Stats& s) {
    char name[32], size[32], label[48], value[48];
    std::snprintf(name, sizeof name, "%s", m.config().arch.c_str());
    std::snprintf(size, sizeof size, "%.2f MiB", file_mib);
    if (a.n_depth > 0)  // llama-bench's label for a test at depth
      std::snprintf(label, sizeof label, "%s%lld @ d%lld", test, (long long)n, (long long)a.n_depth);
    else
      std::snprintf(label, sizeof label, "%s%lld", test, (long long)n);
    std::snprintf(value, sizeof value, "%.2f ± %.2f", s.mean, s.sd);
    std::printf("| %-24s | %10s | %7d | %-10s | %14s | %16s |\n", name, size, threads, tensor::kernel_set_name(), label,
                value);
  };
  if (a.n_prompt > 0) row("pp", a.n_prompt, pp);
  if (a.n_gen > 0) row("tg", a.n_gen, tg);
  std::printf("\nload: %.3f s%s, peak RSS: %.1f MiB, KV cache: %s keys, %s values, reps: %d\n", load_s,
              packed_note(m).c_str(), rss_mib,
              std::string(gguf::type_name(a.cache_types.key)).c_str(),
              std::string(gguf::type_name(a.cache_types.value)).c_str(), a.reps);
  if (a.n_gen > 0)
    std::printf("roofline: a token reads %.1f MB of weights and %.1f MB of KV cache; %d threads read them in %.2f ms "
                "(%.1f GB/s, median over the runs) = %.2f tokens/s; each tg%lld run reached %.0f %% (median; "
                "%.0f-%.0f %%) of the roofline measured right after it\n",
                double(roof.bytes_per_token) / 1e6, roof.kv_bytes_per_token / 1e6, threads, 1e3 / roof.tokens_per_s(),
                roof.gb_per_s(), roof.tokens_per_s(), (long long)a.n_gen, 100 * median(roof.fractions),
                100 * *std::min_element(roof.fractions.begin(), roof.fractions.end()),
                100 * *std::max_element(roof.fractions.begin(), roof.fractions.end()));
}

int run_bench(const BenchArgs& a) {
  if (a.n_prompt < 0 || a.n_gen < 0 || a.n_depth < 0) throw UsageError("-p, -n and -d must not be negative");
  if (a.n_prompt == 0 && a.n_gen == 0) throw UsageError("nothing to measure: -p and -n are both 0");
  if (a.reps < 1) throw UsageError("-r must be at least 1");
  if (a.threads < 0) throw UsageError("-t must not be negative");

  const auto load_start = Clock::now();
  auto m = model::Model::load(a.model);
  const double load_s = seconds_since(load_start);
  const model::Config& c = m->config();
  const int64_t n_ctx = a.n_depth + std::max(a.n_prompt, a.n_gen);
  if (c.n_ctx_train > 0 && n_ctx > c.n_ctx_train)
    throw Error("-d plus -p/-n make " + std::to_string(n_ctx) + " positions, past the model's context of " +
                std::to_string(c.n_ctx_train));
  const int threads = a.threads > 0 ? a.threads : ThreadPool::default_threads();
  ThreadPool pool(threads);
  model::KvCache cache(c, n_ctx, 1, a.cache_types);
  model::Forward fwd(*m, pool);
  std::mt19937 rng(1234);

  std::vector<double> pp, tg;
  Roofline roof;
  const std::vector<model::ReadSpan> reads = model::decode_read_set(*m);
  roof.bytes_per_token = model::total_bytes(reads);
  // Generated token i attends over depth + i + 1 positions of K and V in every layer.
  roof.kv_bytes_per_token = double(cache.bytes_per_position()) * (double(a.n_depth) + double(a.n_gen + 1) / 2);
  const auto prompt = random_tokens(a.n_prompt, c.n_vocab, rng);
  const auto gen = random_tokens(a.n_gen, c.n_vocab, rng);
  // The depth, once, in batches of at most 512 tokens; the tests start after it.
  const auto depth = random_tokens(a.n_depth, c.n_vocab, rng);
  for (int64_t at = 0; at < a.n_depth; at += 512) {
    const auto first = depth.begin() + at;
    run_batch(fwd, cache, std::vector<int32_t>(first, first + std::min<int64_t>(512, a.n_depth - at)), at);
  }
  // One untimed warm-up of each test pages the weights in and sizes buffers.
  if (a.n_prompt > 0) run_prompt(fwd, cache, prompt, a.n_depth);
  if (a.n_gen > 0)
    run_generation(fwd, cache, std::vector<int32_t>(gen.begin(), gen.begin() + std::min<int64_t>(a.n_gen, 4)),
                   a.n_depth);
  for (int r = 0; r < a.reps; r++) {
    if (a.n_prompt > 0) pp.push_back(run_prompt(fwd, cache, prompt, a.n_depth));
    if (a.n_gen > 0) {
      tg.push_back(run_generation(fwd, cache, gen, a.n_depth));
      std::vector<double> passes;
      for (int k = 0; k < 3; k++) passes.push_back(model::time_read_pass(reads, pool));
      roof.add_run(tg.back(), std::move(passes));
    }
  }
  const Stats pps = stats_of(pp), tgs = stats_of(tg);
  const double file_mib = double(std::filesystem::file_size(a.model)) / (1024.0 * 1024.0);
  const double rss = peak_rss_mib();

  if (a.json) {
    nlohmann::json j = {{"model", a.model},         {"arch", c.arch},        {"file_mib", file_mib},
                        {"threads", threads},       {"kernels", tensor::kernel_set_name()},
                        {"reps", a.reps},           {"load_s", load_s},      {"peak_rss_mib", rss},
                        {"packed_from_cache", m->packed_from_cache()},
                        {"packed_mib", double(m->packed_bytes()) / (1024.0 * 1024.0)},
                        {"packed_huge_page_mib", double(m->packed_huge_bytes()) / (1024.0 * 1024.0)},
                        {"depth", a.n_depth},
                        {"cache_type_k", gguf::type_name(a.cache_types.key)},
                        {"cache_type_v", gguf::type_name(a.cache_types.value)},
                        {"kv_cache_mib", double(cache.bytes()) / (1024.0 * 1024.0)}};
    if (a.n_prompt > 0) j["pp"] = {{"n", a.n_prompt}, {"mean", pps.mean}, {"sd", pps.sd}, {"samples", pp}};
    if (a.n_gen > 0) {
      j["tg"] = {{"n", a.n_gen}, {"mean", tgs.mean}, {"sd", tgs.sd}, {"samples", tg}};
      j["roofline"] = {{"bytes_per_token", roof.bytes_per_token}, {"kv_bytes_per_token", roof.kv_bytes_per_token},
                       {"read_s", roof.read_s},
                       {"gb_per_s", roof.gb_per_s()},          {"tokens_per_s", roof.tokens_per_s()},
                       {"tg_fraction", median(roof.fractions)}, {"tg_fraction_samples", roof.fractions}};
    }
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    print_table(a, *m, file_mib, threads, pps, tgs, roof, load_s, rss);
  }
  return 0;
}

WARDEN_COMMAND("bench", "Measure prompt and generation speed of a GGUF model (like llama-bench)", [](CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  app.add_option("-m,--model", a->model, "GGUF model file")->required();
  app.add_option("-p,--n-prompt", a->n_prompt, "Prompt tokens processed as one batch (0 = skip)")
      ->capture_default_str();
  app.add_option("-n,--n-gen", a->n_gen, "Tokens generated one at a time (0 = skip)")->capture_default_str();
  app.add_option("-d,--n-depth", a->n_depth, "Tokens already in the KV cache when each test starts")
      ->capture_default_str();
  app.add_option("-r,--repetitions", a->reps, "Timed repetitions of each test")->capture_default_str();
  warden::cli::add_threads_option(app, a->threads);
  warden::cli::add_cache_type_options(app, a->cache_types);
  app.add_flag("--json", a->json, "Print the results as JSON");
  return [a] { return run_bench(*a); };
});

}  // namespace
