// Fuzzes the policy parser: any input either parses into a policy that can
// evaluate queries, or is rejected with warden::Error naming file:line.
#include <cstddef>
#include <cstdint>
#include <string>

#include "broker/policy.h"
#include "util/error.h"

using namespace warden::broker;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  PolicyEnv env;
  env.workspace = "/ws";
  env.home = "/home/u";
  env.protected_dirs = {"/home/u/.config/warden"};
  std::string text(reinterpret_cast<const char*>(data), size);
  try {
    Policy p = Policy::parse(text, "policy.toml", env);
    for (Capability c : kAllCapabilities) {
      (void)p.evaluate({c, target_is_path(c) ? "/ws/a/b.txt" : "a.example.com", false});
      (void)p.evaluate({c, target_is_path(c) ? "/etc/passwd" : "x", true});
      (void)p.rate_limit(c);
    }
  } catch (const warden::Error&) {
  }
  return 0;
}
