#pragma once
// A working GPT-2-style byte-level BPE vocabulary of a given size, laid out
// like the real model family's: 256 byte tokens (in GPT-2's byte-to-unicode
// form and order), then tokens built by deterministic merges, and the
// family's special tokens at their real ids (or at the end of a small vocab).
// Every merged token is the concatenation of two earlier tokens, with a
// merges entry "A B". The vocabulary depends only on the family and size,
// never on --seed, so tokenization is the same for every generated model.
#include <cstdint>
#include <string>
#include <vector>

#include "modelgen/preset.h"

namespace warden::modelgen {

// llama.cpp's token types (tokenizer.ggml.token_type).
enum TokenType : int32_t { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

struct Vocab {
  std::string model = "gpt2";       // tokenizer.ggml.model
  std::string pre;                  // tokenizer.ggml.pre
  std::vector<std::string> tokens;  // byte-level unicode form
  std::vector<int32_t> types;
  std::vector<std::string> merges;  // "A B", rank order
  int64_t bos = -1, eos = -1, eot = -1, pad = -1;
  bool add_bos = false;
  std::string chat_template;
};

Vocab build_vocab(VocabFamily family, int64_t n_vocab, int64_t n_reserved_special);

// GPT-2's printable stand-in for a byte (UTF-8), e.g. ' ' -> "Ġ".
std::string byte_to_unicode(uint8_t byte);
// The 256 bytes in GPT-2's token order (printable ones first).
std::vector<uint8_t> gpt2_byte_order();

}  // namespace warden::modelgen
