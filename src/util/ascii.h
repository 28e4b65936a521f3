#pragma once
// ASCII case folding, independent of the C locale: names that compare this
// way (domains, .git on a case-insensitive filesystem, "yes") are ASCII.
#include <string>
#include <string_view>

namespace warden {

inline std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
  return out;
}

}  // namespace warden
