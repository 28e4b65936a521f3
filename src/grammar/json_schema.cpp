#include "grammar/json_schema.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <set>

#include "util/error.h"
#include "util/ordered_json.h"

namespace warden::grammar {

using nlohmann::ordered_json;

namespace {

constexpr int kMaxDepth = 64;
constexpr int64_t kMaxRepeat = 100000;          // bound on minItems/maxItems/lengths
constexpr int64_t kIntLimit = 999999999999999999;  // 18 digits

// Keywords that only annotate: ignored.
const std::set<std::string> kAnnotations = {
    "title", "description", "default", "examples", "$schema", "$id", "$comment", "format",
    "deprecated", "readOnly", "writeOnly", "contentEncoding", "contentMediaType", "$defs",
    "definitions", "$anchor", "example", "strict"};

// Validation keywords whose guarantee the grammar cannot give: rejected.
const std::set<std::string> kUnsupported = {
    "pattern", "patternProperties", "not", "if", "then", "else", "dependentRequired",
    "dependentSchemas", "dependencies", "uniqueItems", "multipleOf", "minProperties",
    "maxProperties", "contains", "minContains", "maxContains", "propertyNames",
    "unevaluatedProperties", "unevaluatedItems", "$dynamicRef", "$recursiveRef"};

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw Error("schema at " + path + ": " + what);
}

std::string child_path(const std::string& path, const std::string& key) {
  std::string escaped;
  for (char c : key) {
    if (c == '~') escaped += "~0";
    else if (c == '/') escaped += "~1";
    else escaped += c;
  }
  return path + "/" + escaped;
}

// A non-negative integer keyword such as minItems; absent -> fallback.
int64_t count_keyword(const ordered_json& s, const char* key, int64_t fallback, const std::string& path) {
  auto it = s.find(key);
  if (it == s.end()) return fallback;
  if (!it->is_number()) fail(path, std::string("'") + key + "' must be a number");
  double v = it->get<double>();
  if (!(v >= 0)) fail(path, std::string("'") + key + "' must be >= 0");
  if (v > double(kMaxRepeat))
    fail(path, std::string("'") + key + "' over " + std::to_string(kMaxRepeat) + " is not supported");
  return int64_t(std::ceil(v));
}

std::string digits_of(uint64_t v) { return std::to_string(v); }

}  // namespace

SchemaCompiler::SchemaCompiler(GrammarBuilder& builder, SchemaOptions options)
    : b_(builder), options_(options) {}

// ---------------------------------------------------------------- primitives

uint32_t SchemaCompiler::whitespace() {
  auto it = shared_.find("ws");
  if (it != shared_.end()) return it->second;
  ByteSet ws;
  ws.add(' ');
  ws.add('\t');
  ws.add('\n');
  uint32_t r = repeat("ws", {b_.bytes(ws)}, 0, int64_t(options_.max_whitespace));
  shared_["ws"] = r;
  return r;
}

GrammarBuilder::Sequence SchemaCompiler::separator() {
  uint32_t ws = whitespace();
  return {GrammarBuilder::ref(ws), b_.byte(','), GrammarBuilder::ref(ws)};
}

GrammarBuilder::Sequence SchemaCompiler::colon() {
  uint32_t ws = whitespace();
  return {GrammarBuilder::ref(ws), b_.byte(':'), GrammarBuilder::ref(ws)};
}

