#include "sandbox/egress_policy.h"

#include <gtest/gtest.h>

#include <map>

#include "util/error.h"

namespace warden::sandbox {
namespace {

IpAddress ip(const std::string& s) {
  auto a = parse_ip_literal(s);
  EXPECT_TRUE(a) << s;
  return a.value_or(IpAddress{});
}

Resolver fixed(std::map<std::string, std::string> table) {
  return [table](const std::string& host) {
    std::vector<IpAddress> out;
    if (auto it = table.find(host); it != table.end()) out.push_back(*parse_ip_literal(it->second));
    return out;
  };
}

TEST(EgressPolicy, SpecialAddresses) {
  for (const char* s : {"127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
                        "0.0.0.0", "224.0.0.1", "255.255.255.255", "::1", "::", "fe80::1", "fc00::1", "fd12::1",
                        "ff02::1", "::ffff:127.0.0.1", "64:ff9b::a00:1", "2002:7f00:1::"})
    EXPECT_TRUE(is_special_address(ip(s))) << s;
  for (const char* s : {"93.184.216.34", "1.1.1.1", "2606:2800:220:1:248:1893:25c8:1946", "172.32.0.1"})
    EXPECT_FALSE(is_special_address(ip(s))) << s;
}

TEST(EgressPolicy, LiteralsInEveryCLibrarySpelling) {
  EXPECT_TRUE(parse_ip_literal("127.1"));
  EXPECT_TRUE(parse_ip_literal("2130706433"));
  EXPECT_TRUE(parse_ip_literal("0x7f.1"));
  EXPECT_FALSE(parse_ip_literal("example.com"));
}

TEST(EgressPolicy, AllowlistExactAndSuffix) {
  std::vector<std::string> allow{"example.com", "*.pypi.org"};
  EXPECT_TRUE(domain_allowed(allow, "example.com"));
  EXPECT_FALSE(domain_allowed(allow, "www.example.com"));
  EXPECT_FALSE(domain_allowed(allow, "example.com.evil.net"));
  EXPECT_TRUE(domain_allowed(allow, "files.pypi.org"));
  EXPECT_TRUE(domain_allowed(allow, "a.b.pypi.org"));
  EXPECT_FALSE(domain_allowed(allow, "pypi.org"));
  EXPECT_FALSE(domain_allowed(allow, "evilpypi.org"));
}

TEST(EgressPolicy, RejectsBadRules) {
  EXPECT_THROW(validate_rules({{"*"}, {}, {}}), Error);
  EXPECT_THROW(validate_rules({{"Example.com"}, {}, {}}), Error);
  EXPECT_THROW(validate_rules({{"a b"}, {}, {}}), Error);
  EXPECT_NO_THROW(validate_rules({{"example.com", "*.example.org", "93.184.216.34"}, {"allowed.test"}, {}}));
}

TEST(EgressPolicy, Decisions) {
  EgressRules rules{{"public.test", "local.test", "private.test"}, {"private.test"}, {80, 443}};
  Resolver r = fixed({{"public.test", "93.184.216.34"}, {"local.test", "127.0.0.1"},
                      {"private.test", "127.0.0.1"}, {"other.test", "93.184.216.35"}});
  EXPECT_TRUE(decide_egress(rules, r, "public.test", 443).allowed);
  EXPECT_EQ(decide_egress(rules, r, "public.test", 22).reason, "port 22 is not allowed");
  EXPECT_EQ(decide_egress(rules, r, "other.test", 443).reason, "domain not in allowlist");
  // Listed, but resolving to loopback: refused unless listed as private-ok.
  auto local = decide_egress(rules, r, "local.test", 80);
  EXPECT_FALSE(local.allowed);
  EXPECT_NE(local.reason.find("127.0.0.1"), std::string::npos);
  EXPECT_TRUE(decide_egress(rules, r, "private.test", 80).allowed);
  EXPECT_FALSE(decide_egress(rules, r, "127.0.0.1", 80).allowed);
  EXPECT_FALSE(decide_egress(rules, r, "93.184.216.34", 80).allowed);
  EXPECT_FALSE(decide_egress(rules, r, "1.2.3.4.5", 80).allowed);
  EXPECT_EQ(decide_egress(rules, fixed({}), "public.test", 80).reason, "name does not resolve");
}

TEST(EgressPolicy, ListedLiteralIsAllowed) {
  EgressRules rules{{"93.184.216.34", "127.0.0.1", "10.0.0.1"}, {"127.0.0.1"}, {}};
  Resolver none = fixed({});
  EXPECT_TRUE(decide_egress(rules, none, "93.184.216.34", 80).allowed);
  EXPECT_TRUE(decide_egress(rules, none, "127.0.0.1", 80).allowed);
  EXPECT_FALSE(decide_egress(rules, none, "10.0.0.1", 80).allowed);  // private needs the private-ok listing too
  EXPECT_FALSE(decide_egress(rules, none, "93.184.216.35", 80).allowed);
}

}  // namespace
}  // namespace warden::sandbox
