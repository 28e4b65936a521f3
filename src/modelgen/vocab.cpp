#include "modelgen/vocab.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <unordered_set>

#include "modelgen/chat_templates.h"
#include "util/error.h"

namespace warden::modelgen {
namespace {

struct Special {
  std::string text;
  int32_t type;
};

// Qwen2.5's added tokens, ids 151643.. (tokenizer_config.json). Tokens that
// are "special": true, or look like <|...|>, are CONTROL in converted files;
// the others (<tool_call>, <think>, ...) are USER_DEFINED.
std::vector<Special> qwen_specials(bool qwen3) {
  std::vector<Special> s = {
      {"<|endoftext|>", kControl},      {"<|im_start|>", kControl},     {"<|im_end|>", kControl},
      {"<|object_ref_start|>", kControl}, {"<|object_ref_end|>", kControl}, {"<|box_start|>", kControl},
      {"<|box_end|>", kControl},        {"<|quad_start|>", kControl},   {"<|quad_end|>", kControl},
      {"<|vision_start|>", kControl},   {"<|vision_end|>", kControl},   {"<|vision_pad|>", kControl},
      {"<|image_pad|>", kControl},      {"<|video_pad|>", kControl},    {"<tool_call>", kUserDefined},
      {"</tool_call>", kUserDefined},   {"<|fim_prefix|>", kControl},   {"<|fim_middle|>", kControl},
      {"<|fim_suffix|>", kControl},     {"<|fim_pad|>", kControl},      {"<|repo_name|>", kControl},
      {"<|file_sep|>", kControl},
  };
  if (qwen3) {
    s.push_back({"<tool_response>", kUserDefined});
    s.push_back({"</tool_response>", kUserDefined});
    s.push_back({"<think>", kUserDefined});
    s.push_back({"</think>", kUserDefined});
  }
  return s;
}

// Llama 3's 256 special tokens, ids 128000..128255 (all CONTROL).
std::vector<Special> llama3_specials(int64_t n_reserved) {
  std::vector<Special> s = {
      {"<|begin_of_text|>", kControl}, {"<|end_of_text|>", kControl},
      {"<|reserved_special_token_0|>", kControl}, {"<|reserved_special_token_1|>", kControl},
      {"<|finetune_right_pad_id|>", kControl}, {"<|reserved_special_token_2|>", kControl},
      {"<|start_header_id|>", kControl}, {"<|end_header_id|>", kControl},
      {"<|eom_id|>", kControl}, {"<|eot_id|>", kControl}, {"<|python_tag|>", kControl},
  };
  for (int64_t i = 0; i < n_reserved; i++)
    s.push_back({"<|reserved_special_token_" + std::to_string(3 + i) + "|>", kControl});
  return s;
}

// SplitMix64: small, fast and fully deterministic.
struct Rng {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double uniform() { return double(next() >> 11) * (1.0 / 9007199254740992.0); }
  // An index in [0, n), log-uniform so that P(i) ~ 1/(i+1): earlier tokens
  // are far more frequent, as in natural text (Zipf), so common short pieces
  // combine into longer ones the way real BPE merges do.
  size_t front_biased(size_t n) {
    const double i = std::exp(uniform() * std::log(double(n) + 1.0)) - 1.0;
    return std::min(n - 1, size_t(i));
  }
};

// Builds the merged tokens in raw bytes; converted to unicode form at the end.
class MergeBuilder {
 public:
  explicit MergeBuilder(std::vector<std::string>& raw) : raw_(raw) {
    for (const auto& t : raw_) known_.insert(t);
    for (char c = 'a'; c <= 'z'; c++) suffixes_.push_back(std::string(1, c));
  }

  // Adds left+right if new; both must already be tokens.
  bool merge(const std::string& left, const std::string& right) {
    std::string joined = left + right;
    if (known_.count(joined)) return false;
    known_.insert(joined);
    raw_.push_back(joined);
    pairs_.emplace_back(left, right);
    classify(joined);
    return true;
  }

