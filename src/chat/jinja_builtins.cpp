// Filters, tests, str/dict methods, operators and globals, each with the
// Python/Jinja2 semantics real chat templates rely on.
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
#include <optional>
#include <unordered_map>
#include <utility>

#include "chat/jinja_builtins.h"
#include "chat/jinja_interpreter.h"
#include "chat/jinja_text.h"

namespace warden::chat::jinja {

namespace {

// A float truncated toward zero, as Python's int(); one that no int64 holds
// (inf, nan, 1e300) is an error rather than an undefined conversion.
int64_t float_to_integer(double d) {
  if (!std::isfinite(d) || std::fabs(d) >= 9.2e18) throw TemplateError("cannot convert float to integer");
  return static_cast<int64_t>(d);
}

// ---- argument binding ---------------------------------------------------------

// Binds call arguments to named parameters in Python fashion:
// positional first, then keywords; unknown keywords and extras are errors.
class Params {
 public:
  Params(const CallArgs& args, const std::string& function, std::vector<std::string> names)
      : args_(args), function_(function), names_(std::move(names)) {
    if (args.positional.size() > names_.size())
      throw TemplateError(function_ + "() takes at most " + std::to_string(names_.size()) + " arguments (" +
                          std::to_string(args.positional.size()) + " given)");
    for (const auto& [key, _] : args.keyword) {
      auto it = std::find(names_.begin(), names_.end(), key);
      if (it == names_.end()) throw TemplateError(function_ + "() got an unexpected keyword argument '" + key + "'");
      if (static_cast<size_t>(it - names_.begin()) < args.positional.size())
        throw TemplateError(function_ + "() got multiple values for argument '" + key + "'");
    }
  }
  bool has(size_t i) const { return find(i) != nullptr; }
  Value get(size_t i, Value fallback = Value::undefined()) const {
    const Value* v = find(i);
    return v ? *v : fallback;
  }
  std::string get_string(size_t i, const std::string& fallback) const {
    const Value* v = find(i);
    if (!v || v->is_none()) return fallback;
    if (!v->is_string())
      throw TemplateError(function_ + "(): argument '" + names_[i] + "' must be a string, not " + v->type_name());
    return v->as_string();
  }
  int64_t get_int(size_t i, int64_t fallback) const {
    const Value* v = find(i);
    if (!v || v->is_none()) return fallback;
    if (!v->is_int() && !v->is_bool())
      throw TemplateError(function_ + "(): argument '" + names_[i] + "' must be an integer, not " + v->type_name());
    return v->as_int();
  }
  bool get_bool(size_t i, bool fallback) const {
    const Value* v = find(i);
    return v ? v->truthy() : fallback;
  }

