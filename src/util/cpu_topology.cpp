#include "util/cpu_topology.h"

#include <sched.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <thread>

namespace warden {

std::vector<int> allowed_cpus() {
  std::vector<int> cpus;
  cpu_set_t mask;
  if (sched_getaffinity(0, sizeof mask, &mask) == 0) {
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
      if (CPU_ISSET(cpu, &mask)) cpus.push_back(cpu);
  }
  if (cpus.empty())
    for (int cpu = 0; cpu < std::max(1, int(std::thread::hardware_concurrency())); cpu++) cpus.push_back(cpu);
  return cpus;
}

int physical_cores(const std::vector<int>& cpus, const std::string& sysfs_cpu_dir) {
  std::set<std::string> cores;
  for (int cpu : cpus) {
    std::ifstream siblings(sysfs_cpu_dir + "/cpu" + std::to_string(cpu) + "/topology/thread_siblings_list");
    std::string list;
    if (!std::getline(siblings, list) || list.empty()) return int(cpus.size());
    cores.insert(list);
  }
  return int(cores.size());
}

}  // namespace warden