  void structured_merges() {
    // Whitespace runs, as code and prose have them.
    merge(" ", " "); merge("\n", "\n"); merge("\t", "\t"); merge("  ", "  "); merge("\n\n", "\n\n");
    // UTF-8 sequences of common non-ASCII characters: real multi-byte tokens.
    for (const char* ch : {"\xc3\xa9", "\xc3\xa8", "\xc3\xa0", "\xc3\xbc", "\xc3\xb6", "\xc3\xa4", "\xc3\xb1",
                           "\xc3\xa7", "\xc3\x9f", "\xe2\x80\x94", "\xe2\x80\x9c", "\xe2\x80\x9d", "\xe2\x80\x99",
                           "\xe2\x80\xa6", "\xe7\x9a\x84", "\xe6\x98\xaf", "\xe4\xb8\x80", "\xd0\xbe", "\xd0\xb0"}) {
      const std::string s(ch);
      merge(s.substr(0, 1), s.substr(1, 1));
      if (s.size() == 3) merge(s.substr(0, 2), s.substr(2, 1));
    }
    // Letter pairs, most frequent first (English letter frequencies), with
    // and without a leading space.
    const std::string letters = "etaoinshrdlcumwfgypbvkjxqz";
    std::vector<std::pair<double, std::pair<std::string, std::string>>> pairs;
    for (size_t i = 0; i < letters.size(); i++) {
      const double fi = 1.0 / double(i + 1);
      pairs.push_back({fi * 1.5, {" ", std::string(1, letters[i])}});
      pairs.push_back({fi * 0.3, {" ", std::string(1, char(std::toupper(letters[i])))}});
      for (size_t j = 0; j < letters.size(); j++)
        pairs.push_back({fi / double(j + 1), {std::string(1, letters[i]), std::string(1, letters[j])}});
    }
    std::stable_sort(pairs.begin(), pairs.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    for (const auto& [score, pair] : pairs) merge(pair.first, pair.second);
  }

  // Grows words from earlier tokens until `count` tokens exist.
  void random_merges(size_t count) {
    Rng rng{0x77617264656e0001ull};  // fixed: the vocab never depends on --seed
    size_t max_len = 12;
    size_t misses = 0;
    while (raw_.size() < count) {
      const std::string& left = words_[rng.front_biased(words_.size())];
      const std::string& right = suffixes_[rng.front_biased(suffixes_.size())];
      if (left.size() + right.size() <= max_len && merge(left, right)) {
        misses = 0;
      } else if (++misses > 10000) {
        max_len += 4;  // the short combinations are used up: allow longer words
        misses = 0;
      }
    }
  }

  const std::vector<std::pair<std::string, std::string>>& pairs() const { return pairs_; }

 private:
  // Words may start with a space or a capital; suffixes are lowercase only.
  void classify(const std::string& t) {
    bool letters_only = true, lower_only = true;
    for (size_t i = 0; i < t.size(); i++) {
      const unsigned char c = t[i];
      const bool lead_space = i == 0 && c == ' ';
      if (!lead_space && !std::isalpha(c)) letters_only = false;
      if (!std::islower(c)) lower_only = false;
    }
    if (letters_only && t.size() >= 2) words_.push_back(t);
    if (lower_only) suffixes_.push_back(t);
  }

  std::vector<std::string>& raw_;
  std::unordered_set<std::string> known_;
  std::vector<std::pair<std::string, std::string>> pairs_;
  std::vector<std::string> words_;
  std::vector<std::string> suffixes_;
};

std::string to_unicode_form(const std::string& raw) {
  std::string out;
  for (unsigned char c : raw) out += byte_to_unicode(c);
  return out;
}

struct FamilyLayout {
  std::string pre;
  std::vector<Special> specials;
  int64_t real_special_start;  // the id of the first special in the full-size vocab
  std::string bos, eos, eot, pad;
  bool add_bos;
  std::string chat_template;
};

FamilyLayout layout_of(VocabFamily family, int64_t n_reserved_special) {
  switch (family) {
    case VocabFamily::qwen2:
      return {"qwen2", qwen_specials(false), 151643, "<|endoftext|>", "<|im_end|>", "<|im_end|>",
              "<|endoftext|>", false, std::string(qwen25_chat_template())};
    case VocabFamily::qwen3:
      return {"qwen2", qwen_specials(true), 151643, "<|endoftext|>", "<|im_end|>", "<|im_end|>",
              "<|endoftext|>", false, std::string(qwen3_chat_template())};
    case VocabFamily::llama3:
      return {"llama-bpe", llama3_specials(n_reserved_special), 128000, "<|begin_of_text|>", "<|eot_id|>",
              "<|eot_id|>", "", true, std::string(llama32_chat_template())};
  }
  throw Error("unknown vocab family");
}

}  // namespace

std::vector<uint8_t> gpt2_byte_order() {
  std::vector<uint8_t> order;
  for (int b = 0; b < 256; b++)
    if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) order.push_back(uint8_t(b));
  for (int b = 0; b < 256; b++)
    if (!((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF))) order.push_back(uint8_t(b));
  return order;
}

std::string byte_to_unicode(uint8_t byte) {
  // Printable bytes stand for themselves; the others map to U+0100 onwards
  // in byte order, as GPT-2's bytes_to_unicode() does.
  static const std::vector<uint32_t> table = [] {
    std::vector<uint32_t> cp(256);
    uint32_t next = 256;
    for (int b = 0; b < 256; b++) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      cp[b] = printable ? uint32_t(b) : next++;
    }
    return cp;
  }();
  const uint32_t c = table[byte];
  std::string out;
  if (c < 0x80) {
    out += char(c);
  } else {  // all stand-ins are below U+0800: two UTF-8 bytes
    out += char(0xC0 | (c >> 6));
    out += char(0x80 | (c & 0x3F));
  }
  return out;
}