 private:
  const Value* find(size_t i) const {
    if (i < args_.positional.size()) return &args_.positional[i];
    for (const auto& [key, value] : args_.keyword)
      if (key == names_[i]) return &value;
    return nullptr;
  }
  const CallArgs& args_;
  std::string function_;
  std::vector<std::string> names_;
};

const std::string& require_string(const Value& v, const char* what) {
  if (v.is_undefined()) fail_undefined(v);
  if (!v.is_string()) throw TemplateError(std::string(what) + " requires a string, got " + v.type_name());
  return v.as_string();
}

// ---- numbers --------------------------------------------------------------------

[[noreturn]] void unsupported(const std::string& op, const Value& a, const Value& b) {
  throw TemplateError("unsupported operand type(s) for " + op + ": '" + a.type_name() + "' and '" + b.type_name() +
                      "'");
}

Value int_result(bool overflow, int64_t v) {
  if (overflow) throw TemplateError("integer overflow");
  return Value::integer(v);
}

int64_t floor_div(int64_t a, int64_t b) {
  if (b == 0) throw TemplateError("integer division or modulo by zero");
  if (a == std::numeric_limits<int64_t>::min() && b == -1) throw TemplateError("integer overflow");
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

int64_t py_mod(int64_t a, int64_t b) {
  if (b == 0) throw TemplateError("integer division or modulo by zero");
  if (b == -1) return 0;
  int64_t r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

double py_fmod(double a, double b) {
  if (b == 0) throw TemplateError("float modulo");
  double r = std::fmod(a, b);
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

Value int_pow(int64_t base, int64_t exp) {
  if (exp < 0) {
    if (base == 0) throw TemplateError("0.0 cannot be raised to a negative power");
    return Value::floating(std::pow(static_cast<double>(base), static_cast<double>(exp)));
  }
  int64_t result = 1;
  while (exp > 0) {
    if (exp & 1)
      if (__builtin_mul_overflow(result, base, &result)) throw TemplateError("integer overflow");
    exp >>= 1;
    if (exp > 0 && __builtin_mul_overflow(base, base, &base)) throw TemplateError("integer overflow");
  }
  return Value::integer(result);
}

// ---- printf-style formatting ("%s" % x) -------------------------------------------

std::string percent_format(Interpreter& in, const std::string& fmt, const Value& args) {
  std::vector<Value> values;
  if (args.is_tuple()) values = args.as_list();
  else values.push_back(args);
  size_t next_value = 0;
  std::string out;
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%') { out.push_back(fmt[i]); continue; }
    if (++i >= fmt.size()) throw TemplateError("incomplete format");
    Value v;
    bool from_mapping = false;
    if (fmt[i] == '(') {
      size_t close = fmt.find(')', i);
      if (close == std::string::npos) throw TemplateError("incomplete format key");
      if (!args.is_dict()) throw TemplateError("format requires a mapping");
      const Value* found = args.as_dict().find(fmt.substr(i + 1, close - i - 1));
      if (!found) throw TemplateError("format key not found: " + fmt.substr(i + 1, close - i - 1));
      v = *found;
      from_mapping = true;
      i = close + 1;
    }
    std::string spec = "%";
    while (i < fmt.size() && std::string("-+ 0#").find(fmt[i]) != std::string::npos) spec.push_back(fmt[i++]);
    while (i < fmt.size() && std::isdigit(static_cast<unsigned char>(fmt[i]))) spec.push_back(fmt[i++]);
    if (i < fmt.size() && fmt[i] == '.') {
      spec.push_back(fmt[i++]);
      while (i < fmt.size() && std::isdigit(static_cast<unsigned char>(fmt[i]))) spec.push_back(fmt[i++]);
    }
    if (i >= fmt.size()) throw TemplateError("incomplete format");
    if (spec.size() > 12) throw TemplateError("format width/precision too long");
    char conv = fmt[i];
    if (conv == '%') { out.push_back('%'); continue; }
    if (!from_mapping) {
      if (next_value >= values.size()) throw TemplateError("not enough arguments for format string");
      v = values[next_value++];
    }
    char buf[512];
    switch (conv) {
      case 's': case 'r': {
        std::string s = conv == 's' ? in.str(v) : to_repr(v, in.limits().max_output_bytes);
        if (spec == "%") out += s;
        else {
          std::snprintf(buf, sizeof buf, (spec + "s").c_str(), s.c_str());
          out += s.size() >= sizeof buf - 1 ? s : std::string(buf);
        }
        break;
      }
      case 'd': case 'i': case 'x': case 'X': case 'o': case 'c': {
        if (!v.is_number()) throw TemplateError(std::string("%") + conv + " format: a number is required, not " + v.type_name());
        int64_t n = v.is_float() ? float_to_integer(v.as_double()) : v.as_int();
        if (conv == 'c') {
          if (n < 0 || n > 0x10FFFF) throw TemplateError("%c format: argument not in range(0x110000)");
          std::u32string one(1, static_cast<char32_t>(n));
          out += text::encode(one);
        } else {
          std::string f = spec + "ll" + (conv == 'i' ? 'd' : conv);
          std::snprintf(buf, sizeof buf, f.c_str(), static_cast<long long>(n));
          out += buf;
        }
        break;
      }
      case 'f': case 'F': case 'e': case 'E': case 'g': case 'G': {
        if (!v.is_number()) throw TemplateError(std::string("%") + conv + " format: a number is required, not " + v.type_name());
        std::snprintf(buf, sizeof buf, (spec + conv).c_str(), v.as_double());
        out += buf;
        break;
      }
      default:
        throw TemplateError(std::string("unsupported format character '") + conv + "'");
    }
    if (out.size() > in.limits().max_output_bytes) throw TemplateError("formatted string exceeds the size limit");
  }
  if (!args.is_dict() && next_value < values.size())
    throw TemplateError("not all arguments converted during string formatting");
  return out;
}

// ---- str.format -----------------------------------------------------------------

// Python's format-spec mini-language: [[fill]align][sign][#][0][width][,][.precision][type].
std::string apply_format_spec(Interpreter& in, const Value& v, const std::string& spec) {
  if (spec.empty()) return in.str(v);
  std::u32string u = text::decode(spec);
  size_t i = 0;
  char32_t fill = ' ';
  char align = 0;
  auto is_align = [](char32_t c) { return c == '<' || c == '>' || c == '^' || c == '='; };
  if (u.size() >= 2 && is_align(u[1])) {
    fill = u[0];
    align = static_cast<char>(u[1]);
    i = 2;
  } else if (!u.empty() && is_align(u[0])) {
    align = static_cast<char>(u[0]);
    i = 1;
  }
  std::string flags;
  if (i < u.size() && (u[i] == '+' || u[i] == '-' || u[i] == ' ')) flags.push_back(static_cast<char>(u[i++]));
  if (i < u.size() && u[i] == '#') flags.push_back(static_cast<char>(u[i++]));
  if (i < u.size() && u[i] == '0') {
    if (!align) { fill = '0'; align = '='; }
    ++i;
  }
  int64_t width = 0;
  while (i < u.size() && u[i] >= '0' && u[i] <= '9' && width < 100000) width = width * 10 + (u[i++] - '0');
  int precision = -1;
  if (i < u.size() && u[i] == '.') {
    ++i;
    precision = 0;
    while (i < u.size() && u[i] >= '0' && u[i] <= '9' && precision < 1000) precision = precision * 10 + static_cast<int>(u[i++] - '0');
  }
  char type = 0;
  if (i < u.size()) type = static_cast<char>(u[i++]);
  if (i != u.size()) throw TemplateError("invalid format specifier '" + spec + "'");
  std::string body;
  char buf[1200];
  if (type == 0 || type == 's') {
    if (type == 's' && !v.is_string()) throw TemplateError("unknown format code 's' for object of type '" + v.type_name() + "'");
    body = v.is_number() && precision >= 0 && type == 0 ? (std::snprintf(buf, sizeof buf, "%.*g", precision, v.as_double()), std::string(buf)) : in.str(v);
    if (!v.is_number() && precision >= 0) body = text::encode(text::decode(body).substr(0, static_cast<size_t>(precision)));
    if (!align) align = v.is_number() ? '>' : '<';
  } else {
    if (!v.is_number()) throw TemplateError(std::string("unknown format code '") + type + "' for object of type '" + v.type_name() + "'");
    std::string f = "%" + flags;
    if (std::string("dxXob").find(type) != std::string::npos) {
      if (v.is_float()) throw TemplateError(std::string("unknown format code '") + type + "' for object of type 'float'");
      if (type == 'b') {
        uint64_t n = static_cast<uint64_t>(std::llabs(v.as_int()));
        std::string bits;
        do { bits.insert(bits.begin(), static_cast<char>('0' + (n & 1))); n >>= 1; } while (n);
        body = (v.as_int() < 0 ? "-" : "") + bits;
      } else {
        std::snprintf(buf, sizeof buf, (f + "ll" + type).c_str(), static_cast<long long>(v.as_int()));
        body = buf;
      }
    } else if (std::string("fFeEgG%").find(type) != std::string::npos) {
      double d = v.as_double() * (type == '%' ? 100.0 : 1.0);
      std::snprintf(buf, sizeof buf, (f + ".*" + (type == '%' ? 'f' : type)).c_str(), precision < 0 ? 6 : precision, d);
      body = buf;
      if (type == '%') body += '%';
    } else {
      throw TemplateError(std::string("unknown format code '") + type + "'");
    }
    if (!align) align = '>';
  }
  int64_t len = static_cast<int64_t>(text::length(body));
  if (len >= width) return body;
  std::u32string pad(static_cast<size_t>(width - len), fill);
  std::string padding = text::encode(pad);
  switch (align) {
    case '<': return body + padding;
    case '^': {
      size_t left = pad.size() / 2;
      return text::encode(pad.substr(0, left)) + body + text::encode(pad.substr(left));
    }
    case '=':
      if (!body.empty() && (body[0] == '-' || body[0] == '+' || body[0] == ' ')) return body.substr(0, 1) + padding + body.substr(1);
      return padding + body;
    default: return padding + body;
  }
}

std::string brace_format(Interpreter& in, const std::string& fmt, const CallArgs& args) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    char c = fmt[i];
    if (c == '{' && i + 1 < fmt.size() && fmt[i + 1] == '{') { out.push_back('{'); ++i; continue; }
    if (c == '}' && i + 1 < fmt.size() && fmt[i + 1] == '}') { out.push_back('}'); ++i; continue; }
    if (c == '}') throw TemplateError("single '}' encountered in format string");
    if (c != '{') { out.push_back(c); continue; }
    size_t close = fmt.find('}', i);
    if (close == std::string::npos) throw TemplateError("single '{' encountered in format string");
    std::string field = fmt.substr(i + 1, close - i - 1);
    i = close;
    char conversion = 0;
    std::string spec;
    if (size_t colon = field.find(':'); colon != std::string::npos) {
      spec = field.substr(colon + 1);
      field.resize(colon);
    }
    if (size_t bang = field.find('!'); bang != std::string::npos) {
      if (bang + 2 != field.size()) throw TemplateError("invalid conversion in format string");
      conversion = field[bang + 1];
      field.resize(bang);
    }
    Value v;
    if (field.empty()) {
      if (auto_index >= args.positional.size()) throw TemplateError("format(): not enough positional arguments");
      v = args.positional[auto_index++];
    } else if (std::all_of(field.begin(), field.end(), [](char d) { return std::isdigit(static_cast<unsigned char>(d)); })) {
      size_t idx = static_cast<size_t>(std::strtoull(field.c_str(), nullptr, 10));
      if (idx >= args.positional.size()) throw TemplateError("format(): replacement index out of range");
      v = args.positional[idx];
    } else {
      bool found = false;
      for (const auto& [key, value] : args.keyword)
        if (key == field) { v = value; found = true; }
      if (!found) throw TemplateError("format(): missing keyword argument '" + field + "'");
    }
    if (conversion == 'r') v = Value::string(to_repr(v, in.limits().max_output_bytes));
    else if (conversion == 's') v = Value::string(in.str(v));
    else if (conversion != 0) throw TemplateError("unknown conversion specifier " + std::string(1, conversion));
    out += apply_format_spec(in, v, spec);
    if (out.size() > in.limits().max_output_bytes) throw TemplateError("formatted string exceeds the size limit");
  }
  return out;
}

// ---- helpers used by several filters ------------------------------------------------

// Jinja2's attribute getter for filters: "a.b.0" walks items. With a
// default, an undefined step is replaced by it (as Jinja2 does).
Value get_path(Interpreter& in, Value v, const std::string& path, const Value* fallback = nullptr) {
  size_t start = 0;
  for (;;) {
    size_t dot = path.find('.', start);
    std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    bool numeric = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) {
      return std::isdigit(static_cast<unsigned char>(c));
    });
    v = in.get_item(v, numeric ? Value::integer(std::strtoll(part.c_str(), nullptr, 10)) : Value::string(part));
    if (fallback && v.is_undefined()) v = *fallback;
    if (dot == std::string::npos) return v;
    start = dot + 1;
  }
}

// For case-insensitive sort/unique/min/max: strings are lowered.
Value sort_key(Interpreter& in, const Value& v, bool case_sensitive) {
  if (!case_sensitive && v.is_string()) {
    in.tick_bytes(v.as_string().size());
    return Value::string(text::lower(v.as_string()));
  }
  return v;
}

