#pragma once
// The model side of the agent: anything that turns a conversation plus tool
// schemas into one assistant turn. The only implementation speaks the
// OpenAI-compatible /v1/chat/completions API (llama-server, vLLM, ollama,
// `warden serve`); the embedded engine is reached by running `warden serve`
// as a child process (see cmd_run.cpp), which also keeps the model's parser
// and weights out of the agent's address space.
//
// Everything a backend returns is untrusted: the agent validates it.
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "util/error.h"

namespace warden::agent {

struct ToolCall {
  std::string id;
  std::string name;
  std::string arguments;  // raw JSON text as the model produced it
};

struct AssistantTurn {
  std::string content;
  std::vector<ToolCall> tool_calls;
  std::string finish_reason;  // as the backend said ("stop", "length", "tool_calls", ...; "" if it did not)
  long long prompt_tokens = -1;      // from "usage"; -1 where the backend gave none
  long long completion_tokens = -1;
};

// The backend refused the conversation because it does not fit the model's
// context: OpenAI's and warden serve's code "context_length_exceeded",
// llama-server's type "exceed_context_size_error", vLLM's "maximum context
// length" and "maximum model length" messages. The token counts are -1 where the answer did not give them.
class ContextOverflow : public Error {
 public:
  ContextOverflow(const std::string& what, long long prompt_tokens, long long context_tokens)
      : Error(what), prompt_tokens(prompt_tokens), context_tokens(context_tokens) {}
  long long prompt_tokens;
  long long context_tokens;
};

class ModelBackend {
 public:
  virtual ~ModelBackend() = default;
  // Throws warden::Error when the backend cannot be reached or answers
  // something that is not a chat completion, ContextOverflow when it says
  // the conversation is too long for the model.
  virtual AssistantTurn complete(const nlohmann::json& messages, const nlohmann::json& tools) = 0;
  virtual std::string describe() const = 0;  // for the audit log
  // Tokens of context one conversation may take, where the backend says
  // (warden serve's /v1/models meta.n_ctx, vLLM's max_model_len); -1 where
  // it does not. Untrusted like the rest: the agent only uses it to decide
  // whether to shorten the conversation.
  virtual long long context_size() { return -1; }
};

struct OpenAIBackendConfig {
  std::string base_url;  // "http://127.0.0.1:8080" (a trailing /v1 is accepted)
  std::string model;     // empty: the server's default
  std::string api_key;   // empty: no Authorization header
  long timeout_seconds = 600;
  size_t max_response_bytes = 8u << 20;
};

class OpenAIBackend : public ModelBackend {
 public:
  explicit OpenAIBackend(OpenAIBackendConfig config);
  AssistantTurn complete(const nlohmann::json& messages, const nlohmann::json& tools) override;
  std::string describe() const override;
  long long context_size() override;  // asked once, from GET /v1/models

 private:
  std::string api_url(const std::string& route) const;  // route: "/chat/completions", "/models"
  std::string endpoint() const;
  std::string fetch(const std::string& url, const std::string* payload, long timeout_seconds) const;
  OpenAIBackendConfig config_;
  std::optional<long long> context_size_;
};

// Parses one /v1/chat/completions response body. Throws warden::Error naming
// what is missing, ContextOverflow for a context-length error. Exposed for
// tests.
AssistantTurn parse_chat_completion(const std::string& body);

// The context size a /v1/models answer gives (see context_size), or -1.
// Exposed for tests.
long long parse_context_size(const std::string& body);

// Throws ContextOverflow if an error body says the conversation does not fit
// the model's context; returns otherwise. Exposed for tests.
void throw_if_context_overflow(const std::string& body, const std::string& where);

}  // namespace warden::agent
