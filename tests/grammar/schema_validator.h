#pragma once
// Test-side JSON Schema validator for the subset the grammar supports,
// written independently of the grammar compiler: the property tests check
// generated values with it.
#include <string>

#include <nlohmann/json.hpp>

namespace warden::grammar::test {

// "" when `value` validates against `schema` ($refs resolve in `schema`),
// else a description of the first violation.
std::string validate(const nlohmann::json& value, const nlohmann::ordered_json& schema);

}  // namespace warden::grammar::test
