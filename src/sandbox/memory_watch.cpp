#include "sandbox/memory_watch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_set>
#include <vector>

#include "util/error.h"

namespace warden::sandbox {
namespace {

enum class Read { ok, gone, denied };

// A whole /proc file. A process that exits while it is read is "gone",
// not an error: it holds nothing any more.
Read read_proc_file(const std::string& path, std::string& out) {
  out.clear();
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT || errno == ESRCH ? Read::gone : Read::denied;
  char buf[4096];
  Read result = Read::ok;
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      out.append(buf, size_t(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) result = errno == ESRCH || errno == ENOENT ? Read::gone : Read::denied;
    break;
  }
  ::close(fd);
  return result;
}

// The value in kB after "key:" at the start of a line, or -1 without one.
long long kb_field(const std::string& text, const char* key) {
  const std::string needle = std::string("\n") + key + ":";
  size_t at = ("\n" + text).find(needle);
  if (at == std::string::npos) return -1;
  return std::strtoll(text.c_str() + at + needle.size() - 1, nullptr, 10);
}

// Anonymous and shared-memory pages and swap, proportionally. Kernels
// before 5.8 have no Pss_Anon line: their Pss counts file pages too, which
// only ever overstates.
std::optional<uint64_t> process_memory(pid_t pid) {
  std::string text;
  switch (read_proc_file("/proc/" + std::to_string(pid) + "/smaps_rollup", text)) {
    case Read::gone: return 0;
    case Read::denied: return std::nullopt;
    case Read::ok: break;
  }
  if (text.empty()) return 0;  // a zombie: no memory left
  long long anon = kb_field(text, "Pss_Anon"), shmem = kb_field(text, "Pss_Shmem");
  long long swap = std::max(0LL, kb_field(text, "SwapPss"));
  long long resident = anon >= 0 ? anon + std::max(0LL, shmem) : kb_field(text, "Pss");
  if (resident < 0) return std::nullopt;  // a format this code does not know
  return uint64_t(resident + swap) * 1024;
}

// Children of every thread of `pid` (a thread's children are listed under
// that thread only). Orphans in the jail's pid namespace are adopted by its
// init, which is below the root, so the tree holds every jailed process.
bool append_children(pid_t pid, std::vector<pid_t>& out) {
  const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  DIR* dir = ::opendir(tasks.c_str());
  if (!dir) return errno == ENOENT || errno == ESRCH;
  bool readable = true;
  std::string text;
  while (dirent* e = ::readdir(dir)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    Read r = read_proc_file(tasks + "/" + e->d_name + "/children", text);
    if (r == Read::denied) readable = false;
    if (r != Read::ok) continue;
    const char* p = text.c_str();
    char* end = nullptr;
    for (long v = std::strtol(p, &end, 10); end != p; v = std::strtol(p, &end, 10)) {
      out.push_back(pid_t(v));
      p = end;
    }
  }
  ::closedir(dir);
  return readable;
}

}  // namespace

void check_memory_watch_available() {
  const std::string self_task = "/proc/self/task/" + std::to_string(::syscall(SYS_gettid));
  if (::access((self_task + "/children").c_str(), R_OK) != 0 || ::access("/proc/self/smaps_rollup", R_OK) != 0)
    throw Error(
        "sandbox unavailable: cannot bound the jail's memory (no memory cgroup can be made, and this kernel lacks "
        "/proc/PID/task/TID/children or /proc/PID/smaps_rollup for the supervisor's own count)");
}

std::optional<uint64_t> available_memory() {
  std::string text;
  if (read_proc_file("/proc/meminfo", text) != Read::ok) return std::nullopt;
  const long long kb = kb_field(text, "MemAvailable");
  if (kb < 0) return std::nullopt;
  return uint64_t(kb) * 1024;
}

MemoryWatch::MemoryWatch(uint64_t memory_limit, uint64_t jail_total)
    : limit_(memory_limit), backstop_(jail_total + kMemoryBackstopSlack) {
  check_memory_watch_available();
  std::optional<uint64_t> available = available_memory();
  if (!available) throw Error("sandbox unavailable: cannot read MemAvailable in /proc/meminfo");
  available_at_start_ = *available;
}

bool MemoryWatch::over(pid_t root) const {
  const std::optional<uint64_t> held = process_tree_memory(root);
  const std::optional<uint64_t> available = available_memory();
  if (!held || !available) return true;
  return *held > limit_ || (*available < available_at_start_ && available_at_start_ - *available > backstop_);
}

std::optional<uint64_t> process_tree_memory(pid_t root) {
  uint64_t total = 0;
  std::vector<pid_t> pending{root};
  std::unordered_set<pid_t> seen;
  while (!pending.empty()) {
    pid_t pid = pending.back();
    pending.pop_back();
    if (!seen.insert(pid).second) continue;  // a reused pid seen twice in one walk
    std::optional<uint64_t> held = process_memory(pid);
    if (!held || !append_children(pid, pending)) return std::nullopt;
    total += *held;
  }
  return total;
}

}  // namespace warden::sandbox
