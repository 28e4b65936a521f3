// Differential fuzzing of parse_ordered_json (util/ordered_json.h) against
// nlohmann's own ordered_json parser: within the nesting limit, the same
// texts must parse, to the same value with the same member order; beyond it,
// ours must refuse. Any other difference aborts.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "util/error.h"
#include "util/json_nesting.h"
#include "util/ordered_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  nlohmann::ordered_json ours;
  bool parsed = true;
  try {
    ours = warden::parse_ordered_json(text);
  } catch (const warden::Error&) {
    parsed = false;
  }
  // nlohmann's lexer takes a NUL byte for the end of the input, so only the
  // text before it is parsed (json_nests_deeper_than scans it all: stricter).
  if (warden::json_nests_deeper_than(text.substr(0, text.find('\0')))) {
    if (parsed) std::abort();
    return 0;
  }
  const auto theirs = nlohmann::ordered_json::parse(text.begin(), text.end(), nullptr, false);
  if (parsed == theirs.is_discarded()) std::abort();
  if (parsed && (ours != theirs || ours.dump() != theirs.dump())) std::abort();
  return 0;
}
