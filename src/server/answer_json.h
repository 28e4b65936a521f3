#pragma once
// The JSON pieces of OpenAI answers that both routes build: ids, usage and
// llama-server's timings, tool calls, logprobs in the chat and the legacy
// completions forms, and the end of a stream.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "grammar/toolcall.h"
#include "server/scheduler.h"
#include "tokenizer/tokenizer.h"

namespace warden::server {

// A random id for an answer or a tool call: `prefix` and 24 of [0-9a-z]
// ("chatcmpl-...", "call_...").
std::string random_id(const std::string& prefix);

// How an answer ended. `tool_calls_finish`: it holds tool calls the model
// chose to make ("tool_calls"); a call forced by name ends "stop", as
// OpenAI's do (measured by vLLM, github.com/vllm-project/vllm/pull/25054).
const char* finish_name(Finish f, bool tool_calls_finish);

// {"index"?, "id", "type": "function", "function": {"name", "arguments"}}.
nlohmann::ordered_json tool_call_json(const grammar::ToolCall& call, size_t index, bool with_index);

// The usage (OpenAI's) and timings (llama-server's) of a finished answer.
nlohmann::ordered_json usage_json(const JobResult& r);
nlohmann::ordered_json timings_json(const JobResult& r, bool lookup);
void add_usage(nlohmann::ordered_json& body, const JobResult& r, bool lookup);

// One server-sent event: "data: JSON\n\n".
std::string sse(const nlohmann::ordered_json& j);

// A chat choice's logprobs: {"content": [{token, logprob, bytes, top_logprobs}]}.
nlohmann::ordered_json chat_logprobs(const std::vector<TokenLogprob>& entries, const tokenizer::Tokenizer& tok);

// A completion choice's logprobs, the legacy form: parallel lists, each
// token's text_offset the character in the answer's text where it starts,
// counted from `offset`, which moves past the tokens.
nlohmann::ordered_json completion_logprobs(const std::vector<TokenLogprob>& entries, const tokenizer::Tokenizer& tok,
                                           size_t& offset);

// The end of a stream: the finish_reason chunk `last`, with the usage and
// timings; or, with stream_options.include_usage (as OpenAI sends it), the
// timings there and the usage in one more chunk with no choices, every
// chunk before it having carried "usage": null.
std::string stream_end(nlohmann::ordered_json last, const JobResult& r, bool lookup, bool include_usage);

}  // namespace warden::server
