#pragma once
// Renders a conversation into a model's prompt text with the model's own
// chat template (tokenizer.chat_template), giving the template the variables
// Hugging Face's apply_chat_template gives it. Models without a template use
// render_chatml() (the caller logs a warning).
#include <ctime>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "chat/jinja.h"

namespace warden::chat {

struct ChatInputs {
  // OpenAI-style messages: [{"role": ..., "content": ..., "tool_calls": ...}, ...]
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  // Tool definitions, or null for none (then `tools` is undefined in the template).
  nlohmann::ordered_json tools = nullptr;
  bool add_generation_prompt = true;
  std::string bos_token;
  std::string eos_token;
  // More top-level variables (e.g. {"enable_thinking": false, "date_string": "26 Jul 2024"}).
  // They may not replace the variables above.
  nlohmann::ordered_json extra_context = nlohmann::ordered_json::object();
  // The time strftime_now() formats (local time); unset: the current time.
  std::optional<std::time_t> now;
};

class ChatTemplate {
 public:
  // Parses the template; throws TemplateSyntaxError.
  explicit ChatTemplate(std::string_view source, TemplateLimits limits = {});

  // Throws TemplateError: raise_exception(msg) in the template gives
  // exactly msg as what() (and raised_by_template() == true).
  std::string render(const ChatInputs& inputs) const;

 private:
  JinjaTemplate template_;
};

// One-shot form of ChatTemplate(source).render(...).
std::string render_chat(std::string_view template_source, const nlohmann::ordered_json& messages,
                        const nlohmann::ordered_json& tools, bool add_generation_prompt,
                        const std::string& bos_token, const std::string& eos_token,
                        const nlohmann::ordered_json& extra_context = nlohmann::ordered_json::object());

// The ChatML fallback: <|im_start|>role\ncontent<|im_end|>\n per message,
// tools offered in a leading system block, tool calls as <tool_call> JSON.
std::string render_chatml(const ChatInputs& inputs);

}  // namespace warden::chat
