#pragma once
// The public chat templates of the model families make-model imitates,
// embedded as data (a user's machine has no copy of them). Each is the
// "chat_template" of the model's tokenizer_config.json on Hugging Face.
#include <string_view>

namespace warden::modelgen {

std::string_view qwen3_chat_template();   // Qwen/Qwen3-0.6B
std::string_view qwen25_chat_template();  // Qwen/Qwen2.5-7B-Instruct
std::string_view llama32_chat_template(); // meta-llama/Llama-3.2-3B-Instruct

}  // namespace warden::modelgen
