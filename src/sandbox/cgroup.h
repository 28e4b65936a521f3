#pragma once
// A throwaway cgroup per jail for its memory and process-count limits:
// cgroup v2 when this process's cgroup allows children with the memory and
// pids controllers, else the v1 memory and pids hierarchies, else none (the
// caller falls back to rlimits).
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace warden::sandbox {

class JailCgroup {
 public:
  // Creates the cgroup(s) with these limits; has_memory()/has_pids() say
  // which limits are really enforced. with_memory = false leaves memory to
  // the caller's other bound (tests of that bound).
  JailCgroup(uint64_t memory_bytes, uint64_t max_processes, bool with_memory = true);
  ~JailCgroup();  // kills what is left inside, then removes the directories
  JailCgroup(const JailCgroup&) = delete;
  JailCgroup& operator=(const JailCgroup&) = delete;

  bool has_memory() const { return !memory_dir_.empty(); }
  bool has_pids() const { return !pids_dir_.empty(); }

  // Moves the calling process in (call in the child between fork and exec;
  // only async-signal-safe calls inside). Returns false on failure.
  bool enter_self() const noexcept;
  // SIGKILLs every process inside.
  void kill_all() const;
  // True when the memory limit was hit and the kernel killed a process for it.
  bool memory_limit_hit() const;

 private:
  std::vector<std::string> dirs_;  // every directory created (1 for v2, 2 for v1)
  std::string memory_dir_, pids_dir_;
  std::vector<std::string> procs_files_;
  bool v2_ = false;
};

}  // namespace warden::sandbox
