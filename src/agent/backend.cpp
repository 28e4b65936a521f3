#include "agent/backend.h"

#include <curl/curl.h>

#include <algorithm>
#include <initializer_list>
#include <memory>

#include "util/error.h"
#include "util/json_nesting.h"

namespace warden::agent {
namespace {

struct ResponseBuffer {
  std::string body;
  size_t limit = 0;
  bool overflow = false;
};

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* buf = static_cast<ResponseBuffer*>(user);
  const size_t bytes = size * n;
  if (buf->body.size() + bytes > buf->limit) {
    buf->overflow = true;
    return 0;  // aborts the transfer
  }
  buf->body.append(data, bytes);
  return bytes;
}

// Token counts are taken up to this: far beyond any context, and small
// enough that sums and products of two counts stay exact in a long long.
constexpr long long kMaxCount = 1LL << 40;

// The number right after `marker` in `text`, or -1.
long long number_after(const std::string& text, const std::string& marker) {
  const size_t at = text.find(marker);
  if (at == std::string::npos) return -1;
  long long n = -1;
  for (size_t i = at + marker.size(); i < text.size() && text[i] >= '0' && text[i] <= '9' && n < kMaxCount; ++i)
    n = (n < 0 ? 0 : n * 10) + (text[i] - '0');
  return std::min(n, kMaxCount);
}

// The first of `markers` that a number follows in `text`, or -1.
long long number_after_any(const std::string& text, std::initializer_list<const char*> markers) {
  for (const char* marker : markers)
    if (const long long n = number_after(text, marker); n >= 0) return n;
  return -1;
}

long long count_field(const nlohmann::json& error, const char* name) {
  const auto it = error.find(name);
  if (it == error.end() || !it->is_number_integer() || it->get<long long>() < 0) return -1;
  return std::min(it->get<long long>(), kMaxCount);
}

nlohmann::json parse_bounded(const std::string& body) {
  if (json_nests_deeper_than(body))
    throw Error("backend response nests arrays and objects more than " + std::to_string(kMaxJsonNesting) +
                " levels deep");
  return nlohmann::json::parse(body, nullptr, false);
}

// The error object of an error answer: {"error": {...}}, or vLLM's older
// top-level {"object": "error", "message": ...}; null otherwise.
const nlohmann::json* error_object(const nlohmann::json& j) {
  if (!j.is_object()) return nullptr;
  const auto error = j.find("error");
  if (error != j.end()) return error->is_object() ? &*error : nullptr;
  const auto object = j.find("object");
  return object != j.end() && *object == "error" ? &j : nullptr;
}

void throw_if_overflow(const nlohmann::json& j, const std::string& where) {
  const nlohmann::json* error = error_object(j);
  if (!error) return;
  const auto& e = *error;
  const auto text = [&](const char* name) {
    return e.contains(name) && e[name].is_string() ? e[name].get<std::string>() : std::string();
  };
  const std::string message = text("message");
  if (text("code") != "context_length_exceeded" && text("type") != "exceed_context_size_error" &&
      message.find("maximum context length") == std::string::npos &&
      message.find("maximum model length") == std::string::npos)
    return;
  // llama-server and warden serve give the counts as fields; OpenAI and
  // vLLM only in the message, worded as their versions word it ("maximum
  // context length is 4096 tokens. However, you requested 5000 tokens (4900
  // in the messages, ...)", "... your request has 5000 input tokens", "...
  // your prompt contains at least 5000 input tokens", "The decoder prompt
  // (length 5000) is longer than the maximum model length of 4096").
  long long prompt = count_field(e, "n_prompt_tokens");
  long long context = count_field(e, "n_ctx");
  if (context < 0) context = number_after_any(message, {"maximum context length is ", "maximum model length of "});
  if (prompt < 0)
    prompt = number_after_any(message, {"resulted in ", "request has ", "contains at least ", "(length ", "tokens ("});
  std::string counts;
  if (prompt >= 0 && context >= 0)
    counts = " (" + std::to_string(prompt) + " tokens; the context holds " + std::to_string(context) + ")";
  throw ContextOverflow(where + ": the conversation does not fit the model's context" + counts, prompt, context);
}

std::string arguments_text(const nlohmann::json& args) {
  if (args.is_string()) return args.get<std::string>();
  if (args.is_object()) return args.dump();  // some servers send an object
  if (args.is_null()) return "{}";
  throw Error("backend response: tool call arguments are neither a string nor an object");
}

}  // namespace

void throw_if_context_overflow(const std::string& body, const std::string& where) {
  throw_if_overflow(parse_bounded(body), where);
}

