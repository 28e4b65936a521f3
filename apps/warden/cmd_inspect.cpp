// warden inspect FILE [--json]: a GGUF file's metadata and tensor table.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>

#include "command.h"
#include "engine_confinement.h"
#include "gguf/gguf.h"

namespace {

using warden::gguf::Value;
using warden::gguf::ValueType;

nlohmann::json to_json(const Value& v) {
  switch (v.type) {
    case ValueType::BOOL: return v.as_bool();
    case ValueType::STRING: return v.as_string();
    case ValueType::FLOAT32: case ValueType::FLOAT64: return v.as_float();
    case ValueType::INT8: case ValueType::INT16: case ValueType::INT32: case ValueType::INT64: return v.as_int();
    case ValueType::ARRAY: {
      nlohmann::json a = nlohmann::json::array();
      for (const auto& item : v.as_array().items) a.push_back(to_json(item));
      return a;
    }
    default: return v.as_uint();
  }
}

// Long arrays (vocabularies) are summarised in the human-readable view.
std::string summarise(const Value& v) {
  if (v.type == ValueType::ARRAY) {
    const auto& items = v.as_array().items;
    std::string s = "[";
    for (size_t i = 0; i < items.size() && i < 6; i++) s += (i ? ", " : "") + summarise(items[i]);
    if (items.size() > 6) s += ", ... (" + std::to_string(items.size()) + " items)";
    return s + "]";
  }
  if (v.type == ValueType::STRING) {
    std::string s = to_json(v).dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
    return s.size() > 120 ? s.substr(0, 117) + "...\"" : s;
  }
  return to_json(v).dump();
}

std::string shape(const std::vector<int64_t>& dims) {
  std::string s;
  for (size_t i = 0; i < dims.size(); i++) s += (i ? " x " : "") + std::to_string(dims[i]);
  return s;
}

// A GGUF file just downloaded is what this command is for, so it reads the
// file confined, as the engine does (engine_confinement.h).
int inspect(const std::string& path, bool as_json) {
  warden::cli::confine_model_reader(path);
  warden::gguf::File f(path);
  if (as_json) {
    nlohmann::json out;
    out["file"] = path;
    out["version"] = f.version();
    out["alignment"] = f.alignment();
    out["metadata"] = nlohmann::json::object();
    for (const auto& [k, v] : f.metadata()) out["metadata"][k] = to_json(v);
    out["tensors"] = nlohmann::json::array();
    for (const auto& t : f.tensors())
      out["tensors"].push_back({{"name", t.name}, {"type", warden::gguf::type_name(t.type)},
                                {"dims", t.dims}, {"offset", t.offset}, {"bytes", t.size}});
    std::cout << out.dump(2, ' ', true, nlohmann::json::error_handler_t::replace) << "\n";
    return 0;
  }
  std::printf("file: %s\nGGUF version %u, alignment %llu, %zu metadata keys, %zu tensors\n\n", path.c_str(),
              f.version(), (unsigned long long)f.alignment(), f.metadata().size(), f.tensors().size());
  for (const auto& [k, v] : f.metadata()) std::printf("%-40s %s\n", k.c_str(), summarise(v).c_str());
  uint64_t total = 0;
  if (!f.tensors().empty()) std::printf("\n%-40s %-6s %-24s %12s\n", "tensor", "type", "shape", "bytes");
  for (const auto& t : f.tensors()) {
    std::printf("%-40s %-6s %-24s %12llu\n", t.name.c_str(), std::string(warden::gguf::type_name(t.type)).c_str(),
                shape(t.dims).c_str(), (unsigned long long)t.size);
    total += t.size;
  }
  std::printf("\ntensor data: %.2f MiB\n", double(total) / (1024.0 * 1024.0));
  return 0;
}

WARDEN_COMMAND("inspect", "Show a GGUF file's metadata and tensor table", [](CLI::App& app) {
  auto path = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  app.add_option("file", *path, "GGUF file")->required();
  app.add_flag("--json", *json, "Print JSON");
  return [=] { return inspect(*path, *json); };
});

}  // namespace
