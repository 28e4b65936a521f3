#include "util/thread_pool.h"

#include <algorithm>
#include <chrono>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define WARDEN_CPU_RELAX() _mm_pause()
#else
#define WARDEN_CPU_RELAX() std::this_thread::yield()
#endif

namespace warden {
namespace {

// How long a thread polls before sleeping: longer than the gaps between the
// loops of one decode step, short enough not to burn a core when idle.
constexpr auto kSpinTime = std::chrono::microseconds(200);

// Polls `done` until it returns true or kSpinTime passes; returns its last value.
template <typename Done>
bool spin_until(Done done) {
  const auto deadline = std::chrono::steady_clock::now() + kSpinTime;
  for (;;) {
    for (int i = 0; i < 64; i++) {
      if (done()) return true;
      WARDEN_CPU_RELAX();
    }
    if (std::chrono::steady_clock::now() >= deadline) return done();
  }
}

// Guided chunks: each claim takes 1/(2 x threads) of what is left, so the
// first chunks are large (few claims) and the last ones small, down to
// 1/(kMinChunksPerThread x threads) of the loop: the thread that finishes
// last waits at most one small chunk for the others.
constexpr int64_t kMinChunksPerThread = 32;

}  // namespace

ThreadPool::ThreadPool(int threads) {
  threads = std::max(1, threads);
  for (int i = 1; i < threads; i++) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mutex_);
    stopping_.store(true);
  }
  start_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

int ThreadPool::default_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n ? int(n) : 1;
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn) {
  if (workers_.empty() || n <= 1) {
    if (n > 0) fn(0, n, 0);
    return;
  }
  job_ = &fn;
  job_n_ = n;
  job_min_chunk_ = std::max<int64_t>(1, n / (int64_t(size()) * kMinChunksPerThread));
  next_.store(0, std::memory_order_relaxed);
  pending_.store(int(workers_.size()), std::memory_order_relaxed);
  {
    // Under the mutex so a worker between its predicate check and its wait
    // cannot miss the new generation.
    std::lock_guard lock(mutex_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  start_cv_.notify_all();
  run_chunks(0);
  wait_until_done();
  job_ = nullptr;
}

void ThreadPool::run_chunks(int index) {
  for (;;) {
    int64_t begin = next_.load(std::memory_order_relaxed), end;
    do {
      if (begin >= job_n_) return;
      end = std::min(job_n_, begin + std::max(job_min_chunk_, (job_n_ - begin) / (2 * int64_t(size()))));
    } while (!next_.compare_exchange_weak(begin, end, std::memory_order_relaxed));
    (*job_)(begin, end, index);
  }
}

void ThreadPool::wait_until_done() {
  if (spin_until([this] { return pending_.load(std::memory_order_acquire) == 0; })) return;
  std::unique_lock lock(mutex_);
  done_cv_.wait(lock, [this] { return pending_.load(std::memory_order_acquire) == 0; });
}

uint64_t ThreadPool::wait_for_job(uint64_t seen) {
  auto ready = [&] { return stopping_.load(std::memory_order_acquire) || generation_.load(std::memory_order_acquire) != seen; };
  if (!spin_until(ready)) {
    std::unique_lock lock(mutex_);
    start_cv_.wait(lock, ready);
  }
  return generation_.load(std::memory_order_acquire);
}

void ThreadPool::worker_loop(int index) {
  uint64_t seen = 0;
  for (;;) {
    seen = wait_for_job(seen);
    if (stopping_.load(std::memory_order_acquire)) return;
    run_chunks(index);
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard lock(mutex_);
      done_cv_.notify_one();
    }
  }
}

}  // namespace warden
