// Decode speed of the packed copy laid out for a team of two (each thread's
// panels one run: model/decode_layout.h) against the copy laid out matrix by
// matrix (packed for one thread), without the pages' placement deciding it.
//
// Why the swap: on this project's VM, two copies of the same bytes read at
// rates up to 9 % apart for minutes on end (some guest pages are simply
// faster), more than the layouts differ, so comparing two separately packed
// copies measured their pages. Here the two layouts live in two buffers and
// trade buffers every round; the result is the geometric mean of the two
// placements' median step-time ratios. Tokens alternate between the layouts
// within a round (128 steps each from an empty cache), and every step checks
// that both give the same logits.
//   WARDEN_BENCH_MODEL=q3-q4km.gguf build/bench/bench_layout_swap [ROUNDS]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "median.h"
#include "model/forward.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "util/mapped_file.h"
#include "util/thread_pool.h"

namespace model = warden::model;
using warden::bench::median;

namespace {

// Points every packed matrix of `m` that lies in [from, from + bytes) at the
// same offset of `to` (the bytes must already be there).
void move_pointers(model::Model& m, const uint8_t* from, size_t bytes, const uint8_t* to) {
  auto move = [&](model::Matrix& w) {
    if (!w.packed || w.packed < from || w.packed >= from + bytes) return;
    w.packed = to + (w.packed - from);
    for (model::Matrix::PanelRun& run : w.runs) run.data = to + (run.data - from);
  };
  for (model::Layer& l : m.layers)
    for (model::Matrix* w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.ffn_gate, &l.ffn_up, &l.ffn_down, &l.router, &l.gate_exps,
                             &l.up_exps, &l.down_exps})
      move(*w);
  move(m.output);
}

struct Placed {
  std::unique_ptr<model::Model> model;
  size_t bytes;
  uint8_t* at;
};

void place(Placed& p, uint8_t* to, const uint8_t* from) {
  std::memcpy(to, from, p.bytes);
  move_pointers(*p.model, from, p.bytes, to);
  p.at = to;
}

}  // namespace

int main(int argc, char** argv) {
  const char* path = std::getenv("WARDEN_BENCH_MODEL");
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 10;
  if (!path || rounds < 2) {
    std::fprintf(stderr, "usage: WARDEN_BENCH_MODEL=FILE bench_layout_swap [ROUNDS >= 2]\n");
    return 2;
  }
  ::setenv("WARDEN_PACKED_CACHE_MIB", "0", 1);  // fresh anonymous copies; the user's cache is left alone
  Placed layouts[2];  // packed for one thread (matrix by matrix), for two
  for (int k = 0; k < 2; k++) {
    layouts[k].model = model::Model::load(path, {}, k + 1);
    const model::PackedWeights* packed = layouts[k].model->packed_weights();
    if (!packed) {
      std::fprintf(stderr, "%s: no weights were repacked, so there is no layout to compare\n", path);
      return 1;
    }
    layouts[k].bytes = packed->size();
    layouts[k].at = packed->data();
  }
  const size_t capacity = std::max(layouts[0].bytes, layouts[1].bytes);
  warden::AnonymousMemory buffers[2] = {warden::AnonymousMemory(capacity), warden::AnonymousMemory(capacity)};
  std::vector<uint8_t> spare(capacity);
  for (int k = 0; k < 2; k++) place(layouts[k], buffers[k].data(), layouts[k].at);

  warden::ThreadPool pool(2);
  model::Forward forward[2] = {model::Forward(*layouts[0].model, pool), model::Forward(*layouts[1].model, pool)};
  std::vector<double> ratios[2];  // by the buffer the one-thread layout is in
  std::vector<float> logits[2];
  for (int r = 0; r <= rounds; r++) {  // round 0 warms up
    if (r > 0) {  // trade buffers
      uint8_t* const first = layouts[0].at;
      place(layouts[0], spare.data(), first);
      place(layouts[1], first, layouts[1].at);
      place(layouts[0], first == buffers[0].data() ? buffers[1].data() : buffers[0].data(), spare.data());
    }
    const int buffer = layouts[0].at == buffers[0].data() ? 0 : 1;
    std::unique_ptr<model::KvCache> cache[2];
    for (int k = 0; k < 2; k++) cache[k] = std::make_unique<model::KvCache>(layouts[k].model->config(), 160, 1);
    double seconds[2] = {0, 0};
    for (int s = 0; s < 128; s++) {
      for (int turn = 0; turn < 2; turn++) {
        const int k = (s + r + turn) % 2;  // each layout goes first in every other step
        const std::vector<model::BatchToken> step{{int32_t(500 + s), s, 0, true}};
        const auto start = std::chrono::steady_clock::now();
        forward[k].run(step, *cache[k], logits[k]);
        seconds[k] += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      }
      if (logits[0] != logits[1]) {
        std::fprintf(stderr, "the two layouts gave different logits at step %d of round %d\n", s, r);
        return 1;
      }
    }
    std::printf("round %d, one-thread layout in buffer %d: %.3f ms a step, two-thread layout %.3f ms (%.4f)\n", r,
                buffer, seconds[0] / 128 * 1e3, seconds[1] / 128 * 1e3, seconds[1] / seconds[0]);
    if (r > 0) ratios[buffer].push_back(seconds[1] / seconds[0]);
  }
  const double in0 = median(ratios[0]), in1 = median(ratios[1]);
  std::printf("two-thread / one-thread layout: %.4f with the one-thread layout in buffer 0, %.4f in buffer 1; "
              "placement-balanced %.4f\n",
              in0, in1, std::sqrt(in0 * in1));
  return 0;
}
