// What the order of a decode team's weight reads costs with no arithmetic
// and no barrier: two threads sum the bytes of a model's decode read set
// (model/roofline.h), each either its share of every matrix as the team
// splits them (half of each matrix, matrix after matrix: a run per matrix,
// beside the other thread's) or its half of all the bytes in one run (the
// roofline's read pass). The two alternate 30 times; prints the median ratio
// (docs/performance.md, "A decode thread's weights in one run"):
//   WARDEN_BENCH_MODEL=q3-q4km.gguf build/bench/bench_read_order
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "model/model.h"
#include "model/roofline.h"
#include "util/thread_pool.h"

namespace model = warden::model;

namespace {

uint64_t sum_bytes(const uint8_t* p, size_t bytes) {
  uint64_t a = 0, b = 0, c = 0, d = 0;
  size_t i = 0;
  for (; i + 32 <= bytes; i += 32) {
    uint64_t w[4];
    __builtin_memcpy(w, p + i, sizeof w);
    a += w[0], b += w[1], c += w[2], d += w[3];
  }
  for (; i < bytes; i++) a += p[i];
  return a + b + c + d;
}

// Seconds for the pool's two threads to read `spans`: per matrix (each
// thread half of every span) or in one run each.
double read_pass(const std::vector<model::ReadSpan>& spans, bool per_matrix, warden::ThreadPool& pool) {
  size_t total = 0;
  for (const model::ReadSpan& s : spans) total += s.bytes;
  std::vector<uint64_t> sums(2);
  const auto start = std::chrono::steady_clock::now();
  pool.parallel_for(2, [&](int64_t begin, int64_t end, int) {
    for (int64_t t = begin; t < end; t++) {
      uint64_t sum = 0;
      size_t at = 0;
      for (const model::ReadSpan& s : spans) {
        size_t lo = s.bytes * size_t(t) / 2, hi = s.bytes * size_t(t + 1) / 2;
        if (!per_matrix) {
          lo = std::clamp(total * size_t(t) / 2, at, at + s.bytes) - at;
          hi = std::clamp(total * size_t(t + 1) / 2, at, at + s.bytes) - at;
        }
        sum += sum_bytes(s.data + lo, hi - lo);
        at += s.bytes;
      }
      sums[size_t(t)] = sum;
    }
  });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  volatile uint64_t sink = sums[0] + sums[1];
  (void)sink;
  return seconds;
}

}  // namespace

int main() {
  const char* path = std::getenv("WARDEN_BENCH_MODEL");
  if (!path) {
    std::fprintf(stderr, "set WARDEN_BENCH_MODEL to a GGUF file\n");
    return 2;
  }
  // Packed for one decode thread: a run per matrix, as the two threads'
  // halves of every matrix would lie without the decode layout
  // (model/decode_layout.h).
  const auto m = model::Model::load(path, {}, 1);
  warden::ThreadPool pool(2);
  const std::vector<model::ReadSpan> spans = model::decode_read_set(*m);
  std::vector<double> ratios;
  for (int r = 0; r < 30; r++) {
    // Each order goes first in every other pair.
    const double first = read_pass(spans, r % 2 == 0, pool), second = read_pass(spans, r % 2 != 0, pool);
    ratios.push_back(r % 2 == 0 ? first / second : second / first);
  }
  std::sort(ratios.begin(), ratios.end());
  std::printf("%zu matrices: reading each thread's half of every matrix takes %.4f times as long as each thread's half "
              "of all the bytes in one run (median of 30; quartiles %.4f-%.4f)\n",
              spans.size(), ratios[15], ratios[7], ratios[22]);
  return 0;
}