// One JSON string character: printable ASCII except '"' and '\', an escape
// (\u escapes never produce lone surrogates), or one valid UTF-8 sequence.
uint32_t SchemaCompiler::string_char() {
  auto it = shared_.find("char");
  if (it != shared_.end()) return it->second;
  ByteSet plain = ByteSet::range(0x20, 0x7f);
  plain.remove('"');
  plain.remove('\\');
  ByteSet escapes;
  for (char c : std::string("\"\\/bfnrt")) escapes.add(uint8_t(c));
  ByteSet hex = ByteSet::range('0', '9');
  hex.add_range('a', 'f');
  hex.add_range('A', 'F');
  ByteSet hex_not_d = ByteSet::range('0', '9');
  hex_not_d.add_range('a', 'c');
  hex_not_d.add_range('A', 'C');
  hex_not_d.add_range('e', 'f');
  hex_not_d.add_range('E', 'F');
  ByteSet d;
  d.add('d');
  d.add('D');
  auto cont = b_.bytes(ByteSet::range(0x80, 0xbf));
  auto h = b_.bytes(hex);
  ByteSet e1_ec = ByteSet::range(0xe1, 0xec);
  e1_ec.add(0xee);
  e1_ec.add(0xef);
  uint32_t r = b_.rule("char", {
      {b_.bytes(plain)},
      {b_.byte('\\'), b_.bytes(escapes)},
      {b_.byte('\\'), b_.byte('u'), b_.bytes(hex_not_d), h, h, h},
      {b_.byte('\\'), b_.byte('u'), b_.bytes(d), b_.bytes(ByteSet::range('0', '7')), h, h},
      {b_.bytes(ByteSet::range(0xc2, 0xdf)), cont},
      {b_.byte(0xe0), b_.bytes(ByteSet::range(0xa0, 0xbf)), cont},
      {b_.bytes(e1_ec), cont, cont},
      {b_.byte(0xed), b_.bytes(ByteSet::range(0x80, 0x9f)), cont},
      {b_.byte(0xf0), b_.bytes(ByteSet::range(0x90, 0xbf)), cont, cont},
      {b_.bytes(ByteSet::range(0xf1, 0xf3)), cont, cont, cont},
      {b_.byte(0xf4), b_.bytes(ByteSet::range(0x80, 0x8f)), cont, cont},
  });
  shared_["char"] = r;
  return r;
}

uint32_t SchemaCompiler::string_value() {
  auto it = shared_.find("string");
  if (it != shared_.end()) return it->second;
  uint32_t chars = repeat("chars", {GrammarBuilder::ref(string_char())}, 0, -1);
  uint32_t r = b_.rule("string", {{b_.byte('"'), GrammarBuilder::ref(chars), b_.byte('"')}});
  shared_["string"] = r;
  return r;
}

uint32_t SchemaCompiler::number_any() {
  auto it = shared_.find("number");
  if (it != shared_.end()) return it->second;
  auto digit = b_.bytes(ByteSet::range('0', '9'));
  uint32_t int_part = b_.new_rule("int-part");
  b_.add_alternative(int_part, {b_.byte('0')});
  {
    uint32_t more = repeat("int-digits", {digit}, 0, 15);
    b_.add_alternative(int_part, {b_.bytes(ByteSet::range('1', '9')), GrammarBuilder::ref(more)});
  }
  uint32_t frac = b_.new_rule("frac");
  b_.add_alternative(frac, {});
  b_.add_alternative(frac, {b_.byte('.'), GrammarBuilder::ref(repeat("frac-digits", {digit}, 1, 16))});
  ByteSet e;
  e.add('e');
  e.add('E');
  ByteSet sign;
  sign.add('+');
  sign.add('-');
  uint32_t exp = b_.new_rule("exp");
  b_.add_alternative(exp, {});
  b_.add_alternative(exp, {b_.bytes(e), digit});
  b_.add_alternative(exp, {b_.bytes(e), digit, digit});
  b_.add_alternative(exp, {b_.bytes(e), b_.bytes(sign), digit});
  b_.add_alternative(exp, {b_.bytes(e), b_.bytes(sign), digit, digit});
  uint32_t unsigned_number = b_.rule("unsigned-number", {{GrammarBuilder::ref(int_part),
                                                         GrammarBuilder::ref(frac),
                                                         GrammarBuilder::ref(exp)}});
  uint32_t r = b_.rule("number", {{GrammarBuilder::ref(unsigned_number)},
                                  {b_.byte('-'), GrammarBuilder::ref(unsigned_number)}});
  shared_["number"] = r;
  shared_["unsigned-number"] = unsigned_number;
  return r;
}

uint32_t SchemaCompiler::repeat(const std::string& name, const Sequence& unit, int64_t min, int64_t max) {
  // Tail: what may follow the `min` mandatory copies.
  uint32_t tail;
  if (max < 0) {
    tail = b_.new_rule(name + "*");  // tail ::= "" | unit tail (right recursion: constant stack)
    b_.add_alternative(tail, {});
    Sequence again = unit;
    again.push_back(GrammarBuilder::ref(tail));
    b_.add_alternative(tail, again);
  } else {
    tail = b_.rule(name + "{0}", {{}});  // opt_k ::= "" | unit opt_{k-1}
    for (int64_t k = 1; k <= max - min; ++k) {
      Sequence more = unit;
      more.push_back(GrammarBuilder::ref(tail));
      tail = b_.rule(name + "{0," + std::to_string(k) + "}", {{}, more});
    }
  }
  Sequence seq;
  for (int64_t i = 0; i < min; ++i) seq.insert(seq.end(), unit.begin(), unit.end());
  seq.push_back(GrammarBuilder::ref(tail));
  return b_.rule(name, {seq});
}

