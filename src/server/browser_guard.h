#pragma once
// What keeps web pages in the user's browser away from `warden serve` on
// loopback. A page cannot read a cross-site answer, but it can send a
// request (a "simple" POST needs no preflight), and after DNS rebinding --
// a name the attacker controls, re-resolved to 127.0.0.1 -- it can read
// the answers too. Browsers say both: the page's origin in Origin, the
// name it used in Host.
#include <string>
#include <string_view>

namespace warden::server {

// Host header: IP literals and localhost names cannot be rebound; any other
// name is accepted only when the server requires an API key (a page does
// not have it). An absent Host (HTTP/1.0 tools) is accepted.
bool host_header_allowed(std::string_view host, bool api_key_required);

// Origin header: absent (not a browser, or a same-origin GET), or a page
// served from this machine's loopback (http or https, localhost, 127.x.x.x
// or [::1], any port). "null" and every other origin are refused. (Checked
// only when no API key is required: a page does not have the key.)
bool origin_header_allowed(std::string_view origin, bool present);

}  // namespace warden::server
