#include "server/api.h"

#include <cmath>
#include <limits>
#include <string_view>

#include "util/display.h"
#include "util/error.h"
#include "util/json_nesting.h"
#include "util/ordered_json.h"

namespace warden::server {

using json = nlohmann::ordered_json;

ApiError bad_request(const std::string& message, const std::string& param, const std::string& code) {
  return ApiError(400, message, "invalid_request_error", param, code);
}

json error_body(const ApiError& e) {
  // The message may quote the request (a model's name, a role): cut to
  // 1 KiB at a character's start, so that no answer grows with its request.
  constexpr size_t kMaxMessageBytes = 1024;
  const std::string_view message = e.what();
  json err = json::object();
  // Valid UTF-8 whatever it quotes (a percent-decoded path, a file name):
  // JSON text must be.
  err["message"] = display::utf8_or_replacement(
      message.size() <= kMaxMessageBytes ? message
                                         : std::string(display::utf8_prefix(message, kMaxMessageBytes)) + "...");
  err["type"] = e.type;
  err["param"] = e.param.empty() ? json(nullptr) : json(e.param);
  err["code"] = e.code.empty() ? json(nullptr) : json(e.code);
  for (const auto& [name, value] : e.extra.items()) err[name] = value;
  return json{{"error", err}};
}

namespace {

// An upper bound on the number of JSON values in `text`, read before parsing
// so that a body with too many is refused before it is built: every value but
// the first follows a '[', ',' or ':' outside strings. Linear, allocates
// nothing; text that is not JSON is counted all the same (the parser rejects
// it). Counting stops where the text nests deeper than the parser allows:
// the parser stops there too, with its own error, having built no more
// values than were counted.
size_t json_values_at_most(std::string_view text) {
  JsonBrackets brackets;  // tracks strings and escapes
  size_t n = 1;
  for (char c : text) {
    if (!brackets.in_string && (c == '[' || c == ',' || c == ':')) n++;
    if (brackets.step(c) > 0 && size_t(brackets.depth) > kMaxJsonNesting) break;
  }
  return n;
}

}  // namespace

json parse_body(const std::string& body) {
  if (json_values_at_most(body) > kMaxJsonValues)
    throw bad_request("the request body holds more than " + std::to_string(kMaxJsonValues) +
                          " JSON values, the limit per request",
                      "", "too_many_json_values");
  json j;
  try {
    j = parse_ordered_json(body);
  } catch (const Error& e) {  // syntax errors, numbers too large for a double, nesting
    throw bad_request(std::string("the request body ") + e.what(), "", "invalid_json");
  }
  if (!j.is_object()) throw bad_request("the request body must be a JSON object", "", "invalid_json");
  return j;
}

namespace {

ApiError wrong_type(const std::string& field, const char* expected) {
  return bad_request("'" + field + "' must be " + expected, field, "invalid_type");
}

// A field that is absent or null reads as "not given".
const json* field(const json& obj, const char* name) {
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

std::optional<double> number_in(const json& obj, const char* name, double lo, double hi) {
  const json* v = field(obj, name);
  if (!v) return std::nullopt;
  if (!v->is_number()) throw wrong_type(name, "a number");
  double x = v->get<double>();
  if (!std::isfinite(x) || x < lo || x > hi)
    throw bad_request("'" + std::string(name) + "' must be between " + std::to_string(lo) + " and " +
                          std::to_string(hi),
                      name, "out_of_range");
  return x;
}

std::optional<int64_t> integer_in(const json& obj, const char* name, int64_t lo, int64_t hi) {
  const json* v = field(obj, name);
  if (!v) return std::nullopt;
  if (!v->is_number_integer()) throw wrong_type(name, "an integer");
  // Unsigned values above int64 range are out of range too.
  if (v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max()))
    throw bad_request("'" + std::string(name) + "' is out of range", name, "out_of_range");
  int64_t x = v->get<int64_t>();
  if (x < lo || x > hi)
    throw bad_request("'" + std::string(name) + "' must be between " + std::to_string(lo) + " and " +
                          std::to_string(hi),
                      name, "out_of_range");
  return x;
}

std::optional<bool> boolean(const json& obj, const char* name) {
  const json* v = field(obj, name);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) throw wrong_type(name, "a boolean");
  return v->get<bool>();
}

std::vector<std::string> stop_strings(const json& obj) {
  const json* v = field(obj, "stop");
  if (!v) return {};
  std::vector<std::string> out;
  if (v->is_string()) {
    out.push_back(v->get<std::string>());
  } else if (v->is_array()) {
    if (v->size() > 16) throw bad_request("'stop' may hold at most 16 strings", "stop", "out_of_range");
    for (const auto& s : *v) {
      if (!s.is_string()) throw wrong_type("stop", "a string or an array of strings");
      out.push_back(s.get<std::string>());
    }
  } else {
    throw wrong_type("stop", "a string or an array of strings");
  }
  for (const auto& s : out)
    if (s.empty()) throw bad_request("'stop' strings must not be empty", "stop", "invalid_value");
  return out;
}

// logit_bias: {"TOKEN_ID": BIAS, ...}, each bias in [-100, 100] as OpenAI
// takes it (-100 bans the token, 100 all but forces it).
std::vector<std::pair<int32_t, float>> logit_bias(const json& body) {
  const json* v = field(body, "logit_bias");
  if (!v) return {};
  if (!v->is_object()) throw wrong_type("logit_bias", "an object mapping token ids to numbers");
  std::vector<std::pair<int32_t, float>> out;
  for (const auto& [key, bias] : v->items()) {
    const bool digits = !key.empty() && key.size() <= 9 && key.find_first_not_of("0123456789") == std::string::npos;
    if (!digits) throw bad_request("'logit_bias' keys must be token ids", "logit_bias", "invalid_value");
    if (!bias.is_number() || !std::isfinite(bias.get<double>()) || std::fabs(bias.get<double>()) > 100)
      throw bad_request("'logit_bias." + key + "' must be a number between -100 and 100", "logit_bias", "out_of_range");
    out.emplace_back(int32_t(std::stol(key)), float(bias.get<double>()));
  }
  return out;
}

// A field OpenAI defines whose effect is not built here is refused when it
// asks for that effect (true, text, a number other than `neutral`), rather
// than ignored.
void refuse_unsupported(const json& body, const char* name, int64_t neutral = 0) {
  const json* v = field(body, name);
  if (!v) return;
  const bool asks_nothing = (v->is_boolean() && !v->get<bool>()) ||
                            (v->is_string() && v->get_ref<const std::string&>().empty()) ||
                            (v->is_number_integer() && v->get<int64_t>() == neutral);
  if (!asks_nothing) throw bad_request("'" + std::string(name) + "' is not supported", name, "unsupported_value");
}

CommonParams parse_common(const json& body, const SamplingDefaults& defaults) {
  CommonParams p;
  if (const json* m = field(body, "model")) {
    if (!m->is_string()) throw wrong_type("model", "a string");
    p.model = m->get<std::string>();
  }
  p.stream = boolean(body, "stream").value_or(false);
  if (const json* so = field(body, "stream_options")) {
    if (!so->is_object()) throw wrong_type("stream_options", "an object");
    if (!p.stream)  // as OpenAI and vLLM answer it
      throw bad_request("'stream_options' is only allowed when 'stream' is true", "stream_options", "invalid_value");
    p.include_usage = boolean(*so, "include_usage").value_or(false);
  }
  if (auto n = integer_in(body, "n", 1, 1000000); n && *n != 1)
    throw bad_request("only n=1 is supported", "n", "unsupported_value");
  auto max_tokens = integer_in(body, "max_tokens", 1, std::numeric_limits<int32_t>::max());
  auto max_completion = integer_in(body, "max_completion_tokens", 1, std::numeric_limits<int32_t>::max());
  if (max_completion) p.max_tokens = *max_completion;
  else if (max_tokens) p.max_tokens = *max_tokens;
  p.stop = stop_strings(body);
  p.ignore_eos = boolean(body, "ignore_eos").value_or(false);

  auto& s = p.sampling;
  s = defaults.params;
  s.temperature = float(number_in(body, "temperature", 0.0, 2.0).value_or(s.temperature));
  s.top_p = float(number_in(body, "top_p", 0.0, 1.0).value_or(s.top_p));
  s.top_k = int(integer_in(body, "top_k", 0, 1 << 30).value_or(s.top_k));
  s.min_p = float(number_in(body, "min_p", 0.0, 1.0).value_or(s.min_p));
  s.presence_penalty = float(number_in(body, "presence_penalty", -2.0, 2.0).value_or(s.presence_penalty));
  s.frequency_penalty = float(number_in(body, "frequency_penalty", -2.0, 2.0).value_or(s.frequency_penalty));
  s.repeat_penalty = float(number_in(body, "repeat_penalty", 0.0, 10.0).value_or(s.repeat_penalty));
  if (!(s.repeat_penalty > 0.0f))
    throw bad_request("'repeat_penalty' must be above 0 (1 = off)", "repeat_penalty", "invalid_value");
  s.repeat_last_n = int(integer_in(body, "repeat_last_n", -1, 1 << 30).value_or(s.repeat_last_n));
  s.logit_bias = logit_bias(body);
  const json* seed = field(body, "seed");
  if (seed && !seed->is_number_integer()) throw wrong_type("seed", "an integer");
  // -1 is a random seed, as llama-server reads it; so is none, unless
  // `warden serve --seed N` fixed one.
  const bool random = seed ? !seed->is_number_unsigned() && seed->get<int64_t>() == -1 : !defaults.fixed_seed;
  if (random) s.seed = sample::random_seed();
  else if (seed) s.seed = seed->is_number_unsigned() ? seed->get<uint64_t>() : uint64_t(seed->get<int64_t>());
  return p;
}

// Message content: a string, null, or an array of {"type":"text","text":...}
// parts (joined, since these models take text only).
json normalize_content(const json& content, const std::string& where) {
  if (content.is_null() || content.is_string()) return content;
  if (!content.is_array()) throw wrong_type(where, "a string, null or an array of content parts");
  std::string text;
  for (size_t i = 0; i < content.size(); ++i) {
    const auto& part = content[i];
    std::string at = where + "[" + std::to_string(i) + "]";
    if (!part.is_object()) throw wrong_type(at, "a content part object");
    auto type = part.find("type");
    if (type == part.end() || !type->is_string()) throw wrong_type(at + ".type", "a string");
    if (*type != "text")
      throw bad_request("content part type '" + type->get<std::string>() + "' is not supported (text only)",
                        at + ".type", "unsupported_value");
    auto t = part.find("text");
    if (t == part.end() || !t->is_string()) throw wrong_type(at + ".text", "a string");
    text += t->get<std::string>();
  }
  return text;
}

json parse_messages(const json& body) {
  const json* msgs = field(body, "messages");
  if (!msgs) throw bad_request("'messages' is required", "messages", "missing_field");
  if (!msgs->is_array()) throw wrong_type("messages", "an array");
  if (msgs->empty()) throw bad_request("'messages' must not be empty", "messages", "invalid_value");
  json out = json::array();
  // Tool call arguments arrive as JSON text inside a string, which the body's
  // count saw as one value: they get a budget of their own, for all together.
  size_t argument_values = 0;
  for (size_t i = 0; i < msgs->size(); ++i) {
    const auto& m = (*msgs)[i];
    std::string at = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) throw wrong_type(at, "an object");
    auto role = m.find("role");
    if (role == m.end() || !role->is_string()) throw wrong_type(at + ".role", "a string");
    const std::string r = role->get<std::string>();
    if (r != "system" && r != "developer" && r != "user" && r != "assistant" && r != "tool")
      throw bad_request(at + ".role '" + r + "' is not one of system, developer, user, assistant, tool",
                        at + ".role", "invalid_value");
    json msg = m;
    msg["role"] = r == "developer" ? "system" : r;
    msg["content"] = normalize_content(m.contains("content") ? m["content"] : json(nullptr), at + ".content");
    const bool has_calls = m.contains("tool_calls") && m["tool_calls"].is_array() && !m["tool_calls"].empty();
    if (msg["content"].is_null() && !(r == "assistant" && has_calls))
      throw bad_request(at + ".content is required (null only beside tool_calls)", at + ".content", "missing_field");
    if (auto calls = m.find("tool_calls"); calls != m.end() && !calls->is_null()) {
      if (!calls->is_array()) throw wrong_type(at + ".tool_calls", "an array");
      for (size_t k = 0; k < calls->size(); ++k) {
        const auto& c = (*calls)[k];
        std::string cat = at + ".tool_calls[" + std::to_string(k) + "]";
        if (!c.is_object() || !c.contains("function") || !c["function"].is_object())
          throw wrong_type(cat, "an object with a 'function' object");
        const auto& fn = c["function"];
        if (!fn.contains("name") || !fn["name"].is_string()) throw wrong_type(cat + ".function.name", "a string");
        // Templates index arguments as a mapping: give them the parsed object.
        if (fn.contains("arguments") && fn["arguments"].is_string()) {
          argument_values += json_values_at_most(fn["arguments"].get_ref<const std::string&>());
          if (argument_values > kMaxJsonValues)
            throw bad_request("the tool call arguments hold more than " + std::to_string(kMaxJsonValues) +
                                  " JSON values in all, the limit per request",
                              cat + ".function.arguments", "too_many_json_values");
          // Arguments that are not JSON (a model's call cut short, or badly
          // formed: OpenAI warns they may be) stay the text they are.
          try {
            msg["tool_calls"][k]["function"]["arguments"] = parse_ordered_json(fn["arguments"].get<std::string>());
          } catch (const Error&) {
          }
        }
      }
    }
    out.push_back(std::move(msg));
  }
  return out;
}