uint32_t SchemaCompiler::any_value() {
  auto it = shared_.find("value");
  if (it != shared_.end()) return it->second;
  uint32_t value = b_.new_rule("value");
  shared_["value"] = value;
  uint32_t ws = whitespace();
  // object
  Sequence member{GrammarBuilder::ref(string_value())};
  for (auto s : colon()) member.push_back(s);
  member.push_back(GrammarBuilder::ref(value));
  Sequence sep_member = separator();
  sep_member.insert(sep_member.end(), member.begin(), member.end());
  uint32_t more_members = repeat("members", sep_member, 0, -1);
  Sequence object_full{b_.byte('{'), GrammarBuilder::ref(ws)};
  object_full.insert(object_full.end(), member.begin(), member.end());
  object_full.push_back(GrammarBuilder::ref(more_members));
  object_full.push_back(GrammarBuilder::ref(ws));
  object_full.push_back(b_.byte('}'));
  uint32_t object = b_.rule("object", {{b_.byte('{'), GrammarBuilder::ref(ws), b_.byte('}')}, object_full});
  shared_["object"] = object;
  // array
  Sequence sep_value = separator();
  sep_value.push_back(GrammarBuilder::ref(value));
  uint32_t more_values = repeat("elements", sep_value, 0, -1);
  uint32_t array = b_.rule("array", {{b_.byte('['), GrammarBuilder::ref(ws), b_.byte(']')},
                                     {b_.byte('['), GrammarBuilder::ref(ws), GrammarBuilder::ref(value),
                                      GrammarBuilder::ref(more_values), GrammarBuilder::ref(ws),
                                      b_.byte(']')}});
  b_.add_alternative(value, {GrammarBuilder::ref(object)});
  b_.add_alternative(value, {GrammarBuilder::ref(array)});
  b_.add_alternative(value, {GrammarBuilder::ref(string_value())});
  b_.add_alternative(value, {GrammarBuilder::ref(number_any())});
  b_.add_alternative(value, b_.literal("true"));
  b_.add_alternative(value, b_.literal("false"));
  b_.add_alternative(value, b_.literal("null"));
  return value;
}

uint32_t SchemaCompiler::any_object() {
  any_value();
  return shared_.at("object");
}

uint32_t SchemaCompiler::literal_rule(const ordered_json& value) {
  return b_.rule("const", {b_.literal(value.dump())});
}

// Decimal strings of the unsigned integers in [lo, hi], both of `lo.size()`
// digits: the usual digit-range decomposition.
namespace {
void same_length_range(GrammarBuilder& b, const std::string& lo, const std::string& hi,
                       GrammarBuilder::Sequence prefix, std::vector<GrammarBuilder::Sequence>& out) {
  size_t n = lo.size();
  auto digit_range = [&](char from, char to) { return b.bytes(ByteSet::range(uint8_t(from), uint8_t(to))); };
  if (n == 1) {
    prefix.push_back(digit_range(lo[0], hi[0]));
    out.push_back(prefix);
    return;
  }
  if (lo[0] == hi[0]) {
    prefix.push_back(b.byte(uint8_t(lo[0])));
    same_length_range(b, lo.substr(1), hi.substr(1), prefix, out);
    return;
  }
  std::string lo_rest = lo.substr(1), hi_rest = hi.substr(1);
  bool lo_rest_min = lo_rest.find_first_not_of('0') == std::string::npos;
  bool hi_rest_max = hi_rest.find_first_not_of('9') == std::string::npos;
  char first = lo[0], last = hi[0];
  if (!lo_rest_min) {
    auto p = prefix;
    p.push_back(b.byte(uint8_t(lo[0])));
    same_length_range(b, lo_rest, std::string(n - 1, '9'), p, out);
    ++first;
  }
  if (!hi_rest_max) --last;
  if (first <= last) {
    auto p = prefix;
    p.push_back(digit_range(first, last));
    for (size_t i = 1; i < n; ++i) p.push_back(digit_range('0', '9'));
    out.push_back(p);
  }
  if (!hi_rest_max) {
    auto p = prefix;
    p.push_back(b.byte(uint8_t(hi[0])));
    same_length_range(b, std::string(n - 1, '0'), hi_rest, p, out);
  }
}

void unsigned_range(GrammarBuilder& b, uint64_t lo, uint64_t hi, GrammarBuilder::Sequence prefix,
                    std::vector<GrammarBuilder::Sequence>& out) {
  if (lo > hi) return;
  size_t lo_len = digits_of(lo).size(), hi_len = digits_of(hi).size();
  uint64_t power = 1;
  for (size_t i = 1; i < lo_len; ++i) power *= 10;  // 10^(lo_len-1)
  for (size_t len = lo_len; len <= hi_len; ++len, power *= 10) {
    uint64_t a = std::max(lo, len == 1 ? uint64_t(0) : power);
    uint64_t b_max = power * 10 - 1;
    uint64_t z = std::min(hi, b_max);
    same_length_range(b, digits_of(a), digits_of(z), prefix, out);
  }
}
}  // namespace

