#pragma once
// Chat templates mark turns with special tokens whose text can also appear
// in ordinary content: `<|im_end|>` (ChatML), `<|eot_id|>` (Llama 3),
// `</s>` and `[INST]` (Llama 2, Mistral), `<end_of_turn>` (Gemma),
// `<｜end▁of▁sentence｜>` (DeepSeek), `<tool_call>` and `<think>` (Qwen's
// added tokens). A tool result that spells one either forges a turn
// boundary (a server that tokenizes it as the token) or is refused outright
// (warden serve answers 400, ending the task): a web page about chat
// templates would stop the agent. So the agent breaks such spellings in
// tool results with a zero-width space (U+200B) after the opening bracket;
// the text reads the same to a person and is no marker to any tokenizer.
#include <string>
#include <string_view>

namespace warden::agent {

std::string defang_turn_markers(std::string_view text);

}  // namespace warden::agent
