#pragma once
// Shared helpers for the jail tests: a workspace, a planted secret, running
// shell snippets in a profile.
#include <sys/stat.h>

#include <string>

#include "common/test_env.h"
#include "sandbox/sandbox.h"
#include "util/paths.h"

namespace warden::sandbox::test {

inline const std::string kSecret = "SECRET-KEY-MATERIAL-7f3a9c";

// Plants ~/.ssh/id_ed25519 (in the test's private HOME) and warden's own
// config and audit files; returns the key's path.
inline std::string plant_secrets() {
  const std::string key = paths::home() + "/.ssh/id_ed25519";
  warden::test::write_file(key, kSecret + "\n");
  ::chmod(key.c_str(), 0600);
  warden::test::write_file(paths::config_dir() + "/policy.toml", kSecret + "\n");
  warden::test::write_file(paths::data_dir() + "/audit.log", kSecret + "\n");
  return key;
}

// Small limits so that the bomb tests stay short and light on a shared box.
inline Profile test_profile(const std::string& name, const std::string& workspace) {
  Profile p = named_profile(name);
  p.workspace = workspace;
  p.limits.wall_seconds = 20;
  p.limits.cpu_seconds = 10;
  p.limits.memory_bytes = 256ull << 20;
  p.limits.max_processes = 32;
  return p;
}

inline SandboxResult sh(const Profile& p, const std::string& script, const RunOptions& o = {}) {
  return run(p, {"sh", "-c", script}, "", o);
}

inline SandboxResult py(const Profile& p, const std::string& code, const RunOptions& o = {}) {
  return run(p, {"python3", "-c", code}, "", o);
}

}  // namespace warden::sandbox::test
