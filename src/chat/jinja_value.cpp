#include "chat/jinja_value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>

#include "chat/jinja_text.h"

namespace warden::chat::jinja {

const Value* Dict::find(const std::string& key) const {
  for (const auto& [k, v] : items)
    if (k == key) return &v;
  return nullptr;
}

void Dict::set(const std::string& key, Value value) {
  for (auto& [k, v] : items)
    if (k == key) { v = std::move(value); return; }
  items.emplace_back(key, std::move(value));
}

Value Value::undefined(std::string hint) {
  Value v;
  v.hint_ = std::move(hint);
  return v;
}
Value Value::none() { Value v; v.kind_ = Kind::None; return v; }
Value Value::boolean(bool b) { Value v; v.kind_ = Kind::Bool; v.bool_ = b; return v; }
Value Value::integer(int64_t i) { Value v; v.kind_ = Kind::Int; v.int_ = i; return v; }
Value Value::floating(double d) { Value v; v.kind_ = Kind::Float; v.float_ = d; return v; }
Value Value::string(std::string s) {
  Value v;
  v.kind_ = Kind::String;
  v.str_ = std::make_shared<const std::string>(std::move(s));
  return v;
}
namespace {

int nested_depth(int deepest_child) {
  if (deepest_child + 1 > kMaxValueDepth)
    throw TemplateError("value nested deeper than " + std::to_string(kMaxValueDepth) + " levels");
  return deepest_child + 1;
}

}  // namespace

Value Value::list(std::vector<Value> items, bool tuple) {
  Value v;
  v.kind_ = Kind::List;
  v.tuple_ = tuple;
  int deepest = 0;
  for (const auto& item : items) deepest = std::max(deepest, item.depth_);
  v.depth_ = nested_depth(deepest);
  v.list_ = std::make_shared<const std::vector<Value>>(std::move(items));
  return v;
}
Value Value::dict(Dict d) {
  Value v;
  v.kind_ = Kind::Dict;
  int deepest = 0;
  for (const auto& [_, item] : d.items) deepest = std::max(deepest, item.depth_);
  v.depth_ = nested_depth(deepest);
  v.dict_ = std::make_shared<Dict>(std::move(d));
  return v;
}
Value Value::namespace_(Dict d) {
  Value v = dict(std::move(d));
  v.kind_ = Kind::Namespace;
  v.depth_ = 0;
  return v;
}
Value Value::callable(std::string name, NativeFunction fn) {
  Value v;
  v.kind_ = Kind::Callable;
  v.fn_ = std::make_shared<const Callable>(Callable{std::move(name), std::move(fn)});
  return v;
}

namespace {
Value from_json_at(const nlohmann::ordered_json& j, int depth);
}

Value Value::from_json(const nlohmann::ordered_json& j) { return from_json_at(j, 0); }

namespace {

Value from_json_at(const nlohmann::ordered_json& j, int depth) {
  using Value = warden::chat::jinja::Value;
  if (depth >= kMaxValueDepth)
    throw TemplateError("JSON value nested deeper than " + std::to_string(kMaxValueDepth) + " levels");
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null: return Value::none();
    case nlohmann::ordered_json::value_t::boolean: return Value::boolean(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer: return Value::integer(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      uint64_t u = j.get<uint64_t>();
      if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        return Value::integer(static_cast<int64_t>(u));
      return Value::floating(static_cast<double>(u));
    }
    case nlohmann::ordered_json::value_t::number_float: return Value::floating(j.get<double>());
    case nlohmann::ordered_json::value_t::string: return Value::string(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& e : j) items.push_back(from_json_at(e, depth + 1));
      return Value::list(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      Dict d;
      d.items.reserve(j.size());
      for (auto it = j.begin(); it != j.end(); ++it) d.items.emplace_back(it.key(), from_json_at(it.value(), depth + 1));
      return Value::dict(std::move(d));
    }
    default:
      throw TemplateError("unsupported JSON value (binary or discarded) in template context");
  }
}

}  // namespace

int64_t Value::as_int() const { return kind_ == Kind::Bool ? (bool_ ? 1 : 0) : int_; }

double Value::as_double() const {
  if (kind_ == Kind::Float) return float_;
  return static_cast<double>(as_int());
}

bool Value::truthy() const {
  switch (kind_) {
    case Kind::Undefined: case Kind::None: return false;
    case Kind::Bool: return bool_;
    case Kind::Int: return int_ != 0;
    case Kind::Float: return float_ != 0.0;
    case Kind::String: return !str_->empty();
    case Kind::List: return !list_->empty();
    case Kind::Dict: return !dict_->items.empty();
    case Kind::Namespace: case Kind::Callable: return true;
  }
  return false;
}

std::string Value::type_name() const {
  switch (kind_) {
    case Kind::Undefined: return "Undefined";
    case Kind::None: return "NoneType";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::Float: return "float";
    case Kind::String: return "str";
    case Kind::List: return tuple_ ? "tuple" : "list";
    case Kind::Dict: return "dict";
    case Kind::Namespace: return "Namespace";
    case Kind::Callable: return "function";
  }
  return "object";
}

namespace {

// Namespaces can contain themselves; recursion through values stops here.
constexpr int kMaxWalkDepth = 2 * kMaxValueDepth;

void check_walk_depth(int depth) {
  if (depth > kMaxWalkDepth) throw TemplateError("value nested too deeply (or contains itself)");
}

using Touch = std::function<void(size_t bytes)>;

bool equals_at(const Value& a, const Value& b, int depth, const Touch* touch);

}  // namespace

bool equals(const Value& a, const Value& b) { return equals_at(a, b, 0, nullptr); }
bool equals(const Value& a, const Value& b, const Touch& touch) { return equals_at(a, b, 0, &touch); }

namespace {

bool equals_at(const Value& a, const Value& b, int depth, const Touch* touch) {
  check_walk_depth(depth);
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_double() == b.as_double();
    return a.as_int() == b.as_int();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::Undefined: case Value::Kind::None: return true;
    case Value::Kind::String: {
      const std::string& x = a.as_string();
      const std::string& y = b.as_string();
      if (x.size() != y.size()) return false;
      if (touch) (*touch)(x.size());
      return x == y;
    }
    case Value::Kind::List: {
      if (a.is_tuple() != b.is_tuple()) return false;
      const auto& x = a.as_list();
      const auto& y = b.as_list();
      if (x.size() != y.size()) return false;
      if (touch) (*touch)(x.size() * sizeof(Value));
      for (size_t i = 0; i < x.size(); ++i)
        if (!equals_at(x[i], y[i], depth + 1, touch)) return false;
      return true;
    }
    case Value::Kind::Dict: {
      const auto& x = a.as_dict().items;
      const auto& y = b.as_dict();
      if (x.size() != y.items.size()) return false;
      // Each key is looked up linearly: n * n key comparisons.
      if (touch) (*touch)(x.size() * x.size());
      for (const auto& [k, v] : x) {
        const Value* other = y.find(k);
        if (!other || !equals_at(v, *other, depth + 1, touch)) return false;
      }
      return true;
    }
    case Value::Kind::Namespace: return &a.namespace_dict() == &b.namespace_dict();
    case Value::Kind::Callable: return &a.as_callable() == &b.as_callable();
    default: return false;
  }
}

}  // namespace