// Python's str.splitlines(), one line at a time (callers bound what they keep).
void for_each_line(const std::string& s, const std::function<void(std::string)>& fn) {
  std::u32string u = text::decode(s);
  size_t start = 0;
  for (size_t i = 0; i < u.size(); ++i) {
    char32_t c = u[i];
    bool is_break = c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D || c == 0x1E ||
                    c == 0x85 || c == 0x2028 || c == 0x2029;
    if (!is_break) continue;
    fn(text::encode(std::u32string_view(u).substr(start, i - start)));
    if (c == '\r' && i + 1 < u.size() && u[i + 1] == '\n') ++i;
    start = i + 1;
  }
  if (start < u.size()) fn(text::encode(std::u32string_view(u).substr(start)));
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

std::string ascii_escape_json(const std::string& json) {
  std::string out;
  char buf[16];
  for (char32_t c : text::decode(json)) {
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
    } else if (c <= 0xFFFF) {
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      out += buf;
    } else {
      char32_t v = c - 0x10000;
      std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", static_cast<unsigned>(0xD800 + (v >> 10)),
                    static_cast<unsigned>(0xDC00 + (v & 0x3FF)));
      out += buf;
    }
  }
  return out;
}

std::optional<int64_t> parse_python_int(const std::string& raw, int base) {
  std::string s = text::strip(raw, true, true);
  std::string digits;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '_' && i > 0 && i + 1 < s.size() && std::isalnum(static_cast<unsigned char>(s[i - 1])) &&
        std::isalnum(static_cast<unsigned char>(s[i + 1])))
      continue;
    digits.push_back(s[i]);
  }
  if (digits.empty()) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(digits.c_str(), &end, base);
  if (end != digits.c_str() + digits.size() || errno == ERANGE || std::isspace(static_cast<unsigned char>(digits[0])))
    return std::nullopt;
  return v;
}

std::optional<double> parse_python_float(const std::string& raw) {
  std::string s = text::strip(raw, true, true);
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size()) return std::nullopt;
  return v;
}

Value python_round(const Value& v, int64_t precision, const std::string& method) {
  if (!v.is_number()) throw TemplateError("round filter requires a number, got " + v.type_name());
  if (method != "common" && method != "ceil" && method != "floor")
    throw TemplateError("round method must be 'common', 'ceil' or 'floor'");
  if (method == "common" && !v.is_float() && precision >= 0) return Value::integer(v.as_int());
  double x = v.as_double();
  if (method == "common") {
    if (precision < 0 || precision > 300 || !std::isfinite(x)) {
      double scale = std::pow(10.0, static_cast<double>(precision));
      return Value::floating(std::nearbyint(x * scale) / scale);
    }
    char buf[400];
    std::snprintf(buf, sizeof buf, "%.*f", static_cast<int>(precision), x);
    return Value::floating(std::strtod(buf, nullptr));
  }
  double scale = std::pow(10.0, static_cast<double>(precision));
  double r = method == "ceil" ? std::ceil(x * scale) : std::floor(x * scale);
  return Value::floating(r / scale);
}

// ---- filters ------------------------------------------------------------------------

using FilterFn = std::function<Value(Interpreter&, const Value&, CallArgs&)>;
using TestFn = std::function<bool(Interpreter&, const Value&, CallArgs&)>;

Value filter_tojson(Interpreter& in, const Value& v, CallArgs& args) {
  Params p(args, "tojson", {"indent", "separators", "sort_keys", "ensure_ascii"});
  JsonFormat f;
  Value indent = p.get(0, Value::none());
  if (indent.is_string()) {
    f.indent = 0;
    f.indent_text = indent.as_string();
  } else if (!indent.is_none() && !indent.is_undefined()) {
    if (!indent.is_int()) throw TemplateError("tojson(): indent must be an integer or string");
    f.indent = static_cast<int>(std::clamp<int64_t>(indent.as_int(), 0, 64));
  }
  if (f.indent >= 0) f.item_separator = ",";
  Value separators = p.get(1, Value::none());
  if (!separators.is_none() && !separators.is_undefined()) {
    if (!separators.is_list() || separators.as_list().size() != 2 || !separators.as_list()[0].is_string() ||
        !separators.as_list()[1].is_string())
      throw TemplateError("tojson(): separators must be a pair of strings");
    f.item_separator = separators.as_list()[0].as_string();
    f.key_separator = separators.as_list()[1].as_string();
  }
  f.sort_keys = p.get_bool(2, false);
  std::string json = to_json(v, f, in.limits().max_output_bytes);
  if (p.get_bool(3, false)) json = ascii_escape_json(json);
  return in.make_string(std::move(json));
}

Value filter_default(Interpreter& in, const Value& v, CallArgs& args) {
  Params p(args, "default", {"default_value", "boolean"});
  bool use_default = v.is_undefined() || (p.get_bool(1, false) && !v.truthy());
  return use_default ? p.get(0, Value::string("")) : v;
}

Value filter_length(Interpreter& in, const Value& v, CallArgs& args) {
  Params p(args, "length", {});
  switch (v.kind()) {
    case Value::Kind::Undefined: return Value::integer(0);
    case Value::Kind::String:
      in.tick_bytes(v.as_string().size());
      return Value::integer(static_cast<int64_t>(text::length(v.as_string())));
    case Value::Kind::List: return Value::integer(static_cast<int64_t>(v.as_list().size()));
    case Value::Kind::Dict: return Value::integer(static_cast<int64_t>(v.as_dict().items.size()));
    default: throw TemplateError("object of type '" + v.type_name() + "' has no len()");
  }
}

Value filter_first(Interpreter& in, const Value& v, CallArgs& args) {
  Params p(args, "first", {});
  std::vector<Value> items = in.iterate(v);
  if (items.empty()) return Value::undefined("No first item, sequence was empty.");
  return items.front();
}

Value filter_last(Interpreter& in, const Value& v, CallArgs& args) {
  Params p(args, "last", {});
  if (v.is_undefined()) fail_undefined(v);
  std::vector<Value> items = in.iterate(v);
  if (items.empty()) return Value::undefined("No last item, sequence was empty.");
  return items.back();
}

Value filter_join(Interpreter& in, const Value& v, CallArgs& args) {
  Params p(args, "join", {"d", "attribute"});
  std::string sep = p.get_string(0, "");
  bool by_attribute = p.has(1) && !p.get(1).is_none();
  std::string out;
  bool first = true;
  for (const Value& item : in.iterate(v)) {
    in.tick();
    if (!first) out += sep;
    first = false;
    Value x = by_attribute ? get_path(in, item, in.str(p.get(1))) : item;
    out += in.str(x);
    if (out.size() > in.limits().max_output_bytes) throw TemplateError("join(): result exceeds the size limit");
  }
  return in.make_string(std::move(out));
}

Value filter_items(Interpreter& in, const Value& v, CallArgs& args) {
  Params p(args, "items", {});
  if (v.is_undefined()) return in.make_list({});
  if (!v.is_dict()) throw TemplateError("Can only get item pairs from a mapping.");
  in.reserve_list(v.as_dict().items.size());
  std::vector<Value> pairs;
  for (const auto& [k, item] : v.as_dict().items) pairs.push_back(Value::list({Value::string(k), item}, true));
  return Value::list(std::move(pairs));
}

Value filter_trim(Interpreter& in, const Value& v, CallArgs& args) {
  Params p(args, "trim", {"chars"});
  std::string s = in.str(v);
  if (p.has(0) && !p.get(0).is_none()) return in.make_string(text::strip_chars(s, in.str(p.get(0)), true, true));
  return in.make_string(text::strip(s, true, true));
}

Value filter_replace(Interpreter& in, const Value& v, CallArgs& args) {
  Params p(args, "replace", {"old", "new", "count"});
  std::string s = in.str(v);
  return in.make_string(text::replace(s, in.str(p.get(0)), in.str(p.get(1)), p.get_int(2, -1),
                                      in.limits().max_output_bytes));
}

