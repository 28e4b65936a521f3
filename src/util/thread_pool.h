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
#include <chrono>
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
  // team_size: how many threads run_team uses; 0 = all of them, but no more
  // than this process can keep busy at once (usable_cpus()).
  explicit ThreadPool(int threads, int team_size = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return int(workers_.size()) + 1; }
  // The threads that run a team (indices 0 .. team_size() - 1): a team
  // meets at a barrier several times per layer, so a member that has no CPU
  // of its own holds every barrier up until the scheduler runs it again
  // (q3-q4km decode with 3 or 4 threads on 2 CPUs: 57-60 tokens/s against
  // 78-103 with 2). Loops (parallel_for) still use every thread.
  int team_size() const { return team_size_; }
  using Job = std::function<void(int64_t, int64_t, int)>;
  // Calls fn(begin, end, thread_index) for disjoint chunks covering [0, n);
  // a thread may get several chunks. thread_index is in [0, size()).
  void parallel_for(int64_t n, const Job& fn);

  // Calls fn(thread_index) once on each of the team's threads at the same
  // time, for work that they share out among themselves and that meets at
  // barrier() (a decode step: a few barriers per layer instead of starting
  // and ending a parallel loop per matrix).
  using TeamJob = std::function<void(int)>;
  void run_team(const TeamJob& fn);
  // Inside run_team only: returns once every thread has called it, with
  // everything each wrote before its call visible to all. A thread that
  // waits spends the wait prefetching [warm, warm + warm_bytes), as far as
  // it gets: what it reads first after the barrier (the first rows of its
  // share of the next loop), so that its stream starts from the cache.
  void barrier(const void* warm = nullptr, size_t warm_bytes = 0);
  // A loop inside run_team, every thread taking part: team_share(index, n)
  // sets this thread's share of [0, n) (it may do so while another thread
  // still works on the last loop) and returns its first index, n x index /
  // team_size(); after a barrier(), team_loop(index, fn)
  // shares the loop out as parallel_for does (contiguous shares, stealing at
  // the end) and returns when this thread finds no chunk left, which may be
  // before the others finish theirs: barrier() again before reading what the
  // loop wrote. n must be below 2^24. A thread claims from its share half
  // of what is left at a time, down to final_chunk items (0: 1/8 of a
  // share), so that at the end no thread waits long on another's last
  // chunk: a loop whose items are large passes a smaller one.
  int64_t team_share(int index, int64_t n, int64_t final_chunk = 0);
  // Where share `index` of `parts` of a loop of n items begins (team_share,
  // parallel_for), for those who lay data out in the order the shares read it.
  static int64_t share_begin(int64_t n, int index, int parts) { return n * index / parts; }
  void team_loop(int index, const Job& fn);
  // Inside run_team only: returns once `count` has reached `target`, with
  // everything written before the increments that got it there (release)
  // visible; waits as barrier() does. For a wait on part of what another
  // member computes rather than on all of it.
  static void wait_for_count(const std::atomic<int64_t>& count, int64_t target);

  // What -t 0 means: one thread per physical core this process may use,
  // no more than its cgroup CPU limit grants.
  static int default_threads();

 private:
  void stop_workers();  // ends and joins the worker threads

  // How long a waiting thread polls before it sleeps (shorter when the
  // threads outnumber the CPUs).
  std::chrono::microseconds spin_time_;
  void worker_loop(int index);
  // Waits until generation_ differs from `seen` or the pool stops; returns the new generation.
  uint64_t wait_for_job(uint64_t seen);
  void wait_until_done();
  void run_loop(int64_t n, const Job& fn);
  void run_chunks(int index);
  void run_shares(int index, uint64_t tag, int64_t min_chunk, const Job& fn);
  bool claim_front(int index, uint64_t tag, int64_t min_chunk, int64_t& begin, int64_t& end);
  bool steal_into(int index, uint64_t tag);
  int64_t set_share(int index, uint64_t tag, int64_t n, int parts);

  // A thread's remaining share [begin, end) of the loop tagged `tag`, packed
  // as tag << 48 | end << 24 | begin: the owner claims from the front, others
  // steal from the back, each with one compare-and-swap; a share tagged for
  // another loop counts as empty. The tags let a team's threads set their
  // shares of the next loop while another thread still looks for work in
  // the last. A cache line each, so claims do not contend.
  struct alignas(64) Share {
    std::atomic<uint64_t> range{0};
  };
  // Per thread inside run_team: how many team loops it has started, and the
  // current one's tag and smallest chunk.
  struct alignas(64) TeamLoop {
    uint64_t count = 0, tag = 0;
    int64_t min_chunk = 1;
  };

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable start_cv_, done_cv_;
  // Written by parallel_for before generation_ is bumped (release); read by
  // workers after they see the new generation (acquire).
  const Job* job_ = nullptr;
  int64_t job_min_chunk_ = 1;
  uint64_t job_tag_ = 0;  // the current loop's tag (parallel_for or run_team); team loops take the tags after it
  std::unique_ptr<Share[]> shares_;
  std::unique_ptr<TeamLoop[]> team_loops_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stopping_{false};
  // run_team's loop: each thread runs its own index only (written with job_).
  bool team_ = false;
  int team_size_ = 1;
  // barrier(): threads arrived, and how many barriers have completed.
  alignas(64) std::atomic<int> barrier_arrived_{0};
  alignas(64) std::atomic<uint64_t> barrier_generation_{0};
};

}  // namespace warden