std::string float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  // sci looks like "-1.2345e+02": split sign, digits and exponent.
  std::string sign;
  size_t pos = 0;
  if (sci[0] == '-') { sign = "-"; pos = 1; }
  size_t e_at = sci.find('e');
  std::string digits;
  for (size_t i = pos; i < e_at; ++i)
    if (sci[i] != '.') digits.push_back(sci[i]);
  int exponent = std::stoi(sci.substr(e_at + 1));
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  int decpt = exponent + 1;  // value = 0.DIGITS * 10^decpt
  int n = static_cast<int>(digits.size());
  std::string out = sign;
  if (decpt <= -4 || decpt > 16) {
    out += digits[0];
    if (n > 1) { out += '.'; out += digits.substr(1); }
    char exp_buf[16];
    std::snprintf(exp_buf, sizeof exp_buf, "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
    out += exp_buf;
  } else if (decpt <= 0) {
    out += "0.";
    out.append(static_cast<size_t>(-decpt), '0');
    out += digits;
  } else if (decpt < n) {
    out += digits.substr(0, decpt);
    out += '.';
    out += digits.substr(decpt);
  } else {
    out += digits;
    out.append(static_cast<size_t>(decpt - n), '0');
    out += ".0";
  }
  return out;
}

namespace {

void check_limit(const std::string& out, size_t limit) {
  if (out.size() > limit) throw TemplateError("template value exceeds the size limit");
}

bool is_printable_for_repr(char32_t c) {
  if (c < 0x20 || c == 0x7F) return false;
  if (c >= 0x80 && c <= 0xA0) return false;
  if (c == 0xAD) return false;
  if (c >= 0x2000 && c <= 0x200F) return false;
  if (c >= 0x2028 && c <= 0x202F) return false;
  if (c >= 0x205F && c <= 0x206F) return false;
  if (c == 0x3000 || c == 0xFEFF) return false;
  if (c >= 0xD800 && c <= 0xDFFF) return false;
  return true;
}

void append_string_repr(std::string& out, const std::string& s) {
  bool has_single = s.find('\'') != std::string::npos;
  bool has_double = s.find('"') != std::string::npos;
  char quote = (has_single && !has_double) ? '"' : '\'';
  out.push_back(quote);
  std::u32string u = text::decode(s);
  for (char32_t c : u) {
    if (c == static_cast<char32_t>(quote) || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (is_printable_for_repr(c)) {
      std::u32string one(1, c);
      out += text::encode(one);
    } else {
      char buf[16];
      if (c <= 0xFF) std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(c));
      else if (c <= 0xFFFF) std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      else std::snprintf(buf, sizeof buf, "\\U%08x", static_cast<unsigned>(c));
      out += buf;
    }
  }
  out.push_back(quote);
}

void append_repr(std::string& out, const Value& v, size_t limit, int depth) {
  check_walk_depth(depth);
  switch (v.kind()) {
    case Value::Kind::Undefined: break;
    case Value::Kind::None: out += "None"; break;
    case Value::Kind::Bool: out += v.as_bool() ? "True" : "False"; break;
    case Value::Kind::Int: out += std::to_string(v.as_int()); break;
    case Value::Kind::Float: out += float_repr(v.as_double()); break;
    case Value::Kind::String: append_string_repr(out, v.as_string()); break;
    case Value::Kind::List: {
      const auto& items = v.as_list();
      out += v.is_tuple() ? '(' : '[';
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += ", ";
        append_repr(out, items[i], limit, depth + 1);
        check_limit(out, limit);
      }
      if (v.is_tuple() && items.size() == 1) out += ',';
      out += v.is_tuple() ? ')' : ']';
      break;
    }
    case Value::Kind::Dict:
    case Value::Kind::Namespace: {
      if (v.is_namespace()) out += "<Namespace ";
      out += '{';
      bool first = true;
      for (const auto& [k, item] : (v.is_namespace() ? v.namespace_dict() : v.as_dict()).items) {
        if (!first) out += ", ";
        first = false;
        append_string_repr(out, k);
        out += ": ";
        append_repr(out, item, limit, depth + 1);
        check_limit(out, limit);
      }
      out += '}';
      if (v.is_namespace()) out += '>';
      break;
    }
    case Value::Kind::Callable: out += "<function " + v.as_callable().name + ">"; break;
  }
  check_limit(out, limit);
}

