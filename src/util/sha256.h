#pragma once
#include <string>
#include <string_view>

namespace warden {

// The SHA-256 of `data` as 64 lowercase hex digits. Throws warden::Error if
// the library fails.
std::string sha256_hex(std::string_view data);

}  // namespace warden
