#pragma once
// A thinking model's answer split in two as it streams: the reasoning it
// writes between <think> and </think> first (Qwen3, DeepSeek-R1, QwQ), and
// the rest. llama-server sends the first part as `reasoning_content` (its
// --reasoning-format auto, "deepseek" style), and clients such as Open WebUI
// show it apart; `warden serve` does the same.
//
// Only a <think> at the very start of the output (after whitespace) opens
// reasoning, or the prompt itself when the template ended it with <think>
// (the "thinking forced open" of DeepSeek-R1's template). Text that is not
// yet decidable (a partial "<thi", a partial "</thi") is held back, never
// sent and taken back.
#include <string>
#include <string_view>

namespace warden::server {

class ReasoningSplitter {
 public:
  // starts_inside: the prompt already opened the reasoning (see
  // prompt_opens_reasoning).
  explicit ReasoningSplitter(bool starts_inside = false);

  struct Parts {
    std::string reasoning;  // without the tags and the whitespace around it
    std::string content;    // after </think> and the whitespace after it
  };
  Parts feed(std::string_view text);
  // End of the output: what was held back (reasoning never closed, cut short
  // by max_tokens, stays reasoning).
  Parts finish();

 private:
  enum class State { kStart, kReasoning, kAfterReasoning, kContent };
  void step(Parts& out);

  State state_;
  std::string held_;
  bool reasoning_begun_ = false;  // reasoning text sent: later whitespace is inside it
};

// Whether a rendered prompt ends inside an open <think> (trailing
// whitespace aside).
bool prompt_opens_reasoning(std::string_view rendered_prompt);

}  // namespace warden::server