json parse_tools(const json& body) {
  const json* tools = field(body, "tools");
  if (!tools) return nullptr;
  if (!tools->is_array()) throw wrong_type("tools", "an array");
  if (tools->empty()) return nullptr;
  for (size_t i = 0; i < tools->size(); ++i) {
    const auto& t = (*tools)[i];
    std::string at = "tools[" + std::to_string(i) + "]";
    if (!t.is_object()) throw wrong_type(at, "an object");
    if (!t.contains("type") || t["type"] != "function")
      throw bad_request(at + ".type must be \"function\"", at + ".type", "invalid_value");
    if (!t.contains("function") || !t["function"].is_object()) throw wrong_type(at + ".function", "an object");
    const auto& fn = t["function"];
    if (!fn.contains("name") || !fn["name"].is_string() || fn["name"].get<std::string>().empty())
      throw wrong_type(at + ".function.name", "a non-empty string");
    if (fn.contains("parameters") && !fn["parameters"].is_object() && !fn["parameters"].is_null())
      throw wrong_type(at + ".function.parameters", "a JSON Schema object");
  }
  return *tools;
}

void parse_tool_choice(const json& body, ChatRequest& r) {
  const json* choice = field(body, "tool_choice");
  if (!choice) return;
  if (choice->is_string()) {
    const auto& s = choice->get_ref<const std::string&>();
    if (s == "auto") r.tool_choice = ToolChoice::Auto;
    else if (s == "none") r.tool_choice = ToolChoice::None;
    else if (s == "required") r.tool_choice = ToolChoice::Required;
    else throw bad_request("'tool_choice' must be auto, none, required or a function", "tool_choice", "invalid_value");
  } else if (choice->is_object()) {
    const json* fn = field(*choice, "function");
    if (!fn || !fn->is_object() || !fn->contains("name") || !(*fn)["name"].is_string())
      throw wrong_type("tool_choice", "{\"type\": \"function\", \"function\": {\"name\": ...}}");
    r.tool_choice = ToolChoice::Named;
    r.tool_name = (*fn)["name"].get<std::string>();
  } else {
    throw wrong_type("tool_choice", "a string or an object");
  }
  if ((r.tool_choice == ToolChoice::Required || r.tool_choice == ToolChoice::Named) && r.tools.is_null())
    throw bad_request("'tool_choice' requires 'tools'", "tool_choice", "invalid_value");
  if (r.tool_choice == ToolChoice::Named) {
    bool found = false;
    for (const auto& t : r.tools) found = found || t["function"]["name"] == r.tool_name;
    if (!found)
      throw bad_request("'tool_choice' names '" + r.tool_name + "', which is not in 'tools'", "tool_choice",
                        "invalid_value");
  }
}