Vocab build_vocab(VocabFamily family, int64_t n_vocab, int64_t n_reserved_special) {
  FamilyLayout layout = layout_of(family, n_reserved_special);
  const int64_t n_special = int64_t(layout.specials.size());
  if (n_vocab < 256 + n_special + 1024)
    throw Error("vocabulary of " + std::to_string(n_vocab) + " tokens is too small");
  // Specials sit at their real ids when the vocab is full size, else at the end.
  const int64_t special_start =
      n_vocab >= layout.real_special_start + n_special ? layout.real_special_start : n_vocab - n_special;
  const size_t n_regular = size_t(n_vocab - n_special);

  std::vector<std::string> raw;
  for (uint8_t b : gpt2_byte_order()) raw.push_back(std::string(1, char(b)));
  MergeBuilder builder(raw);
  builder.structured_merges();
  builder.random_merges(n_regular);

  Vocab v;
  v.pre = layout.pre;
  v.add_bos = layout.add_bos;
  v.chat_template = layout.chat_template;
  v.tokens.reserve(size_t(n_vocab));
  v.types.reserve(size_t(n_vocab));
  size_t next_regular = 0;
  for (int64_t id = 0; id < n_vocab; id++) {
    if (id >= special_start && id < special_start + n_special) {
      const Special& s = layout.specials[size_t(id - special_start)];
      v.tokens.push_back(s.text);
      v.types.push_back(s.type);
      if (s.text == layout.bos) v.bos = id;
      if (s.text == layout.eos) v.eos = id;
      if (s.text == layout.eot) v.eot = id;
      if (s.text == layout.pad) v.pad = id;
    } else {
      v.tokens.push_back(to_unicode_form(raw[next_regular++]));
      v.types.push_back(kNormal);
    }
  }
  v.merges.reserve(builder.pairs().size());
  for (const auto& [left, right] : builder.pairs())
    v.merges.push_back(to_unicode_form(left) + " " + to_unicode_form(right));
  return v;
}

}  // namespace warden::modelgen
