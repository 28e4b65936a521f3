#pragma once
// JSON text from outside, parsed into an ordered_json (members in the order
// written) in time linear in the text. Why: nlohmann's own ordered_json
// parser finds each new member's key by a linear search of the members
// before it, so an object of n members costs n^2 / 2 string comparisons: a
// 1.3 MB request body whose logit_bias held 100000 entries kept warden serve
// busy for 15 seconds, and the 4 MiB body limit allows minutes.
#include <string_view>

#include <nlohmann/json.hpp>

namespace warden {

// The same value as nlohmann::ordered_json::parse(text) (a repeated key keeps
// its first place and takes its last value), or throws warden::Error whose
// message completes "the request body ...": "is not valid JSON: ..." or
// "nests arrays and objects more than 256 levels deep" (util/json_nesting.h).
nlohmann::ordered_json parse_ordered_json(std::string_view text);

}  // namespace warden
