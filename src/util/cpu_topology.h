#pragma once
// Which CPUs this process may run on, how many physical cores they are, and
// how much CPU time its cgroup grants it.
//
// Why physical cores: the default thread count is one per core, as
// llama.cpp's is. Two hardware threads of one core share its vector units
// and its caches, so a second thread per core adds little to the matrix
// kernels, while every decode step's barriers wait for the slowest thread.
#include <string>
#include <vector>

namespace warden {

// The CPUs in this thread's affinity mask (taskset, cgroup cpusets), in
// ascending order; every online CPU where the mask cannot be read.
std::vector<int> allowed_cpus();

// How many physical cores `cpus` lie on: CPUs that list the same hardware
// threads in `sysfs_cpu_dir`/cpuN/topology/thread_siblings_list share one.
// Where a CPU's topology cannot be read, counts every CPU (as many threads
// as CPUs, never fewer cores than there are).
int physical_cores(const std::vector<int>& cpus, const std::string& sysfs_cpu_dir = "/sys/devices/system/cpu");

// How many CPUs' worth of time a cgroup CPU limit grants this process
// (cgroup v2 cpu.max, v1 cpu.cfs_quota_us over cpu.cfs_period_us), rounded
// up: the tightest along its cgroup's path up to the root of the mount, in
// either version; 0 where none is set or none can be read.
//
// Why: a container started with --cpus=2 on a 64-core host still has all 64
// CPUs in its affinity mask. One thread per core would then spend most of
// each period throttled, and every decode barrier would wait for a thread
// that is not running.
int cpu_quota(const std::string& proc_cgroup = "/proc/self/cgroup", const std::string& cgroup_root = "/sys/fs/cgroup");

// How many CPUs this process can keep busy at once: the CPUs of its
// affinity mask, no more than its cgroup CPU limit grants.
int usable_cpus();

}  // namespace warden
