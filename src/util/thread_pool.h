#pragma once
// A fixed pool of worker threads for data-parallel loops. parallel_for splits
// [0, n) into contiguous chunks (several per thread) that the calling thread
// and the workers claim one at a time until none is left, and returns when all
// are done. Claiming (rather than a fixed chunk per thread) keeps the loop fast
// when a core is busy with something else: the other threads take its share.
// Not reentrant: one loop at a time.
//
// Decode calls parallel_for a few hundred times per token, each loop lasting
// tens of microseconds, so waking sleeping threads through the kernel would
// cost as much as the work. Workers and the caller therefore spin briefly on
// atomics before falling back to condition variables.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace warden {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return int(workers_.size()) + 1; }
  // Calls fn(begin, end, thread_index) for disjoint chunks covering [0, n);
  // a thread may get several chunks. thread_index is in [0, size()).
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn);

  static int default_threads();

 private:
  void worker_loop(int index);
  // Waits until generation_ differs from `seen` or the pool stops; returns the new generation.
  uint64_t wait_for_job(uint64_t seen);
  void wait_until_done();
  void run_chunks(int index);

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable start_cv_, done_cv_;
  // Written by parallel_for before generation_ is bumped (release); read by
  // workers after they see the new generation (acquire).
  const std::function<void(int64_t, int64_t, int)>* job_ = nullptr;
  int64_t job_n_ = 0;
  int64_t job_min_chunk_ = 1;
  std::atomic<int64_t> next_{0};  // start of the next unclaimed chunk
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stopping_{false};
};

}  // namespace warden