Value filter_int(Interpreter& in, const Value& v, CallArgs& args) {
  Params p(args, "int", {"default", "base"});
  Value fallback = p.get(0, Value::integer(0));
  int base = static_cast<int>(p.get_int(1, 10));
  if (base != 0 && (base < 2 || base > 36)) throw TemplateError("int(): base must be 0 or between 2 and 36");
  if (v.is_bool() || v.is_int()) return Value::integer(v.as_int());
  if (v.is_float()) return Value::integer(float_to_integer(v.as_double()));
  if (v.is_string()) {
    if (auto i = parse_python_int(v.as_string(), base)) return Value::integer(*i);
    if (auto d = parse_python_float(v.as_string())) return Value::integer(float_to_integer(*d));
  }
  return fallback;
}

Value filter_float(Interpreter& in, const Value& v, CallArgs& args) {
  Params p(args, "float", {"default"});
  if (v.is_number()) return Value::floating(v.as_double());
  if (v.is_string())
    if (auto d = parse_python_float(v.as_string())) return Value::floating(*d);
  return p.get(0, Value::floating(0.0));
}

Value filter_list(Interpreter& in, const Value& v, CallArgs& args) {
  Params p(args, "list", {});
  return in.make_list(in.iterate(v));
}

Value filter_unique(Interpreter& in, const Value& v, CallArgs& args) {
  Params p(args, "unique", {"case_sensitive", "attribute"});
  bool case_sensitive = p.get_bool(0, false);
  bool by_attribute = p.has(1) && !p.get(1).is_none();
  std::vector<Value> seen, out;
  for (const Value& item : in.iterate(v)) {
    Value key = sort_key(in, by_attribute ? get_path(in, item, in.str(p.get(1))) : item, case_sensitive);
    bool dup = false;
    for (const auto& s : seen) {
      in.tick();
      if (in.equals(s, key)) { dup = true; break; }
    }
    if (!dup) {
      seen.push_back(key);
      out.push_back(item);
    }
  }
  return in.make_list(std::move(out));
}

Value filter_indent(Interpreter& in, const Value& v, CallArgs& args) {
  Params p(args, "indent", {"width", "first", "blank"});
  Value width = p.get(0, Value::integer(4));
  std::string indention;
  if (width.is_string()) indention = width.as_string();
  else if (width.is_int()) indention.assign(static_cast<size_t>(std::clamp<int64_t>(width.as_int(), 0, 4096)), ' ');
  else throw TemplateError("indent(): width must be an integer or string");
  bool first = p.get_bool(1, false);
  bool blank = p.get_bool(2, false);
  std::string s = in.str(v) + "\n";
  std::string rv;
  bool first_line = true;
  // Lines are appended as they are split; the size check runs on every
  // line, as each can add `indention` (up to 4096 bytes) to the result.
  for_each_line(s, [&](std::string line) {
    if (!first_line) {
      rv += "\n";
      if (blank || !line.empty()) rv += indention;
    }
    first_line = false;
    rv += line;
    if (rv.size() > in.limits().max_output_bytes) throw TemplateError("indent(): result exceeds the size limit");
  });
  if (first) rv = indention + rv;
  return in.make_string(std::move(rv));
}

Value filter_map(Interpreter& in, const Value& v, CallArgs& args) {
  std::vector<Value> out;
  if (args.positional.empty()) {
    Params p(args, "map", {"attribute", "default"});
    if (!p.has(0)) throw TemplateError("map(): needs a filter name or attribute=");
    std::string attribute = in.str(p.get(0));
    Value fallback = p.get(1, Value::none());
    bool has_default = !fallback.is_none() && !fallback.is_undefined();
    for (const Value& item : in.iterate(v)) {
      in.tick();
      out.push_back(get_path(in, item, attribute, has_default ? &fallback : nullptr));
    }
  } else {
    std::string filter = require_string(args.positional[0], "map()");
    CallArgs rest;
    rest.positional.assign(args.positional.begin() + 1, args.positional.end());
    rest.keyword = args.keyword;
    for (const Value& item : in.iterate(v)) {
      in.tick();
      CallArgs copy = rest;
      out.push_back(in.apply_filter(filter, item, copy));
    }
  }
  return in.make_list(std::move(out));
}

// select/reject/selectattr/rejectattr share this: keep items whose
// (attribute) value passes the test (or is truthy without a test).
Value select_items(Interpreter& in, const Value& v, CallArgs& args, bool by_attribute, bool keep_when) {
  size_t i = 0;
  std::string attribute;
  if (by_attribute) {
    if (args.positional.empty()) throw TemplateError("selectattr/rejectattr need an attribute name");
    attribute = require_string(args.positional[0], "selectattr/rejectattr");
    i = 1;
  }
  std::string test;
  if (i < args.positional.size()) test = require_string(args.positional[i++], "select/reject");
  CallArgs test_args;
  test_args.positional.assign(args.positional.begin() + static_cast<std::ptrdiff_t>(std::min(i, args.positional.size())),
                              args.positional.end());
  test_args.keyword = args.keyword;
  std::vector<Value> out;
  for (const Value& item : in.iterate(v)) {
    in.tick();
    Value subject = by_attribute ? get_path(in, item, attribute) : item;
    bool passed;
    if (test.empty()) {
      passed = subject.truthy();
    } else {
      CallArgs copy = test_args;
      passed = in.apply_test(test, subject, copy);
    }
    if (passed == keep_when) out.push_back(item);
  }
  return in.make_list(std::move(out));
}

Value filter_sort(Interpreter& in, const Value& v, CallArgs& args) {
  Params p(args, "sort", {"reverse", "case_sensitive", "attribute"});
  bool reverse = p.get_bool(0, false);
  bool case_sensitive = p.get_bool(1, false);
  bool by_attribute = p.has(2) && !p.get(2).is_none();
  std::vector<Value> items = in.iterate(v);
  std::vector<std::pair<Value, Value>> keyed;
  for (const Value& item : items)
    keyed.emplace_back(sort_key(in, by_attribute ? get_path(in, item, in.str(p.get(2))) : item, case_sensitive), item);
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& a, const auto& b) {
    in.tick();
    int c = in.compare(a.first, b.first, "<");
    return reverse ? c > 0 : c < 0;
  });
  std::vector<Value> out;
  for (auto& [_, item] : keyed) out.push_back(item);
  return in.make_list(std::move(out));
}

Value filter_dictsort(Interpreter& in, const Value& v, CallArgs& args) {
  Params p(args, "dictsort", {"case_sensitive", "by", "reverse"});
  if (!v.is_dict()) throw TemplateError("You can only sort by either 'key' or 'value' of a mapping");
  bool case_sensitive = p.get_bool(0, false);
  std::string by = p.get_string(1, "key");
  if (by != "key" && by != "value") throw TemplateError("You can only sort by either 'key' or 'value'");
  bool reverse = p.get_bool(2, false);
  in.reserve_list(v.as_dict().items.size());  // for `entries`, and the result below
  std::vector<std::pair<std::string, Value>> entries = v.as_dict().items;
  std::stable_sort(entries.begin(), entries.end(), [&](const auto& a, const auto& b) {
    in.tick();
    Value ka = sort_key(in, by == "key" ? Value::string(a.first) : a.second, case_sensitive);
    Value kb = sort_key(in, by == "key" ? Value::string(b.first) : b.second, case_sensitive);
    int c = in.compare(ka, kb, "<");
    return reverse ? c > 0 : c < 0;
  });
  std::vector<Value> out;
  for (auto& [k, item] : entries) out.push_back(Value::list({Value::string(k), item}, true));
  return Value::list(std::move(out));
}

Value min_max(Interpreter& in, const Value& v, CallArgs& args, bool want_max) {
  Params p(args, want_max ? "max" : "min", {"case_sensitive", "attribute"});
  bool case_sensitive = p.get_bool(0, false);
  bool by_attribute = p.has(1) && !p.get(1).is_none();
  std::vector<Value> items = in.iterate(v);
  if (items.empty()) return Value::undefined(std::string("No aggregated item, sequence was empty."));
  size_t best = 0;
  Value best_key = sort_key(in, by_attribute ? get_path(in, items[0], in.str(p.get(1))) : items[0], case_sensitive);
  for (size_t i = 1; i < items.size(); ++i) {
    Value key = sort_key(in, by_attribute ? get_path(in, items[i], in.str(p.get(1))) : items[i], case_sensitive);
    int c = in.compare(key, best_key, want_max ? ">" : "<");
    if (want_max ? c > 0 : c < 0) {
      best = i;
      best_key = key;
    }
  }
  return items[best];
}

