#include "engine_confinement.h"

#include <filesystem>

#include "model/packed_cache.h"
#include "sandbox/landlock.h"
#include "sandbox/seccomp_filter.h"
#include "util/log.h"
#include "util/mapped_file.h"

namespace warden::cli {

void confine_engine(const std::string& model) { confine_engine(std::vector<std::string>{model}, {}); }

void confine_engine(const std::vector<std::string>& models, const std::vector<std::string>& writable_files) {
  sandbox::FileAccess access;
  access.read = {"/proc/self", "/proc/meminfo", "/sys/devices/system/cpu", "/sys/fs/cgroup",
                 "/sys/kernel/mm/transparent_hugepage", "/etc/localtime"};
  access.read_write = writable_files;
  const model::PackedCacheSettings cache = model::PackedCacheSettings::from_environment();
  for (const std::string& model : models) {
    access.read.push_back(model);
    // The cache folder of this model alone (packed_cache.h): other models'
    // copies are neither readable nor writable from here on.
    const model::PackedCacheSettings own = cache.for_model(identity_of_file(model));
    std::error_code ec;
    const uintmax_t model_bytes = std::filesystem::file_size(model, ec);
    if (!ec && model::make_room(own, size_t(model_bytes))) access.read_write.push_back(own.dir);
  }
  if (sandbox::restrict_files(access) == 0)
    log::warn("this kernel has no Landlock: the engine's file access is not confined");
  sandbox::confine_engine_process();
}

void confine_loaded_engine() { sandbox::forbid_file_changes(); }

void confine_model_reader(const std::string& model) {
  if (sandbox::restrict_files({{model, "/etc/localtime"}, {}}) == 0)
    log::warn("this kernel has no Landlock: the file access of this command is not confined");
  sandbox::confine_engine_process();
  sandbox::forbid_file_changes();
}

}  // namespace warden::cli
