#include "schema_validator.h"

#include <cmath>

namespace warden::grammar::test {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

size_t code_points(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xc0) != 0x80;
  return n;
}

bool same_json(const json& a, const ordered_json& b) { return a == json::parse(b.dump()); }

struct Validator {
  const ordered_json& root;

  std::string check(const json& v, const ordered_json& s, const std::string& path) {
    if (s.is_boolean()) return s.get<bool>() ? "" : path + ": false schema";
    if (s.contains("$ref")) {
      std::string ref = s["$ref"].get<std::string>();
      return check(v, root.at(ordered_json::json_pointer(ref.substr(1))), path);
    }
    if (s.contains("const") && !same_json(v, s["const"])) return path + ": not the const";
    if (s.contains("enum")) {
      bool found = false;
      for (const auto& e : s["enum"]) found = found || same_json(v, e);
      if (!found) return path + ": not in enum";
    }
    if (s.contains("anyOf") || s.contains("oneOf")) {
      const auto& alts = s.contains("anyOf") ? s["anyOf"] : s["oneOf"];
      size_t matches = 0;
      for (const auto& a : alts) matches += check(v, a, path).empty();
      if (matches == 0) return path + ": matches no alternative";
      if (s.contains("oneOf") && matches != 1) return path + ": matches several oneOf alternatives";
    }
    if (s.contains("allOf"))
      for (const auto& a : s["allOf"])
        if (auto e = check(v, a, path); !e.empty()) return e;
    if (s.contains("type")) {
      std::vector<std::string> types;
      if (s["type"].is_string()) types.push_back(s["type"].get<std::string>());
      else for (const auto& t : s["type"]) types.push_back(t.get<std::string>());
      if (s.value("nullable", false)) types.push_back("null");
      bool ok = false;
      for (const auto& t : types) ok = ok || has_type(v, t);
      if (!ok) return path + ": wrong type " + std::string(v.type_name());
    }
    if (v.is_object()) {
      const ordered_json empty = ordered_json::object();
      const auto& props = s.contains("properties") ? s["properties"] : empty;
      if (s.contains("required"))
        for (const auto& r : s["required"])
          if (!v.contains(r.get<std::string>())) return path + ": missing required " + r.get<std::string>();
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (props.contains(it.key())) {
          if (auto e = check(it.value(), props[it.key()], path + "/" + it.key()); !e.empty()) return e;
        } else if (s.contains("additionalProperties")) {
          if (auto e = check(it.value(), s["additionalProperties"], path + "/" + it.key()); !e.empty()) return e;
        }
      }
    }
    if (v.is_array()) {
      size_t n = v.size();
      if (s.contains("minItems") && n < s["minItems"].get<size_t>()) return path + ": too few items";
      if (s.contains("maxItems") && n > s["maxItems"].get<size_t>()) return path + ": too many items";
      size_t prefix = s.contains("prefixItems") ? s["prefixItems"].size() : 0;
      for (size_t i = 0; i < n; ++i) {
        std::string p = path + "/" + std::to_string(i);
        if (i < prefix) {
          if (auto e = check(v[i], s["prefixItems"][i], p); !e.empty()) return e;
        } else if (s.contains("items")) {
          if (auto e = check(v[i], s["items"], p); !e.empty()) return e;
        }
      }
    }
    if (v.is_string()) {
      size_t n = code_points(v.get<std::string>());
      if (s.contains("minLength") && n < s["minLength"].get<size_t>()) return path + ": string too short";
      if (s.contains("maxLength") && n > s["maxLength"].get<size_t>()) return path + ": string too long";
    }
    if (v.is_number()) {
      double x = v.get<double>();
      if (s.contains("minimum") && x < s["minimum"].get<double>()) return path + ": below minimum";
      if (s.contains("maximum") && x > s["maximum"].get<double>()) return path + ": above maximum";
      if (s.contains("exclusiveMinimum") && x <= s["exclusiveMinimum"].get<double>()) return path + ": not above exclusiveMinimum";
      if (s.contains("exclusiveMaximum") && x >= s["exclusiveMaximum"].get<double>()) return path + ": not below exclusiveMaximum";
    }
    return "";
  }

  static bool has_type(const json& v, const std::string& t) {
    if (t == "object") return v.is_object();
    if (t == "array") return v.is_array();
    if (t == "string") return v.is_string();
    if (t == "integer") return v.is_number_integer() || (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>());
    if (t == "number") return v.is_number();
    if (t == "boolean") return v.is_boolean();
    if (t == "null") return v.is_null();
    return false;
  }
};

}  // namespace

std::string validate(const json& value, const ordered_json& schema) {
  Validator v{schema};
  return v.check(value, schema, "#");
}

}  // namespace warden::grammar::test
