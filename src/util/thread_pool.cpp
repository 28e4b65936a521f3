#include "util/thread_pool.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <string>
#include <system_error>

#include "util/cpu_topology.h"
#include "util/error.h"

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
// The same with more threads than CPUs to run them: a polling thread may hold
// the core that the thread everyone waits for needs.
constexpr auto kOversubscribedSpinTime = std::chrono::microseconds(20);
// A team's barrier: a wait longer than this means a thread is behind, quite
// possibly for want of a core, so waiters yield rather than spin on. With
// three or four threads on two cores, q3-q4km decoded 24 tokens/s spinning
// 200 us, 62-64 at 20 us, 73-75 at 5 us; with two threads 20 us measured
// level with 200 and 5 us 0-3 % slower (alternating A/B).
constexpr auto kBarrierSpinTime = std::chrono::microseconds(20);
// What a waiting member prefetches per poll (barrier()).
constexpr int kWarmLinesPerPoll = 4;
constexpr int kCacheLine = 64;

// Polls `done` until it returns true or `spin` passes; returns its last value.
template <typename Done>
bool spin_until(Done done, std::chrono::microseconds spin) {
  const auto deadline = std::chrono::steady_clock::now() + spin;
  for (;;) {
    for (int i = 0; i < 64; i++) {
      if (done()) return true;
      WARDEN_CPU_RELAX();
    }
    if (std::chrono::steady_clock::now() >= deadline) return done();
  }
}

// An owner claims half of what is left of its share at a time, down to
// 1/(kMinChunksPerThread x threads) of the loop: what it has claimed cannot
// be stolen, so the claims are small enough that a thread descheduled
// mid-claim holds back at most a quarter of the loop (two threads), and few
// enough that claiming costs little. Measured on a 2-core EPYC: a quarter at
// a time down to 1/64 made fast-memory decode 1-10 % slower (more claims,
// more stolen bits of the other thread's stream).
constexpr int64_t kOwnerClaimDivisor = 2;
constexpr int64_t kMinChunksPerThread = 8;

// Loops longer than this run as consecutive loops of at most this length, so
// a share's bounds fit the 24-bit fields of Share::range.
constexpr int kRangeBits = 24;
constexpr uint64_t kRangeMask = (uint64_t(1) << kRangeBits) - 1;
constexpr int64_t kMaxLoop = int64_t(kRangeMask);
constexpr uint64_t kTagMask = 0xffff;  // tags wrap; a share is always reset before its tag comes round again

uint64_t pack_range(uint64_t tag, int64_t begin, int64_t end) {
  return (tag & kTagMask) << (2 * kRangeBits) | uint64_t(end) << kRangeBits | uint64_t(begin);
}
bool range_has_tag(uint64_t range, uint64_t tag) { return range >> (2 * kRangeBits) == (tag & kTagMask); }
int64_t range_begin(uint64_t range) { return int64_t(range & kRangeMask); }
int64_t range_end(uint64_t range) { return int64_t(range >> kRangeBits & kRangeMask); }

int64_t min_chunk(int64_t n, int threads) { return std::max<int64_t>(1, n / (int64_t(threads) * kMinChunksPerThread)); }

}  // namespace

ThreadPool::ThreadPool(int threads, int team_size) {
  threads = std::max(1, threads);
  const int usable = usable_cpus();
  spin_time_ = threads > usable ? kOversubscribedSpinTime : kSpinTime;
  team_size_ = std::clamp(team_size > 0 ? team_size : usable, 1, threads);
  shares_ = std::make_unique<Share[]>(size_t(threads));
  team_loops_ = std::make_unique<TeamLoop[]>(size_t(threads));
  workers_.reserve(size_t(threads - 1));  // so that only starting a thread can fail below
  try {
    for (int i = 1; i < threads; i++) workers_.emplace_back([this, i] { worker_loop(i); });
  } catch (const std::system_error& e) {
    // The workers already started wait on this pool's state: they must end
    // before it goes (the destructor does not run for a failed constructor).
    stop_workers();
    throw Error("cannot start " + std::to_string(threads) + " threads (" + e.what() + "); ask for fewer with -t");
  }
}

