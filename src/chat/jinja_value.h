#pragma once
// The values a Jinja template computes with, modelled on the Python objects
// Jinja2 would see: undefined, None, bool, int, float, str, list/tuple, dict
// (insertion-ordered, string keys), namespace (the one mutable object) and
// callables. Strings, lists and dicts are shared, immutable after creation,
// so copying a Value is cheap.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "chat/jinja_error.h"

namespace warden::chat::jinja {

class Value;

struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

using NativeFunction = std::function<Value(CallArgs&)>;

struct Callable {
  std::string name;
  NativeFunction call;
};

// Insertion-ordered string-keyed map; small, so lookups are linear.
struct Dict {
  std::vector<std::pair<std::string, Value>> items;
  const Value* find(const std::string& key) const;
  void set(const std::string& key, Value value);
};

// Lists and dicts nest at most this deep, so printing, comparing and
// destroying values never recurses without bound.
constexpr int kMaxValueDepth = 200;

class Value {
 public:
  enum class Kind { Undefined, None, Bool, Int, Float, String, List, Dict, Namespace, Callable };

  Value() = default;  // undefined
  static Value undefined(std::string hint = {});
  static Value none();
  static Value boolean(bool b);
  static Value integer(int64_t i);
  static Value floating(double d);
  static Value string(std::string s);
  static Value list(std::vector<Value> items, bool tuple = false);
  static Value dict(Dict d);
  static Value namespace_(Dict d);
  static Value callable(std::string name, NativeFunction fn);
  static Value from_json(const nlohmann::ordered_json& j);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::Undefined; }
  bool is_none() const { return kind_ == Kind::None; }
  bool is_bool() const { return kind_ == Kind::Bool; }
  bool is_int() const { return kind_ == Kind::Int; }
  bool is_float() const { return kind_ == Kind::Float; }
  // Python's bool is an int subclass, so arithmetic treats it as one.
  bool is_number() const { return kind_ == Kind::Int || kind_ == Kind::Float || kind_ == Kind::Bool; }
  bool is_string() const { return kind_ == Kind::String; }
  bool is_list() const { return kind_ == Kind::List; }
  bool is_tuple() const { return kind_ == Kind::List && tuple_; }
  bool is_dict() const { return kind_ == Kind::Dict; }
  bool is_namespace() const { return kind_ == Kind::Namespace; }
  bool is_callable() const { return kind_ == Kind::Callable; }

  bool as_bool() const { return bool_; }
  int64_t as_int() const;      // Int or Bool
  double as_double() const;    // any number
  const std::string& as_string() const { return *str_; }
  const std::vector<Value>& as_list() const { return *list_; }
  const Dict& as_dict() const { return *dict_; }
  Dict& namespace_dict() const { return *dict_; }  // namespaces are mutable by design
  const Callable& as_callable() const { return *fn_; }
  // For undefined values: the message Jinja2 would raise when it is used.
  const std::string& undefined_hint() const { return hint_; }
  // Nesting depth of a list/dict (namespaces count as leaves); 0 otherwise.
  int depth() const { return depth_; }

  // Python truthiness.
  bool truthy() const;
  // Python type name as Jinja2's messages use it ("dict", "str", ...).
  std::string type_name() const;

 private:
  Kind kind_ = Kind::Undefined;
  bool bool_ = false;
  bool tuple_ = false;
  int depth_ = 0;
  int64_t int_ = 0;
  double float_ = 0;
  std::shared_ptr<const std::string> str_;
  std::shared_ptr<const std::vector<Value>> list_;
  std::shared_ptr<Dict> dict_;
  std::shared_ptr<const Callable> fn_;
  std::string hint_;
};

// Python ==, with 1 == 1.0 == True.
bool equals(const Value& a, const Value& b);
// The same, telling `touch` how many bytes each part of the comparison is
// about to scan (before scanning them), so the caller can charge for it.
bool equals(const Value& a, const Value& b, const std::function<void(size_t bytes)>& touch);

// str(value) as Jinja2 prints it ({{ x }}): undefined -> "", None -> "None",
// lists/dicts in Python repr. Throws TemplateError past `limit` bytes.
std::string to_str(const Value& v, size_t limit);
// repr(value).
std::string to_repr(const Value& v, size_t limit);
// Python float repr: shortest round-trip digits, "1.0", "1e-05", "inf".
std::string float_repr(double d);

struct JsonFormat {
  int indent = -1;  // < 0: single line
  std::string indent_text;  // used when indent given as a string
  std::string item_separator = ", ";
  std::string key_separator = ": ";
  bool sort_keys = false;
};
// json.dumps(value, ensure_ascii=False, ...) byte for byte.
std::string to_json(const Value& v, const JsonFormat& format, size_t limit);

}  // namespace warden::chat::jinja
