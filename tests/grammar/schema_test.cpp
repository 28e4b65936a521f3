// JSON Schema -> grammar: which texts each schema accepts and rejects, exact
// integer ranges, and a clear error for every unsupported or broken schema.
#include <gtest/gtest.h>

#include "byte_vocab.h"
#include "grammar/json_schema.h"
#include "grammar/matcher.h"
#include "util/error.h"

namespace warden::grammar {
namespace {

bool matches(const Grammar& g, std::string_view text) {
  static auto vocab = test::small_vocab();
  Matcher m(std::make_shared<Grammar>(g), vocab);
  return m.accept_bytes(text) && m.is_complete();
}

Grammar compile(std::string_view schema) { return grammar_from_json_schema(schema); }

std::string error_of(std::string_view schema) {
  try {
    compile(schema);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Schema, ObjectPropertiesInOrderRequiredAndOptional) {
  Grammar g = compile(R"({"type":"object","properties":{"b":{"type":"integer"},"a":{"type":"string"},
    "c":{"type":"boolean"}},"required":["a"]})");
  EXPECT_TRUE(matches(g, R"({"a":"x"})"));
  EXPECT_TRUE(matches(g, R"({"b":1,"a":"x"})"));
  EXPECT_TRUE(matches(g, R"({"b": 1, "a": "x", "c": true})"));
  EXPECT_TRUE(matches(g, "{\n  \"a\": \"x\",\n  \"c\": false\n}"));
  EXPECT_FALSE(matches(g, R"({"a":"x","b":1})"));      // schema order only
  EXPECT_FALSE(matches(g, R"({"b":1})"));              // a is required
  EXPECT_FALSE(matches(g, R"({})"));
  EXPECT_FALSE(matches(g, R"({"a":"x","d":1})"));      // no extra properties
  EXPECT_FALSE(matches(g, R"({"a":"x",})"));
  EXPECT_FALSE(matches(g, R"({"a":"x","a":"y"})"));
}

TEST(Schema, AllOptionalObjectMayBeEmpty) {
  Grammar g = compile(R"({"type":"object","properties":{"x":{"type":"null"}}})");
  EXPECT_TRUE(matches(g, "{}"));
  EXPECT_TRUE(matches(g, "{ }"));
  EXPECT_TRUE(matches(g, R"({"x":null})"));
  EXPECT_FALSE(matches(g, R"({"y":null})"));
}

TEST(Schema, MapsAndAdditionalProperties) {
  Grammar map = compile(R"({"type":"object","additionalProperties":{"type":"integer"}})");
  EXPECT_TRUE(matches(map, R"({"any":1,"other":-2})"));
  EXPECT_FALSE(matches(map, R"({"any":"s"})"));
  Grammar closed = compile(R"({"type":"object","additionalProperties":false})");
  EXPECT_TRUE(matches(closed, "{}"));
  EXPECT_FALSE(matches(closed, R"({"a":1})"));
  Grammar extra_required = compile(R"({"type":"object","properties":{"a":{"type":"integer"}},
     "required":["a","z"],"additionalProperties":{"type":"boolean"}})");
  EXPECT_TRUE(matches(extra_required, R"({"a":1,"z":true})"));
  EXPECT_FALSE(matches(extra_required, R"({"a":1})"));
}

TEST(Schema, Arrays) {
  Grammar g = compile(R"({"type":"array","items":{"type":"boolean"},"minItems":1,"maxItems":3})");
  EXPECT_FALSE(matches(g, "[]"));
  EXPECT_TRUE(matches(g, "[true]"));
  EXPECT_TRUE(matches(g, "[true, false,true]"));
  EXPECT_FALSE(matches(g, "[true,true,true,true]"));
  EXPECT_FALSE(matches(g, "[1]"));
  Grammar tuple = compile(R"({"prefixItems":[{"type":"integer"},{"type":"string"}],"items":false})");
  EXPECT_TRUE(matches(tuple, "[]"));
  EXPECT_TRUE(matches(tuple, "[1]"));
  EXPECT_TRUE(matches(tuple, R"([1,"a"])"));
  EXPECT_FALSE(matches(tuple, R"([1,"a",2])"));
  EXPECT_FALSE(matches(tuple, R"(["a"])"));
  Grammar any = compile(R"({"type":"array"})");
  EXPECT_TRUE(matches(any, R"([1,"a",{"b":[null]}])"));
}

TEST(Schema, Strings) {
  Grammar g = compile(R"({"type":"string","minLength":2,"maxLength":3})");
  EXPECT_FALSE(matches(g, R"("a")"));
  EXPECT_TRUE(matches(g, R"("ab")"));
  EXPECT_TRUE(matches(g, "\"a\xc3\xa9\""));   // code points, not bytes
  EXPECT_TRUE(matches(g, R"("a\n\u00e9")"));
  EXPECT_FALSE(matches(g, R"("abcd")"));
  Grammar any = compile(R"({"type":"string","format":"date-time"})");
  EXPECT_TRUE(matches(any, R"("")"));
  EXPECT_FALSE(matches(any, "\"\x01\""));        // control bytes must be escaped
  EXPECT_FALSE(matches(any, "\"\xc3\""));        // invalid UTF-8
  EXPECT_FALSE(matches(any, "\"\xed\xa0\x80\""));  // UTF-8 surrogate
  EXPECT_FALSE(matches(any, R"("\ud800")"));     // lone surrogate escape
  EXPECT_FALSE(matches(any, R"("\x")"));
}

