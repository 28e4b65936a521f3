#pragma once
// Pre-tokenizers of byte-level BPE vocabularies: the text is cut into words by
// a sequence of regular expressions before BPE merges run inside each word.
//
// Each expression is applied to every piece the previous one produced, and
// both its matches and the text between matches become pieces (the
// "isolated" split of Hugging Face tokenizers). Expressions run on PCRE2 with
// UTF and UCP, so \p{L}, \p{N}, \s ... use real Unicode properties. Bytes that
// are not valid UTF-8 never match and end up in the pieces between matches.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace warden::tokenizer {

struct PreTokenizerConfig {
  std::vector<std::string> patterns;
  bool ignore_merges = false;  // a word that is a whole token skips BPE (llama3)
  bool add_bos = false;        // default for tokenizer.ggml.add_bos_token
  bool has_bos = true;         // false: the vocab has no BOS token (chatglm)
};

// The configuration for a `tokenizer.ggml.pre` name; "" means "default".
// Throws warden::Error naming the value if it is not supported.
PreTokenizerConfig pre_tokenizer_config(std::string_view pre_name);

class PreTokenizer {
 public:
  // Compiles the patterns; throws warden::Error on a bad pattern.
  explicit PreTokenizer(const std::vector<std::string>& patterns);
  ~PreTokenizer();
  PreTokenizer(const PreTokenizer&) = delete;
  PreTokenizer& operator=(const PreTokenizer&) = delete;

  // The words of `text`, in order; they concatenate back to `text`.
  // Thread-safe: no state is shared between calls.
  std::vector<std::string_view> split(std::string_view text) const;

 private:
  struct Compiled;
  std::vector<std::unique_ptr<Compiled>> compiled_;
};

}  // namespace warden::tokenizer
