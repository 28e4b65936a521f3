#include "server/http_client.h"

namespace warden::test {

ApiClient::ApiClient(int port, std::string api_key) : port_(port), api_key_(std::move(api_key)) {}

httplib::Headers ApiClient::headers() const {
  httplib::Headers h;
  if (!api_key_.empty()) h.emplace("Authorization", "Bearer " + api_key_);
  return h;
}

HttpReply ApiClient::get(const std::string& path) {
  httplib::Client cli("127.0.0.1", port_);
  cli.set_read_timeout(300, 0);
  auto res = cli.Get(path.c_str(), headers());
  if (!res) return {};
  return {res->status, res->body};
}

HttpReply ApiClient::post(const std::string& path, const std::string& body) {
  httplib::Client cli("127.0.0.1", port_);
  cli.set_read_timeout(300, 0);
  auto res = cli.Post(path.c_str(), headers(), body, "application/json");
  if (!res) return {};
  return {res->status, res->body};
}

HttpReply ApiClient::post_streaming(const std::string& path, const nlohmann::json& body,
                                    const std::function<bool(const std::string&)>& on_data) {
  httplib::Client cli("127.0.0.1", port_);
  cli.set_read_timeout(300, 0);
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.headers = headers();
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  std::string all;
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    std::string piece(data, n);
    all += piece;
    return on_data(piece);
  };
  auto res = cli.send(req);
  if (!res) return {0, all.empty() ? "connection error: " + httplib::to_string(res.error()) : all};
  return {res->status, all.empty() ? res->body : all};
}

std::vector<std::string> sse_events(const std::string& body) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < body.size()) {
    size_t end = body.find("\n\n", pos);
    if (end == std::string::npos) break;
    std::string event = body.substr(pos, end - pos);
    if (event.rfind("data: ", 0) == 0) out.push_back(event.substr(6));
    pos = end + 2;
  }
  return out;
}

}  // namespace warden::test