uint32_t SchemaCompiler::integer_range(int64_t lo, int64_t hi) {
  std::vector<Sequence> alts;
  if (lo <= 0 && hi >= 0) alts.push_back({b_.byte('0')});
  if (hi >= 1) unsigned_range(b_, uint64_t(std::max<int64_t>(lo, 1)), uint64_t(hi), {}, alts);
  if (lo <= -1) unsigned_range(b_, uint64_t(-std::min<int64_t>(hi, -1)), uint64_t(-lo), {b_.byte('-')}, alts);
  return b_.rule("integer[" + std::to_string(lo) + "," + std::to_string(hi) + "]", alts);
}

// ---------------------------------------------------------------- schemas

uint32_t SchemaCompiler::compile(const ordered_json& schema) {
  const ordered_json* saved_doc = document_;
  auto saved_refs = std::move(ref_rules_);
  document_ = &schema;
  ref_rules_.clear();
  uint32_t r;
  try {
    r = compile_at(schema, "#", 0);
  } catch (const nlohmann::json::exception& e) {
    document_ = saved_doc;
    ref_rules_ = std::move(saved_refs);
    throw Error(std::string("schema: ") + e.what());
  } catch (...) {
    document_ = saved_doc;
    ref_rules_ = std::move(saved_refs);
    throw;
  }
  document_ = saved_doc;
  ref_rules_ = std::move(saved_refs);
  return r;
}

uint32_t SchemaCompiler::compile_ref(const std::string& ref, const std::string& path, int depth) {
  auto it = ref_rules_.find(ref);
  if (it != ref_rules_.end()) return it->second;
  if (ref.empty() || ref[0] != '#')
    fail(path, "$ref '" + ref + "' is not local (only '#' and '#/...' are supported)");
  const ordered_json* target = nullptr;
  try {
    ordered_json::json_pointer ptr(ref.substr(1));
    if (document_->contains(ptr)) target = &document_->at(ptr);
  } catch (const nlohmann::json::exception&) {
    fail(path, "$ref '" + ref + "' is not a valid JSON pointer");
  }
  if (!target) fail(path, "$ref '" + ref + "' points to nothing");
  // The rule exists before its body is compiled, so recursion refers to it.
  uint32_t rule = b_.new_rule("ref:" + ref.substr(0, 64));
  ref_rules_[ref] = rule;
  uint32_t body = compile_at(*target, ref, depth + 1);
  b_.add_alternative(rule, {GrammarBuilder::ref(body)});
  return rule;
}