ThreadPool::~ThreadPool() { stop_workers(); }

void ThreadPool::stop_workers() {
  {
    std::lock_guard lock(mutex_);
    stopping_.store(true);
  }
  start_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

// One thread per physical core this process may run on (taskset, cgroup
// cpusets), no more than its cgroup CPU limit grants: see util/cpu_topology.h.
int ThreadPool::default_threads() {
  const int quota = cpu_quota();
  const int cores = physical_cores(allowed_cpus());
  return quota > 0 ? std::min(cores, quota) : cores;
}

void ThreadPool::parallel_for(int64_t n, const Job& fn) {
  if (workers_.empty() || n <= 1) {
    if (n > 0) fn(0, n, 0);
    return;
  }
  if (n <= kMaxLoop) return run_loop(n, fn);
  for (int64_t first = 0; first < n; first += kMaxLoop) {
    const Job piece = [&](int64_t begin, int64_t end, int index) { fn(first + begin, first + end, index); };
    run_loop(std::min(kMaxLoop, n - first), piece);
  }
}

void ThreadPool::run_team(const TeamJob& fn) {
  const Job job = [&](int64_t, int64_t, int index) {
    if (index >= team_size_) return;  // not in the team
    team_loops_[size_t(index)].count = 0;
    fn(index);
  };
  if (team_size_ == 1) {
    job(0, 1, 0);  // a team of one: no other thread to wake
  } else {
    team_ = true;
    run_loop(size(), job);
    team_ = false;
  }
  // Every member ran the same team loops; the next loop's tag follows theirs.
  job_tag_ += team_loops_[0].count;
}

int64_t ThreadPool::team_share(int index, int64_t n, int64_t final_chunk) {
  if (n > kMaxLoop) throw std::length_error("a team loop of " + std::to_string(n) + " items (at most 2^24 - 1)");
  TeamLoop& loop = team_loops_[size_t(index)];
  loop.tag = job_tag_ + 1 + loop.count++;
  const int64_t by_default = min_chunk(n, team_size_);
  loop.min_chunk = final_chunk > 0 ? std::min(final_chunk, by_default) : by_default;
  return set_share(index, loop.tag, n, team_size_);
}

void ThreadPool::team_loop(int index, const Job& fn) {
  const TeamLoop& loop = team_loops_[size_t(index)];
  run_shares(index, loop.tag, loop.min_chunk, fn);
}

// The last thread to arrive resets the count, then starts a new generation,
// which releases the others. The last to arrive prefetches nothing: it goes
// straight on.
void ThreadPool::barrier(const void* warm, size_t warm_bytes) {
  if (team_size_ == 1) return;
  const uint64_t generation = barrier_generation_.load(std::memory_order_acquire);
  if (barrier_arrived_.fetch_add(1, std::memory_order_acq_rel) + 1 == team_size_) {
    barrier_arrived_.store(0, std::memory_order_relaxed);
    barrier_generation_.fetch_add(1, std::memory_order_release);
    return;
  }
  // A few cache lines per poll: the prefetches queue behind the memory
  // system, and the release is seen within a poll.
  const char* next = static_cast<const char*>(warm);
  const char* const warm_end = next + (warm ? warm_bytes : 0);
  auto released = [&] {
    if (barrier_generation_.load(std::memory_order_acquire) != generation) return true;
    for (int line = 0; line < kWarmLinesPerPoll && next < warm_end; line++, next += kCacheLine)
      __builtin_prefetch(next, 0, 3);
    return false;
  };
  // Past a short spin, yield: the thread everyone waits for may need this
  // core (more threads than cores).
  if (spin_until(released, kBarrierSpinTime)) return;
  while (!released()) std::this_thread::yield();
}

void ThreadPool::wait_for_count(const std::atomic<int64_t>& count, int64_t target) {
  auto reached = [&] { return count.load(std::memory_order_acquire) >= target; };
  if (spin_until(reached, kBarrierSpinTime)) return;
  while (!reached()) std::this_thread::yield();
}

// This thread's share of [0, n) split into `parts` shares; returns its first index.
int64_t ThreadPool::set_share(int index, uint64_t tag, int64_t n, int parts) {
  const int64_t begin = share_begin(n, index, parts);
  shares_[size_t(index)].range.store(pack_range(tag, begin, share_begin(n, index + 1, parts)), std::memory_order_relaxed);
  return begin;
}

void ThreadPool::run_loop(int64_t n, const Job& fn) {
  job_tag_++;
  for (int i = 0; i < size(); i++) set_share(i, job_tag_, n, size());
  job_ = &fn;
  job_min_chunk_ = min_chunk(n, size());
  pending_.store(int(workers_.size()), std::memory_order_relaxed);
  {
    // Under the mutex so a worker between its predicate check and its wait
    // cannot miss the new generation; the release publishes the shares.
    std::lock_guard lock(mutex_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  start_cv_.notify_all();
  run_chunks(0);
  wait_until_done();
  job_ = nullptr;
}

void ThreadPool::run_chunks(int index) {
  if (team_) return (*job_)(index, index + 1, index);
  run_shares(index, job_tag_, job_min_chunk_, *job_);
}

void ThreadPool::run_shares(int index, uint64_t tag, int64_t min_chunk, const Job& fn) {
  int64_t begin, end;
  for (;;) {
    while (claim_front(index, tag, min_chunk, begin, end)) fn(begin, end, index);
    if (!steal_into(index, tag)) return;
  }
}

// Takes the next chunk from the front of this thread's own share.
bool ThreadPool::claim_front(int index, uint64_t tag, int64_t min_chunk, int64_t& begin, int64_t& end) {
  std::atomic<uint64_t>& share = shares_[size_t(index)].range;
  uint64_t range = share.load(std::memory_order_relaxed);
  for (;;) {
    begin = range_begin(range);
    const int64_t last = range_end(range);
    if (!range_has_tag(range, tag) || begin >= last) return false;
    end = std::min(last, begin + std::max(min_chunk, (last - begin) / kOwnerClaimDivisor));
    if (share.compare_exchange_weak(range, pack_range(tag, end, last), std::memory_order_relaxed)) return true;
  }
}

// Moves the back half of the fullest other share into this thread's (empty)
// share; false once every share is empty. Only the owner refills its share,
// and only when it is empty, which no thief touches: a plain store suffices.
bool ThreadPool::steal_into(int index, uint64_t tag) {
  for (;;) {
    int victim = -1;
    int64_t most = 0;
    uint64_t range = 0;
    for (int i = 0; i < size(); i++) {
      const uint64_t r = shares_[size_t(i)].range.load(std::memory_order_relaxed);
      if (i != index && range_has_tag(r, tag) && range_end(r) - range_begin(r) > most) {
        victim = i;
        most = range_end(r) - range_begin(r);
        range = r;
      }
    }
    if (victim < 0) return false;
    const int64_t begin = range_begin(range), end = range_end(range);
    const int64_t split = end - (most + 1) / 2;
    if (shares_[size_t(victim)].range.compare_exchange_strong(range, pack_range(tag, begin, split),
                                                              std::memory_order_relaxed)) {
      shares_[size_t(index)].range.store(pack_range(tag, split, end), std::memory_order_relaxed);
      return true;
    }
  }
}

void ThreadPool::wait_until_done() {
  if (spin_until([this] { return pending_.load(std::memory_order_acquire) == 0; }, spin_time_)) return;
  std::unique_lock lock(mutex_);
  done_cv_.wait(lock, [this] { return pending_.load(std::memory_order_acquire) == 0; });
}

uint64_t ThreadPool::wait_for_job(uint64_t seen) {
  auto ready = [&] { return stopping_.load(std::memory_order_acquire) || generation_.load(std::memory_order_acquire) != seen; };
  if (!spin_until(ready, spin_time_)) {
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
