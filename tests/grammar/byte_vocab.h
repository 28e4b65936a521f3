#pragma once
// Test helper: a grammar Vocabulary from a byte-level BPE GGUF vocab (GPT-2,
// DeepSeek), with the GPT-2 byte-to-unicode mapping undone, so every token
// is the raw bytes it stands for.
#include <memory>
#include <string>

#include "grammar/vocab.h"

namespace warden::grammar::test {

// Undoes the GPT-2 byte-to-unicode mapping of one token's text. Returns
// false when the text holds a code point outside the mapping (then the
// token is not a byte-level token, e.g. an added special token).
bool gpt2_token_bytes(const std::string& text, std::string& bytes);

// Loads tokenizer.ggml.tokens/token_type/eos_token_id from `gguf_path`.
// Normal and byte tokens become text; control/user-defined/unused tokens are
// not allowed as text; EOS ends generation.
std::shared_ptr<const Vocabulary> load_byte_level_vocab(const std::string& gguf_path);

// A small vocabulary: every single byte, some multi-byte JSON-ish pieces,
// and one end token (the last id).
std::shared_ptr<const Vocabulary> small_vocab();

}  // namespace warden::grammar::test
