#include "engine/model_sampling.h"

#include <cstdio>
#include <functional>
#include <limits>

#include "util/error.h"
#include "util/log.h"

namespace warden::engine {
namespace {

// One key: how to read it into the parameters, and the range it must be in
// (beyond what sample::validate checks, which lets a client ask for more).
struct Key {
  const char* name;
  bool integer;
  double low, high;
  std::function<void(sample::SamplerParams&, double)> set;
};

const Key kKeys[] = {
    {"temp", false, 0, 100, [](sample::SamplerParams& p, double v) { p.temperature = float(v); }},
    {"top_k", true, 0, std::numeric_limits<int>::max(), [](sample::SamplerParams& p, double v) { p.top_k = int(v); }},
    {"top_p", false, 0, 1, [](sample::SamplerParams& p, double v) { p.top_p = float(v); }},
    {"min_p", false, 0, 1, [](sample::SamplerParams& p, double v) { p.min_p = float(v); }},
    {"penalty_last_n", true, -1, std::numeric_limits<int>::max(),
     [](sample::SamplerParams& p, double v) { p.repeat_last_n = int(v); }},
    {"penalty_repeat", false, 0, 100, [](sample::SamplerParams& p, double v) { p.repeat_penalty = float(v); }},
};

std::string shown(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", v);
  return text;
}

}  // namespace

std::string apply_model_sampling(const gguf::File& file, sample::SamplerParams& params,
                                 const std::set<std::string>& user_set) {
  std::string taken;
  for (const Key& key : kKeys) {
    const std::string full = std::string("general.sampling.") + key.name;
    const gguf::Value* value = file.find(full);
    if (!value || user_set.count(key.name)) continue;
    try {
      const double v = key.integer ? double(value->as_int()) : value->as_float();
      if (!(v >= key.low && v <= key.high)) throw Error("out of range: " + shown(v));
      sample::SamplerParams candidate = params;
      key.set(candidate, v);
      sample::validate(candidate);
      params = candidate;
      taken += (taken.empty() ? "" : ", ") + std::string(key.name) + " " + shown(v);
    } catch (const Error& e) {
      log::warn(file.path() + ": " + full + " is not used: " + e.what());
    }
  }
  return taken;
}

}  // namespace warden::engine
