#include "util/thread_pool.h"

#include <gtest/gtest.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "util/cpu_topology.h"
#include "util/error.h"

namespace warden {
namespace {

// Every chunk parallel_for hands out, sorted: they must tile [0, n) exactly.
std::vector<std::pair<int64_t, int64_t>> chunks_of(ThreadPool& pool, int64_t n) {
  std::mutex mutex;
  std::vector<std::pair<int64_t, int64_t>> chunks;
  pool.parallel_for(n, [&](int64_t begin, int64_t end, int index) {
    EXPECT_LT(begin, end);
    EXPECT_GE(index, 0);
    EXPECT_LT(index, pool.size());
    std::lock_guard lock(mutex);
    chunks.push_back({begin, end});
  });
  std::sort(chunks.begin(), chunks.end());
  return chunks;
}

void expect_tiles(const std::vector<std::pair<int64_t, int64_t>>& chunks, int64_t n) {
  int64_t next = 0;
  for (const auto& [begin, end] : chunks) {
    ASSERT_EQ(begin, next) << "a gap or an overlap before " << begin;
    next = end;
  }
  EXPECT_EQ(next, n);
}

TEST(ThreadPool, ChunksCoverEveryIndexOnce) {
  for (int threads : {1, 2, 3, 4})
    for (int64_t n : {0, 1, 2, 3, 7, 64, 1000, 100003}) {
      ThreadPool pool(threads);
      SCOPED_TRACE("threads " + std::to_string(threads) + ", n " + std::to_string(n));
      for (int repeat = 0; repeat < 20; repeat++) expect_tiles(chunks_of(pool, n), n);
    }
}

TEST(ThreadPool, ALoopLongerThanAShareCanHoldIsStillCoveredOnce) {
  ThreadPool pool(2);
  const int64_t n = (int64_t(1) << 32) + 5;
  expect_tiles(chunks_of(pool, n), n);
}

// The thread holding index 0 stops there until everything else is done: the
// other thread has to take over the rest of the blocked thread's share.
TEST(ThreadPool, ABlockedThreadsShareIsTakenOverByTheOthers) {
  ThreadPool pool(2);
  for (int repeat = 0; repeat < 20; repeat++) {
    const int64_t n = 1000;
    std::atomic<int64_t> done{0};
    std::atomic<bool> finished_in_time{true};
    pool.parallel_for(n, [&](int64_t begin, int64_t end, int) {
      if (begin == 0) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (done.load() < n - end) {
          if (std::chrono::steady_clock::now() > deadline) {
            finished_in_time = false;
            break;
          }
          std::this_thread::yield();
        }
      }
      done += end - begin;
    });
    ASSERT_TRUE(finished_in_time) << "the other thread left work undone while one thread was blocked";
    EXPECT_EQ(done.load(), n);
  }
}

// Idle threads sleep after a short spin: a loop must wake them, and the
// caller, asleep while a worker is still busy, must be woken when it is done.
// A lost wake-up hangs here.
TEST(ThreadPool, SleepingThreadsAreWokenForTheNextLoopAndWhenItEnds) {
  ThreadPool pool(3);
  for (int repeat = 0; repeat < 30; repeat++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::atomic<int64_t> done{0};
    pool.parallel_for(6, [&](int64_t begin, int64_t end, int index) {
      if (index != 0) std::this_thread::sleep_for(std::chrono::microseconds(500));
      done += end - begin;
    });
    EXPECT_EQ(done.load(), 6);
  }
}

TEST(ThreadPool, ResultsWrittenInTheLoopAreVisibleAfterIt) {
  ThreadPool pool(3);
  std::vector<int64_t> out(50000);
  for (int repeat = 0; repeat < 50; repeat++) {
    pool.parallel_for(int64_t(out.size()), [&](int64_t begin, int64_t end, int) {
      for (int64_t i = begin; i < end; i++) out[size_t(i)] = i * repeat;
    });
    for (size_t i = 0; i < out.size(); i += 997) ASSERT_EQ(out[i], int64_t(i) * repeat);
  }
}

// run_team: every thread index exactly once, all at the same time (a thread
// that ran two indices in turn would wait at the first barrier forever), and
// a barrier makes what each thread wrote before it visible to all after it,
// whether its waiters prefetch memory meanwhile or not. More team members
// than this machine has cores (asked for explicitly), so barriers must yield.
TEST(ThreadPool, ATeamMeetsAtBarriersAndSeesWhatEachWroteBeforeThem) {
  const std::vector<uint8_t> warm(4096, 1);  // a few lines each: gone through long before a release
  for (int threads : {1, 2, 5}) {
    ThreadPool pool(threads, threads);
    std::vector<int64_t> slots(size_t(threads), -1);
    std::vector<int> runs(size_t(threads), 0);
    std::atomic<int64_t> mismatches{0};
    for (int repeat = 0; repeat < 20; repeat++) {
      pool.run_team([&](int i) {
        runs[size_t(i)]++;
        for (int64_t round = 0; round < 200; round++) {
          slots[size_t(i)] = round * 100 + i;
          pool.barrier(warm.data() + size_t(i) * 64, 256);
          for (int j = 0; j < threads; j++)
            if (slots[size_t(j)] != round * 100 + j) mismatches++;
          pool.barrier();  // nobody writes the next round's value while another still reads
        }
      });
    }
    EXPECT_EQ(mismatches.load(), 0) << threads << " threads";
    EXPECT_EQ(runs, std::vector<int>(size_t(threads), 20)) << threads << " threads";
    // The pool still runs ordinary loops afterwards.
    expect_tiles(chunks_of(pool, 1000), 1000);
  }
}

// wait_for_count: a member waits for a count that the others raise bit by
// bit, then sees what each wrote before its increment; with more threads
// than CPUs too (the waiters yield).
TEST(ThreadPool, ATeamMemberWaitsForACountAndSeesWhatCameBeforeIt) {
  for (int threads : {2, 5}) {
    ThreadPool pool(threads, threads);
    std::vector<int64_t> written(size_t(threads), -1);
    std::atomic<int64_t> count{0};
    int64_t mismatches = 0;
    for (int64_t round = 0; round < 200; round++) {
      pool.run_team([&](int i) {
        if (i != 0) {
          written[size_t(i)] = round;
          count.fetch_add(1, std::memory_order_release);
          return;
        }
        ThreadPool::wait_for_count(count, (round + 1) * (threads - 1));
        for (int j = 1; j < threads; j++) mismatches += written[size_t(j)] != round;
      });
    }
    EXPECT_EQ(mismatches, 0) << threads << " threads";
    EXPECT_EQ(count.load(), 200 * (threads - 1)) << threads << " threads";
  }
}

// Team loops: back to back, each thread setting its share of the next loop
// (which starts where team_share says) while another may still look for
// work in the last, every index exactly once per loop. In every other loop
// the thread holding index 0 stops there until the rest is done, so its
// share has to be taken over. Ordinary loops still work afterwards.
TEST(ThreadPool, TeamLoopsCoverEveryIndexOnceAndTakeOverABlockedShare) {
  const std::vector<int64_t> sizes{0, 1, 7, 1000, 3, 100003, 64, 2};
  for (int threads : {1, 2, 3, 5}) {
    SCOPED_TRACE("threads " + std::to_string(threads));
    ThreadPool pool(threads, threads);
    std::vector<std::vector<std::atomic<int>>> hits(sizes.size());
    for (size_t k = 0; k < sizes.size(); k++) hits[k] = std::vector<std::atomic<int>>(size_t(sizes[k]));
    std::atomic<bool> finished_in_time{true};
    for (int repeat = 0; repeat < 10; repeat++) {
      for (auto& loop : hits)
        for (auto& h : loop) h = 0;
      pool.run_team([&](int i) {
        for (size_t k = 0; k < sizes.size(); k++) {
          const int64_t n = sizes[k];
          EXPECT_EQ(pool.team_share(i, n), n * i / threads);
          pool.barrier();
          pool.team_loop(i, [&](int64_t begin, int64_t end, int index) {
            EXPECT_EQ(index, i);
            if (begin == 0 && k % 2 == 1 && threads > 1) {
              const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
              for (;;) {
                int64_t others = 0;
                for (int64_t j = end; j < n; j++) others += hits[k][size_t(j)].load();
                if (others == n - end) break;
                if (std::chrono::steady_clock::now() > deadline) {
                  finished_in_time = false;
                  break;
                }
                std::this_thread::yield();
              }
            }
            for (int64_t j = begin; j < end; j++) hits[k][size_t(j)]++;
          });
        }
        pool.barrier();
      });
      for (size_t k = 0; k < sizes.size(); k++)
        for (int64_t j = 0; j < sizes[k]; j++)
          ASSERT_EQ(hits[k][size_t(j)].load(), 1) << "loop " << k << " index " << j;
    }
    EXPECT_TRUE(finished_in_time) << "a blocked thread's share was left undone";
    expect_tiles(chunks_of(pool, 1000), 1000);
  }
}

// A thread claims half of what is left of its share at a time, down to the
// loop's final chunk: 1/8 of a share by default, smaller where team_share
// is given one (a larger one changes nothing).
TEST(ThreadPool, ATeamLoopsFinalChunksAreNoLargerThanAsked) {
  ThreadPool pool(1, 1);
  auto chunks_with = [&](int64_t final_chunk) {
    std::vector<int64_t> sizes;
    pool.run_team([&](int i) {
      pool.team_share(i, 1000, final_chunk);
      pool.barrier();
      pool.team_loop(i, [&](int64_t begin, int64_t end, int) { sizes.push_back(end - begin); });
    });
    return sizes;
  };
  EXPECT_EQ(chunks_with(0), (std::vector<int64_t>{500, 250, 125, 125}));
  EXPECT_EQ(chunks_with(500), (std::vector<int64_t>{500, 250, 125, 125}));
  EXPECT_EQ(chunks_with(40), (std::vector<int64_t>{500, 250, 125, 62, 40, 23}));
}

// By default a team has no more members than the process has usable CPUs
// (a member without a CPU holds up every barrier); the pool's other threads
// sit the team out, and loops still use every thread.
TEST(ThreadPool, ATeamHasNoMoreMembersThanUsableCpus) {
  const int usable = usable_cpus();
  ThreadPool pool(usable + 2);
  EXPECT_EQ(pool.size(), usable + 2);
  ASSERT_EQ(pool.team_size(), usable);
  EXPECT_EQ(ThreadPool(usable + 2, 1).team_size(), 1);
  EXPECT_EQ(ThreadPool(1, 4).team_size(), 1);  // never more than the threads
  std::vector<std::atomic<int>> ran(size_t(pool.size()));
  std::vector<std::atomic<int>> hits(10000);
  for (int repeat = 0; repeat < 10; repeat++)
    pool.run_team([&](int i) {
      ran[size_t(i)]++;
      pool.team_share(i, int64_t(hits.size()));
      pool.barrier();
      pool.team_loop(i, [&](int64_t begin, int64_t end, int) {
        for (int64_t j = begin; j < end; j++) hits[size_t(j)]++;
      });
      pool.barrier();
    });
  for (int i = 0; i < pool.size(); i++) EXPECT_EQ(ran[size_t(i)].load(), i < usable ? 10 : 0) << "thread " << i;
  for (size_t j = 0; j < hits.size(); j++) ASSERT_EQ(hits[j].load(), 10) << j;
  expect_tiles(chunks_of(pool, 1000), 1000);
}

// The default thread count is one per physical core of what this process
// may run on (taskset, cgroup cpusets), not of every CPU the machine has,
// and no more than its cgroup CPU limit grants.
TEST(ThreadPool, DefaultThreadsFollowTheCpuAffinity) {
  cpu_set_t all;
  ASSERT_EQ(sched_getaffinity(0, sizeof all, &all), 0);
  const int cores = physical_cores(allowed_cpus()), quota = cpu_quota();
  EXPECT_EQ(ThreadPool::default_threads(), quota > 0 ? std::min(cores, quota) : cores);
  EXPECT_LE(ThreadPool::default_threads(), CPU_COUNT(&all));
  int first = 0;
  while (!CPU_ISSET(first, &all)) first++;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(first, &one);
  ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);
  const int restricted = ThreadPool::default_threads();
  ASSERT_EQ(sched_setaffinity(0, sizeof all, &all), 0);
  EXPECT_EQ(restricted, 1);
}

// More threads than the process may start: an error naming the count, not
// a hang (the started workers waited on a pool being torn down). Run in a
// child whose address space cannot hold 200 thread stacks; the parent gives
// it 30 s.
TEST(ThreadPool, ThreadsThatCannotStartAreAnError) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "an address-space limit and ASan's shadow memory do not mix";
#endif
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    alarm(30);
    const rlimit limit{size_t(256) << 20, size_t(256) << 20};
    setrlimit(RLIMIT_AS, &limit);
    try {
      ThreadPool pool(200);
      _exit(2);  // started after all
    } catch (const Error& e) {
      _exit(std::string(e.what()).find("cannot start 200 threads") != std::string::npos ? 0 : 3);
    }
    _exit(4);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << "the child hung or crashed: status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace warden
