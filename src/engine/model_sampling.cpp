#include "engine/model_sampling.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
#include <string_view>

#include "util/error.h"
#include "util/log.h"

namespace warden::engine {
namespace {

constexpr std::string_view kPrefix = "general.sampling.";

// One key and how to set it. The value's range is what the flags accept
// (sample::validate): a top_k of 0 or less is off, a temp of 0 or less greedy.
struct Key {
  const char* name;
  bool integer;
  std::function<void(sample::SamplerParams&, double)> set;
};

const Key kKeys[] = {
    {"temp", false, [](sample::SamplerParams& p, double v) { p.temperature = float(v); }},
    {"top_k", true, [](sample::SamplerParams& p, double v) { p.top_k = int(v); }},
    {"top_p", false, [](sample::SamplerParams& p, double v) { p.top_p = float(v); }},
    {"min_p", false, [](sample::SamplerParams& p, double v) { p.min_p = float(v); }},
    {"penalty_last_n", true, [](sample::SamplerParams& p, double v) { p.repeat_last_n = int(v); }},
    {"penalty_repeat", false, [](sample::SamplerParams& p, double v) { p.repeat_penalty = float(v); }},
};

std::string shown(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", v);
  return text;
}

// The value as a number: any numeric type, or a string holding one number
// (llama.cpp reads each value as text, so converters are not strict about
// the type). Throws Error saying what it is instead.
double number_of(const gguf::Value& value, bool integer) {
  double v = 0;
  if (value.type == gguf::ValueType::STRING) {
    const std::string& text = value.as_string();
    char* end = nullptr;
    v = std::strtod(text.c_str(), &end);
    if (text.empty() || end != text.c_str() + text.size()) throw Error("not a number");
  } else {
    v = value.as_float();
  }
  if (!std::isfinite(v)) throw Error("not a finite number: " + shown(v));
  if (integer && (v != std::floor(v) || std::fabs(v) > std::numeric_limits<int>::max()))
    throw Error("not an integer of the int range: " + shown(v));
  return v;
}

const Key* known_key(std::string_view name) {
  for (const Key& k : kKeys)
    if (name == k.name) return &k;
  return nullptr;
}

}  // namespace

std::string apply_model_sampling(const gguf::File& file, sample::SamplerParams& params,
                                 const std::set<std::string>& user_set) {
  std::string taken;
  for (const auto& [full, value] : file.metadata()) {
    if (full.rfind(kPrefix, 0) != 0) continue;
    const std::string name = full.substr(kPrefix.size());
    const Key* key = known_key(name);
    if (!key) {  // sequence, mirostat, xtc_*: samplers warden does not have
      log::warn(file.path() + ": " + full + " is not used: warden's sampler has no such setting");
      continue;
    }
    if (user_set.count(name)) continue;
    try {
      const double v = number_of(value, key->integer);
      sample::SamplerParams candidate = params;
      key->set(candidate, v);
      sample::validate(candidate);
      params = candidate;
      taken += (taken.empty() ? "" : ", ") + name + " " + shown(v);
    } catch (const Error& e) {
      log::warn(file.path() + ": " + full + " is not used: " + e.what());
    }
  }
  return taken;
}

}  // namespace warden::engine
