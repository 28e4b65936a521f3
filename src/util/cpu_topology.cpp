#include "util/cpu_topology.h"

#include <sched.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
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

namespace {

// `text` as a number, or nothing where it is not one.
bool parse_number(const std::string& text, double& value) {
  char* end = nullptr;
  value = std::strtod(text.c_str(), &end);
  return !text.empty() && end && *end == '\0';
}

// CPUs' worth of `quota` per `period`, rounded up; 0 for no limit.
int quota_cpus(double quota, double period) {
  return quota > 0 && period > 0 ? std::max(1, int(std::ceil(quota / period))) : 0;
}

// The tighter of two limits, where 0 is none.
int tighter(int a, int b) { return a == 0 ? b : b == 0 ? a : std::min(a, b); }

// The first word of a file as a number; false where it cannot be read or is none.
bool read_number(const std::string& path, double& value) {
  std::ifstream file(path);
  std::string word;
  return static_cast<bool>(file >> word) && parse_number(word, value);
}

// cgroup v2: "QUOTA PERIOD", or "max PERIOD" for none ("max" is no number).
int v2_limit(const std::string& dir) {
  std::ifstream file(dir + "/cpu.max");
  std::string quota, period;
  double q = 0, p = 0;
  return file >> quota >> period && parse_number(quota, q) && parse_number(period, p) ? quota_cpus(q, p) : 0;
}

// cgroup v1: a quota of -1 is none.
int v1_limit(const std::string& dir) {
  double q = 0, p = 0;
  return read_number(dir + "/cpu.cfs_quota_us", q) && read_number(dir + "/cpu.cfs_period_us", p) ? quota_cpus(q, p)
                                                                                                   : 0;
}

// The tightest limit in `mount`'s folders for `path` and each of its
// ancestors. Inside a container the mount's root is often the container's
// own cgroup while `path` names it as the host does; the walk reaches that
// root either way.
template <typename Limit>
int tightest_up_to_root(const std::string& mount, std::string path, Limit limit) {
  int found = 0;
  while (true) {
    found = tighter(found, limit(mount + path));
    if (path.empty() || path == "/") return found;
    const size_t slash = path.find_last_of('/');
    path = slash == std::string::npos || slash == 0 ? "/" : path.substr(0, slash);
  }
}

}  // namespace

int cpu_quota(const std::string& proc_cgroup, const std::string& cgroup_root) {
  std::ifstream cgroups(proc_cgroup);
  int found = 0;
  // Lines are "ID:CONTROLLERS:PATH"; cgroup v2's is "0::PATH".
  for (std::string line; std::getline(cgroups, line);) {
    const size_t first = line.find(':'), second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    const std::string controllers = line.substr(first + 1, second - first - 1), path = line.substr(second + 1);
    if (controllers.empty()) {
      found = tighter(found, tightest_up_to_root(cgroup_root, path, v2_limit));
      continue;
    }
    std::stringstream list(controllers);
    for (std::string controller; std::getline(list, controller, ',');)
      if (controller == "cpu")  // mounted as cpu,cpuacct, with cpu as a link to it on most systems
        for (const std::string& mount : std::set<std::string>{cgroup_root + "/" + controllers, cgroup_root + "/cpu"})
          found = tighter(found, tightest_up_to_root(mount, path, v1_limit));
  }
  return found;
}

int usable_cpus() { return tighter(int(allowed_cpus().size()), cpu_quota()); }

}  // namespace warden
