#include "util/cpu_topology.h"

#include <gtest/gtest.h>
#include <sched.h>

#include <filesystem>
#include <map>
#include <tuple>
#include <utility>

#include "common/test_env.h"

namespace warden {
namespace {

// A sysfs cpu folder with each CPU's thread_siblings_list as given.
std::string fake_sysfs(const std::map<int, std::string>& siblings) {
  const std::string root = test::make_temp_dir("sysfs");
  for (const auto& [cpu, list] : siblings) {
    const std::string dir = root + "/cpu" + std::to_string(cpu) + "/topology";
    std::filesystem::create_directories(dir);
    test::write_file(dir + "/thread_siblings_list", list + "\n");
  }
  return root;
}

// Two cores with two hardware threads each, numbered as Linux numbers them
// on most x86 machines (a core's second thread after every core's first).
TEST(CpuTopology, HardwareThreadsOfOneCoreCountOnce) {
  const std::string sysfs = fake_sysfs({{0, "0,2"}, {1, "1,3"}, {2, "0,2"}, {3, "1,3"}});
  EXPECT_EQ(physical_cores({0, 1, 2, 3}, sysfs), 2);
  EXPECT_EQ(physical_cores({0, 2}, sysfs), 1);
  EXPECT_EQ(physical_cores({0, 1}, sysfs), 2);
  EXPECT_EQ(physical_cores({3}, sysfs), 1);
}

TEST(CpuTopology, CoresWithOneThreadEachCountEveryCpu) {
  const std::string sysfs = fake_sysfs({{0, "0"}, {1, "1"}, {2, "2"}, {3, "3"}});
  EXPECT_EQ(physical_cores({0, 1, 2, 3}, sysfs), 4);
  EXPECT_EQ(physical_cores({1, 3}, sysfs), 2);
}

// Without a CPU's topology (no sysfs, an empty file) every CPU counts: too
// many threads rather than too few.
TEST(CpuTopology, ACpuWithoutTopologyCountsEveryCpu) {
  const std::string sysfs = fake_sysfs({{0, "0,1"}, {1, "0,1"}, {2, ""}});
  EXPECT_EQ(physical_cores({0, 1}, sysfs), 1);
  EXPECT_EQ(physical_cores({0, 1, 5}, sysfs), 3);
  EXPECT_EQ(physical_cores({0, 1, 2}, sysfs), 3);
  EXPECT_EQ(physical_cores({0, 1}, test::make_temp_dir("empty")), 2);
}

TEST(CpuTopology, AllowedCpusAreTheAffinityMask) {
  cpu_set_t mask;
  ASSERT_EQ(sched_getaffinity(0, sizeof mask, &mask), 0);
  const std::vector<int> cpus = allowed_cpus();
  ASSERT_EQ(int(cpus.size()), CPU_COUNT(&mask));
  for (int cpu : cpus) EXPECT_TRUE(CPU_ISSET(cpu, &mask)) << cpu;
}

// A cgroup mount with `files` (path under the mount -> text), and a
// /proc/self/cgroup with `membership`; returns {proc file, mount}.
std::pair<std::string, std::string> fake_cgroups(const std::string& membership,
                                                 const std::map<std::string, std::string>& files) {
  const std::string root = test::make_temp_dir("cgroup");
  for (const auto& [path, text] : files) {
    std::filesystem::create_directories(std::filesystem::path(root + path).parent_path());
    test::write_file(root + path, text + "\n");
  }
  test::write_file(root + "/self-cgroup", membership);
  return {root + "/self-cgroup", root};
}

// cgroup v2: the tightest cpu.max on the way up counts, rounded up.
TEST(CpuQuota, TheTightestCgroupV2LimitOnThePathCounts) {
  auto [proc, root] = fake_cgroups("0::/user.slice/job\n", {{"/user.slice/job/cpu.max", "max 100000"},
                                                               {"/user.slice/cpu.max", "150000 100000"},
                                                               {"/cpu.max", "400000 100000"}});
  EXPECT_EQ(cpu_quota(proc, root), 2);
  std::tie(proc, root) = fake_cgroups("0::/a\n", {{"/a/cpu.max", "50000 100000"}});
  EXPECT_EQ(cpu_quota(proc, root), 1);  // half a CPU still runs one thread
}

TEST(CpuQuota, NoLimitIsZero) {
  auto [proc, root] = fake_cgroups("0::/a\n", {{"/a/cpu.max", "max 100000"}});
  EXPECT_EQ(cpu_quota(proc, root), 0);
  std::tie(proc, root) = fake_cgroups("0::/a\n", {});  // no cpu controller files at all
  EXPECT_EQ(cpu_quota(proc, root), 0);
  EXPECT_EQ(cpu_quota(root + "/missing", root), 0);
  std::tie(proc, root) = fake_cgroups("0::/a\n", {{"/a/cpu.max", "lots 100000"}});  // unreadable: no limit
  EXPECT_EQ(cpu_quota(proc, root), 0);
  std::tie(proc, root) = fake_cgroups("4:cpu,cpuacct:/a\n", {{"/cpu,cpuacct/a/cpu.cfs_quota_us", "-1"},
                                                                {"/cpu,cpuacct/a/cpu.cfs_period_us", "100000"}});
  EXPECT_EQ(cpu_quota(proc, root), 0);
}

// cgroup v1, as Docker's: the process's path names its cgroup as the host
// does, while the container's mount shows that cgroup at its root.
TEST(CpuQuota, CgroupV1QuotaAtTheRootOfAContainersMount) {
  auto [proc, root] = fake_cgroups("12:memory:/docker/f00\n4:cpu,cpuacct:/docker/f00\n",
                                   {{"/cpu,cpuacct/cpu.cfs_quota_us", "300000"},
                                    {"/cpu,cpuacct/cpu.cfs_period_us", "100000"}});
  EXPECT_EQ(cpu_quota(proc, root), 3);
}

// A hybrid system lists both versions: the tighter limit counts.
TEST(CpuQuota, BothVersionsTheTighterCounts) {
  auto [proc, root] = fake_cgroups("1:cpu:/svc\n0::/svc\n", {{"/cpu/svc/cpu.cfs_quota_us", "400000"},
                                                                 {"/cpu/svc/cpu.cfs_period_us", "100000"},
                                                                 {"/svc/cpu.max", "200000 100000"}});
  EXPECT_EQ(cpu_quota(proc, root), 2);
}

}  // namespace
}  // namespace warden
