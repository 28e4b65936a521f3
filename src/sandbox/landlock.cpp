#include "sandbox/landlock.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>

#include "sandbox/fd.h"
#include "util/error.h"

namespace warden::sandbox {
namespace {

// The kernel's ABI, spelled out here: Debian 12's headers stop at ABI 2.
struct RulesetAttr {
  uint64_t handled_access_fs;
  uint64_t handled_access_net;  // ABI 4
  uint64_t scoped;              // ABI 6
};
struct PathBeneathAttr {
  uint64_t allowed_access;
  int32_t parent_fd;
} __attribute__((packed));

constexpr int kRulePathBeneath = 1;
constexpr uint32_t kCreateRulesetVersion = 1u << 0;

constexpr uint64_t kExecute = 1ull << 0, kWriteFile = 1ull << 1, kReadFile = 1ull << 2, kReadDir = 1ull << 3,
                   kRemoveFile = 1ull << 5, kMakeReg = 1ull << 8, kTruncate = 1ull << 14;
constexpr uint64_t kScopeAbstractUnixSocket = 1ull << 0, kScopeSignal = 1ull << 1;

// Every file-system right the ABI knows: all of them are refused unless a
// rule grants them.
uint64_t handled_fs(int abi) {
  uint64_t all = (1ull << 13) - 1;    // ABI 1: execute .. make_sym
  if (abi >= 2) all |= 1ull << 13;  // refer
  if (abi >= 3) all |= kTruncate;
  if (abi >= 5) all |= 1ull << 15;  // ioctl_dev
  return all;
}

int threads_of_this_process() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  return -1;
}

void allow(int ruleset, const std::string& path, uint64_t rights, int abi) {
  Fd fd(::open(path.c_str(), O_PATH | O_CLOEXEC));
  if (fd.fd < 0) {
    if (errno == ENOENT) return;
    throw Error("landlock: cannot open " + path + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd.fd, &st) != 0) throw Error("landlock: cannot stat " + path + ": " + std::strerror(errno));
  // A rule on a file may carry only the rights that apply to files.
  if (!S_ISDIR(st.st_mode)) rights &= kExecute | kWriteFile | kReadFile | kTruncate;
  PathBeneathAttr rule{rights & handled_fs(abi), fd.fd};
  if (::syscall(SYS_landlock_add_rule, ruleset, kRulePathBeneath, &rule, 0) != 0)
    throw Error("landlock: cannot add a rule for " + path + ": " + std::strerror(errno));
}

}  // namespace

int restrict_files(const FileAccess& access) {
  const long abi = ::syscall(SYS_landlock_create_ruleset, nullptr, 0, kCreateRulesetVersion);
  if (abi < 0) {
    if (errno == ENOSYS || errno == EOPNOTSUPP) return 0;
    throw Error(std::string("landlock: cannot read its version: ") + std::strerror(errno));
  }
  if (threads_of_this_process() != 1)
    throw Error("landlock: this process already runs threads, which would stay unconfined");
  RulesetAttr attr{handled_fs(int(abi)), 0, abi >= 6 ? kScopeAbstractUnixSocket | kScopeSignal : 0};
  const size_t attr_size = abi >= 6 ? sizeof(RulesetAttr) : abi >= 4 ? 2 * sizeof(uint64_t) : sizeof(uint64_t);
  Fd ruleset(int(::syscall(SYS_landlock_create_ruleset, &attr, attr_size, 0)));
  if (ruleset.fd < 0) throw Error(std::string("landlock: cannot create a ruleset: ") + std::strerror(errno));
  for (const auto& path : access.read) allow(ruleset.fd, path, kReadFile | kReadDir, int(abi));
  for (const auto& path : access.read_write)
    allow(ruleset.fd, path, kReadFile | kReadDir | kWriteFile | kRemoveFile | kMakeReg | kTruncate, int(abi));
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    throw Error(std::string("landlock: cannot set no_new_privs: ") + std::strerror(errno));
  if (::syscall(SYS_landlock_restrict_self, ruleset.fd, 0) != 0)
    throw Error(std::string("landlock: cannot restrict this process: ") + std::strerror(errno));
  return int(abi);
}

}  // namespace warden::sandbox