uint32_t SchemaCompiler::compile_at(const ordered_json& s, const std::string& path, int depth) {
  if (depth > kMaxDepth) fail(path, "nested more than " + std::to_string(kMaxDepth) + " levels");
  if (s.is_boolean()) {
    if (s.get<bool>()) return any_value();
    return b_.new_rule("false");  // no alternatives: admits nothing
  }
  if (!s.is_object()) fail(path, "a schema must be an object or a boolean");
  for (auto it = s.begin(); it != s.end(); ++it)
    if (kUnsupported.count(it.key())) fail(path, "keyword '" + it.key() + "' is not supported");

  if (auto ref = s.find("$ref"); ref != s.end()) {
    if (!ref->is_string()) fail(path, "'$ref' must be a string");
    return compile_ref(ref->get<std::string>(), path, depth);
  }
  if (auto c = s.find("const"); c != s.end()) return literal_rule(*c);
  if (auto e = s.find("enum"); e != s.end()) {
    if (!e->is_array()) fail(path, "'enum' must be an array");
    uint32_t r = b_.new_rule("enum");
    for (const auto& v : *e) b_.add_alternative(r, b_.literal(v.dump()));
    return r;
  }
  for (const char* key : {"anyOf", "oneOf"}) {
    if (auto alts = s.find(key); alts != s.end()) {
      if (!alts->is_array() || alts->empty()) fail(path, std::string("'") + key + "' must be a non-empty array");
      for (const char* other : {"type", "properties", "items", "required", "allOf", "anyOf", "oneOf"})
        if (other != std::string(key) && s.contains(other))
          fail(path, std::string("'") + key + "' beside '" + other + "' is not supported");
      uint32_t r = b_.new_rule(key);
      for (size_t i = 0; i < alts->size(); ++i)
        b_.add_alternative(r, {GrammarBuilder::ref(
                                  compile_at((*alts)[i], child_path(path, key) + "/" + std::to_string(i), depth + 1))});
      return r;
    }
  }
  if (auto all = s.find("allOf"); all != s.end()) {
    if (!all->is_array() || all->size() != 1)
      fail(path, "'allOf' is supported with exactly one schema");
    return compile_at((*all)[0], child_path(path, "allOf") + "/0", depth + 1);
  }

  // Types: explicit, or inferred from the keywords present.
  std::vector<std::string> types;
  if (auto t = s.find("type"); t != s.end()) {
    if (t->is_string()) {
      types.push_back(t->get<std::string>());
    } else if (t->is_array() && !t->empty()) {
      for (const auto& v : *t) {
        if (!v.is_string()) fail(path, "'type' entries must be strings");
        types.push_back(v.get<std::string>());
      }
    } else {
      fail(path, "'type' must be a string or a non-empty array of strings");
    }
  } else if (s.contains("properties") || s.contains("additionalProperties") || s.contains("required")) {
    types.push_back("object");
  } else if (s.contains("items") || s.contains("prefixItems") || s.contains("minItems") ||
             s.contains("maxItems")) {
    types.push_back("array");
  } else if (s.contains("minLength") || s.contains("maxLength")) {
    types.push_back("string");
  } else if (s.contains("minimum") || s.contains("maximum") || s.contains("exclusiveMinimum") ||
             s.contains("exclusiveMaximum")) {
    types.push_back("number");
  } else {
    return any_value();
  }
  if (auto n = s.find("nullable"); n != s.end() && n->is_boolean() && n->get<bool>())
    types.push_back("null");
  if (types.size() == 1) return compile_typed(s, types[0], path, depth);
  uint32_t r = b_.new_rule("types");
  for (const auto& t : types) b_.add_alternative(r, {GrammarBuilder::ref(compile_typed(s, t, path, depth))});
  return r;
}

uint32_t SchemaCompiler::compile_typed(const ordered_json& s, const std::string& type,
                                       const std::string& path, int depth) {
  if (type == "object") return compile_object(s, path, depth);
  if (type == "array") return compile_array(s, path, depth);
  if (type == "string") return compile_string(s, path);
  if (type == "integer") return compile_integer(s, path);
  if (type == "number") return compile_number(s, path);
  if (type == "boolean") return b_.rule("boolean", {b_.literal("true"), b_.literal("false")});
  if (type == "null") return b_.rule("null", {b_.literal("null")});
  fail(path, "unknown type '" + type + "'");
}

