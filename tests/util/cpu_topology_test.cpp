#include "util/cpu_topology.h"

#include <gtest/gtest.h>
#include <sched.h>

#include <filesystem>
#include <map>

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

}  // namespace
}  // namespace warden