Value filter_sum(Interpreter& in, const Value& v, CallArgs& args) {
  Params p(args, "sum", {"attribute", "start"});
  bool by_attribute = p.has(0) && !p.get(0).is_none();
  Value total = p.get(1, Value::integer(0));
  for (const Value& item : in.iterate(v)) {
    in.tick();
    total = binary_op(in, "+", total, by_attribute ? get_path(in, item, in.str(p.get(0))) : item);
  }
  return total;
}

Value filter_reverse(Interpreter& in, const Value& v, CallArgs& args) {
  Params p(args, "reverse", {});
  if (v.is_string()) {
    std::u32string u = text::decode(v.as_string());
    std::reverse(u.begin(), u.end());
    return in.make_string(text::encode(u));
  }
  std::vector<Value> items = in.iterate(v);
  std::reverse(items.begin(), items.end());
  return in.make_list(std::move(items));
}

Value filter_center(Interpreter& in, const Value& v, CallArgs& args) {
  Params p(args, "center", {"width"});
  std::string s = in.str(v);
  int64_t width = std::min<int64_t>(p.get_int(0, 80), static_cast<int64_t>(in.limits().max_output_bytes));
  int64_t len = static_cast<int64_t>(text::length(s));
  if (width <= len) return in.make_string(s);
  int64_t margin = width - len;
  int64_t left = margin / 2 + (margin & width & 1);
  return in.make_string(std::string(static_cast<size_t>(left), ' ') + s +
                        std::string(static_cast<size_t>(margin - left), ' '));
}

Value filter_wordcount(Interpreter& in, const Value& v, CallArgs& args) {
  Params p(args, "wordcount", {});
  std::string s = in.str(v);
  int64_t count = 0;
  bool in_word = false;
  for (unsigned char c : s) {
    bool word = std::isalnum(c) || c == '_' || c >= 0x80;
    if (word && !in_word) ++count;
    in_word = word;
  }
  return Value::integer(count);
}

Value filter_attr(Interpreter& in, const Value& v, CallArgs& args) {
  Params p(args, "attr", {"name"});
  std::string name = in.str(p.get(0));
  if (v.is_undefined()) fail_undefined(v);
  if (v.is_namespace()) return in.get_attr(v, name);
  Value method = bound_method(in, v, name);
  if (!method.is_undefined()) return method;
  return Value::undefined("'" + v.type_name() + " object' has no attribute '" + name + "'");
}

Value filter_format(Interpreter& in, const Value& v, CallArgs& args) {
  std::string fmt = in.str(v);
  if (!args.keyword.empty()) {
    if (!args.positional.empty()) throw TemplateError("format(): can't handle positional and keyword arguments at the same time");
    Dict d;
    for (auto& [k, item] : args.keyword) d.set(k, item);
    return in.make_string(percent_format(in, fmt, Value::dict(std::move(d))));
  }
  return in.make_string(percent_format(in, fmt, Value::list(args.positional, true)));
}

// Jinja2's title filter (not str.title): words start after runs of '-',
// whitespace or one of "({[<"; each piece is capitalized.
Value filter_title(Interpreter& in, const Value& v, CallArgs& args) {
  Params p(args, "title", {});
  std::u32string u = text::decode(in.str(v));
  auto is_delimiter = [](char32_t c) {
    return c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || text::is_space(c);
  };
  std::string out;
  size_t i = 0;
  while (i < u.size()) {
    size_t j = i;
    bool delim = is_delimiter(u[i]);
    while (j < u.size() && is_delimiter(u[j]) == delim) ++j;
    out += text::capitalize(text::encode(std::u32string_view(u).substr(i, j - i)));
    i = j;
  }
  return in.make_string(std::move(out));
}

// truncate(length=255, killwords=False, end='...', leeway=5), as Jinja2.
Value filter_truncate(Interpreter& in, const Value& v, CallArgs& args) {
  Params p(args, "truncate", {"length", "killwords", "end", "leeway"});
  std::u32string u = text::decode(in.str(v));
  int64_t length = p.get_int(0, 255);
  bool killwords = p.get_bool(1, false);
  std::u32string end = text::decode(p.get_string(2, "..."));
  int64_t leeway = p.get_int(3, 5);
  if (length < static_cast<int64_t>(end.size())) throw TemplateError("expected length >= " + std::to_string(end.size()));
  if (leeway < 0) throw TemplateError("expected leeway >= 0");
  if (static_cast<int64_t>(u.size()) <= length + leeway) return in.make_string(text::encode(u));
  std::u32string cut = u.substr(0, static_cast<size_t>(length) - end.size());
  if (!killwords) {
    size_t space = cut.rfind(U' ');
    if (space != std::u32string::npos) cut.resize(space);
  }
  return in.make_string(text::encode(cut + end));
}

// batch(linecount, fill_with=None): lists of linecount items.
Value filter_batch(Interpreter& in, const Value& v, CallArgs& args) {
  Params p(args, "batch", {"linecount", "fill_with"});
  int64_t n = p.get_int(0, 1);
  if (n <= 0) throw TemplateError("batch(): linecount must be positive");
  bool fill = p.has(1) && !p.get(1).is_none();
  std::vector<Value> out, current;
  for (const Value& item : in.iterate(v)) {
    current.push_back(item);
    if (static_cast<int64_t>(current.size()) == n) out.push_back(in.make_list(std::exchange(current, {})));
  }
  if (!current.empty()) {
    // Padding makes n items however few came in: check n before filling.
    if (fill) in.reserve_list(static_cast<size_t>(n) - current.size());
    while (fill && static_cast<int64_t>(current.size()) < n) current.push_back(p.get(1));
    out.push_back(in.make_list(std::move(current)));
  }
  return in.make_list(std::move(out));
}

Value string_filter(Interpreter& in, const Value& v, CallArgs& args, const char* name,
                    std::string (*fn)(std::string_view)) {
  Params p(args, name, {});
  return in.make_string(fn(in.str(v)));
}

const std::unordered_map<std::string, FilterFn>& filters() {
  static const std::unordered_map<std::string, FilterFn> table = [] {
    std::unordered_map<std::string, FilterFn> t;
    t["tojson"] = filter_tojson;
    t["default"] = t["d"] = filter_default;
    t["length"] = t["count"] = filter_length;
    t["first"] = filter_first;
    t["last"] = filter_last;
    t["join"] = filter_join;
    t["items"] = filter_items;
    t["trim"] = filter_trim;
    t["replace"] = filter_replace;
    t["int"] = filter_int;
    t["float"] = filter_float;
    t["list"] = filter_list;
    t["unique"] = filter_unique;
    t["indent"] = filter_indent;
    t["map"] = filter_map;
    t["select"] = [](Interpreter& in, const Value& v, CallArgs& a) { return select_items(in, v, a, false, true); };
    t["reject"] = [](Interpreter& in, const Value& v, CallArgs& a) { return select_items(in, v, a, false, false); };
    t["selectattr"] = [](Interpreter& in, const Value& v, CallArgs& a) { return select_items(in, v, a, true, true); };
    t["rejectattr"] = [](Interpreter& in, const Value& v, CallArgs& a) { return select_items(in, v, a, true, false); };
    t["sort"] = filter_sort;
    t["dictsort"] = filter_dictsort;
    t["min"] = [](Interpreter& in, const Value& v, CallArgs& a) { return min_max(in, v, a, false); };
    t["max"] = [](Interpreter& in, const Value& v, CallArgs& a) { return min_max(in, v, a, true); };
    t["sum"] = filter_sum;
    t["reverse"] = filter_reverse;
    t["center"] = filter_center;
    t["wordcount"] = filter_wordcount;
    t["attr"] = filter_attr;
    t["format"] = filter_format;
    t["upper"] = [](Interpreter& in, const Value& v, CallArgs& a) { return string_filter(in, v, a, "upper", text::upper); };
    t["lower"] = [](Interpreter& in, const Value& v, CallArgs& a) { return string_filter(in, v, a, "lower", text::lower); };
    t["capitalize"] = [](Interpreter& in, const Value& v, CallArgs& a) {
      return string_filter(in, v, a, "capitalize", text::capitalize);
    };
    t["title"] = filter_title;
    t["truncate"] = filter_truncate;
    t["batch"] = filter_batch;
    t["string"] = [](Interpreter& in, const Value& v, CallArgs& a) {
      Params p(a, "string", {});
      return v.is_string() ? v : in.make_string(in.str(v));
    };
    // Autoescape is off, so markup-safety marks change nothing.
    t["safe"] = [](Interpreter&, const Value& v, CallArgs& a) {
      Params p(a, "safe", {});
      return v;
    };
    t["escape"] = t["e"] = t["forceescape"] = [](Interpreter& in, const Value& v, CallArgs& a) {
      Params p(a, "escape", {});
      return in.make_string(html_escape(in.str(v)));
    };
    t["abs"] = [](Interpreter&, const Value& v, CallArgs& a) {
      Params p(a, "abs", {});
      if (v.is_float()) return Value::floating(std::fabs(v.as_double()));
      if (!v.is_number()) throw TemplateError("bad operand type for abs(): '" + v.type_name() + "'");
      if (v.as_int() == std::numeric_limits<int64_t>::min()) throw TemplateError("integer overflow");
      return Value::integer(std::llabs(v.as_int()));
    };
    t["round"] = [](Interpreter&, const Value& v, CallArgs& a) {
      Params p(a, "round", {"precision", "method"});
      return python_round(v, std::clamp<int64_t>(p.get_int(0, 0), -400, 400), p.get_string(1, "common"));
    };
    return t;
  }();
  return table;
}