void parse_response_format(const json& body, ChatRequest& r) {
  const json* rf = field(body, "response_format");
  if (!rf) return;
  if (!rf->is_object() || !rf->contains("type") || !(*rf)["type"].is_string())
    throw wrong_type("response_format", "an object with a 'type' string");
  const auto& type = (*rf)["type"].get_ref<const std::string&>();
  if (type == "text") {
    r.response_format = ResponseFormat::Text;
  } else if (type == "json_object") {
    r.response_format = ResponseFormat::JsonObject;
  } else if (type == "json_schema") {
    const json* js = field(*rf, "json_schema");
    if (!js || !js->is_object()) throw wrong_type("response_format.json_schema", "an object");
    const json* schema = field(*js, "schema");
    if (!schema || !(schema->is_object() || schema->is_boolean()))
      throw wrong_type("response_format.json_schema.schema", "a JSON Schema");
    r.response_format = ResponseFormat::JsonSchema;
    r.json_schema = *schema;
  } else {
    throw bad_request("'response_format.type' must be text, json_object or json_schema", "response_format",
                      "invalid_value");
  }
}

}  // namespace

ChatRequest parse_chat_request(const json& body, const SamplingDefaults& defaults) {
  ChatRequest r;
  r.common = parse_common(body, defaults);
  r.messages = parse_messages(body);
  r.tools = parse_tools(body);
  parse_tool_choice(body, r);
  r.parallel_tool_calls = boolean(body, "parallel_tool_calls").value_or(true);
  const auto top = integer_in(body, "top_logprobs", 0, kMaxTopLogprobs);
  if (boolean(body, "logprobs").value_or(false)) r.common.top_logprobs = int(top.value_or(0));
  else if (top) throw bad_request("'top_logprobs' needs 'logprobs': true", "top_logprobs", "invalid_value");
  parse_response_format(body, r);
  if (r.response_format != ResponseFormat::Text &&
      (r.tool_choice == ToolChoice::Required || r.tool_choice == ToolChoice::Named))
    throw bad_request("a forced tool call and a JSON response_format cannot be combined", "response_format",
                      "invalid_value");
  if (const json* kw = field(body, "chat_template_kwargs")) {
    if (!kw->is_object()) throw wrong_type("chat_template_kwargs", "an object");
    r.template_kwargs = *kw;
  }
  return r;
}

