#pragma once
// Which CPUs this process may run on, and how many physical cores they are.
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

}  // namespace warden
