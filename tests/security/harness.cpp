#include "harness.h"

#include <chrono>

namespace warden::test {

LoopbackServer::LoopbackServer() {
  port_ = server_.bind_to_any_port("127.0.0.1");
  if (port_ <= 0) throw std::runtime_error("cannot bind a loopback port");
}

void LoopbackServer::start() {
  thread_ = std::thread([this] { server_.listen_after_bind(); });
  while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(2));
}

LoopbackServer::~LoopbackServer() {
  server_.stop();
  if (thread_.joinable()) thread_.join();
}

std::string RecordedRequest::describe() const { return method + " " + host + " " + target + " body=" + body; }

SinkServer::SinkServer() {
  auto handler = [this](const httplib::Request& req, httplib::Response& res) {
    RecordedRequest r;
    r.method = req.method;
    r.host = req.get_header_value("Host");
    r.target = req.target;
    r.body = req.body;
    for (const auto& [k, v] : req.headers) r.headers.emplace_back(k, v);
    std::string body = "ok";
    {
      std::lock_guard<std::mutex> lock(mutex_);
      requests_.push_back(r);
      for (const auto& [path, page] : pages_)
        if (path == req.target) body = page;
    }
    res.set_content(body, "text/html");
  };
  http_.server().Get(".*", handler);
  http_.server().Post(".*", handler);
  http_.server().Put(".*", handler);
  http_.start();
}

std::vector<RecordedRequest> SinkServer::requests() {
  std::lock_guard<std::mutex> lock(mutex_);
  return requests_;
}

ScriptedModel::ScriptedModel(std::vector<nlohmann::json> turns) : turns_(std::move(turns)) {
  http_.server().Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
    nlohmann::json message;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      requests_.push_back(nlohmann::json::parse(req.body, nullptr, false));
      if (next_ < turns_.size()) message = turns_[next_++];
      else message = {{"content", "I am done."}};
    }
    nlohmann::json msg{{"role", "assistant"}, {"content", message.value("content", "")}};
    if (message.contains("tool_calls")) {
      msg["tool_calls"] = nlohmann::json::array();
      int i = 0;
      for (const auto& tc : message["tool_calls"]) {
        const auto& args = tc.at("arguments");
        msg["tool_calls"].push_back({{"id", "call_" + std::to_string(next_) + "_" + std::to_string(i++)},
                                     {"type", "function"},
                                     {"function",
                                      {{"name", tc.at("name")},
                                       {"arguments", args.is_string() ? args.get<std::string>() : args.dump()}}}});
      }
    }
    nlohmann::json body{{"id", "chatcmpl-test"},
                        {"object", "chat.completion"},
                        {"model", "scripted"},
                        {"choices", {{{"index", 0}, {"message", msg}, {"finish_reason", "stop"}}}}};
    res.set_content(body.dump(), "application/json");
  });
  http_.start();
}

std::vector<nlohmann::json> ScriptedModel::requests() {
  std::lock_guard<std::mutex> lock(mutex_);
  return requests_;
}

std::vector<std::string> ScriptedModel::tool_results() {
  std::vector<std::string> out;
  auto reqs = requests();
  if (reqs.empty()) return out;
  const auto& last = reqs.back();  // the last request holds the whole conversation
  if (!last.is_object() || !last.contains("messages")) return out;
  for (const auto& m : last["messages"])
    if (m.value("role", "") == "tool") out.push_back(m.value("content", ""));
  return out;
}

nlohmann::json tool_turn(const std::string& name, const nlohmann::json& arguments, const std::string& content) {
  return {{"content", content}, {"tool_calls", {{{"name", name}, {"arguments", arguments}}}}};
}

nlohmann::json substitute(const nlohmann::json& j, const std::vector<std::pair<std::string, std::string>>& vars) {
  if (j.is_string()) {
    std::string s = j.get<std::string>();
    for (const auto& [k, v] : vars) {
      const std::string key = "{" + k + "}";
      for (size_t at = s.find(key); at != std::string::npos; at = s.find(key, at + v.size())) s.replace(at, key.size(), v);
    }
    return s;
  }
  if (j.is_array()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& e : j) out.push_back(substitute(e, vars));
    return out;
  }
  if (j.is_object()) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [k, v] : j.items()) out[k] = substitute(v, vars);
    return out;
  }
  return j;
}

}  // namespace warden::test