CompletionRequest parse_completion_request(const json& body, const SamplingDefaults& defaults) {
  CompletionRequest r;
  r.common = parse_common(body, defaults);
  if (r.common.max_tokens < 0) r.common.max_tokens = kDefaultCompletionTokens;
  r.echo = boolean(body, "echo").value_or(false);
  if (auto n = integer_in(body, "logprobs", 0, kMaxTopLogprobs)) r.common.top_logprobs = int(*n);
  if (r.echo && r.common.top_logprobs >= 0)
    throw bad_request("'logprobs' with 'echo' (the prompt's own logprobs) is not supported", "logprobs",
                      "unsupported_value");
  refuse_unsupported(body, "suffix");
  refuse_unsupported(body, "best_of", 1);
  const json* prompt = field(body, "prompt");
  if (!prompt) throw bad_request("'prompt' is required", "prompt", "missing_field");
  // One prompt, as OpenAI takes it: text, token ids, or a list of one of those.
  const json& one = prompt->is_array() && prompt->size() == 1 && !(*prompt)[0].is_number() ? (*prompt)[0] : *prompt;
  if (one.is_string()) {
    r.prompt = one.get<std::string>();
    if (r.prompt.empty()) throw bad_request("'prompt' must not be empty", "prompt", "invalid_value");
  } else if (one.is_array() && !one.empty() && one[0].is_number()) {
    for (const auto& id : one) {
      if (!id.is_number_integer()) throw wrong_type("prompt", "text or an array of token ids");
      const bool huge = id.is_number_unsigned() && id.get<uint64_t>() > uint64_t(INT64_MAX);
      r.prompt_tokens.push_back(huge ? INT64_MAX : id.get<int64_t>());  // out of every vocabulary either way
    }
  } else if (prompt->is_array() && prompt->size() > 1) {
    throw bad_request("only one prompt per request is supported", "prompt", "unsupported_value");
  } else if (one.is_array() && one.empty()) {
    throw bad_request("'prompt' must not be empty", "prompt", "invalid_value");
  } else {
    throw wrong_type("prompt", "text or an array of token ids");
  }
  return r;
}

}  // namespace warden::server