TEST(Schema, EnumAndConstOfAnyJson) {
  Grammar g = compile(R"({"enum":["a",1,null,{"k":[true]}]})");
  EXPECT_TRUE(matches(g, R"("a")"));
  EXPECT_TRUE(matches(g, "1"));
  EXPECT_TRUE(matches(g, "null"));
  EXPECT_TRUE(matches(g, R"({"k":[true]})"));
  EXPECT_FALSE(matches(g, R"("b")"));
  EXPECT_FALSE(matches(g, "12"));
  Grammar c = compile(R"({"const":"fixed"})");
  EXPECT_TRUE(matches(c, R"("fixed")"));
  EXPECT_FALSE(matches(c, R"("fixe")"));
}

TEST(Schema, NumbersAndBooleans) {
  Grammar n = compile(R"({"type":"number"})");
  for (const char* ok : {"0", "-0", "1.5", "-12.25e+10", "3E5", "0.001"}) EXPECT_TRUE(matches(n, ok)) << ok;
  for (const char* bad : {"01", "1.", ".5", "+1", "1e", "1e123", "--1", "NaN"}) EXPECT_FALSE(matches(n, bad)) << bad;
  Grammar nonneg = compile(R"({"type":"number","minimum":0})");
  EXPECT_TRUE(matches(nonneg, "2.5"));
  EXPECT_FALSE(matches(nonneg, "-2.5"));
  Grammar b = compile(R"({"type":"boolean"})");
  EXPECT_TRUE(matches(b, "false"));
  EXPECT_FALSE(matches(b, "0"));
  Grammar types = compile(R"({"type":["integer","null"]})");
  EXPECT_TRUE(matches(types, "null"));
  EXPECT_TRUE(matches(types, "-7"));
  EXPECT_FALSE(matches(types, "1.5"));
}

// Every integer in a window around the bounds: accepted exactly when in range.
void check_integer_range(const std::string& schema, int64_t lo, int64_t hi, int64_t from, int64_t to) {
  Grammar g = compile(schema);
  for (int64_t i = from; i <= to; ++i)
    ASSERT_EQ(matches(g, std::to_string(i)), i >= lo && i <= hi) << schema << " value " << i;
}

TEST(Schema, IntegerRangesAreExact) {
  check_integer_range(R"({"type":"integer","minimum":-123,"maximum":4567})", -123, 4567, -1500, 6000);
  check_integer_range(R"({"type":"integer","minimum":7,"maximum":7})", 7, 7, -20, 20);
  check_integer_range(R"({"type":"integer","exclusiveMinimum":9,"exclusiveMaximum":100})", 10, 99, -5, 1200);
  check_integer_range(R"({"type":"integer","minimum":-1050,"maximum":-37})", -1050, -37, -2000, 200);
  check_integer_range(R"({"type":"integer","minimum":95})", 95, INT64_MAX, -10, 1200);
  check_integer_range(R"({"type":"integer","maximum":-5.5})", INT64_MIN, -6, -1200, 10);
  Grammar g = compile(R"({"type":"integer"})");
  EXPECT_FALSE(matches(g, "007"));
  EXPECT_FALSE(matches(g, "-0"));
  EXPECT_TRUE(matches(g, "999999999999999999"));    // 18 digits
  EXPECT_FALSE(matches(g, "1000000000000000000"));  // 19: beyond the documented cap
}

// Bounds far outside int64 are clamped to the 18-digit cap, not converted blindly
// (the fuzzer found maximum -7.7e58 overflowing the conversion).
TEST(Schema, IntegerBoundsBeyondTheCap) {
  check_integer_range(R"({"type":"integer","minimum":-1e300,"maximum":1e300})", INT64_MIN, INT64_MAX, -50, 50);
  check_integer_range(R"({"type":"integer","minimum":-3,"maximum":1e300})", -3, INT64_MAX, -50, 50);
  check_integer_range(R"({"type":"integer","minimum":-1e300,"exclusiveMaximum":4})", INT64_MIN, 3, -50, 50);
  EXPECT_TRUE(matches(compile(R"({"type":"integer","maximum":1e300})"), "999999999999999999"));
  for (const char* schema : {R"({"type":"integer","maximum":-77777777777777777777777777777777777775})",
                             R"({"type":"integer","minimum":1e300})",
                             R"({"type":"integer","exclusiveMinimum":1e19})"})
    EXPECT_NE(error_of(schema).find("admits no value"), std::string::npos) << schema;
}

