#pragma once
// Tokenizers built from GGUF metadata (tokenizer.ggml.*):
//  - "llama": SentencePiece-style BPE over scores, with "▁" for spaces, a
//    leading space added to the text, and byte fallback through <0xNN> tokens;
//  - "gpt2": byte-level BPE over ranked merges, after the pre-tokenizer named
//    by tokenizer.ggml.pre (see pretokenizer.h).
// Token ids match the reference implementation (llama.cpp / Hugging Face)
// token for token.
//
// Special tokens: control and unknown tokens are produced from text only when
// encode() is asked to parse special tokens; plain text can never turn into a
// control token (so untrusted text cannot forge e.g. an end-of-turn marker).
// User-defined tokens are always matched as whole strings, as the reference does.
//
// A Tokenizer is immutable after construction; all const methods are
// thread-safe.
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace warden::gguf {
class File;
}

namespace warden::tokenizer {

class PreTokenizer;

// Values of tokenizer.ggml.token_type.
enum class TokenType : int32_t {
  Undefined = 0,
  Normal = 1,
  Unknown = 2,
  Control = 3,
  UserDefined = 4,
  Unused = 5,
  Byte = 6,
};

enum class Kind { SentencePiece, BytePairEncoding };

// Everything a tokenizer is built from: what from_gguf reads out of the file.
// Tests and the fuzzer build small vocabularies with it directly.
struct VocabSpec {
  std::string model;                // tokenizer.ggml.model: "llama" or "gpt2"
  std::string pre;                  // tokenizer.ggml.pre ("" = default); gpt2 only
  std::string name;                 // general.name (some models strip spaces around specials)
  std::vector<std::string> tokens;  // tokenizer.ggml.tokens
  std::vector<float> scores;        // tokenizer.ggml.scores: empty or one per token
  std::vector<int64_t> types;       // tokenizer.ggml.token_type: empty or one per token
  std::vector<std::string> merges;  // tokenizer.ggml.merges ("left right"), gpt2 only
  // Special token ids; unset means the model's default. Out-of-range ids are
  // ignored with a warning (as the reference does).
  std::optional<int64_t> bos, eos, eot, eom, unk;
  std::optional<bool> add_bos, add_eos, add_space_prefix;
};

class Tokenizer {
 public:
  // Reads tokenizer.ggml.* from the file. Throws warden::Error naming the
  // file and the problem if the vocabulary is missing, malformed or of an
  // unsupported kind.
  static Tokenizer from_gguf(const gguf::File& file);
  // Throws warden::Error (without a file name) on a malformed spec.
  static Tokenizer from_spec(const VocabSpec& spec);

  // Token ids for `text`. add_bos: put the BOS token first (if the vocab has
  // one). parse_special: turn the text of control/unknown tokens into those
  // tokens (only for trusted text such as a rendered chat template).
  std::vector<int32_t> encode(std::string_view text, bool add_bos, bool parse_special) const;

  // The bytes of one token. Control and unknown tokens give "" unless
  // render_special. Pieces may hold partial UTF-8 (byte tokens).
  // Throws warden::Error for an id outside the vocabulary.
  std::string token_to_piece(int32_t id, bool render_special) const;
  // Concatenated pieces; for SentencePiece vocabularies the single leading
  // space of the first piece with text is dropped (sentencepiece's decode).
  std::string decode(const std::vector<int32_t>& ids, bool render_special) const;

  int32_t bos() const { return bos_; }  // -1 if none
  int32_t eos() const { return eos_; }  // -1 if none
  int32_t eot() const { return eot_; }  // -1 if none
  int32_t unk() const { return unk_; }  // -1 if none
  bool add_bos() const { return add_bos_; }
  bool add_eos() const { return add_eos_; }
  // EOS, EOT, EOM and the other tokens the reference treats as the end of a
  // generation (<|im_end|>, <|eot_id|>, <|end|>, <end_of_turn>, ...).
  bool is_end_of_generation(int32_t id) const;

  Kind kind() const { return kind_; }
  size_t size() const { return text_.size(); }
  // Token text as stored in the vocabulary ("▁the", "Ġthe", "<0x0A>", "<s>").
  const std::string& text(int32_t id) const;
  TokenType type(int32_t id) const;
  float score(int32_t id) const;
  // The id of a token by its exact vocabulary text, or -1.
  int32_t find(std::string_view token_text) const;

  // True if the leading space of the very first text piece is dropped when
  // decoding (SentencePiece vocabularies that add a space prefix).
  bool strips_leading_space() const { return kind_ == Kind::SentencePiece && add_space_prefix_; }

 private:
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct Merge {
    int32_t rank;
    int32_t result;
  };
  struct Fragment {
    int32_t token;   // -1 for raw text
    size_t offset;   // raw text range
    size_t length;
  };

  Tokenizer() = default;
  void load_tokens(const VocabSpec& spec);
  void load_specials(const VocabSpec& spec);
  void load_merges(const VocabSpec& spec);
  void build_pieces();
  void build_special_list(const VocabSpec& spec);

  std::vector<Fragment> partition_specials(std::string_view text, bool parse_special) const;
  void encode_spm(std::string_view text, std::vector<int32_t>& out) const;
  void encode_bpe(std::string_view text, std::vector<int32_t>& out) const;
  void encode_bpe_word(std::string_view word, std::vector<int32_t>& out) const;
  void push_byte(uint8_t byte, std::vector<int32_t>& out) const;
  bool mergeable(int32_t id) const;
  int32_t lookup(std::string_view text) const;

  Kind kind_ = Kind::SentencePiece;
  std::vector<std::string> text_;
  std::vector<float> score_;
  std::vector<TokenType> type_;
  std::vector<std::string> piece_;  // decoded bytes of each token
  std::vector<uint8_t> strip_;      // kStripLeft / kStripRight: whitespace eaten around a special
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> id_of_;
  std::array<int32_t, 256> byte_token_{};  // token for each raw byte, -1 if none
  std::unordered_map<uint64_t, Merge> merges_;  // (left id << 32 | right id) -> merge
  std::shared_ptr<const PreTokenizer> pre_;
  bool ignore_merges_ = false;
  std::vector<int32_t> specials_;  // control/user-defined/unknown, longest text first
  std::vector<int32_t> eog_;       // sorted
  int32_t bos_ = -1, eos_ = -1, eot_ = -1, eom_ = -1, unk_ = -1;
  bool add_bos_ = false, add_eos_ = false, add_space_prefix_ = false;
};

// Turns a stream of generated token ids into text that is always whole,
// valid UTF-8: bytes of a character split across tokens are held back until
// the character is complete; invalid bytes come out as U+FFFD. For
// SentencePiece vocabularies the leading space of the very first piece with
// text is dropped (so a story starting with "▁Once" prints "Once").
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer, bool render_special = false);
  // Declares that these tokens come before the stream (e.g. the prompt): if
  // they hold any text, the first pushed piece is not at the start of the text
  // and keeps its leading space.
  void continue_after(const std::vector<int32_t>& preceding);
  // Text that became complete with this token (may be empty).
  std::string push(int32_t id);
  // Whatever is held back, with an incomplete character as U+FFFD.
  std::string flush();

 private:
  std::string take_complete(bool at_end);

  const Tokenizer* tokenizer_;
  bool render_special_;
  bool at_start_ = true;
  std::string pending_;
};

}  // namespace warden::tokenizer
