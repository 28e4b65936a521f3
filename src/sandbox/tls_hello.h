#pragma once
// Reading the server name out of the first bytes of a CONNECT tunnel.
//
// A CONNECT to an allowed name must carry TLS to that name. Otherwise the
// tunnel is a free channel to whatever else the allowed address serves: a
// plain-HTTP request with another Host, or a TLS ClientHello whose SNI names
// another site on the same shared front end (a CDN serves the site the SNI
// names). The proxy reads the client's ClientHello before relaying anything
// and compares its server_name with the CONNECT host. Strict: anything that
// is not a well-formed ClientHello is refused, never guessed at.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace warden::sandbox {

// A ClientHello larger than this is refused (real ones, post-quantum key
// shares included, are 0.5-2 KiB).
inline constexpr size_t kMaxClientHello = 32768;

struct ClientHelloScan {
  enum class Status { need_more, complete, invalid };
  Status status = Status::need_more;
  // complete: the bytes of the TLS records that carried the ClientHello.
  size_t length = 0;
  // complete: the host_name of the server_name extension, lower case, no
  // trailing dot; nullopt when the hello has no server_name.
  std::optional<std::string> server_name;
  std::string error;  // invalid: what is wrong
};

// Scans the bytes a client sent so far. need_more: the hello is not complete
// yet (call again with more bytes); complete or invalid: final.
ClientHelloScan scan_client_hello(std::string_view bytes);

}  // namespace warden::sandbox
