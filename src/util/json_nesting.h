#pragma once
// A bound on how deeply untrusted JSON text may nest its arrays and objects.
// Why: nlohmann parses any depth without recursion, but copying, comparing
// and dumping the parsed value, and the template values and grammars built
// from it, recurse once per level: one HTTP request nesting a message's
// content 200000 levels deep overflowed warden serve's stack and took the
// server down. Every parser of JSON from outside (HTTP bodies, a backend's
// responses, the broker's socket, the model's tool calls) rejects such text
// with one error: here before parsing, or parse_ordered_json (ordered_json.h)
// while it parses.
#include <cstddef>
#include <string_view>

namespace warden {

// Deeper than any real request, schema or tool call; shallow enough that
// every recursion over a parsed value stays far inside a thread's stack.
constexpr size_t kMaxJsonNesting = 256;

// JSON text read one character at a time: how many arrays and objects are
// open, outside strings. step() returns +1 for a character that opens one,
// -1 for one that closes one, 0 otherwise; `depth` goes below zero at a
// closer that nothing opened.
struct JsonBrackets {
  int depth = 0;
  bool in_string = false, escaped = false;
  int step(char c) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      return 0;
    }
    if (c == '{' || c == '[') {
      ++depth;
      return 1;
    }
    if (c == '}' || c == ']') {
      --depth;
      return -1;
    }
    if (c == '"') in_string = true;
    return 0;
  }
};

// Whether `text`, read as JSON, opens more than `limit` arrays and objects
// inside one another (brackets inside strings do not count). Linear; text
// that is not JSON is scanned all the same, and the parser then rejects it.
bool json_nests_deeper_than(std::string_view text, size_t limit = kMaxJsonNesting);

}  // namespace warden