uint32_t SchemaCompiler::compile_object(const ordered_json& s, const std::string& path, int depth) {
  uint32_t ws = whitespace();
  const ordered_json* props = nullptr;
  if (auto p = s.find("properties"); p != s.end()) {
    if (!p->is_object()) fail(path, "'properties' must be an object");
    props = &*p;
  }
  std::vector<std::string> required;
  if (auto r = s.find("required"); r != s.end()) {
    if (!r->is_array()) fail(path, "'required' must be an array");
    for (const auto& v : *r) {
      if (!v.is_string()) fail(path, "'required' entries must be strings");
      if (std::find(required.begin(), required.end(), v.get<std::string>()) == required.end())
        required.push_back(v.get<std::string>());
    }
  }
  // additionalProperties: absent/true -> any value, schema, or false.
  const ordered_json* additional = nullptr;
  bool additional_allowed = true;
  if (auto a = s.find("additionalProperties"); a != s.end()) {
    if (a->is_boolean())
      additional_allowed = a->get<bool>();
    else if (a->is_object())
      additional = &*a;
    else
      fail(path, "'additionalProperties' must be a boolean or a schema");
  }
  auto additional_rule = [&]() {
    return additional ? compile_at(*additional, child_path(path, "additionalProperties"), depth + 1)
                      : any_value();
  };

  if (!props && required.empty()) {
    // A map: any keys, values per additionalProperties.
    if (!additional_allowed) return b_.rule("empty-object", {{b_.byte('{'), GrammarBuilder::ref(ws), b_.byte('}')}});
    Sequence member{GrammarBuilder::ref(string_value())};
    for (auto c : colon()) member.push_back(c);
    member.push_back(GrammarBuilder::ref(additional_rule()));
    Sequence sep_member = separator();
    sep_member.insert(sep_member.end(), member.begin(), member.end());
    uint32_t more = repeat("members", sep_member, 0, -1);
    Sequence full{b_.byte('{'), GrammarBuilder::ref(ws)};
    full.insert(full.end(), member.begin(), member.end());
    full.push_back(GrammarBuilder::ref(more));
    full.push_back(GrammarBuilder::ref(ws));
    full.push_back(b_.byte('}'));
    return b_.rule("map", {{b_.byte('{'), GrammarBuilder::ref(ws), b_.byte('}')}, full});
  }

  struct Property {
    std::string name;
    uint32_t rule;
    bool required;
  };
  std::vector<Property> list;
  if (props) {
    for (auto it = props->begin(); it != props->end(); ++it) {
      bool req = std::find(required.begin(), required.end(), it.key()) != required.end();
      list.push_back({it.key(), compile_at(it.value(), child_path(child_path(path, "properties"), it.key()), depth + 1), req});
    }
  }
  for (const auto& name : required) {
    bool listed = std::any_of(list.begin(), list.end(), [&](const Property& p) { return p.name == name; });
    if (listed) continue;
    if (!additional_allowed)
      fail(path, "required property '" + name + "' is not in 'properties' and additionalProperties is false");
    list.push_back({name, additional_rule(), true});
  }

  // kv_i = "name" : value_i. head_i: properties i.. with none emitted yet
  // (non-empty); tail_i: properties i.. after at least one (each preceded by
  // a comma). Optional properties may be skipped; order is schema order.
  size_t n = list.size();
  std::vector<Sequence> kv(n);
  for (size_t i = 0; i < n; ++i) {
    kv[i] = b_.literal(nlohmann::json(list[i].name).dump());
    for (auto c : colon()) kv[i].push_back(c);
    kv[i].push_back(GrammarBuilder::ref(list[i].rule));
  }
  std::vector<uint32_t> tail(n + 1), head(n + 1, UINT32_MAX);
  tail[n] = b_.rule("props-end", {{}});
  for (size_t i = n; i-- > 0;) {
    Sequence with = separator();
    with.insert(with.end(), kv[i].begin(), kv[i].end());
    with.push_back(GrammarBuilder::ref(tail[i + 1]));
    tail[i] = b_.rule("props-after", {with});
    if (!list[i].required) b_.add_alternative(tail[i], {GrammarBuilder::ref(tail[i + 1])});

    Sequence first = kv[i];
    first.push_back(GrammarBuilder::ref(tail[i + 1]));
    head[i] = b_.rule("props", {first});
    if (!list[i].required && head[i + 1] != UINT32_MAX)
      b_.add_alternative(head[i], {GrammarBuilder::ref(head[i + 1])});
  }
  bool all_optional = std::none_of(list.begin(), list.end(), [](const Property& p) { return p.required; });
  uint32_t object = b_.new_rule("object");
  if (n > 0)
    b_.add_alternative(object, {b_.byte('{'), GrammarBuilder::ref(ws), GrammarBuilder::ref(head[0]),
                                GrammarBuilder::ref(ws), b_.byte('}')});
  if (all_optional) b_.add_alternative(object, {b_.byte('{'), GrammarBuilder::ref(ws), b_.byte('}')});
  return object;
}

