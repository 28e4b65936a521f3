// Request validation of the OpenAI wire format, without a model.
#include <gtest/gtest.h>

#include "server/api.h"

namespace warden::server {
namespace {

using json = nlohmann::ordered_json;

json chat(json extra = json::object()) {
  json body = {{"model", "m"}, {"messages", json::array({{{"role", "user"}, {"content", "hi"}}})}};
  for (auto& [k, v] : extra.items()) body[k] = v;
  return body;
}

// The ApiError a body provokes (status 0 when it parses).
ApiError error_of(const json& body) {
  try {
    parse_chat_request(body);
  } catch (const ApiError& e) {
    return e;
  }
  return ApiError(0, "", "");
}

TEST(ServerApi, ParsesAValidRequest) {
  auto r = parse_chat_request(chat({{"temperature", 0.5}, {"top_p", 0.9}, {"max_tokens", 12}, {"stop", "END"},
                                    {"seed", 7}, {"stream", true}, {"presence_penalty", 1.5}}));
  EXPECT_EQ(r.common.model, "m");
  EXPECT_FLOAT_EQ(r.common.sampling.temperature, 0.5f);
  EXPECT_FLOAT_EQ(r.common.sampling.top_p, 0.9f);
  EXPECT_FLOAT_EQ(r.common.sampling.presence_penalty, 1.5f);
  EXPECT_EQ(r.common.max_tokens, 12);
  EXPECT_EQ(r.common.stop, std::vector<std::string>{"END"});
  EXPECT_EQ(r.common.sampling.seed, 7u);
  EXPECT_TRUE(r.common.stream);
  EXPECT_EQ(r.tool_choice, ToolChoice::Auto);
  EXPECT_EQ(r.response_format, ResponseFormat::Text);
}

// What the request leaves out comes from the server's defaults (its flags
// and the model file); without flags, llama-server's. A seed comes from the
// request, else from --seed, else a fresh random one per request.
TEST(ServerApi, SamplingTheRequestLeavesOutIsTheServers) {
  const auto plain = parse_chat_request(chat()).common.sampling;
  EXPECT_FLOAT_EQ(plain.temperature, 0.8f);
  EXPECT_EQ(plain.top_k, 40);
  EXPECT_FLOAT_EQ(plain.top_p, 0.95f);
  EXPECT_FLOAT_EQ(plain.min_p, 0.05f);
  EXPECT_EQ(plain.repeat_last_n, 64);  // llama-server's window, prompt included
  EXPECT_NE(plain.seed, parse_chat_request(chat()).common.sampling.seed);
  EXPECT_EQ(parse_chat_request(chat({{"repeat_last_n", -1}})).common.sampling.repeat_last_n, -1);

  SamplingDefaults d;
  d.params.temperature = 0.3f;
  d.params.top_k = 20;
  d.params.min_p = 0.0f;
  d.params.repeat_penalty = 1.1f;
  d.params.seed = 99;
  d.fixed_seed = true;
  const auto mixed = parse_chat_request(chat({{"top_k", 5}, {"repeat_penalty", 1.0}}), d).common.sampling;
  EXPECT_FLOAT_EQ(mixed.temperature, 0.3f);
  EXPECT_EQ(mixed.top_k, 5);
  EXPECT_FLOAT_EQ(mixed.min_p, 0.0f);
  EXPECT_FLOAT_EQ(mixed.repeat_penalty, 1.0f);
  EXPECT_EQ(mixed.seed, 99u);
  EXPECT_EQ(parse_chat_request(chat({{"seed", 3}}), d).common.sampling.seed, 3u);
  // "seed": -1 is a random one, as llama-server reads it, even under --seed.
  const uint64_t a = parse_chat_request(chat({{"seed", -1}}), d).common.sampling.seed;
  const uint64_t b = parse_chat_request(chat({{"seed", -1}}), d).common.sampling.seed;
  EXPECT_NE(a, b);
  EXPECT_NE(a, 99u);
  EXPECT_EQ(parse_completion_request(json{{"prompt", "x"}}, d).common.sampling.temperature, 0.3f);
}

TEST(ServerApi, MaxCompletionTokensWins) {
  auto r = parse_chat_request(chat({{"max_tokens", 5}, {"max_completion_tokens", 9}}));
  EXPECT_EQ(r.common.max_tokens, 9);
}

TEST(ServerApi, ContentPartsAreJoined) {
  json body = chat();
  body["messages"][0]["content"] = json::array({{{"type", "text"}, {"text", "a"}}, {{"type", "text"}, {"text", "b"}}});
  EXPECT_EQ(parse_chat_request(body).messages[0]["content"], "ab");
  body["messages"][0]["content"] = json::array({{{"type", "image_url"}, {"image_url", "x"}}});
  EXPECT_EQ(error_of(body).status, 400);
}

TEST(ServerApi, ToolCallArgumentsBecomeObjectsForTheTemplate) {
  json body = chat();
  body["messages"].push_back({{"role", "assistant"},
                              {"content", nullptr},
                              {"tool_calls", json::array({{{"id", "c1"},
                                                           {"type", "function"},
                                                           {"function", {{"name", "f"}, {"arguments", "{\"x\":1}"}}}}})}});
  body["messages"].push_back({{"role", "tool"}, {"tool_call_id", "c1"}, {"content", "42"}});
  auto r = parse_chat_request(body);
  EXPECT_EQ(r.messages[1]["tool_calls"][0]["function"]["arguments"]["x"], 1);
}

TEST(ServerApi, WrongTypesNameTheField) {
  struct Case {
    json extra;
    std::string param;
  };
  std::vector<Case> cases = {
      {{{"temperature", "hot"}}, "temperature"},
      {{{"temperature", 3}}, "temperature"},
      {{{"top_p", -0.1}}, "top_p"},
      {{{"max_tokens", 0}}, "max_tokens"},
      {{{"max_tokens", 1.5}}, "max_tokens"},
      {{{"n", 2}}, "n"},
      {{{"stop", json::array({1})}}, "stop"},
      {{{"stop", ""}}, "stop"},
      {{{"seed", "x"}}, "seed"},
      {{{"stream", 1}}, "stream"},
      {{{"messages", json::object()}}, "messages"},
      {{{"messages", json::array()}}, "messages"},
      {{{"model", 5}}, "model"},
      {{{"tools", "x"}}, "tools"},
      {{{"tool_choice", 3}}, "tool_choice"},
      {{{"response_format", {{"type", "xml"}}}}, "response_format"},
      {{{"frequency_penalty", 9}}, "frequency_penalty"},
      {{{"stream_options", {{"include_usage", true}}}}, "stream_options"},  // without stream: true, as OpenAI
      {{{"repeat_penalty", 0}}, "repeat_penalty"},
      {{{"repeat_last_n", -2}}, "repeat_last_n"},
  };
  for (const auto& c : cases) {
    auto e = error_of(chat(c.extra));
    EXPECT_EQ(e.status, 400) << c.extra.dump();
    EXPECT_EQ(e.param, c.param) << c.extra.dump();
    EXPECT_EQ(e.type, "invalid_request_error");
  }
}

TEST(ServerApi, MessagesAreValidated) {
  json body = chat();
  body["messages"][0]["role"] = "wizard";
  EXPECT_EQ(error_of(body).param, "messages[0].role");
  body = chat();
  body["messages"][0].erase("content");
  EXPECT_EQ(error_of(body).param, "messages[0].content");
  body = chat();
  body["messages"][0]["role"] = "developer";
  EXPECT_EQ(parse_chat_request(body).messages[0]["role"], "system");
}

TEST(ServerApi, ToolChoiceMustNameAKnownTool) {
  json tools = json::array({{{"type", "function"}, {"function", {{"name", "f"}, {"parameters", json::object()}}}}});
  auto named = [](const char* n) { return json{{"type", "function"}, {"function", {{"name", n}}}}; };
  auto r = parse_chat_request(chat({{"tools", tools}, {"tool_choice", named("f")}}));
  EXPECT_EQ(r.tool_choice, ToolChoice::Named);
  EXPECT_EQ(r.tool_name, "f");
  EXPECT_EQ(error_of(chat({{"tools", tools}, {"tool_choice", named("g")}})).param, "tool_choice");
  EXPECT_EQ(error_of(chat({{"tool_choice", "required"}})).param, "tool_choice");
  EXPECT_EQ(parse_chat_request(chat({{"tools", tools}, {"tool_choice", "none"}})).tool_choice, ToolChoice::None);
}

TEST(ServerApi, ResponseFormats) {
  auto r = parse_chat_request(chat({{"response_format", {{"type", "json_object"}}}}));
  EXPECT_EQ(r.response_format, ResponseFormat::JsonObject);
  r = parse_chat_request(chat({{"response_format",
                                {{"type", "json_schema"}, {"json_schema", {{"name", "x"}, {"schema", {{"type", "integer"}}}}}}}}));
  EXPECT_EQ(r.response_format, ResponseFormat::JsonSchema);
  EXPECT_EQ(r.json_schema["type"], "integer");
  EXPECT_EQ(error_of(chat({{"response_format", {{"type", "json_schema"}}}})).param, "response_format.json_schema");
}

TEST(ServerApi, MalformedBodies) {
  // The last: a number too large for a double (nlohmann throws out_of_range,
  // not parse_error, for it; found by fuzz_http_request).
  for (const char* text : {"", "{", "[1]", "\"x\"", "{\"a\":}", "{\"messages\":[6666666666666666666e66666666666666666666]}"}) {
    try {
      parse_body(text);
      ADD_FAILURE() << text;
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status, 400);
    }
  }
}

TEST(ServerApi, ErrorBodyShape) {
  auto body = error_body(ApiError(404, "nope", "not_found_error", "model", "model_not_found"));
  EXPECT_EQ(body["error"]["message"], "nope");
  EXPECT_EQ(body["error"]["type"], "not_found_error");
  EXPECT_EQ(body["error"]["param"], "model");
  EXPECT_EQ(body["error"]["code"], "model_not_found");
  auto bare = error_body(ApiError(500, "x", "server_error"));
  EXPECT_TRUE(bare["error"]["param"].is_null());
  EXPECT_TRUE(bare["error"]["code"].is_null());
}

// A message that quotes the request (here a model name of a megabyte, in
// two-byte characters) is cut to 1 KiB at a character's start: no answer
// grows with its request, and the cut leaves valid UTF-8.
TEST(ServerApi, AnErrorMessageIsBounded) {
  std::string name;
  for (int i = 0; i < (1 << 19); i++) name += "\xc3\xa9";  // é
  const auto body = error_body(ApiError(404, "the model '" + name + "' does not exist", "not_found_error"));
  const std::string message = body["error"]["message"];
  EXPECT_LE(message.size(), 1024u + 3);
  EXPECT_EQ(message.substr(message.size() - 3), "...");
  EXPECT_NO_THROW(body.dump());
}

TEST(ServerApi, CompletionPrompt) {
  EXPECT_EQ(parse_completion_request(json{{"prompt", "abc"}}).prompt, "abc");
  EXPECT_EQ(parse_completion_request(json{{"prompt", json::array({"abc"})}}).prompt, "abc");
  EXPECT_THROW(parse_completion_request(json{{"prompt", json::array({"a", "b"})}}), ApiError);
  EXPECT_THROW(parse_completion_request(json::object()), ApiError);
}

// The security review's memory bomb: a message field the server does not
// know, holding empty objects. Each costs 3 bytes of body but hundreds of
// bytes once parsed, copied and turned into template values (a 4 MB body
// took 375 MB more), so a body is refused before parsing when it holds more
// than kMaxJsonValues values.
std::string bomb(size_t objects) {
  std::string items;
  for (size_t i = 0; i < objects; i++) items += i ? ",{}" : "{}";
  return R"({"messages":[{"role":"user","content":"hi","x":[)" + items + "]}]}";
}

ApiError body_error_of(const std::string& text) {
  try {
    parse_body(text);
  } catch (const ApiError& e) {
    return e;
  }
  return ApiError(0, "", "");
}

TEST(ServerApi, TooManyJsonValuesAre400BeforeParsing) {
  auto e = body_error_of(bomb(kMaxJsonValues));
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.code, "too_many_json_values");
  EXPECT_NE(std::string(e.what()).find("more than 100000 JSON values"), std::string::npos) << e.what();
  e = body_error_of(bomb((4u << 20) / 3));  // the review's 4 MB body
  EXPECT_EQ(e.code, "too_many_json_values");
  // The count is an upper bound: the bomb has 6 values besides its objects
  // (counted as 8: each '[' counts one more, for the element it may open).
  auto r = parse_chat_request(parse_body(bomb(kMaxJsonValues - 8)));
  EXPECT_EQ(r.messages[0]["x"].size(), kMaxJsonValues - 8);
  EXPECT_EQ(body_error_of(bomb(kMaxJsonValues - 7)).code, "too_many_json_values");
}

