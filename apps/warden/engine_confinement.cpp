#include "engine_confinement.h"

#include <filesystem>

#include "model/packed_cache.h"
#include "sandbox/landlock.h"
#include "sandbox/seccomp_filter.h"
#include "util/log.h"

namespace warden::cli {

void confine_engine(const std::string& model) {
  const model::PackedCacheSettings cache = model::PackedCacheSettings::from_environment();
  sandbox::FileAccess access;
  access.read = {model, "/proc/self", "/proc/meminfo", "/sys/devices/system/cpu", "/sys/fs/cgroup",
                 "/sys/kernel/mm/transparent_hugepage", "/etc/localtime"};
  if (!cache.dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(cache.dir, ec);  // the rule needs the folder
    access.read_write.push_back(cache.dir);
  }
  if (sandbox::restrict_files(access) == 0)
    log::warn("this kernel has no Landlock: the engine's file access is not confined");
  sandbox::confine_engine_process();
}

}  // namespace warden::cli
