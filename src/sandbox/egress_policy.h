#pragma once
// What the egress proxy lets through: allowlisted names (exact or "*.suffix"),
// never an IP literal or a private/loopback/link-local/ULA/multicast address
// (also after resolution) unless that destination is explicitly listed as
// private-ok, and only allowed ports. The resolver is injectable so tests can
// map their own test names to loopback servers.
#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace warden::sandbox {

struct IpAddress {
  bool v6 = false;
  std::array<uint8_t, 16> bytes{};  // v4 uses the first 4
  std::string to_string() const;
  bool operator==(const IpAddress& o) const { return v6 == o.v6 && bytes == o.bytes; }
};

// Any textual form the C library would take as an address ("127.1",
// "0x7f000001", "::1", ...). nullopt for names.
std::optional<IpAddress> parse_ip_literal(const std::string& host);

// Loopback, private (RFC 1918, ULA), link-local, CGNAT, multicast,
// unspecified, broadcast, reserved/documentation ranges, and IPv6 forms that
// embed such an IPv4 address (mapped, NAT64, 6to4) or tunnel (Teredo).
bool is_special_address(const IpAddress& a);

// Resolves a host name to addresses; empty when it does not resolve.
using Resolver = std::function<std::vector<IpAddress>(const std::string& host)>;
Resolver system_resolver();

struct EgressRules {
  std::vector<std::string> allowed_domains;       // "example.com" or "*.example.com"
  std::vector<std::string> private_destinations;  // exact names / IP literals allowed to be special
  std::vector<uint16_t> allowed_ports{80, 443};   // empty = any port
};

struct EgressDecision {
  bool allowed = false;
  std::string reason;               // why not, or "allowed"
  std::vector<IpAddress> addresses; // where to connect when allowed
};

// Checks the rules' syntax; throws warden::Error naming a bad entry.
void validate_rules(const EgressRules& rules);

// Decides for one destination (`host` already normalised). Resolves through
// `resolver` only once the name itself is allowed.
EgressDecision decide_egress(const EgressRules& rules, const Resolver& resolver, const std::string& host,
                             uint16_t port);

// True when `host` matches one allowlist entry.
bool domain_allowed(const std::vector<std::string>& allowed, const std::string& host);

}  // namespace warden::sandbox