void append_json_string(std::string& out, const std::string& s) {
  out.push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

void append_newline_indent(std::string& out, const JsonFormat& f, int level) {
  out.push_back('\n');
  for (int i = 0; i < level; ++i) {
    if (!f.indent_text.empty()) out += f.indent_text;
    else out.append(static_cast<size_t>(f.indent), ' ');
  }
}

void append_json(std::string& out, const Value& v, const JsonFormat& f, int level, size_t limit) {
  check_walk_depth(level);
  bool pretty = f.indent >= 0 || !f.indent_text.empty();
  switch (v.kind()) {
    case Value::Kind::None: out += "null"; break;
    case Value::Kind::Bool: out += v.as_bool() ? "true" : "false"; break;
    case Value::Kind::Int: out += std::to_string(v.as_int()); break;
    case Value::Kind::Float: {
      double d = v.as_double();
      if (std::isnan(d)) out += "NaN";
      else if (std::isinf(d)) out += d < 0 ? "-Infinity" : "Infinity";
      else out += float_repr(d);
      break;
    }
    case Value::Kind::String: append_json_string(out, v.as_string()); break;
    case Value::Kind::List: {
      const auto& items = v.as_list();
      if (items.empty()) { out += "[]"; break; }
      out += '[';
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += f.item_separator;
        if (pretty) append_newline_indent(out, f, level + 1);
        append_json(out, items[i], f, level + 1, limit);
      }
      if (pretty) append_newline_indent(out, f, level);
      out += ']';
      break;
    }
    case Value::Kind::Dict: {
      std::vector<const std::pair<std::string, Value>*> entries;
      for (const auto& e : v.as_dict().items) entries.push_back(&e);
      if (f.sort_keys)
        std::stable_sort(entries.begin(), entries.end(),
                         [](const auto* a, const auto* b) { return a->first < b->first; });
      if (entries.empty()) { out += "{}"; break; }
      out += '{';
      for (size_t i = 0; i < entries.size(); ++i) {
        if (i) out += f.item_separator;
        if (pretty) append_newline_indent(out, f, level + 1);
        append_json_string(out, entries[i]->first);
        out += f.key_separator;
        append_json(out, entries[i]->second, f, level + 1, limit);
      }
      if (pretty) append_newline_indent(out, f, level);
      out += '}';
      break;
    }
    case Value::Kind::Undefined:
      throw TemplateError("Object of type Undefined is not JSON serializable");
    case Value::Kind::Namespace:
    case Value::Kind::Callable:
      throw TemplateError("Object of type " + v.type_name() + " is not JSON serializable");
  }
  check_limit(out, limit);
}

}  // namespace

std::string to_repr(const Value& v, size_t limit) {
  std::string out;
  append_repr(out, v, limit, 0);
  return out;
}

std::string to_str(const Value& v, size_t limit) {
  if (v.is_string()) return v.as_string();
  return to_repr(v, limit);
}

std::string to_json(const Value& v, const JsonFormat& format, size_t limit) {
  std::string out;
  append_json(out, v, format, 0, limit);
  return out;
}

}  // namespace warden::chat::jinja