uint32_t SchemaCompiler::compile_array(const ordered_json& s, const std::string& path, int depth) {
  uint32_t ws = whitespace();
  int64_t min = count_keyword(s, "minItems", 0, path);
  int64_t max = count_keyword(s, "maxItems", -1, path);
  if (max >= 0 && min > max) return b_.new_rule("no-array");  // admits nothing

  std::vector<uint32_t> prefix;  // tuple positions (prefixItems)
  if (auto p = s.find("prefixItems"); p != s.end()) {
    if (!p->is_array()) fail(path, "'prefixItems' must be an array");
    for (size_t i = 0; i < p->size(); ++i)
      prefix.push_back(compile_at((*p)[i], child_path(path, "prefixItems") + "/" + std::to_string(i), depth + 1));
  }
  // Items after the prefix: "items" (false: none), default any value.
  std::optional<uint32_t> rest;
  if (auto it = s.find("items"); it != s.end()) {
    if (it->is_array()) fail(path, "array-form 'items' is not supported (use prefixItems)");
    if (!(it->is_boolean() && !it->get<bool>()))
      rest = compile_at(*it, child_path(path, "items"), depth + 1);
  } else {
    rest = any_value();
  }

  // Element k (0-based) is prefix[k] while k < prefix.size(), then `rest`.
  // Build "elements from index k on" right to left: after_k ::= sep elem_k after_{k+1}
  // with counts enforced; positions past the prefix use a repeat of rest.
  int64_t p = int64_t(prefix.size());
  // Rule for the items after index k >= p already emitted count c = k:
  // (sep rest){max(0,min-k), max-k}.
  auto rest_tail = [&](int64_t k) -> std::optional<uint32_t> {
    int64_t lo = std::max<int64_t>(0, min - k);
    if (max >= 0 && k > max) return lo == 0 ? std::optional<uint32_t>(b_.rule("no-more", {{}})) : std::nullopt;
    int64_t hi = max < 0 ? -1 : max - k;
    if (!rest) return lo == 0 ? std::optional<uint32_t>(b_.rule("no-more", {{}})) : std::nullopt;
    Sequence unit = separator();
    unit.push_back(GrammarBuilder::ref(*rest));
    return repeat("items", unit, lo, hi);
  };
  // after[k]: the sequence that may follow element k-1 (k >= 1).
  std::vector<std::optional<uint32_t>> after(size_t(p) + 1);
  after[size_t(p)] = rest_tail(p);
  for (int64_t k = p - 1; k >= 1; --k) {
    // Either stop here (allowed if k >= min) or continue with prefix[k].
    uint32_t r = b_.new_rule("tuple-after");
    if (k >= min) b_.add_alternative(r, {});
    if ((max < 0 || k < max) && after[size_t(k) + 1]) {
      Sequence seq = separator();
      seq.push_back(GrammarBuilder::ref(prefix[size_t(k)]));
      seq.push_back(GrammarBuilder::ref(*after[size_t(k) + 1]));
      b_.add_alternative(r, seq);
    }
    after[size_t(k)] = r;
  }
  // The first element and what follows it.
  std::optional<uint32_t> first_elem = p > 0 ? std::optional<uint32_t>(prefix[0]) : rest;
  std::optional<uint32_t> after_first = p > 0 ? after[1] : rest_tail(1);
  uint32_t array = b_.new_rule("array");
  if (min == 0) b_.add_alternative(array, {b_.byte('['), GrammarBuilder::ref(ws), b_.byte(']')});
  if (first_elem && after_first && max != 0)
    b_.add_alternative(array, {b_.byte('['), GrammarBuilder::ref(ws), GrammarBuilder::ref(*first_elem),
                               GrammarBuilder::ref(*after_first), GrammarBuilder::ref(ws), b_.byte(']')});
  return array;
}

uint32_t SchemaCompiler::compile_string(const ordered_json& s, const std::string& path) {
  int64_t min = count_keyword(s, "minLength", 0, path);
  int64_t max = count_keyword(s, "maxLength", -1, path);
  if (min == 0 && max < 0) return string_value();
  if (max >= 0 && min > max) return b_.new_rule("no-string");
  uint32_t chars = repeat("chars", {GrammarBuilder::ref(string_char())}, min, max);
  return b_.rule("string", {{b_.byte('"'), GrammarBuilder::ref(chars), b_.byte('"')}});
}

