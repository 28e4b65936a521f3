#pragma once
// The jail's memory where no memory cgroup can be made (a desktop session
// without a delegated cgroup, for one). RLIMIT_AS alone bounds each process,
// not the jail: max_processes processes could each hold the limit. Instead
// the supervisor adds up, every time it looks, the memory the jail's
// processes hold, and kills the jail past the limit.
//
// What is counted: each process's proportional share (PSS) of anonymous and
// shared-memory pages, and of swap, from /proc/PID/smaps_rollup. Pages shared
// between processes (after fork) count once in all; page cache of files does
// not count (the kernel can drop it). Memory no process maps is invisible
// there, so in this mode the jail's seccomp filter refuses what makes it:
// memfd_create, shmget, msgget, mq_open, vmsplice/splice/tee/sendfile (pipes
// holding pages nobody maps), larger pipes (F_SETPIPE_SZ) and larger socket buffers
// (SO_SNDBUF, SO_RCVBUF). The private tmpfs mounts have their own sizes, and
// the workspace its disk check. What is left, socket buffers of the default
// size above all, is kernel memory no process count shows: as a backstop,
// the jail is also killed once the machine's available memory (MemAvailable)
// has dropped since the start by more than the jail may hold in all (its
// limit, its tmpfs mounts) plus kMemoryBackstopSlack. Other programs'
// allocations count towards that drop too, as other writers count towards
// the disk check: a bound that holds beats one that can be walked around.
#include <sys/types.h>

#include <cstdint>
#include <optional>

namespace warden::sandbox {

// Throws warden::Error when this kernel cannot show what the watch needs
// (/proc/PID/task/TID/children, /proc/PID/smaps_rollup): the sandbox then
// refuses to run, rather than run without a memory bound.
void check_memory_watch_available();

// Bytes held, as above, by `root` and every process below it. nullopt when
// a living process's memory cannot be read; the caller counts that as over
// the limit (fail closed).
std::optional<uint64_t> process_tree_memory(pid_t root);

// MemAvailable of /proc/meminfo in bytes; nullopt when unreadable.
std::optional<uint64_t> available_memory();

inline constexpr uint64_t kMemoryBackstopSlack = 512ull << 20;

// Both checks for one jail, from the moment it is made.
class MemoryWatch {
 public:
  // `jail_total`: what the jail may hold in all (memory limit and tmpfs
  // sizes). Throws warden::Error where the watch cannot work.
  MemoryWatch(uint64_t memory_limit, uint64_t jail_total);
  // True once the processes below `root` hold more than the limit, or the
  // machine lost more than jail_total + slack of available memory; also
  // when either cannot be read (fail closed).
  bool over(pid_t root) const;

 private:
  uint64_t limit_, backstop_, available_at_start_;
};

}  // namespace warden::sandbox