TEST(Schema, RefsAndRecursion) {
  Grammar g = compile(R"({"$defs":{"list":{"type":"object","properties":{"v":{"type":"integer"},
      "next":{"anyOf":[{"$ref":"#/$defs/list"},{"type":"null"}]}},"required":["v","next"]}},
      "$ref":"#/$defs/list"})");
  EXPECT_TRUE(matches(g, R"({"v":1,"next":{"v":2,"next":null}})"));
  EXPECT_FALSE(matches(g, R"({"v":1,"next":{"v":2}})"));
  Grammar defs = compile(R"({"definitions":{"x":{"type":"boolean"}},"type":"array","items":{"$ref":"#/definitions/x"}})");
  EXPECT_TRUE(matches(defs, "[true,false]"));
  Grammar self = compile(R"({"type":"array","items":{"$ref":"#"},"maxItems":2})");
  EXPECT_TRUE(matches(self, "[[],[[]]]"));
}

TEST(Schema, AnyOfOneOfAllOf) {
  Grammar g = compile(R"({"anyOf":[{"type":"integer"},{"type":"string","maxLength":1}]})");
  EXPECT_TRUE(matches(g, "5"));
  EXPECT_TRUE(matches(g, R"("x")"));
  EXPECT_FALSE(matches(g, R"("xy")"));
  Grammar one = compile(R"({"oneOf":[{"const":1},{"const":2}]})");
  EXPECT_TRUE(matches(one, "2"));
  Grammar all = compile(R"({"allOf":[{"type":"null"}]})");
  EXPECT_TRUE(matches(all, "null"));
}

TEST(Schema, BooleanAndEmptySchemas) {
  EXPECT_TRUE(matches(compile("true"), R"({"a":[1,2,{"b":null}]})"));
  EXPECT_TRUE(matches(compile("{}"), "\"s\""));
  EXPECT_TRUE(matches(compile(R"({"description":"anything"})"), "3.5"));
}

TEST(Schema, ClearErrors) {
  auto has = [](const std::string& err, const std::string& what) {
    return err.find(what) != std::string::npos;
  };
  EXPECT_TRUE(has(error_of(R"({"type":"string","pattern":"^a"})"), "keyword 'pattern' is not supported"));
  EXPECT_TRUE(has(error_of(R"({"properties":{"a":{"not":{}}}})"), "#/properties/a"));
  EXPECT_TRUE(has(error_of(R"({"type":"array","uniqueItems":true})"), "uniqueItems"));
  EXPECT_TRUE(has(error_of(R"({"$ref":"#/$defs/missing"})"), "points to nothing"));
  EXPECT_TRUE(has(error_of(R"({"$ref":"http://example.com/s.json"})"), "not local"));
  EXPECT_TRUE(has(error_of(R"({"$ref":"#"})"), "admits no value"));
  EXPECT_TRUE(has(error_of(R"({"anyOf":[{"$ref":"#"},{"type":"null"}]})"), "left-recursive"));
  EXPECT_TRUE(has(error_of(R"({"type":"colour"})"), "unknown type 'colour'"));
  EXPECT_TRUE(has(error_of(R"({"enum":[]})"), "admits no value"));
  EXPECT_TRUE(has(error_of("false"), "admits no value"));
  EXPECT_TRUE(has(error_of(R"({"type":"array","minItems":3,"maxItems":2})"), "admits no value"));
  EXPECT_TRUE(has(error_of(R"({"type":"integer","minimum":5,"maximum":4})"), "admits no value"));
  // A recursive schema without a finite value.
  EXPECT_TRUE(has(error_of(R"({"type":"object","properties":{"a":{"$ref":"#"}},"required":["a"]})"), "admits no value"));
  EXPECT_TRUE(has(error_of(R"({"type":"object","required":["x"],"additionalProperties":false})"), "'x'"));
  EXPECT_TRUE(has(error_of(R"({"type":"array","maxItems":1e9})"), "maxItems"));
  EXPECT_TRUE(has(error_of("[1,2]"), "must be an object or a boolean"));
  EXPECT_TRUE(has(error_of("{not json"), "not valid JSON"));
  EXPECT_TRUE(has(error_of(R"({"allOf":[{},{}]})"), "allOf"));
}

TEST(Schema, DeepNestingIsRefused) {
  std::string s;
  for (int i = 0; i < 200; ++i) s += R"({"type":"array","items":)";
  s += "{}";
  for (int i = 0; i < 200; ++i) s += "}";
  EXPECT_NE(error_of(s).find("nested more than"), std::string::npos);
  // Nesting inside a value the compiler walks (a const), checked in the text.
  const std::string deep_const = R"({"const":)" + std::string(200000, '[') + std::string(200000, ']') + "}";
  EXPECT_NE(error_of(deep_const).find("nests arrays and objects more than 256 levels deep"), std::string::npos)
      << error_of(deep_const);
}

}  // namespace
}  // namespace warden::grammar
