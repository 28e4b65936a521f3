#include "util/json_nesting.h"

namespace warden {

bool json_nests_deeper_than(std::string_view text, size_t limit) {
  JsonBrackets brackets;
  for (char c : text) {
    if (brackets.step(c) > 0 && size_t(brackets.depth) > limit) return true;
    if (brackets.depth < 0) brackets.depth = 0;  // a stray closer: the parser refuses such text anyway
  }
  return false;
}

}  // namespace warden
