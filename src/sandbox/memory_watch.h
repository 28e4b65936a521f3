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
// not count (the kernel can drop it). Memory no process maps (a memfd or a
// SysV segment nobody maps) is invisible here, so the jail's seccomp filter
// refuses memfd_create and shmget when this watch is the bound. The private
// tmpfs mounts have their own sizes, and the workspace its disk check.
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

}  // namespace warden::sandbox
