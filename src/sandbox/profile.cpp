#include "sandbox/profile.h"

#include "util/error.h"

namespace warden::sandbox {

std::vector<std::string> profile_names() { return {"default", "readonly", "network"}; }

Profile named_profile(const std::string& name) {
  Profile p;
  p.name = name;
  if (name == "default") return p;
  if (name == "readonly") {
    p.workspace_writable = false;
    return p;
  }
  if (name == "network") {
    p.network = true;
    return p;
  }
  throw Error("unknown sandbox profile '" + name + "' (known: default, readonly, network)");
}

}  // namespace warden::sandbox