// Text nesting too deep keeps its own error (util/json_nesting.h), from the
// parser, unless it comes after too many values.
TEST(ServerApi, TooDeepAndTooManyEachKeepTheirError) {
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  auto e = body_error_of(R"({"x":)" + deep + "}");
  EXPECT_NE(std::string(e.what()).find("more than 256 levels deep"), std::string::npos) << e.what();
  std::string many = bomb(kMaxJsonValues);
  e = body_error_of(many.insert(many.size() - 4, "," + deep));
  EXPECT_EQ(e.code, "too_many_json_values");
}

TEST(ServerApi, BracketsAndCommasInsideStringsAreNotValues) {
  // 300000 brackets, commas and colons in text (with escaped quotes), one value.
  std::string text(300000, ',');
  for (size_t i = 0; i < text.size(); i += 3) text.replace(i, 3, "[:\"");
  json body = chat();
  body["messages"][0]["content"] = text;
  EXPECT_EQ(parse_chat_request(parse_body(body.dump())).messages[0]["content"], text);
}

TEST(ServerApi, ToolCallArgumentsShareOneValueBudget) {
  // Arguments are JSON text inside a string: one value to the body's count,
  // parsed apart, so their values are counted apart, for all calls together.
  auto call_with = [](size_t objects) {
    std::string args = "[";
    for (size_t i = 0; i < objects; i++) args += i ? ",{}" : "{}";
    return json{{"id", "c"}, {"type", "function"}, {"function", {{"name", "f"}, {"arguments", args + "]"}}}};
  };
  json body = chat();
  body["messages"].push_back({{"role", "assistant"}, {"content", nullptr}, {"tool_calls", json::array({call_with(60000)})}});
  EXPECT_EQ(parse_chat_request(body).messages[1]["tool_calls"][0]["function"]["arguments"].size(), 60000u);
  body["messages"][1]["tool_calls"].push_back(call_with(60000));
  auto e = error_of(body);
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.param, "messages[1].tool_calls[1].function.arguments");
  EXPECT_EQ(e.code, "too_many_json_values");
}

// Templates read message fields the API does not define (Qwen3 and DeepSeek
// reasoning_content, gpt-oss thinking, name): they pass through.
TEST(ServerApi, UnknownMessageFieldsAreKept) {
  json body = chat();
  body["messages"][0]["reasoning_content"] = "because";
  body["messages"][0]["name"] = "ann";
  auto r = parse_chat_request(body);
  EXPECT_EQ(r.messages[0]["reasoning_content"], "because");
  EXPECT_EQ(r.messages[0]["name"], "ann");
}

}  // namespace
}  // namespace warden::server
