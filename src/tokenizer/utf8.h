#pragma once
// Small UTF-8 helpers shared by the tokenizers and the stream decoder.
// Validation is strict (RFC 3629): no overlong forms, no surrogates, nothing
// above U+10FFFF.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace warden::tokenizer::utf8 {

// Length (1-4) of the valid UTF-8 sequence that starts at text[pos], or 0 if
// the bytes there are not a complete valid sequence.
size_t sequence_length(std::string_view text, size_t pos);

// True if text[pos..] is a proper prefix of some valid sequence, i.e. more
// bytes could still complete it (used while streaming).
bool is_incomplete_prefix(std::string_view text, size_t pos);

// Length (>= 1) of the invalid stretch at text[pos] that one U+FFFD stands
// for: the longest prefix of a valid sequence found there ("maximal subpart",
// as Unicode recommends), or 1 byte. Only for positions where
// sequence_length() is 0.
size_t invalid_length(std::string_view text, size_t pos);

// `text` with every invalid stretch replaced by U+FFFD (a copy only if needed).
std::string sanitize(std::string_view text);
bool is_valid(std::string_view text);

// Appends the UTF-8 encoding of code point cp (must be <= 0x10FFFF).
void append(std::string& out, uint32_t cp);

// Decodes the valid sequence of `length` bytes at text[pos].
uint32_t decode(std::string_view text, size_t pos, size_t length);

inline constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

}  // namespace warden::tokenizer::utf8
