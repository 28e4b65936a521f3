#pragma once
// The OpenAI wire format: validating request bodies into typed requests, and
// the error objects every failure is answered with. No engine here: this is
// the part that parses untrusted input, kept separate so it can be tested and
// fuzzed on its own.
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sample/sampler.h"

namespace warden::server {

// An error answered as {"error": {"message", "type", "param", "code"}}.
class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string message, std::string type, std::string param = "", std::string code = "")
      : std::runtime_error(message), status(status), type(std::move(type)), param(std::move(param)),
        code(std::move(code)) {}
  int status;
  std::string type;   // invalid_request_error (OpenAI uses it for 401 and 404 too), server_error, ...
  std::string param;  // the offending field ("" = null)
  std::string code;   // machine-readable code ("" = null)
  // More fields of the error object, e.g. llama-server's n_prompt_tokens
  // and n_ctx beside context_length_exceeded, which agents read to trim.
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();
};

ApiError bad_request(const std::string& message, const std::string& param = "", const std::string& code = "");
nlohmann::ordered_json error_body(const ApiError& e);

// The most JSON values (objects, arrays, strings, numbers, true/false/null)
// one request body may hold. Why: a value costs far more memory than its
// text. "{}," is 3 bytes of body but some 270 bytes once parsed, copied
// (parse_messages, PromptBuilder::render) and made a template Value: a 4 MB
// body of empty objects in an unknown message field raised warden serve's
// peak RSS by 375 MB. With the cap, a request costs a few times its body
// (strings are copied a few times: a 4 MB string, about 19 MB) plus at most
// about 30 MB for its values, however the body is built. Tool call
// arguments, JSON text inside a string, get a budget of kMaxJsonValues of
// their own (parse_chat_request). Every field, known or not, counts the
// same, so there is no separate rule for unknown message fields: they are
// kept, since templates read some (reasoning_content, thinking, name, ...).
constexpr size_t kMaxJsonValues = 100000;

// Parses a request body; malformed JSON, a non-object or more than
// kMaxJsonValues values is a 400.
nlohmann::ordered_json parse_body(const std::string& body);

// The most alternatives a token's logprobs may list (OpenAI's bound).
constexpr int kMaxTopLogprobs = 20;

// Fields shared by /v1/chat/completions and /v1/completions.
struct CommonParams {
  std::string model;  // "" when the client did not name one
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  int64_t max_tokens = -1;     // -1: until the end or a full context
  std::vector<std::string> stop;
  sample::SamplerParams sampling;  // logit_bias ids not yet checked against the vocabulary
  bool ignore_eos = false;  // llama.cpp extension, for benchmarks
  // -1: no logprobs; else each generated token's, with this many of the
  // most likely tokens beside it (chat: logprobs + top_logprobs;
  // completions: logprobs N).
  int top_logprobs = -1;
};

enum class ToolChoice { Auto, None, Required, Named };
enum class ResponseFormat { Text, JsonObject, JsonSchema };

struct ChatRequest {
  CommonParams common;
  nlohmann::ordered_json messages;        // validated array of message objects
  nlohmann::ordered_json tools = nullptr;  // null or an array of function tools
  ToolChoice tool_choice = ToolChoice::Auto;
  std::string tool_name;                   // ToolChoice::Named
  bool parallel_tool_calls = true;  // OpenAI's default
  ResponseFormat response_format = ResponseFormat::Text;
  nlohmann::ordered_json json_schema;      // ResponseFormat::JsonSchema
  nlohmann::ordered_json template_kwargs = nlohmann::ordered_json::object();  // chat_template_kwargs
};

struct CompletionRequest {
  CommonParams common;
  std::string prompt;                  // text, or
  std::vector<int64_t> prompt_tokens;  // token ids (unchecked against the vocabulary)
  bool echo = false;                   // the answer starts with the prompt's text
};

// /v1/completions generates at most this many tokens unless max_tokens says
// otherwise (OpenAI's default for it, and vLLM's).
constexpr int64_t kDefaultCompletionTokens = 16;

// What a request's sampling fields default to: llama-server's defaults
// (sample::SamplerParams: every penalty over the last 64 tokens, prompt
// included, as llama-server counts them), or what `warden serve`'s flags
// and the model file set.
struct SamplingDefaults {
  sample::SamplerParams params;
  bool fixed_seed = false;  // --seed N given: a request without a seed uses params.seed, else a random one
};

// Throw ApiError (400) naming the first field that is missing, of the wrong
// type or out of range.
ChatRequest parse_chat_request(const nlohmann::ordered_json& body, const SamplingDefaults& defaults = {});
CompletionRequest parse_completion_request(const nlohmann::ordered_json& body, const SamplingDefaults& defaults = {});

}  // namespace warden::server
