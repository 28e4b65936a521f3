#pragma once
// Builds TLS ClientHello records byte by byte for the proxy's tests, so a
// test can say exactly which server name (or which defect) a hello carries.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace warden::sandbox::test {

inline std::string be(uint32_t v, int bytes) {
  std::string out;
  for (int i = bytes - 1; i >= 0; i--) out += char((v >> (8 * i)) & 0xff);
  return out;
}

inline std::string with_length(const std::string& body, int bytes) { return be(uint32_t(body.size()), bytes) + body; }

inline std::string server_name_extension(const std::vector<std::string>& names) {
  std::string list;
  for (const auto& n : names) list += '\0' + with_length(n, 2);
  return be(0, 2) + with_length(with_length(list, 2), 2);
}

// A ClientHello message (handshake header included) with these extensions.
inline std::string client_hello_message(const std::string& extensions) {
  std::string body = be(0x0303, 2) + std::string(32, 'r') + with_length(std::string(32, 's'), 1) +
                     with_length(be(0x1301, 2) + be(0x1302, 2), 2) + with_length(std::string(1, '\0'), 1) +
                     with_length(be(0x002b, 2) + with_length(with_length(be(0x0304, 2), 1), 2) + extensions, 2);
  return '\x01' + with_length(body, 3);
}

// The message in TLS handshake records of at most `record_size` bytes each.
inline std::string in_records(const std::string& message, size_t record_size = 16384) {
  std::string out;
  for (size_t pos = 0; pos < message.size(); pos += record_size)
    out += '\x16' + be(0x0301, 2) + with_length(message.substr(pos, record_size), 2);
  return out;
}

// A whole ClientHello for `server_name` (none when nullopt).
inline std::string client_hello(const std::optional<std::string>& server_name, size_t record_size = 16384) {
  return in_records(client_hello_message(server_name ? server_name_extension({*server_name}) : ""), record_size);
}

}  // namespace warden::sandbox::test
