#include "sandbox/egress_policy.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "sandbox/proxy_request.h"
#include "util/error.h"

namespace warden::sandbox {
namespace {

bool in_v4(const uint8_t* a, uint8_t b0, uint8_t b1, int prefix) {
  uint32_t addr = uint32_t(a[0]) << 24 | uint32_t(a[1]) << 16 | uint32_t(a[2]) << 8 | a[3];
  uint32_t net = uint32_t(b0) << 24 | uint32_t(b1) << 16;
  uint32_t mask = prefix == 0 ? 0 : ~uint32_t(0) << (32 - prefix);
  return (addr & mask) == (net & mask);
}

bool special_v4(const uint8_t* a) {
  return in_v4(a, 0, 0, 8) ||         // "this network", 0.0.0.0
         in_v4(a, 10, 0, 8) ||        // private
         in_v4(a, 100, 64, 10) ||     // CGNAT
         in_v4(a, 127, 0, 8) ||       // loopback
         in_v4(a, 169, 254, 16) ||    // link-local (and cloud metadata)
         in_v4(a, 172, 16, 12) ||     // private
         in_v4(a, 192, 0, 24) ||      // IETF protocol assignments (192.0.0.0/24)
         (a[0] == 192 && a[1] == 0 && a[2] == 2) ||        // TEST-NET-1
         in_v4(a, 192, 168, 16) ||    // private
         in_v4(a, 198, 18, 15) ||     // benchmarking
         (a[0] == 198 && a[1] == 51 && a[2] == 100) ||     // TEST-NET-2
         (a[0] == 203 && a[1] == 0 && a[2] == 113) ||      // TEST-NET-3
         a[0] >= 224;                 // multicast, reserved, broadcast
}

bool host_is_numeric_looking(const std::string& host) {
  // The C library accepts "127.1", "2130706433" and "0x7f.1" as addresses:
  // a name whose last label starts with a digit is treated as a literal.
  size_t dot = host.rfind('.');
  std::string last = dot == std::string::npos ? host : host.substr(dot + 1);
  return !last.empty() && std::isdigit(static_cast<unsigned char>(last[0]));
}

bool contains(const std::vector<std::string>& list, const std::string& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

}  // namespace

std::string IpAddress::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), buf, sizeof buf);
  return buf;
}

std::optional<IpAddress> parse_ip_literal(const std::string& host) {
  addrinfo hints{};
  hints.ai_flags = AI_NUMERICHOST;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (::getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0 || !res) return std::nullopt;
  IpAddress a;
  if (res->ai_family == AF_INET6) {
    a.v6 = true;
    std::memcpy(a.bytes.data(), &reinterpret_cast<sockaddr_in6*>(res->ai_addr)->sin6_addr, 16);
  } else {
    std::memcpy(a.bytes.data(), &reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_addr, 4);
  }
  ::freeaddrinfo(res);
  return a;
}

bool is_special_address(const IpAddress& a) {
  const uint8_t* b = a.bytes.data();
  if (!a.v6) return special_v4(b);
  static const uint8_t zero[10] = {};
  if (std::memcmp(b, zero, 10) == 0 && ((b[10] == 0xff && b[11] == 0xff) || (b[10] == 0 && b[11] == 0)))
    return true;  // ::/96 (unspecified, loopback, v4-compatible) and v4-mapped: never needed by a tool
  if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b) return special_v4(b + 12);  // NAT64
  if (b[0] == 0x20 && b[1] == 0x02) return special_v4(b + 2);                                   // 6to4
  if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3] == 0) return true;                      // Teredo
  if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8) return true;                // documentation
  if ((b[0] & 0xfe) == 0xfc) return true;                  // ULA fc00::/7
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return true;  // link-local fe80::/10
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) return true;  // site-local (deprecated)
  if (b[0] == 0xff) return true;                           // multicast
  return false;
}

Resolver system_resolver() {
  return [](const std::string& host) {
    std::vector<IpAddress> out;
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (::getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0) return out;
    for (addrinfo* p = res; p; p = p->ai_next) {
      IpAddress a;
      if (p->ai_family == AF_INET6) {
        a.v6 = true;
        std::memcpy(a.bytes.data(), &reinterpret_cast<sockaddr_in6*>(p->ai_addr)->sin6_addr, 16);
      } else if (p->ai_family == AF_INET) {
        std::memcpy(a.bytes.data(), &reinterpret_cast<sockaddr_in*>(p->ai_addr)->sin_addr, 4);
      } else {
        continue;
      }
      if (std::find(out.begin(), out.end(), a) == out.end()) out.push_back(a);
    }
    ::freeaddrinfo(res);
    return out;
  };
}

bool domain_allowed(const std::vector<std::string>& allowed, const std::string& host) {
  for (const auto& entry : allowed) {
    if (entry.rfind("*.", 0) == 0) {
      const std::string suffix = entry.substr(1);  // ".example.com"
      if (host.size() > suffix.size() && host.compare(host.size() - suffix.size(), suffix.size(), suffix) == 0)
        return true;
    } else if (entry == host) {
      return true;
    }
  }
  return false;
}

void validate_rules(const EgressRules& rules) {
  for (const auto& entry : rules.allowed_domains) {
    std::string name = entry.rfind("*.", 0) == 0 ? entry.substr(2) : entry;
    if (normalize_host(name) != name && !(entry == name && parse_ip_literal(name)))
      throw Error("allowed domain '" + entry + "' is not a lower-case host name, *.suffix or IP literal");
  }
  for (const auto& entry : rules.private_destinations)
    if (normalize_host(entry) != entry && !parse_ip_literal(entry))
      throw Error("private destination '" + entry + "' is not a host name or IP literal");
}

EgressDecision decide_egress(const EgressRules& rules, const Resolver& resolver, const std::string& host,
                             uint16_t port) {
  EgressDecision d;
  if (!rules.allowed_ports.empty() &&
      std::find(rules.allowed_ports.begin(), rules.allowed_ports.end(), port) == rules.allowed_ports.end()) {
    d.reason = "port " + std::to_string(port) + " is not allowed";
    return d;
  }
  const bool private_ok = contains(rules.private_destinations, host);
  if (auto literal = parse_ip_literal(host); literal || host_is_numeric_looking(host)) {
    if (!literal || !contains(rules.allowed_domains, host)) {
      d.reason = "IP literal destinations are refused unless listed";
      return d;
    }
    if (is_special_address(*literal) && !private_ok) {
      d.reason = "private/loopback/link-local address " + literal->to_string();
      return d;
    }
    d.allowed = true;
    d.reason = "allowed";
    d.addresses = {*literal};
    return d;
  }
  if (!domain_allowed(rules.allowed_domains, host)) {
    d.reason = "domain not in allowlist";
    return d;
  }
  std::vector<IpAddress> addresses = resolver ? resolver(host) : std::vector<IpAddress>{};
  if (addresses.empty()) {
    d.reason = "name does not resolve";
    return d;
  }
  for (const auto& a : addresses)
    if (is_special_address(a) && !private_ok) {
      d.reason = "resolves to a private/loopback/link-local address " + a.to_string();
      return d;
    }
  d.allowed = true;
  d.reason = "allowed";
  d.addresses = std::move(addresses);
  return d;
}

}  // namespace warden::sandbox
