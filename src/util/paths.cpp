#include "util/paths.h"

#include <cstdlib>

#include "util/error.h"

namespace warden::paths {
namespace {
std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return (v && *v == '/') ? std::string(v) : std::string();  // XDG: relative paths are ignored
}
std::string xdg(const char* var, const char* fallback_under_home) {
  std::string base = env_or_empty(var);
  if (base.empty()) base = home() + "/" + fallback_under_home;
  return base + "/warden";
}
}  // namespace

std::string home() {
  std::string h = env_or_empty("HOME");
  if (h.empty()) throw Error("HOME is not set to an absolute path");
  return h;
}
std::string config_dir() { return xdg("XDG_CONFIG_HOME", ".config"); }
std::string data_dir() { return xdg("XDG_DATA_HOME", ".local/share"); }
std::string cache_dir() { return xdg("XDG_CACHE_HOME", ".cache"); }
std::string runtime_dir() {
  std::string r = env_or_empty("XDG_RUNTIME_DIR");
  return r.empty() ? cache_dir() + "/run" : r + "/warden";
}

}  // namespace warden::paths
