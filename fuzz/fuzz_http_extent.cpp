// Fuzzes how `warden serve`'s gate measures a request before a worker takes
// it (src/server/request_extent.h): whatever the bytes, a head is found
// exactly when the quick search says so, lies within the bytes, and the
// request it measures is no longer than its head and the body limit.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "server/request_extent.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t max_body = size_t(data[0]) << (data[1] % 24);
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 2, size - 2);
  using warden::server::find_head_end;
  const warden::server::RequestExtent extent = warden::server::measure_request(bytes, max_body);
  // The search, in one go and a byte at a time, agrees with the parse.
  const bool found = find_head_end(bytes, 0) == std::string_view::npos;
  size_t from = 0;
  for (size_t have = 1; have <= bytes.size() && from != std::string_view::npos; have++)
    from = find_head_end(bytes.substr(0, have), from);
  if (found != extent.head_complete || found != (from == std::string_view::npos)) std::abort();
  if (extent.head_complete &&
      (extent.head_bytes > bytes.size() || extent.bytes < extent.head_bytes || extent.bytes - extent.head_bytes > max_body))
    std::abort();
  return 0;
}
