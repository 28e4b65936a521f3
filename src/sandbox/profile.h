#pragma once
// A sandbox profile: what one command may see and use. Profiles are data; the
// jail itself is built by bwrap_args.h and run by sandbox.h.
#include <cstdint>
#include <string>
#include <vector>

namespace warden::sandbox {

struct Limits {
  uint64_t cpu_seconds = 30;                   // RLIMIT_CPU (kill reason "cpu")
  uint64_t memory_bytes = 1ull << 30;          // cgroup memory limit, else memory_watch.h + RLIMIT_AS
  uint64_t max_processes = 64;                 // pids cgroup, else RLIMIT_NPROC
  uint64_t max_file_bytes = 256ull << 20;      // RLIMIT_FSIZE
  uint64_t max_open_files = 256;               // RLIMIT_NOFILE
  uint64_t tmpfs_bytes = 256ull << 20;         // size of the private /tmp and $HOME
  // A writable workspace's filesystem may lose at most this much free space,
  // and this many free inodes, while the command runs (checked every 100 ms;
  // kill reason "disk"). Writes by other programs to the same filesystem
  // count too: the check is on the disk, the thing it protects.
  uint64_t max_disk_growth_bytes = 1ull << 30;
  uint64_t max_new_inodes = 100000;
  double wall_seconds = 60;                    // whole process tree killed after this
  uint64_t max_output_bytes = 1ull << 20;      // per stream; exceeding it kills the jail,
  // unless this is set: then the command runs on, and each stream keeps its
  // first half and its last half of max_output_bytes (the middle is
  // dropped and counted in SandboxResult), as a build's errors and a test
  // run's summary come at the end.
  bool keep_output_ends = false;
};

// One top-level entry of the workspace (a single path component).
struct ProtectedEntry {
  std::string name;       // ".git"
  bool directory = true;  // what the placeholder is when it does not exist
};

struct Profile {
  std::string name;
  std::string workspace;                       // host directory; empty = none
  bool workspace_writable = true;
  bool network = false;                        // only ever through the egress proxy
  std::vector<std::string> allowed_domains;    // exact "a.b" or "*.b" (suffix)
  // Destinations (exact host names or IP literals) that may resolve to / be
  // private, loopback or link-local addresses. Empty in every named profile.
  std::vector<std::string> private_destinations;
  std::vector<std::string> readonly_binds;     // extra host paths, bound read-only at the same path
  // Entries of a writable workspace that stay read-only: files other programs
  // later run as code outside the jail (.git, .envrc). One that exists is
  // bound read-only over itself (a mount point, so it cannot be renamed or
  // removed either); one that does not gets an empty read-only placeholder
  // for the run (removed afterwards), so the command cannot create it.
  std::vector<ProtectedEntry> readonly_in_workspace;
  Limits limits;
};

// The named profiles: "default" (workspace rw, no network), "readonly"
// (workspace ro, no network), "network" (workspace rw, egress proxy).
// Throws warden::Error naming the profile when it is unknown.
Profile named_profile(const std::string& name);
std::vector<std::string> profile_names();

// Where the workspace appears inside the jail (also the working directory).
inline constexpr const char* kJailWorkspace = "/workspace";
inline constexpr const char* kJailHome = "/home/user";

}  // namespace warden::sandbox
