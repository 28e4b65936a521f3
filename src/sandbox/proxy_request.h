#pragma once
// Parsing of the one request head a client sends to the egress proxy:
// "CONNECT host:port HTTP/1.1" or a plain-HTTP request with an absolute URI
// ("GET http://host[:port]/path HTTP/1.1"). Strict: anything unusual is an
// error, never guessed at.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace warden::sandbox {

inline constexpr size_t kMaxRequestHead = 16384;

struct ProxyRequest {
  bool is_connect = false;
  std::string method;
  std::string host;         // lower case, no trailing dot, IPv6 without brackets
  uint16_t port = 0;
  std::string origin_form;  // plain HTTP only: "/path?query"
  std::string version;      // "HTTP/1.0" or "HTTP/1.1"
  std::vector<std::pair<std::string, std::string>> headers;  // in order, names as sent
};

// Length of the head (through the blank line) if `buffer` holds a complete
// one, 0 if more bytes are needed.
size_t request_head_length(std::string_view buffer);

// Parses a complete head; on failure returns nullopt and sets `error`.
std::optional<ProxyRequest> parse_proxy_request(std::string_view head, std::string& error);

// Normalises a host name (lower case, one trailing dot dropped) and checks
// its syntax: DNS labels or an IP literal. Empty result = invalid.
std::string normalize_host(std::string_view host);

}  // namespace warden::sandbox
