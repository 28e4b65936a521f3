#pragma once
// Small HTTP helpers for the server tests (cpp-httplib client).
#include <httplib.h>

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace warden::test {

struct HttpReply {
  int status = 0;  // 0: no answer (connection failed)
  std::string body;
  nlohmann::json json() const { return nlohmann::json::parse(body); }
};

class ApiClient {
 public:
  ApiClient(int port, std::string api_key = "");
  HttpReply get(const std::string& path);
  HttpReply post(const std::string& path, const std::string& body);
  HttpReply post(const std::string& path, const nlohmann::json& body) { return post(path, body.dump()); }
  // POSTs and hands each received piece of the body to on_data; returning
  // false from it closes the connection (a client that goes away).
  HttpReply post_streaming(const std::string& path, const nlohmann::json& body,
                           const std::function<bool(const std::string&)>& on_data);

 private:
  httplib::Headers headers() const;
  int port_;
  std::string api_key_;
};

// The "data: ..." payloads of an SSE body, in order.
std::vector<std::string> sse_events(const std::string& body);

}  // namespace warden::test
