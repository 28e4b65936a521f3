// Fuzzes the egress proxy's request-head parsing and the policy decision on
// whatever it yields: no crash, no undefined behaviour, and a parsed request
// always names a normalised host and a non-zero port.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "sandbox/egress_policy.h"
#include "sandbox/proxy_request.h"

using namespace warden::sandbox;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  size_t head = request_head_length(input);
  std::string error;
  auto request = parse_proxy_request(head ? input.substr(0, head) : input, error);
  if (!request) {
    if (error.empty()) std::abort();
    return 0;
  }
  if (request->port == 0 || request->host.empty()) std::abort();
  if (!request->is_connect && (request->origin_form.empty() || request->origin_form[0] != '/')) std::abort();
  // The decision must never resolve a name that is not allowlisted.
  static const EgressRules rules{{"allowed.test", "*.wild.test"}, {"allowed.test"}, {}};
  bool resolved_unlisted = false;
  Resolver resolver = [&](const std::string& host) {
    if (!domain_allowed(rules.allowed_domains, host)) resolved_unlisted = true;
    return std::vector<IpAddress>{};
  };
  decide_egress(rules, resolver, request->host, request->port);
  if (resolved_unlisted) std::abort();
  return 0;
}
