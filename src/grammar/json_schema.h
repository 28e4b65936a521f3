#pragma once
// JSON Schema -> Grammar.
//
// Supported (the output then always validates):
//   type (one or a list), nullable (OpenAPI), const, enum (any JSON values),
//   anyOf / oneOf (treated as anyOf: alternatives may overlap), allOf with
//   one schema, $ref to "#" or any "#/..." JSON pointer ($defs, definitions),
//   recursion through $ref, boolean schemas,
//   object: properties (emitted in schema order; required ones always,
//     optional ones optionally), required, additionalProperties false/true/
//     schema (see below),
//   array: items, prefixItems, minItems, maxItems,
//   string: minLength, maxLength (in code points),
//   integer: minimum, maximum, exclusiveMinimum, exclusiveMaximum (exact),
//   number: minimum >= 0 / maximum <= 0 fix the sign (other bounds ignored).
// Best effort, documented:
//   - "format" and annotations (title, description, default, examples, ...)
//     are ignored.
//   - An object with "properties" never gets extra properties, even when
//     additionalProperties allows them (fewer properties still validate);
//     an object without "properties" is a map whose values follow
//     additionalProperties (any value when absent or true).
//   - Numbers are generated with at most 16 integer digits, 16 fraction
//     digits and a 2-digit exponent; integers with at most 18 digits (so
//     every value fits a double / int64 and parses everywhere).
// Rejected with warden::Error naming the schema path: keywords whose meaning
// the grammar cannot guarantee (pattern, not, if/then/else, uniqueItems,
// multipleOf, min/maxProperties, patternProperties, contains, ...), bad
// keyword values, external $refs, and schemas that admit no value.
//
// Whitespace: between JSON tokens at most `max_whitespace` bytes of
// space/tab/newline, so no model can loop on whitespace forever.
#include <cstdint>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "grammar/grammar.h"

namespace warden::grammar {

struct SchemaOptions {
  size_t max_whitespace = 16;
};

// Compiles schemas into a shared GrammarBuilder (several schemas can go into
// one grammar, as for "a call to one of these tools").
class SchemaCompiler {
 public:
  explicit SchemaCompiler(GrammarBuilder& builder, SchemaOptions options = {});

  // A whole schema document ($refs resolve against it). Returns its rule.
  uint32_t compile(const nlohmann::ordered_json& schema);
  uint32_t any_value();
  uint32_t any_object();
  uint32_t whitespace();
  uint32_t string_value();

 private:
  using Sequence = GrammarBuilder::Sequence;
  uint32_t compile_at(const nlohmann::ordered_json& s, const std::string& path, int depth);
  uint32_t compile_ref(const std::string& ref, const std::string& path, int depth);
  uint32_t compile_typed(const nlohmann::ordered_json& s, const std::string& type,
                         const std::string& path, int depth);
  uint32_t compile_object(const nlohmann::ordered_json& s, const std::string& path, int depth);
  uint32_t compile_array(const nlohmann::ordered_json& s, const std::string& path, int depth);
  uint32_t compile_string(const nlohmann::ordered_json& s, const std::string& path);
  uint32_t compile_integer(const nlohmann::ordered_json& s, const std::string& path);
  uint32_t compile_number(const nlohmann::ordered_json& s, const std::string& path);
  uint32_t literal_rule(const nlohmann::ordered_json& value);

  uint32_t string_char();
  uint32_t number_any();
  uint32_t integer_range(int64_t lo, int64_t hi);
  // unit repeated between min and max times (max < 0: unbounded).
  uint32_t repeat(const std::string& name, const Sequence& unit, int64_t min, int64_t max);
  Sequence separator();  // ws "," ws
  Sequence colon();      // ws ":" ws

  GrammarBuilder& b_;
  SchemaOptions options_;
  const nlohmann::ordered_json* document_ = nullptr;
  std::map<std::string, uint32_t> ref_rules_;  // per document
  std::map<std::string, uint32_t> shared_;     // primitive rules by name
};

// One-call helpers.
Grammar grammar_from_json_schema(const nlohmann::ordered_json& schema, SchemaOptions options = {});
// Parses `schema_text` (keeping property order); throws warden::Error on bad JSON.
Grammar grammar_from_json_schema(std::string_view schema_text, SchemaOptions options = {});
Grammar grammar_any_json_value(SchemaOptions options = {});
Grammar grammar_any_json_object(SchemaOptions options = {});  // response_format json_object

}  // namespace warden::grammar
