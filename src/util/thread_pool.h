#pragma once
// A fixed pool of worker threads for data-parallel loops. parallel_for gives
// each thread a contiguous share of [0, n), which it works through front to
// back in chunks; a thread whose share is done takes the back half of what is
// left of the fullest other share, and returns when all chunks are done.
//
// Why shares rather than one queue of chunks: when the threads keep pace, each
// reads one contiguous range, so a matrix-vector product's weights stream as
// one sequence per core, which the hardware prefetchers follow best (decode
// was 5-9 % faster on a 2-core EPYC than with chunks handed out in turn). Why
// stealing: when a core is busy with something else, the others take over its
// remainder instead of waiting for it.
//
// Decode calls parallel_for a few hundred times per token, each loop lasting
// tens of microseconds, so waking sleeping threads through the kernel would
// cost as much as the work. Workers and the caller therefore spin briefly on
// atomics before falling back to condition variables. Not reentrant: one loop
// at a time.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
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
  using Job = std::function<void(int64_t, int64_t, int)>;
  // Calls fn(begin, end, thread_index) for disjoint chunks covering [0, n);
  // a thread may get several chunks. thread_index is in [0, size()).
  void parallel_for(int64_t n, const Job& fn);

  static int default_threads();

 private:
  void worker_loop(int index);
  // Waits until generation_ differs from `seen` or the pool stops; returns the new generation.
  uint64_t wait_for_job(uint64_t seen);
  void wait_until_done();
  void run_loop(int64_t n, const Job& fn);
  void run_chunks(int index);
  bool claim_front(int index, int64_t& begin, int64_t& end);
  bool steal_into(int index);

  // A thread's remaining share [begin, end) packed as end << 32 | begin: the
  // owner claims from the front, others steal from the back, each with one
  // compare-and-swap. A cache line each, so claims do not contend.
  struct alignas(64) Share {
    std::atomic<uint64_t> range{0};
  };

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable start_cv_, done_cv_;
  // Written by parallel_for before generation_ is bumped (release); read by
  // workers after they see the new generation (acquire).
  const Job* job_ = nullptr;
  int64_t job_min_chunk_ = 1;
  std::unique_ptr<Share[]> shares_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stopping_{false};
};

}  // namespace warden