// ---- tests ----------------------------------------------------------------------------

bool test_compare(Interpreter& in, const Value& v, CallArgs& args, const char* name, const char* op) {
  Params p(args, name, {"other"});
  Value other = p.get(0);
  std::string o = op;
  if (o == "==") return in.equals(v, other);
  if (o == "!=") return !in.equals(v, other);
  int c = in.compare(v, other, op);
  return o == "<" ? c < 0 : o == "<=" ? c <= 0 : o == ">" ? c > 0 : c >= 0;
}

bool same_object(const Value& a, const Value& b) {
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::Undefined: case Value::Kind::None: return true;
    case Value::Kind::Bool: case Value::Kind::Int: case Value::Kind::Float: return equals(a, b);
    case Value::Kind::String: return &a.as_string() == &b.as_string();
    case Value::Kind::List: return &a.as_list() == &b.as_list();
    case Value::Kind::Dict: return &a.as_dict() == &b.as_dict();
    case Value::Kind::Namespace: return &a.namespace_dict() == &b.namespace_dict();
    case Value::Kind::Callable: return &a.as_callable() == &b.as_callable();
  }
  return false;
}

bool has_cased(Interpreter& in, const std::string& s, bool want_upper) {
  in.tick_bytes(s.size());
  bool any_cased = false;
  for (char32_t c : text::decode(s)) {
    bool is_upper = text::to_lower(c) != c;
    bool is_lower = text::to_upper(c) != c;
    if (want_upper ? is_lower : is_upper) return false;
    if (is_upper || is_lower) any_cased = true;
  }
  return any_cased;
}

const std::unordered_map<std::string, TestFn>& tests() {
  static const std::unordered_map<std::string, TestFn> table = [] {
    std::unordered_map<std::string, TestFn> t;
    auto kind_test = [](const char* name, std::function<bool(const Value&)> pred) {
      return [name, pred](Interpreter&, const Value& v, CallArgs& a) {
        Params p(a, name, {});
        return pred(v);
      };
    };
    t["defined"] = kind_test("defined", [](const Value& v) { return !v.is_undefined(); });
    t["undefined"] = kind_test("undefined", [](const Value& v) { return v.is_undefined(); });
    t["none"] = kind_test("none", [](const Value& v) { return v.is_none(); });
    t["boolean"] = kind_test("boolean", [](const Value& v) { return v.is_bool(); });
    t["true"] = kind_test("true", [](const Value& v) { return v.is_bool() && v.as_bool(); });
    t["false"] = kind_test("false", [](const Value& v) { return v.is_bool() && !v.as_bool(); });
    t["integer"] = kind_test("integer", [](const Value& v) { return v.is_int(); });
    t["float"] = kind_test("float", [](const Value& v) { return v.is_float(); });
    t["number"] = kind_test("number", [](const Value& v) { return v.is_number(); });
    t["string"] = kind_test("string", [](const Value& v) { return v.is_string(); });
    t["mapping"] = kind_test("mapping", [](const Value& v) { return v.is_dict(); });
    // Jinja2's Undefined is iterable (empty) and has len() and __getitem__.
    t["iterable"] = kind_test("iterable", [](const Value& v) {
      return v.is_string() || v.is_list() || v.is_dict() || v.is_undefined();
    });
    t["sequence"] = kind_test("sequence", [](const Value& v) {
      return v.is_string() || v.is_list() || v.is_dict() || v.is_undefined();
    });
    t["callable"] = kind_test("callable", [](const Value& v) { return v.is_callable(); });
    t["escaped"] = kind_test("escaped", [](const Value&) { return false; });
    t["odd"] = kind_test("odd", [](const Value& v) {
      if (!v.is_int() && !v.is_bool()) throw TemplateError("odd test requires an integer");
      return v.as_int() % 2 != 0;
    });
    t["even"] = kind_test("even", [](const Value& v) {
      if (!v.is_int() && !v.is_bool()) throw TemplateError("even test requires an integer");
      return v.as_int() % 2 == 0;
    });
    t["lower"] = [](Interpreter& in, const Value& v, CallArgs& a) {
      Params p(a, "lower", {});
      return v.is_string() && has_cased(in, v.as_string(), false);
    };
    t["upper"] = [](Interpreter& in, const Value& v, CallArgs& a) {
      Params p(a, "upper", {});
      return v.is_string() && has_cased(in, v.as_string(), true);
    };
    t["divisibleby"] = [](Interpreter&, const Value& v, CallArgs& a) {
      Params p(a, "divisibleby", {"num"});
      int64_t n = p.get_int(0, 1);
      if (!v.is_int() && !v.is_bool()) throw TemplateError("divisibleby test requires an integer");
      return py_mod(v.as_int(), n) == 0;
    };
    t["sameas"] = [](Interpreter&, const Value& v, CallArgs& a) {
      Params p(a, "sameas", {"other"});
      return same_object(v, p.get(0));
    };
    t["in"] = [](Interpreter& in, const Value& v, CallArgs& a) {
      Params p(a, "in", {"seq"});
      return contains(in, p.get(0), v);
    };
    t["eq"] = t["equalto"] = t["=="] = [](Interpreter& in, const Value& v, CallArgs& a) { return test_compare(in, v, a, "eq", "=="); };
    t["ne"] = t["!="] = [](Interpreter& in, const Value& v, CallArgs& a) { return test_compare(in, v, a, "ne", "!="); };
    t["lt"] = t["lessthan"] = t["<"] = [](Interpreter& in, const Value& v, CallArgs& a) { return test_compare(in, v, a, "lt", "<"); };
    t["le"] = t["<="] = [](Interpreter& in, const Value& v, CallArgs& a) { return test_compare(in, v, a, "le", "<="); };
    t["gt"] = t["greaterthan"] = t[">"] = [](Interpreter& in, const Value& v, CallArgs& a) { return test_compare(in, v, a, "gt", ">"); };
    t["ge"] = t[">="] = [](Interpreter& in, const Value& v, CallArgs& a) { return test_compare(in, v, a, "ge", ">="); };
    t["filter"] = [](Interpreter& in, const Value& v, CallArgs& a) {
      Params p(a, "filter", {});
      return v.is_string() && in.has_filter(v.as_string());
    };
    t["test"] = [](Interpreter& in, const Value& v, CallArgs& a) {
      Params p(a, "test", {});
      return v.is_string() && in.has_test(v.as_string());
    };
    return t;
  }();
  return table;
}

// ---- str and dict methods ------------------------------------------------------------------

