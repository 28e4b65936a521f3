#pragma once
// Runs one command in a fresh bubblewrap jail built from a Profile.
//
//   Profile p = named_profile("default");
//   p.workspace = "/path/to/project";
//   SandboxResult r = run(p, {"sh", "-c", "make test"}, "");
//
// Every namespace is unshared, capabilities are dropped, the seccomp filter
// of seccomp_filter.h is installed, limits apply, and a profile with network
// reaches the outside only through an EgressProxy started for this run.
// Anything that cannot be set up makes run() throw warden::Error: nothing
// ever runs with less protection than the profile asks for.
#include <functional>
#include <string>
#include <vector>

#include "sandbox/egress_proxy.h"
#include "sandbox/fs_plan.h"
#include "sandbox/profile.h"

namespace warden::sandbox {

inline constexpr const char* kBwrap = "/usr/bin/bwrap";
inline constexpr int kJailProxyPort = 3128;  // the relay's port inside the jail

enum class KillReason { none, timeout, memory, cpu, output_limit, disk };
const char* kill_reason_name(KillReason r);

struct SandboxResult {
  int exit_code = -1;             // the command's exit status; 128+N when signal N ended it
  KillReason killed = KillReason::none;
  std::string out, err;           // captured stdout/stderr, each at most limits.max_output_bytes
  bool out_truncated = false, err_truncated = false;
  // With limits.keep_output_ends: bytes dropped from the middle of each
  // stream, which were after its first max_output_bytes / 2 bytes.
  uint64_t out_dropped = 0, err_dropped = 0;
  double wall_seconds = 0;
  std::vector<ProxyLogEntry> proxy_log;  // every request the proxy saw
  std::string to_json() const;
};

struct RunOptions {
  // Egress proxy settings for profiles with network.
  Resolver resolver;                           // empty = system resolver
  std::vector<uint16_t> allowed_ports{80, 443};  // empty = any
  std::function<void(const ProxyLogEntry&)> on_proxy_log;
  std::string proxy_log_path;                  // JSON lines appended when set
  std::string relay_binary;                    // empty = find warden-netrelay (see relay_binary_path)
  // The bubblewrap binary: the system one, never looked up in $PATH. Tests
  // point it elsewhere to check that a missing or failing bwrap refuses.
  std::string bwrap = kBwrap;
  // false: no memory cgroup even where one could be made, so that tests can
  // check the bound that replaces it (the supervisor's memory watch). Memory
  // is bounded either way.
  bool memory_cgroup = true;
};

SandboxResult run(const Profile& profile, const std::vector<std::string>& argv, const std::string& stdin_bytes,
                  const RunOptions& options = {});

// Throws warden::Error naming what is missing: bwrap, user namespaces,
// seccomp.
void check_prerequisites(const std::string& bwrap = kBwrap);

// warden-netrelay next to the running executable, else the one in the build
// tree; throws warden::Error when there is none.
std::string relay_binary_path();


}  // namespace warden::sandbox
