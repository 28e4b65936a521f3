#include "server/answer_json.h"

#include <cstdio>
#include <mutex>
#include <random>
#include <utility>

#include "sample/sampler.h"
#include "util/display.h"

namespace warden::server {

using json = nlohmann::ordered_json;

std::string random_id(const std::string& prefix) {
  static std::mutex mutex;
  static std::mt19937_64 rng(sample::random_seed());
  static const char* digits = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::lock_guard lock(mutex);
  std::string id = prefix;
  for (int i = 0; i < 24; ++i) id += digits[rng() % 36];
  return id;
}

namespace {

// A token as OpenAI's logprobs show it: its text (a piece holding part of a
// character shows U+FFFD there, as JSON text must be UTF-8) and its bytes.
json token_json(int32_t token, float logprob, const tokenizer::Tokenizer& tok) {
  const std::string piece = tok.token_to_piece(token, false);
  json bytes = json::array();
  for (unsigned char b : piece) bytes.push_back(int(b));
  return {{"token", display::utf8_or_replacement(piece)}, {"logprob", logprob}, {"bytes", std::move(bytes)}};
}

// A token's text in the legacy completions form, where texts are keys: a
// piece that is not valid UTF-8 (part of a character) is written
// "bytes:\xNN..." as OpenAI writes it, so byte tokens do not share a key.
std::string legacy_token_text(int32_t token, const tokenizer::Tokenizer& tok) {
  const std::string piece = tok.token_to_piece(token, false);
  if (display::utf8_or_replacement(piece) == piece) return piece;
  std::string text = "bytes:";
  char hex[5];
  for (unsigned char b : piece) {
    std::snprintf(hex, sizeof hex, "\\x%02x", b);
    text += hex;
  }
  return text;
}

}  // namespace

const char* finish_name(Finish f, bool tool_calls_finish) {
  switch (f) {
    case Finish::Length: return "length";
    case Finish::Stop: return tool_calls_finish ? "tool_calls" : "stop";
    default: return "stop";
  }
}

json tool_call_json(const grammar::ToolCall& call, size_t index, bool with_index) {
  json j = json::object();
  if (with_index) j["index"] = index;
  j["id"] = call.id.empty() ? random_id("call_") : call.id;
  j["type"] = "function";
  j["function"] = {{"name", call.name}, {"arguments", call.arguments}};
  return j;
}

json usage_json(const JobResult& r) {
  return {{"prompt_tokens", r.prompt_tokens},
          {"completion_tokens", r.completion_tokens},
          {"total_tokens", r.prompt_tokens + r.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", r.cached_prompt_tokens}}}};
}

json timings_json(const JobResult& r, bool lookup) {
  auto per_second = [](int64_t n, double ms) { return ms > 0 ? 1e3 * double(n) / ms : 0.0; };
  auto per_token = [](int64_t n, double ms) { return n > 0 ? ms / double(n) : 0.0; };
  const int64_t prompt_n = r.prompt_tokens - r.cached_prompt_tokens;
  json t = {{"cache_n", r.cached_prompt_tokens},
            {"prompt_n", prompt_n},
            {"prompt_ms", r.prompt_ms},
            {"prompt_per_token_ms", per_token(prompt_n, r.prompt_ms)},
            {"prompt_per_second", per_second(prompt_n, r.prompt_ms)},
            {"predicted_n", r.completion_tokens},
            {"predicted_ms", r.predicted_ms},
            {"predicted_per_token_ms", per_token(r.completion_tokens, r.predicted_ms)},
            {"predicted_per_second", per_second(r.completion_tokens, r.predicted_ms)}};
  if (lookup) {
    t["draft_n"] = r.draft_tokens;
    t["draft_n_accepted"] = r.draft_accepted;
  }
  return t;
}

void add_usage(json& body, const JobResult& r, bool lookup) {
  body["usage"] = usage_json(r);
  body["timings"] = timings_json(r, lookup);
}

std::string sse(const json& j) { return "data: " + j.dump() + "\n\n"; }

json chat_logprobs(const std::vector<TokenLogprob>& entries, const tokenizer::Tokenizer& tok) {
  json content = json::array();
  for (const auto& e : entries) {
    json j = token_json(e.token, e.logprob, tok);
    j["top_logprobs"] = json::array();
    for (const auto& [token, logprob] : e.top) j["top_logprobs"].push_back(token_json(token, logprob, tok));
    content.push_back(std::move(j));
  }
  return {{"content", std::move(content)}, {"refusal", nullptr}};
}

json completion_logprobs(const std::vector<TokenLogprob>& entries, const tokenizer::Tokenizer& tok, size_t& offset) {
  json tokens = json::array(), logprobs = json::array(), top = json::array(), offsets = json::array();
  for (const auto& e : entries) {
    tokens.push_back(legacy_token_text(e.token, tok));
    logprobs.push_back(e.logprob);
    json alternatives = json::object();
    for (const auto& [token, logprob] : e.top) alternatives.emplace(legacy_token_text(token, tok), logprob);
    top.push_back(std::move(alternatives));
    offsets.push_back(offset);
    offset += e.text_chars;
  }
  return {{"tokens", std::move(tokens)}, {"token_logprobs", std::move(logprobs)}, {"top_logprobs", std::move(top)},
          {"text_offset", std::move(offsets)}};
}

std::string stream_end(json last, const JobResult& r, bool lookup, bool include_usage) {
  if (!include_usage) {
    add_usage(last, r, lookup);
    return sse(last);
  }
  json usage = last;
  usage["choices"] = json::array();
  usage["usage"] = usage_json(r);
  last["timings"] = timings_json(r, lookup);
  return sse(last) + sse(usage);
}

}  // namespace warden::server
