// Fuzzes the OpenAI request parsing of `warden serve`: any body must either
// parse into a request or raise ApiError with a 4xx status -- never crash,
// never another exception.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "server/api.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using warden::server::ApiError;
  const std::string body(reinterpret_cast<const char*>(data), size);
  for (int endpoint = 0; endpoint < 2; ++endpoint) {
    try {
      auto json = warden::server::parse_body(body);
      if (endpoint == 0) warden::server::parse_chat_request(json);
      else warden::server::parse_completion_request(json);
    } catch (const ApiError& e) {
      if (e.status < 400 || e.status > 499) std::abort();
    }
  }
  return 0;
}