AssistantTurn parse_chat_completion(const std::string& body) {
  nlohmann::json j = parse_bounded(body);
  if (j.is_discarded() || !j.is_object()) throw Error("backend response is not a JSON object");
  throw_if_overflow(j, "backend");
  if (j.contains("error")) {
    const auto& e = j["error"];
    std::string msg = e.is_object() && e.contains("message") && e["message"].is_string() ? e["message"].get<std::string>()
                                                                                        : e.dump();
    throw Error("backend error: " + msg);
  }
  if (!j.contains("choices") || !j["choices"].is_array() || j["choices"].empty())
    throw Error("backend response has no choices");
  const auto& choice = j["choices"][0];
  if (!choice.is_object() || !choice.contains("message") || !choice["message"].is_object())
    throw Error("backend response choice has no message");
  const auto& msg = choice["message"];
  AssistantTurn turn;
  if (choice.contains("finish_reason") && choice["finish_reason"].is_string())
    turn.finish_reason = choice["finish_reason"].get<std::string>();
  if (j.contains("usage") && j["usage"].is_object()) {
    turn.prompt_tokens = count_field(j["usage"], "prompt_tokens");
    turn.completion_tokens = count_field(j["usage"], "completion_tokens");
  }
  if (msg.contains("content") && msg["content"].is_string()) turn.content = msg["content"].get<std::string>();
  if (msg.contains("tool_calls") && msg["tool_calls"].is_array()) {
    int index = 0;
    for (const auto& tc : msg["tool_calls"]) {
      if (!tc.is_object() || !tc.contains("function") || !tc["function"].is_object())
        throw Error("backend response: a tool call has no function");
      const auto& fn = tc["function"];
      if (!fn.contains("name") || !fn["name"].is_string()) throw Error("backend response: a tool call has no name");
      ToolCall call;
      call.name = fn["name"].get<std::string>();
      call.arguments = arguments_text(fn.contains("arguments") ? fn["arguments"] : nlohmann::json());
      call.id = tc.contains("id") && tc["id"].is_string() ? tc["id"].get<std::string>()
                                                          : "call_" + std::to_string(index);
      turn.tool_calls.push_back(std::move(call));
      ++index;
    }
  }
  return turn;
}

OpenAIBackend::OpenAIBackend(OpenAIBackendConfig config) : config_(std::move(config)) {
  if (config_.base_url.rfind("http://", 0) != 0 && config_.base_url.rfind("https://", 0) != 0)
    throw Error("--backend " + config_.base_url + ": expected an http:// or https:// URL");
  while (!config_.base_url.empty() && config_.base_url.back() == '/') config_.base_url.pop_back();
  curl_global_init(CURL_GLOBAL_DEFAULT);
}

std::string OpenAIBackend::api_url(const std::string& route) const {
  const std::string& b = config_.base_url;
  if (b.size() >= 3 && b.compare(b.size() - 3, 3, "/v1") == 0) return b + route;
  return b + "/v1" + route;
}

std::string OpenAIBackend::endpoint() const { return api_url("/chat/completions"); }

std::string OpenAIBackend::describe() const {
  return endpoint() + (config_.model.empty() ? "" : " model " + config_.model);
}

// One request to the backend: a POST of `payload`, or a GET when it is
// null. Returns the body of a 200 answer; throws ContextOverflow or Error.
std::string OpenAIBackend::fetch(const std::string& url, const std::string* payload, long timeout_seconds) const {
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) throw Error("backend: cannot initialize libcurl");
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  if (!config_.api_key.empty()) headers = curl_slist_append(headers, ("Authorization: Bearer " + config_.api_key).c_str());
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> header_guard(headers, curl_slist_free_all);
  ResponseBuffer buf;
  buf.limit = config_.max_response_bytes;
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  if (payload) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload->c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(payload->size()));
  }
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &buf);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout_seconds);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  const CURLcode rc = curl_easy_perform(c);
  if (buf.overflow) throw Error("backend " + url + ": response larger than " + std::to_string(buf.limit) + " bytes");
  if (rc != CURLE_OK) throw Error("backend " + url + ": " + curl_easy_strerror(rc));
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (status != 200) {
    try {
      throw_if_context_overflow(buf.body, "backend " + url);
    } catch (const ContextOverflow&) {
      throw;
    } catch (const Error&) {  // an error body that is no JSON we read: the status says enough
    }
    std::string snippet = buf.body.substr(0, 300);
    throw Error("backend " + url + ": HTTP " + std::to_string(status) + (snippet.empty() ? "" : ": " + snippet));
  }
  return std::move(buf.body);
}

AssistantTurn OpenAIBackend::complete(const nlohmann::json& messages, const nlohmann::json& tools) {
  nlohmann::json req{{"messages", messages}, {"stream", false}};
  if (!config_.model.empty()) req["model"] = config_.model;
  if (!tools.empty()) {
    req["tools"] = tools;
    req["tool_choice"] = "auto";
  }
  const std::string payload = req.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return parse_chat_completion(fetch(endpoint(), &payload, config_.timeout_seconds));
}

long long OpenAIBackend::context_size() {
  if (!context_size_) {
    context_size_ = -1;
    try {
      // A question on the side: a server that does not answer it soon is
      // one whose context is not known.
      context_size_ = parse_context_size(fetch(api_url("/models"), nullptr, std::min(config_.timeout_seconds, 10L)));
    } catch (const Error&) {  // a server without the route, or that answers something else: not known
    }
  }
  return *context_size_;
}

long long parse_context_size(const std::string& body) {
  const nlohmann::json j = parse_bounded(body);
  if (!j.is_object() || !j.contains("data") || !j["data"].is_array() || j["data"].empty() || !j["data"][0].is_object())
    return -1;
  const nlohmann::json& model = j["data"][0];
  if (model.contains("meta") && model["meta"].is_object()) {
    const long long n = count_field(model["meta"], "n_ctx");
    if (n > 0) return n;
  }
  const long long n = count_field(model, "max_model_len");
  return n > 0 ? n : -1;
}

}  // namespace warden::agent
