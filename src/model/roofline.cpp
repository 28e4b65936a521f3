#include "model/roofline.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace warden::model {
namespace {

// The first `slices` slices of w as the kernels read them: the packed copy's
// runs (decode_layout.h), or the rows in the file.
void add_matrix_spans(const Matrix& w, int64_t slices, std::vector<ReadSpan>& spans) {
  if (!w.packed) {
    spans.push_back({w.data, size_t(w.rows) * w.row_bytes * size_t(slices)});
    return;
  }
  for (int64_t p = 0, run_end = 0; p < w.panels(); p = run_end) {
    const uint8_t* data = w.packed_panel(p, 0, run_end);
    // A matrix of several slices is one run of them all.
    spans.push_back({data, size_t((run_end - p) * (w.runs.empty() ? slices : 1)) * w.panel_bytes});
  }
}

// Sums the bytes as 16-byte words (SSE2, part of x86-64) with four
// independent accumulators, so the loads, not an addition chain, set the
// pace; elsewhere 8-byte words.
uint64_t sum_words(const uint8_t* p, size_t bytes) {
  size_t i = 0;
  uint64_t total = 0;
#if defined(__SSE2__)
  __m128i a = _mm_setzero_si128(), b = a, c = a, d = a;
  for (; i + 64 <= bytes; i += 64) {
    a = _mm_add_epi64(a, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i)));
    b = _mm_add_epi64(b, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i + 16)));
    c = _mm_add_epi64(c, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i + 32)));
    d = _mm_add_epi64(d, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i + 48)));
  }
  alignas(16) uint64_t lanes[2];
  _mm_store_si128(reinterpret_cast<__m128i*>(lanes), _mm_add_epi64(_mm_add_epi64(a, b), _mm_add_epi64(c, d)));
  total = lanes[0] + lanes[1];
#endif
  for (; i + 8 <= bytes; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, sizeof w);
    total += w;
  }
  for (; i < bytes; i++) total += p[i];
  return total;
}

}  // namespace

std::vector<ReadSpan> decode_read_set(const Model& m) {
  std::vector<ReadSpan> spans;
  const Config& c = m.config();
  for (const Layer& l : m.layers) {
    for (const Matrix* w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.ffn_gate, &l.ffn_up, &l.ffn_down, &l.router})
      if (*w) add_matrix_spans(*w, w->slices, spans);
    for (const Matrix* w : {&l.gate_exps, &l.up_exps, &l.down_exps})
      if (*w) add_matrix_spans(*w, std::min(c.n_expert_used, w->slices), spans);
  }
  add_matrix_spans(m.output, 1, spans);
  // In address order, so that the read pass's even split gives each thread
  // one run of memory, the plain stream a roofline assumes, however the
  // packed copy orders the matrices.
  std::sort(spans.begin(), spans.end(), [](const ReadSpan& a, const ReadSpan& b) { return a.data < b.data; });
  return spans;
}

size_t total_bytes(const std::vector<ReadSpan>& spans) {
  size_t total = 0;
  for (const ReadSpan& s : spans) total += s.bytes;
  return total;
}

double time_read_pass(const std::vector<ReadSpan>& spans, ThreadPool& pool) {
  const size_t total = total_bytes(spans);
  const int threads = pool.size();
  std::vector<uint64_t> sums(size_t(threads), 0);
  const auto start = std::chrono::steady_clock::now();
  pool.parallel_for(threads, [&](int64_t begin, int64_t end, int) {
    for (int64_t t = begin; t < end; t++) {
      // Thread t reads bytes [from, to) of the spans laid end to end.
      const size_t from = total * size_t(t) / size_t(threads), to = total * size_t(t + 1) / size_t(threads);
      size_t at = 0;
      uint64_t sum = 0;
      for (const ReadSpan& s : spans) {
        const size_t lo = std::max(from, at), hi = std::min(to, at + s.bytes);
        if (lo < hi) sum += sum_words(s.data + (lo - at), hi - lo);
        at += s.bytes;
      }
      sums[size_t(t)] = sum;
    }
  });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // The sums must be observable or the reads could be optimised away.
  volatile uint64_t sink = 0;
  for (uint64_t s : sums) sink = sink + s;
  return seconds;
}

double time_handoff(ThreadPool& pool) {
  if (pool.team_size() < 2) return 0;
  constexpr int kHandoffs = 4000;
  alignas(64) std::atomic<int> turn{0};
  double seconds = 0;
  // Thread 0 takes the even turns, thread 1 the odd ones.
  pool.run_team([&](int index) {
    if (index > 1) return;
    const auto start = std::chrono::steady_clock::now();
    for (int i = index; i < kHandoffs; i += 2) {
      while (turn.load(std::memory_order_acquire) != i) {
      }
      turn.store(i + 1, std::memory_order_release);
    }
    if (index == 0) seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  });
  return seconds / kHandoffs;
}

}  // namespace warden::model