namespace {
// Reads a numeric bound; `exclusive` variants shift integers by one.
std::optional<double> bound(const ordered_json& s, const char* key, const std::string& path) {
  auto it = s.find(key);
  if (it == s.end()) return std::nullopt;
  if (it->is_boolean()) return std::nullopt;  // draft-4 exclusive flags, handled by caller
  if (!it->is_number()) fail(path, std::string("'") + key + "' must be a number");
  return it->get<double>();
}
}  // namespace

uint32_t SchemaCompiler::compile_integer(const ordered_json& s, const std::string& path) {
  double lo = -double(kIntLimit), hi = double(kIntLimit);
  bool draft4_excl_min = s.value("exclusiveMinimum", ordered_json()).is_boolean() && s["exclusiveMinimum"].get<bool>();
  bool draft4_excl_max = s.value("exclusiveMaximum", ordered_json()).is_boolean() && s["exclusiveMaximum"].get<bool>();
  if (auto v = bound(s, "minimum", path)) lo = std::max(lo, draft4_excl_min ? std::floor(*v) + 1 : std::ceil(*v));
  if (auto v = bound(s, "maximum", path)) hi = std::min(hi, draft4_excl_max ? std::ceil(*v) - 1 : std::floor(*v));
  if (auto v = bound(s, "exclusiveMinimum", path)) lo = std::max(lo, std::floor(*v) + 1);
  if (auto v = bound(s, "exclusiveMaximum", path)) hi = std::min(hi, std::ceil(*v) - 1);
  if (lo > hi) return b_.new_rule("no-integer");
  // A bound may lie far outside int64 (1e300): clamp before converting. Doubles
  // cannot hold the 18-digit limit exactly, so the limits are applied in
  // integers. The clamp keeps lo <= hi.
  auto clamp_to_limit = [](double v) {
    if (v <= -double(kIntLimit)) return -kIntLimit;
    if (v >= double(kIntLimit)) return kIntLimit;
    return int64_t(v);
  };
  return integer_range(clamp_to_limit(lo), clamp_to_limit(hi));
}

uint32_t SchemaCompiler::compile_number(const ordered_json& s, const std::string& path) {
  number_any();
  auto lo = bound(s, "minimum", path);
  auto xlo = bound(s, "exclusiveMinimum", path);
  auto hi = bound(s, "maximum", path);
  auto xhi = bound(s, "exclusiveMaximum", path);
  bool non_negative = (lo && *lo >= 0) || (xlo && *xlo >= 0);
  bool non_positive = (hi && *hi <= 0) || (xhi && *xhi <= 0);
  if (non_negative && non_positive) {
    if (lo && *lo == 0 && hi && *hi == 0) return b_.rule("zero", {b_.literal("0")});
    return b_.new_rule("no-number");
  }
  if (non_negative) return shared_.at("unsigned-number");
  if (non_positive) {
    // "0" or a negative number.
    return b_.rule("non-positive", {b_.literal("0"), {b_.byte('-'), GrammarBuilder::ref(shared_.at("unsigned-number"))}});
  }
  return shared_.at("number");
}

// ---------------------------------------------------------------- helpers

Grammar grammar_from_json_schema(const ordered_json& schema, SchemaOptions options) {
  GrammarBuilder b;
  SchemaCompiler c(b, options);
  uint32_t root = c.compile(schema);
  return std::move(b).build(root);
}

Grammar grammar_from_json_schema(std::string_view schema_text, SchemaOptions options) {
  ordered_json schema;
  try {
    schema = parse_ordered_json(schema_text);
  } catch (const Error& e) {
    throw Error(std::string("schema ") + e.what());
  }
  return grammar_from_json_schema(schema, options);
}

Grammar grammar_any_json_value(SchemaOptions options) {
  GrammarBuilder b;
  SchemaCompiler c(b, options);
  return std::move(b).build(c.any_value());
}

Grammar grammar_any_json_object(SchemaOptions options) {
  GrammarBuilder b;
  SchemaCompiler c(b, options);
  return std::move(b).build(c.any_object());
}

}  // namespace warden::grammar
