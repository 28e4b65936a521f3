#include "server/browser_guard.h"

#include "util/ascii.h"

namespace warden::server {
namespace {

// "name", "name:port", "[v6]" or "[v6]:port" -> the host part, lowercased;
// "" when the port is not digits or the brackets do not close.
std::string host_part(std::string_view authority) {
  std::string_view host = authority, port;
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return "";
    host = authority.substr(0, close + 1);
    port = authority.substr(close + 1);
    if (!port.empty() && port.front() != ':') return "";
  } else if (const size_t colon = authority.find(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon);
  }
  if (!port.empty()) {
    port.remove_prefix(1);
    if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos) return "";
  }
  return ascii_lower(host);
}

bool is_ipv4_literal(std::string_view h) {
  int parts = 0;
  size_t start = 0;
  while (true) {
    const size_t dot = h.find('.', start);
    std::string_view part = h.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (part.empty() || part.size() > 3 || part.find_first_not_of("0123456789") != std::string_view::npos) return false;
    if (std::stoi(std::string(part)) > 255) return false;
    ++parts;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return parts == 4;
}

bool is_ipv6_literal(std::string_view h) {
  return h.size() > 2 && h.front() == '[' && h.back() == ']' &&
         h.substr(1, h.size() - 2).find_first_not_of("0123456789abcdef:.") == std::string_view::npos;
}

bool is_localhost_name(std::string_view h) {
  constexpr std::string_view kLocal = "localhost", kSuffix = ".localhost";
  return h == kLocal || (h.size() > kSuffix.size() && h.substr(h.size() - kSuffix.size()) == kSuffix);
}

bool is_loopback_host(std::string_view h) {
  return is_localhost_name(h) || h == "[::1]" || (is_ipv4_literal(h) && h.substr(0, 4) == "127.");
}

}  // namespace

bool host_header_allowed(std::string_view host, bool api_key_required) {
  if (host.empty()) return true;
  const std::string h = host_part(host);
  if (h.empty()) return false;
  return is_localhost_name(h) || is_ipv4_literal(h) || is_ipv6_literal(h) || api_key_required;
}

bool origin_header_allowed(std::string_view origin, bool present) {
  if (!present) return true;
  for (std::string_view scheme : {"http://", "https://"}) {
    if (origin.substr(0, scheme.size()) != scheme) continue;
    std::string_view authority = origin.substr(scheme.size());
    if (authority.find('/') != std::string_view::npos) return false;  // an origin has no path
    return is_loopback_host(host_part(authority));
  }
  return false;
}

}  // namespace warden::server