bool starts_or_ends(Interpreter& in, const std::string& s, const Value& affix, bool at_start) {
  auto one = [&](const Value& a) {
    const std::string& x = require_string(a, at_start ? "startswith()" : "endswith()");
    if (x.size() > s.size()) return false;
    return at_start ? s.compare(0, x.size(), x) == 0 : s.compare(s.size() - x.size(), x.size(), x) == 0;
  };
  if (affix.is_tuple()) {
    for (const auto& a : affix.as_list())
      if (one(a)) return true;
    return false;
  }
  return one(affix);
}

Value string_method(Interpreter& in, const Value& self, const std::string& name, CallArgs& args) {
  const std::string& s = self.as_string();
  const size_t limit = in.limits().max_output_bytes;
  // Every method but these two may scan the whole string: charge for that first.
  if (name != "startswith" && name != "endswith") in.tick_bytes(s.size());
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    Params p(args, name, {"chars"});
    bool left = name != "rstrip", right = name != "lstrip";
    if (p.has(0) && !p.get(0).is_none()) return in.make_string(text::strip_chars(s, require_string(p.get(0), name.c_str()), left, right));
    return in.make_string(text::strip(s, left, right));
  }
  if (name == "split" || name == "rsplit") {
    Params p(args, name, {"sep", "maxsplit"});
    bool sep_given = p.has(0) && !p.get(0).is_none();
    std::string sep = sep_given ? require_string(p.get(0), name.c_str()) : "";
    int64_t maxsplit = p.get_int(1, -1);
    // Split at most max_collection_items times: one part more than that
    // means the whole split would be too long, and no more parts than
    // that are ever held.
    const int64_t most = static_cast<int64_t>(in.limits().max_collection_items);
    if (maxsplit < 0 || maxsplit > most) maxsplit = most;
    auto parts = name == "split" ? text::split(s, sep_given, sep, maxsplit) : text::rsplit(s, sep_given, sep, maxsplit);
    in.reserve_list(parts.size());
    in.charge(s.size());
    std::vector<Value> out;
    out.reserve(parts.size());
    for (auto& part : parts) out.push_back(Value::string(std::move(part)));
    return Value::list(std::move(out));
  }
  if (name == "startswith" || name == "endswith") {
    Params p(args, name, {"prefix"});
    return Value::boolean(starts_or_ends(in, s, p.get(0), name == "startswith"));
  }
  if (name == "replace") {
    Params p(args, name, {"old", "new", "count"});
    return in.make_string(text::replace(s, require_string(p.get(0), "replace()"), require_string(p.get(1), "replace()"),
                                        p.get_int(2, -1), limit));
  }
  if (name == "upper" || name == "lower" || name == "title" || name == "capitalize") {
    Params p(args, name, {});
    if (name == "upper") return in.make_string(text::upper(s));
    if (name == "lower") return in.make_string(text::lower(s));
    if (name == "title") return in.make_string(text::title(s));
    return in.make_string(text::capitalize(s));
  }
  if (name == "format") return in.make_string(brace_format(in, s, args));
  if (name == "join") {
    Params p(args, name, {"iterable"});
    std::string out;
    bool first = true;
    for (const Value& item : in.iterate(p.get(0))) {
      in.tick();
      if (!first) out += s;
      first = false;
      out += require_string(item, "join()");
      if (out.size() > limit) throw TemplateError("join(): result exceeds the size limit");
    }
    return in.make_string(std::move(out));
  }
  if (name == "count" || name == "find" || name == "rfind" || name == "index") {
    Params p(args, name, {"sub"});
    const std::string& sub = require_string(p.get(0), name.c_str());
    if (name == "count") {
      if (sub.empty()) return Value::integer(static_cast<int64_t>(text::length(s) + 1));
      int64_t n = 0;
      for (size_t at = text::find(s, sub); at != std::string::npos; at = text::find(s, sub, at + sub.size())) ++n;
      return Value::integer(n);
    }
    size_t at = name == "rfind" ? text::rfind(s, sub) : text::find(s, sub);
    if (at == std::string::npos) {
      if (name == "index") throw TemplateError("substring not found");
      return Value::integer(-1);
    }
    return Value::integer(static_cast<int64_t>(text::length(std::string_view(s).substr(0, at))));
  }
  if (name == "splitlines") {
    Params p(args, name, {});
    size_t n = 0;
    for_each_line(s, [&](std::string) { ++n; });  // count first: check before holding the lines
    in.reserve_list(n);
    in.charge(s.size());
    std::vector<Value> out;
    out.reserve(n);
    for_each_line(s, [&](std::string line) { out.push_back(Value::string(std::move(line))); });
    return Value::list(std::move(out));
  }
  if (name == "isdigit" || name == "isalpha" || name == "isalnum" || name == "isspace" || name == "isupper" ||
      name == "islower") {
    Params p(args, name, {});
    if (name == "isupper") return Value::boolean(has_cased(in, s, true));
    if (name == "islower") return Value::boolean(has_cased(in, s, false));
    if (s.empty()) return Value::boolean(false);
    // Chosen once: comparing the name for every character made these ~20x slower.
    enum { Space, Digit, Alpha, Alnum } kind = name == "isspace"   ? Space
                                               : name == "isdigit" ? Digit
                                               : name == "isalpha" ? Alpha
                                                                   : Alnum;
    for (char32_t c : text::decode(s)) {
      bool ok;
      if (kind == Space) ok = text::is_space(c);
      else if (kind == Digit) ok = c >= '0' && c <= '9';
      else if (kind == Alpha) ok = (c < 0x80 && std::isalpha(static_cast<int>(c))) || (c >= 0x80 && !text::is_space(c));
      else ok = (c < 0x80 && std::isalnum(static_cast<int>(c))) || (c >= 0x80 && !text::is_space(c));
      if (!ok) return Value::boolean(false);
    }
    return Value::boolean(true);
  }
  throw TemplateError("'str' object has no attribute '" + name + "'");
}

const char* const kStringMethods[] = {"strip", "lstrip", "rstrip", "split", "rsplit", "startswith", "endswith",
                                      "replace", "upper", "lower", "title", "capitalize", "format", "join", "count",
                                      "find", "rfind", "index", "splitlines", "isdigit", "isalpha", "isalnum",
                                      "isspace", "isupper", "islower"};

Value dict_method(Interpreter& in, const Value& self, const std::string& name, CallArgs& args) {
  const Dict& d = self.as_dict();
  if (name == "items" || name == "keys" || name == "values") in.reserve_list(d.items.size());
  if (name == "items") {
    Params p(args, name, {});
    std::vector<Value> pairs;
    for (const auto& [k, v] : d.items) pairs.push_back(Value::list({Value::string(k), v}, true));
    return Value::list(std::move(pairs));
  }
  if (name == "keys") {
    Params p(args, name, {});
    std::vector<Value> keys;
    for (const auto& [k, _] : d.items) keys.push_back(Value::string(k));
    return Value::list(std::move(keys));
  }
  if (name == "values") {
    Params p(args, name, {});
    std::vector<Value> values;
    for (const auto& [_, v] : d.items) values.push_back(v);
    return Value::list(std::move(values));
  }
  // get
  Params p(args, name, {"key", "default"});
  Value key = p.get(0);
  in.tick(d.items.size() / Interpreter::kKeysPerStep);
  if (key.is_string())
    if (const Value* v = d.find(key.as_string())) return *v;
  return p.get(1, Value::none());
}

}  // namespace

// ---- public helpers -----------------------------------------------------------------------

Value bound_method(Interpreter& in, const Value& obj, const std::string& name) {
  if (obj.is_string()) {
    for (const char* m : kStringMethods) {
      if (name == m) {
        Interpreter* interp = &in;
        return Value::callable(name, [interp, obj, name](CallArgs& args) { return string_method(*interp, obj, name, args); });
      }
    }
  } else if (obj.is_dict()) {
    if (name == "items" || name == "keys" || name == "values" || name == "get") {
      Interpreter* interp = &in;
      return Value::callable(name, [interp, obj, name](CallArgs& args) { return dict_method(*interp, obj, name, args); });
    }
  }
  return Value::undefined();
}

