#pragma once
// Turns OpenAI-style chat messages into prompt tokens with the model's own
// chat template (ChatML when the file has none), and guards the one thing a
// rendered prompt must never contain: a control token smuggled in through
// message text. The rendered prompt is tokenized with special-token parsing
// (the template's own markers must become control tokens), so any text that
// spells a control token (<|im_end|>, <|im_start|>, ...) inside a message, a
// tool definition or an extra template variable (chat_template_kwargs) is
// refused instead of silently turning into a turn boundary.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "chat/chat_template.h"
#include "grammar/toolcall.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace warden::server {

// Text that spells a control token, at `where`: the request field's path
// (messages[1].content, tools[0].function.description, ...).
class ControlTextError : public Error {
 public:
  ControlTextError(const std::string& where, const std::string& control)
      : Error(where + " contains the control token text '" + control + "', which is not accepted in message text"),
        where(where) {}
  std::string where;
};

class PromptBuilder {
 public:
  // template_source: the model's tokenizer.chat_template ("" = none: ChatML,
  // with a warning). Throws chat::TemplateError if the template does not parse.
  PromptBuilder(const std::string& template_source, const tokenizer::Tokenizer& tok);

  // Renders the conversation (tools: null or an OpenAI tools array).
  // Throws chat::TemplateError (the template's own raise_exception) and
  // ControlTextError for text in messages, tools or extra_context that
  // spells a control token.
  std::string render(const nlohmann::ordered_json& messages, const nlohmann::ordered_json& tools,
                     const nlohmann::ordered_json& extra_context = nlohmann::ordered_json::object()) const;
  // Tokens of a rendered prompt (BOS added when the vocabulary wants it and
  // the template did not write it already).
  std::vector<int32_t> tokenize_rendered(const std::string& prompt) const;
  // Tokens of raw completion text: specials never parsed.
  std::vector<int32_t> tokenize_plain(const std::string& text) const;

  // Throws ControlTextError naming `where` if any string inside `value`
  // holds the text of a control token.
  void check_no_control_text(const nlohmann::ordered_json& value, const std::string& where) const;

  grammar::ToolCallFormat tool_format() const { return tool_format_; }
  bool has_model_template() const { return template_ != nullptr; }

 private:
  const tokenizer::Tokenizer& tok_;
  std::unique_ptr<chat::ChatTemplate> template_;  // null: ChatML
  grammar::ToolCallFormat tool_format_ = grammar::ToolCallFormat::kHermes;
  bool template_needs_text_content_ = false;  // null message content is given as ""
  std::string bos_text_, eos_text_;
  std::vector<std::string> control_texts_;
};

}  // namespace warden::server
