// Fuzzes the egress proxy's ClientHello scanner (the first bytes of every
// CONNECT tunnel, sent by the jail): no crash, no undefined behaviour, and a
// consistent answer: a complete hello's server name is a normalised host, its
// length lies within the input, and the input cut before that length is not
// yet complete.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "sandbox/proxy_request.h"
#include "sandbox/tls_hello.h"

using namespace warden::sandbox;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  ClientHelloScan scan = scan_client_hello(input);
  switch (scan.status) {
    case ClientHelloScan::Status::invalid:
      if (scan.error.empty()) std::abort();
      break;
    case ClientHelloScan::Status::need_more:
      break;
    case ClientHelloScan::Status::complete: {
      if (scan.length == 0 || scan.length > size) std::abort();
      if (scan.server_name && normalize_host(*scan.server_name) != *scan.server_name) std::abort();
      if (scan_client_hello(input.substr(0, scan.length - 1)).status != ClientHelloScan::Status::need_more)
        std::abort();
      ClientHelloScan again = scan_client_hello(input.substr(0, scan.length));
      if (again.status != scan.status || again.server_name != scan.server_name) std::abort();
      break;
    }
  }
  return 0;
}