Value binary_op(Interpreter& in, const std::string& op, const Value& a, const Value& b) {
  if (a.is_undefined()) fail_undefined(a);
  if (b.is_undefined()) fail_undefined(b);
  const size_t limit = in.limits().max_output_bytes;
  if (a.is_number() && b.is_number()) {
    bool use_float = a.is_float() || b.is_float();
    double x = a.as_double(), y = b.as_double();
    int64_t i = a.as_int(), j = b.as_int();
    int64_t r = 0;
    if (op == "+") {
      if (use_float) return Value::floating(x + y);
      bool overflow = __builtin_add_overflow(i, j, &r);
      return int_result(overflow, r);
    }
    if (op == "-") {
      if (use_float) return Value::floating(x - y);
      bool overflow = __builtin_sub_overflow(i, j, &r);
      return int_result(overflow, r);
    }
    if (op == "*") {
      if (use_float) return Value::floating(x * y);
      bool overflow = __builtin_mul_overflow(i, j, &r);
      return int_result(overflow, r);
    }
    if (op == "/") {
      if (y == 0) throw TemplateError("division by zero");
      return Value::floating(x / y);
    }
    if (op == "//") {
      if (!use_float) return Value::integer(floor_div(i, j));
      if (y == 0) throw TemplateError("float floor division by zero");
      return Value::floating(std::floor(x / y));
    }
    if (op == "%") return use_float ? Value::floating(py_fmod(x, y)) : Value::integer(py_mod(i, j));
    if (op == "**") {
      if (!use_float) return int_pow(i, j);
      if (x == 0 && y < 0) throw TemplateError("0.0 cannot be raised to a negative power");
      return Value::floating(std::pow(x, y));
    }
  }
  if (op == "+") {
    if (a.is_string() && b.is_string()) {
      in.reserve_string(a.as_string().size() + b.as_string().size());
      return Value::string(a.as_string() + b.as_string());
    }
    if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
      in.reserve_list(a.as_list().size() + b.as_list().size());
      std::vector<Value> items = a.as_list();
      items.insert(items.end(), b.as_list().begin(), b.as_list().end());
      return Value::list(std::move(items), a.is_tuple());
    }
    if (a.is_string() || b.is_string())
      throw TemplateError("can only concatenate str (not \"" + (a.is_string() ? b : a).type_name() + "\") to str");
  }
  if (op == "*") {
    const Value& seq = a.is_number() ? b : a;
    const Value& count = a.is_number() ? a : b;
    if ((seq.is_string() || seq.is_list()) && (count.is_int() || count.is_bool())) {
      int64_t n = std::max<int64_t>(count.as_int(), 0);
      if (seq.is_string()) {
        const std::string& s = seq.as_string();
        if (!s.empty() && static_cast<uint64_t>(n) > limit / s.size()) throw TemplateError("string exceeds the size limit");
        in.reserve_string(s.size() * static_cast<size_t>(n));
        std::string out;
        out.reserve(s.size() * static_cast<size_t>(n));
        for (int64_t k = 0; k < n; ++k) out += s;
        return Value::string(std::move(out));
      }
      const auto& items = seq.as_list();
      if (!items.empty() && static_cast<uint64_t>(n) > in.limits().max_collection_items / items.size())
        throw TemplateError("list exceeds the size limit");
      in.reserve_list(items.size() * static_cast<size_t>(n));
      std::vector<Value> out;
      out.reserve(items.size() * static_cast<size_t>(n));
      for (int64_t k = 0; k < n; ++k) out.insert(out.end(), items.begin(), items.end());
      return Value::list(std::move(out), seq.is_tuple());
    }
  }
  if (op == "%" && a.is_string()) return in.make_string(percent_format(in, a.as_string(), b));
  unsupported(op, a, b);
}

bool contains(Interpreter& in, const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::Undefined: return false;
    case Value::Kind::String:
      if (!item.is_string())
        throw TemplateError("'in <string>' requires string as left operand, not " + item.type_name());
      in.tick_bytes(container.as_string().size());
      return text::find(container.as_string(), item.as_string()) != std::string::npos;
    case Value::Kind::List:
      for (const auto& v : container.as_list()) {
        in.tick();
        if (in.equals(v, item)) return true;
      }
      return false;
    case Value::Kind::Dict:
      in.tick(container.as_dict().items.size() / Interpreter::kKeysPerStep);
      return item.is_string() && container.as_dict().find(item.as_string()) != nullptr;
    default:
      throw TemplateError("argument of type '" + container.type_name() + "' is not iterable");
  }
}

Value builtin_global(Interpreter& in, const std::string& name) {
  Interpreter* interp = &in;
  if (name == "range") {
    return Value::callable("range", [interp](CallArgs& args) {
      if (!args.keyword.empty()) throw TemplateError("range() takes no keyword arguments");
      auto as_int = [](const Value& v) {
        if (!v.is_int() && !v.is_bool()) throw TemplateError("range() arguments must be integers, not " + v.type_name());
        return v.as_int();
      };
      int64_t start = 0, stop, step = 1;
      const auto& p = args.positional;
      if (p.size() == 1) stop = as_int(p[0]);
      else if (p.size() == 2 || p.size() == 3) {
        start = as_int(p[0]);
        stop = as_int(p[1]);
        if (p.size() == 3) step = as_int(p[2]);
      } else {
        throw TemplateError("range() expects 1 to 3 arguments");
      }
      if (step == 0) throw TemplateError("range() arg 3 must not be zero");
      // Count first, so huge ranges fail before anything is allocated.
      long double span = step > 0 ? (static_cast<long double>(stop) - start) : (static_cast<long double>(start) - stop);
      long double count = span <= 0 ? 0 : std::ceil(span / std::fabs(static_cast<long double>(step)));
      if (count > static_cast<long double>(interp->limits().max_collection_items))
        throw TemplateError("range() is too large (limit " + std::to_string(interp->limits().max_collection_items) + " items)");
      interp->reserve_list(static_cast<size_t>(count));
      std::vector<Value> items;
      items.reserve(static_cast<size_t>(count));
      for (int64_t k = 0; k < static_cast<int64_t>(count); ++k) items.push_back(Value::integer(start + k * step));
      return Value::list(std::move(items));
    });
  }
  if (name == "namespace" || name == "dict") {
    bool is_namespace = name == "namespace";
    return Value::callable(name, [interp, is_namespace](CallArgs& args) {
      Dict d;
      if (args.positional.size() > 1) throw TemplateError("namespace()/dict() take at most one positional argument");
      if (!args.positional.empty()) {
        const Value& init = args.positional[0];
        if (init.is_dict()) {
          d = init.as_dict();
        } else {
          for (const Value& pair : interp->iterate(init)) {
            std::vector<Value> kv = interp->iterate(pair);
            if (kv.size() != 2 || !kv[0].is_string()) throw TemplateError("dict() needs (string key, value) pairs");
            interp->tick(d.items.size() / Interpreter::kKeysPerStep);  // set() scans the keys
            d.set(kv[0].as_string(), kv[1]);
          }
        }
      }
      for (auto& [k, v] : args.keyword) d.set(k, v);
      return is_namespace ? interp->make_namespace(std::move(d)) : Value::dict(std::move(d));
    });
  }
  return Value::undefined();
}

// ---- Interpreter members that dispatch to the tables ------------------------------------------

Value Interpreter::apply_filter(const std::string& name, const Value& input, CallArgs& args) {
  auto it = filters().find(name);
  if (it == filters().end()) throw TemplateError("no filter named '" + name + "'");
  return it->second(*this, input, args);
}

bool Interpreter::apply_test(const std::string& name, const Value& input, CallArgs& args) {
  auto it = tests().find(name);
  if (it == tests().end()) throw TemplateError("no test named '" + name + "'");
  return it->second(*this, input, args);
}

bool Interpreter::has_filter(const std::string& name) const { return is_builtin_filter(name); }
bool Interpreter::has_test(const std::string& name) const { return is_builtin_test(name); }

bool is_builtin_filter(const std::string& name) { return filters().count(name) != 0; }
bool is_builtin_test(const std::string& name) { return tests().count(name) != 0; }

}  // namespace warden::chat::jinja
