#include "chat/chat_template.h"

#include <ctime>

#include "util/error.h"

namespace warden::chat {

namespace {

using jinja::CallArgs;
using jinja::Dict;
using jinja::Value;

constexpr const char* kReservedNames[] = {"messages", "tools", "add_generation_prompt", "bos_token",
                                          "eos_token", "raise_exception", "strftime_now"};

std::string format_time(std::time_t t, const std::string& format) {
  if (format.size() > 256) throw TemplateError("strftime_now(): format string too long");
  if (format.empty()) return "";
  std::tm tm{};
  if (!localtime_r(&t, &tm)) throw TemplateError("strftime_now(): cannot convert the current time");
  char buf[2048];
  size_t n = std::strftime(buf, sizeof buf, format.c_str(), &tm);
  return std::string(buf, n);
}

Value raise_exception_function() {
  return Value::callable("raise_exception", [](CallArgs& args) -> Value {
    std::string message;
    if (!args.positional.empty()) {
      const Value& m = args.positional[0];
      message = m.is_string() ? m.as_string() : jinja::to_str(m, 1u << 16);
    }
    throw TemplateError(message, /*raised_by_template=*/true);
  });
}

Value strftime_function(std::time_t now) {
  return Value::callable("strftime_now", [now](CallArgs& args) -> Value {
    if (args.positional.size() != 1 || !args.positional[0].is_string() || !args.keyword.empty())
      throw TemplateError("strftime_now() takes one format string");
    return Value::string(format_time(now, args.positional[0].as_string()));
  });
}

void check_messages(const nlohmann::ordered_json& messages) {
  if (!messages.is_array()) throw warden::Error("chat messages must be a JSON array");
  for (size_t i = 0; i < messages.size(); ++i) {
    const auto& m = messages[i];
    if (!m.is_object()) throw warden::Error("chat messages[" + std::to_string(i) + "] must be an object");
    if (!m.contains("role") || !m["role"].is_string())
      throw warden::Error("chat messages[" + std::to_string(i) + "] needs a string \"role\"");
  }
}

Dict build_context(const ChatInputs& in) {
  check_messages(in.messages);
  if (!in.tools.is_null() && !in.tools.is_array()) throw warden::Error("chat tools must be a JSON array or null");
  if (!in.extra_context.is_object()) throw warden::Error("chat extra context must be a JSON object");
  std::time_t now = in.now ? *in.now : std::time(nullptr);
  Dict d;
  d.set("messages", Value::from_json(in.messages));
  if (!in.tools.is_null()) d.set("tools", Value::from_json(in.tools));
  d.set("add_generation_prompt", Value::boolean(in.add_generation_prompt));
  d.set("bos_token", Value::string(in.bos_token));
  d.set("eos_token", Value::string(in.eos_token));
  d.set("raise_exception", raise_exception_function());
  d.set("strftime_now", strftime_function(now));
  // Llama 3.x templates print "Today Date: {{ date_string }}"; default it to
  // today, as the templates' own strftime_now fallback would.
  d.set("date_string", Value::string(format_time(now, "%d %b %Y")));
  for (auto it = in.extra_context.begin(); it != in.extra_context.end(); ++it) {
    for (const char* reserved : kReservedNames)
      if (it.key() == reserved)
        throw warden::Error("chat extra context may not set '" + it.key() + "'; it has its own input");
    d.set(it.key(), Value::from_json(it.value()));
  }
  return d;
}

std::string content_text(const nlohmann::ordered_json& content) {
  if (content.is_null()) return "";
  if (content.is_string()) return content.get<std::string>();
  if (content.is_array()) {
    std::string out;
    for (const auto& part : content)
      if (part.is_object() && part.contains("text") && part["text"].is_string()) out += part["text"].get<std::string>();
    return out;
  }
  return jinja::to_json(Value::from_json(content), {}, SIZE_MAX);
}

std::string python_json(const nlohmann::ordered_json& j) { return jinja::to_json(Value::from_json(j), {}, SIZE_MAX); }

}  // namespace

ChatTemplate::ChatTemplate(std::string_view source, TemplateLimits limits) : template_(source, limits) {}

std::string ChatTemplate::render(const ChatInputs& inputs) const { return template_.render(build_context(inputs)); }

std::string render_chat(std::string_view template_source, const nlohmann::ordered_json& messages,
                        const nlohmann::ordered_json& tools, bool add_generation_prompt,
                        const std::string& bos_token, const std::string& eos_token,
                        const nlohmann::ordered_json& extra_context) {
  ChatInputs in;
  in.messages = messages;
  in.tools = tools;
  in.add_generation_prompt = add_generation_prompt;
  in.bos_token = bos_token;
  in.eos_token = eos_token;
  in.extra_context = extra_context;
  return ChatTemplate(template_source).render(in);
}

std::string render_chatml(const ChatInputs& in) {
  check_messages(in.messages);
  std::string out;
  size_t first = 0;
  bool has_tools = in.tools.is_array() && !in.tools.empty();
  if (has_tools) {
    out += "<|im_start|>system\n";
    if (!in.messages.empty() && in.messages[0]["role"] == "system") {
      out += content_text(in.messages[0].value("content", nlohmann::ordered_json())) + "\n\n";
      first = 1;
    }
    out += "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
           "You are provided with function signatures within <tools></tools> XML tags:\n<tools>";
    for (const auto& tool : in.tools) {
      out += '\n';
      out += python_json(tool);
    }
    out += "\n</tools>\n\nFor each function call, return a json object with function name and arguments within "
           "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": "
           "<args-json-object>}\n</tool_call><|im_end|>\n";
  }
  for (size_t i = first; i < in.messages.size(); ++i) {
    const auto& m = in.messages[i];
    out += "<|im_start|>" + m["role"].get<std::string>() + "\n";
    out += content_text(m.value("content", nlohmann::ordered_json()));
    if (m.contains("tool_calls") && m["tool_calls"].is_array()) {
      for (const auto& call : m["tool_calls"]) {
        const auto& fn = call.contains("function") ? call["function"] : call;
        nlohmann::ordered_json body = nlohmann::ordered_json::object();
        body["name"] = fn.value("name", "");
        body["arguments"] = fn.value("arguments", nlohmann::ordered_json::object());
        out += "\n<tool_call>\n" + python_json(body) + "\n</tool_call>";
      }
    }
    out += "<|im_end|>\n";
  }
  if (in.add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

}  // namespace warden::chat
