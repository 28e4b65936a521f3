#include "server/prompt.h"

#include "util/error.h"
#include "util/log.h"

namespace warden::server {

namespace {

// Whether the template fails on an assistant turn with tool calls and
// content null, as OpenAI sends it, but takes one with content "" (Qwen3's
// does '</think>' in message.content). llama-server tells the same way.
bool needs_text_content(const chat::ChatTemplate& t) {
  using json = nlohmann::ordered_json;
  chat::ChatInputs in;
  in.tools = json::parse(R"([{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}])");
  in.messages = json::parse(R"([{"role":"user","content":"x"},{"role":"assistant","content":null,
      "tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":{}}}]},
      {"role":"tool","tool_call_id":"call_1","content":"y"}])");
  try {
    t.render(in);
    return false;
  } catch (const chat::TemplateError&) {
  }
  in.messages[1]["content"] = "";
  try {
    t.render(in);
    return true;
  } catch (const chat::TemplateError&) {
    return false;
  }
}

}  // namespace

PromptBuilder::PromptBuilder(const std::string& template_source, const tokenizer::Tokenizer& tok) : tok_(tok) {
  if (template_source.empty()) {
    log::warn("the model has no chat template (tokenizer.chat_template); using ChatML");
  } else {
    template_ = std::make_unique<chat::ChatTemplate>(template_source);
    tool_format_ = grammar::detect_tool_call_format(template_source);
    template_needs_text_content_ = needs_text_content(*template_);
  }
  if (tok.bos() >= 0) bos_text_ = tok.text(tok.bos());
  if (tok.eos() >= 0) eos_text_ = tok.text(tok.eos());
  for (size_t i = 0; i < tok.size(); ++i) {
    const auto id = int32_t(i);
    if (tok.type(id) == tokenizer::TokenType::Control && !tok.text(id).empty())
      control_texts_.push_back(tok.text(id));
  }
}

void PromptBuilder::check_no_control_text(const nlohmann::ordered_json& value, const std::string& where) const {
  if (value.is_string()) {
    const auto& s = value.get_ref<const std::string&>();
    for (const auto& control : control_texts_)
      if (s.find(control) != std::string::npos)
        throw ControlTextError(where, control);
  } else if (value.is_array()) {
    for (size_t i = 0; i < value.size(); ++i) check_no_control_text(value[i], where + "[" + std::to_string(i) + "]");
  } else if (value.is_object()) {
    for (const auto& [key, item] : value.items()) {
      check_no_control_text(nlohmann::ordered_json(key), where + "." + key);
      check_no_control_text(item, where + "." + key);
    }
  }
}

std::string PromptBuilder::render(const nlohmann::ordered_json& messages, const nlohmann::ordered_json& tools,
                                  const nlohmann::ordered_json& extra_context) const {
  check_no_control_text(messages, "messages");
  if (!tools.is_null()) check_no_control_text(tools, "tools");
  // chat_template_kwargs become template variables (date_string,
  // builtin_tools, custom_tools, ...) that templates print into the prompt
  // just like message text: the same check, on every string inside.
  check_no_control_text(extra_context, "chat_template_kwargs");
  chat::ChatInputs in;
  in.messages = messages;
  in.tools = tools;
  in.add_generation_prompt = true;
  in.bos_token = bos_text_;
  in.eos_token = eos_text_;
  in.extra_context = extra_context;
  if (template_needs_text_content_)
    for (auto& m : in.messages)
      if (m.contains("content") && m["content"].is_null()) m["content"] = "";
  return template_ ? template_->render(in) : chat::render_chatml(in);
}

std::vector<int32_t> PromptBuilder::tokenize_rendered(const std::string& prompt) const {
  const bool template_wrote_bos = !bos_text_.empty() && prompt.compare(0, bos_text_.size(), bos_text_) == 0;
  return tok_.encode(prompt, tok_.add_bos() && !template_wrote_bos, /*parse_special=*/true);
}

std::vector<int32_t> PromptBuilder::tokenize_plain(const std::string& text) const {
  return tok_.encode(text, tok_.add_bos(), /*parse_special=*/false);
}

}  // namespace warden::server
