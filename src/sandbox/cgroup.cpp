#include "sandbox/cgroup.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

namespace warden::sandbox {
namespace {

bool write_text(const std::string& path, const std::string& text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::write(fd, text.data(), text.size()) == ssize_t(text.size());
  ::close(fd);
  return ok;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

// This process's cgroup path in the hierarchy whose controller list
// contains `controller` ("" for the v2 unified line "0::").
std::string own_cgroup(const std::string& controller) {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    size_t a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    std::string list = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
    if (controller.empty() ? (line.compare(0, 3, "0::") == 0) : (("," + list + ",").find("," + controller + ",") != std::string::npos))
      return path == "/" ? "" : path;
  }
  return "/nonexistent";
}

std::string unique_name() {
  static std::atomic<unsigned> counter{0};
  return "warden-jail-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

uint64_t stat_field(const std::string& file, const std::string& key) {
  std::istringstream in(read_text(file));
  std::string k;
  uint64_t v;
  while (in >> k >> v)
    if (k == key) return v;
  return 0;
}

}  // namespace

JailCgroup::JailCgroup(uint64_t memory_bytes, uint64_t max_processes, bool with_memory) {
  const std::string name = unique_name();
  const std::string mem = std::to_string(memory_bytes), pids = std::to_string(max_processes);
  // v2: a child of our own cgroup, if the controllers are delegated to us.
  const std::string v2_parent = "/sys/fs/cgroup" + own_cgroup("");
  std::string controllers = read_text(v2_parent + "/cgroup.subtree_control");
  if (exists("/sys/fs/cgroup/cgroup.controllers") && controllers.find("memory") != std::string::npos &&
      controllers.find("pids") != std::string::npos) {
    std::string dir = v2_parent + "/" + name;
    if (::mkdir(dir.c_str(), 0700) == 0) {
      dirs_.push_back(dir);
      if (with_memory && write_text(dir + "/memory.max", mem)) {
        write_text(dir + "/memory.swap.max", "0");  // absent without swap accounting
        memory_dir_ = dir;
      }
      if (write_text(dir + "/pids.max", pids)) pids_dir_ = dir;
      procs_files_.push_back(dir + "/cgroup.procs");
      v2_ = true;
      return;
    }
  }
  // v1: separate memory and pids hierarchies.
  std::string mem_dir = "/sys/fs/cgroup/memory" + own_cgroup("memory") + "/" + name;
  if (with_memory && ::mkdir(mem_dir.c_str(), 0700) == 0) {
    dirs_.push_back(mem_dir);
    procs_files_.push_back(mem_dir + "/cgroup.procs");
    if (write_text(mem_dir + "/memory.limit_in_bytes", mem)) {
      write_text(mem_dir + "/memory.memsw.limit_in_bytes", mem);  // no swap beyond the limit, where swap accounting exists
      memory_dir_ = mem_dir;
    }
  }
  std::string pids_dir = "/sys/fs/cgroup/pids" + own_cgroup("pids") + "/" + name;
  if (::mkdir(pids_dir.c_str(), 0700) == 0) {
    dirs_.push_back(pids_dir);
    procs_files_.push_back(pids_dir + "/cgroup.procs");
    if (write_text(pids_dir + "/pids.max", pids)) pids_dir_ = pids_dir;
  }
}

bool JailCgroup::enter_self() const noexcept {
  for (const auto& f : procs_files_) {
    int fd = ::open(f.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return false;
    bool ok = ::write(fd, "0", 1) == 1;
    ::close(fd);
    if (!ok) return false;
  }
  return true;
}

void JailCgroup::kill_all() const {
  if (v2_ && !dirs_.empty() && write_text(dirs_[0] + "/cgroup.kill", "1")) return;
  for (const auto& f : procs_files_) {
    std::istringstream in(read_text(f));
    pid_t pid;
    while (in >> pid) ::kill(pid, SIGKILL);
  }
}

bool JailCgroup::memory_limit_hit() const {
  if (memory_dir_.empty()) return false;
  if (v2_) return stat_field(memory_dir_ + "/memory.events", "oom_kill") > 0;
  return stat_field(memory_dir_ + "/memory.oom_control", "oom_kill") > 0;
}

JailCgroup::~JailCgroup() {
  // A cgroup can only be removed once empty; processes killed a moment ago
  // may still be exiting.
  for (int attempt = 0; attempt < 2000; attempt++) {
    bool all_removed = true;
    for (const auto& d : dirs_)
      if (exists(d) && ::rmdir(d.c_str()) != 0) all_removed = false;
    if (all_removed) return;
    kill_all();
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
}

}  // namespace warden::sandbox
