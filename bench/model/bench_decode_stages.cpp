// Where a decode step's time goes, stage by stage, next to a plain read of
// the same weights in the same minute (model/roofline.h's read pass).
//
// Each round decodes 128 tokens after DEPTH cached ones, timing every stage
// of the team's steps per member (Forward::time_stages), then reads the
// step's weights five times. For the stages that multiply by weights it
// prints the rate at which they read them (their bytes over the slower
// member's time) as a fraction of the read pass's rate; the attention's
// bytes are the KV cache it reads. What the stages and the barriers leave
// of a member's step is the norms, the activations' conversions and SwiGLU;
// what the team's steps leave of the whole step, the embedding lookup and
// waking the team.
//
// Why: a decode step's distance from the roofline is the sum of small
// things (short streams, waits, work between the matrices), and this VM's
// memory changes speed from one minute to the next, so the stages have to
// be measured together with the read pass they are compared to.
//   WARDEN_BENCH_MODEL=q3-q4km.gguf build/bench/bench_decode_stages [ROUNDS] [DEPTH]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "median.h"
#include "model/forward.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "model/roofline.h"
#include "util/thread_pool.h"

namespace model = warden::model;
using warden::bench::median;
using Forward = model::Forward;

namespace {

constexpr int64_t kTokens = 128;

// Bytes a step reads of w: `slices` of its slices (experts), as the kernels read them.
double matrix_bytes(const model::Matrix& w, int64_t slices) {
  if (!w) return 0;
  const double per_slice = w.packed ? double(w.panels()) * double(w.panel_bytes) : double(w.rows) * double(w.row_bytes);
  return per_slice * double(std::min(slices, w.slices));
}

// Weight bytes a single-token step reads per stage (Forward::Stage).
std::vector<double> stage_bytes(const model::Model& m) {
  std::vector<double> bytes(Forward::kStages, 0.0);
  const int64_t used = std::max<int64_t>(1, m.config().n_expert_used);
  for (const model::Layer& l : m.layers) {
    bytes[Forward::kQkv] += matrix_bytes(l.wq, 1) + matrix_bytes(l.wk, 1) + matrix_bytes(l.wv, 1);
    bytes[Forward::kWo] += matrix_bytes(l.wo, 1);
    bytes[Forward::kGateUp] += matrix_bytes(l.ffn_gate, 1) + matrix_bytes(l.ffn_up, 1);
    bytes[Forward::kDown] += matrix_bytes(l.ffn_down, 1);
    bytes[Forward::kRouter] += matrix_bytes(l.router, 1);
    bytes[Forward::kExperts] +=
        matrix_bytes(l.gate_exps, used) + matrix_bytes(l.up_exps, used) + matrix_bytes(l.down_exps, used);
  }
  bytes[Forward::kOutput] = matrix_bytes(m.output, 1);
  return bytes;
}

}  // namespace

int main(int argc, char** argv) {
  const char* path = std::getenv("WARDEN_BENCH_MODEL");
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 5;
  const int64_t depth = argc > 2 ? std::atoll(argv[2]) : 0;
  if (!path || rounds < 1 || depth < 0) {
    std::fprintf(stderr, "usage: WARDEN_BENCH_MODEL=FILE bench_decode_stages [ROUNDS >= 1] [DEPTH >= 0]\n");
    return 2;
  }
  auto m = model::Model::load(path);
  const model::Config& c = m->config();
  warden::ThreadPool pool(2);
  Forward forward(*m, pool);
  const std::vector<model::ReadSpan> reads = model::decode_read_set(*m);
  const double read_bytes = double(model::total_bytes(reads));
  std::vector<double> bytes = stage_bytes(*m);
  const char* const names[Forward::kStages] = {"wq, wk, wv", "attention", "wo",     "gate, up",
                                               "down",       "router",    "experts", "output"};
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> token(0, int32_t(c.n_vocab - 1));
  std::vector<float> logits;
  std::vector<double> fractions;
  for (int r = 0; r <= rounds; r++) {  // round 0 warms up
    model::KvCache cache(c, depth + kTokens, 1);
    cache.reserve(0, depth + kTokens - 1);  // as warden bench: no growth while timed
    for (int64_t at = 0; at < depth; at += 512) {
      std::vector<model::BatchToken> batch;
      for (int64_t p = at; p < std::min(depth, at + 512); p++) batch.push_back({token(rng), p, 0, p + 1 == depth});
      forward.run(batch, cache, logits);
    }
    // The attention reads every cached position's keys and values in every layer.
    bytes[Forward::kAttention] = double(cache.bytes_per_position()) * (double(depth) + double(kTokens + 1) / 2);
    std::vector<Forward::StageSeconds> times;
    forward.time_stages(&times);
    const auto start = std::chrono::steady_clock::now();
    for (int64_t s = 0; s < kTokens; s++) forward.run({{token(rng), depth + s, 0, true}}, cache, logits);
    const double step_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / kTokens;
    forward.time_stages(nullptr);
    std::vector<double> passes;
    for (int k = 0; k < 5; k++) passes.push_back(model::time_read_pass(reads, pool));
    const double read_s = median(passes), read_rate = read_bytes / read_s;
    if (r == 0) continue;
    fractions.push_back(read_s / step_s);
    std::printf("round %d: %.3f ms a step; the read pass over %.1f MB %.3f ms (%.1f GB/s): decode at %.0f %% of it\n",
                r, step_s * 1e3, read_bytes / 1e6, read_s * 1e3, read_rate / 1e9, 100 * read_s / step_s);
    std::printf("  %-12s %14s %14s %10s %8s %14s\n", "stage", "member 0 us", "member 1 us", "MB/token", "GB/s",
                "of read rate");
    auto us = [&](double seconds) { return seconds / kTokens * 1e6; };
    const size_t members = times.size();
    auto print_row = [&](const char* name, auto seconds_of, double stage_bytes) {
      double slowest = 0;
      std::printf("  %-12s", name);
      for (size_t i = 0; i < 2; i++) {
        if (i < members) {
          std::printf(" %14.0f", us(seconds_of(times[i])));
          slowest = std::max(slowest, seconds_of(times[i]) / kTokens);
        } else {
          std::printf(" %14s", "-");
        }
      }
      if (stage_bytes > 0 && slowest > 0)
        std::printf(" %10.1f %8.1f %12.0f %%", stage_bytes / 1e6, stage_bytes / slowest / 1e9,
                    100 * stage_bytes / slowest / read_rate);
      std::printf("\n");
    };
    for (int k = 0; k < Forward::kStages; k++) {
      if (bytes[size_t(k)] == 0) continue;  // a stage this architecture does not have
      print_row(names[k], [&](const Forward::StageSeconds& t) { return t.stage[k]; }, bytes[size_t(k)]);
    }
    print_row("barriers", [](const Forward::StageSeconds& t) { return t.barriers; }, 0);
    print_row("other", [](const Forward::StageSeconds& t) {
      double rest = t.steps - t.barriers;
      for (double s : t.stage) rest -= s;
      return rest;
    }, 0);
    print_row("team's steps", [](const Forward::StageSeconds& t) { return t.steps; }, 0);
    double team_s = 0;
    for (const Forward::StageSeconds& t : times) team_s = std::max(team_s, t.steps / kTokens);
    std::printf("  before and after the team's steps (the embedding lookup, waking the team): %.0f us\n",
                (step_s - team_s) * 1e6);
  }
  std::printf("decode at %.0f %% of the read pass (median of %d rounds)\n", 100 * median(fractions), rounds);
  return 0;
}
