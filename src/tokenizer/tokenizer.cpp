#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <queue>

#include "gguf/gguf.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/utf8.h"
#include "util/error.h"
#include "util/log.h"

namespace warden::tokenizer {
namespace {

constexpr std::string_view kSpmSpace = "\xE2\x96\x81";  // "▁" U+2581, SentencePiece's space
constexpr uint8_t kStripLeft = 1, kStripRight = 2;

// Texts the reference treats as end-of-generation markers whatever their
// declared type (it forces them to control type).
constexpr std::string_view kEndOfGenerationTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>", "<EOT>",
    // fill-in-the-middle markers that end a completion (Qwen coder models)
    "<|fim_pad|>", "<|fim_repo|>", "<|repo_name|>", "<|file_sep|>",
};
// Texts that identify the end-of-turn token when the file names none.
constexpr std::string_view kEndOfTurnTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<EOT>",
    "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>",  // DeepSeek "<｜end▁of▁sentence｜>"
};

bool is_ascii_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }

std::string replace_all(std::string_view text, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (true) {
    size_t hit = text.find(from, pos);
    if (hit == std::string_view::npos) break;
    out.append(text.substr(pos, hit - pos));
    out.append(to);
    pos = hit + from.size();
  }
  out.append(text.substr(pos));
  return out;
}

// GPT-2's byte-level alphabet: every byte is shown as one printable code point
// (printable Latin-1 bytes as themselves, the rest as U+0100 onwards).
struct ByteLevelAlphabet {
  std::array<uint32_t, 256> code_point{};
  std::unordered_map<uint32_t, uint8_t> byte_of;

  ByteLevelAlphabet() {
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; b++) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      code_point[b] = printable ? b : next++;
      byte_of[code_point[b]] = uint8_t(b);
    }
  }
};

const ByteLevelAlphabet& byte_level() {
  static const ByteLevelAlphabet alphabet;
  return alphabet;
}

std::string byte_level_encode(std::string_view raw) {
  std::string out;
  out.reserve(raw.size() * 2);
  for (unsigned char b : raw) utf8::append(out, byte_level().code_point[b]);
  return out;
}

// Token text in the byte-level alphabet -> raw bytes. Code points outside the
// alphabet (only in odd vocabularies) are kept as they are.
std::string byte_level_decode(std::string_view text) {
  std::string out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t len = utf8::sequence_length(text, pos);
    if (len == 0) {
      out += text[pos++];
      continue;
    }
    auto it = byte_level().byte_of.find(utf8::decode(text, pos, len));
    if (it != byte_level().byte_of.end())
      out += char(it->second);
    else
      out.append(text.substr(pos, len));
    pos += len;
  }
  return out;
}

// "<0xAB>" -> 0xAB; nullopt if the text is not of that form.
std::optional<uint8_t> parse_byte_token(std::string_view text) {
  if (text.size() != 6 || text.substr(0, 3) != "<0x" || text[5] != '>') return std::nullopt;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  int hi = hex(text[3]), lo = hex(text[4]);
  if (hi < 0 || lo < 0) return std::nullopt;
  return uint8_t(hi * 16 + lo);
}

std::string lowercase(std::string s) {
  for (auto& c : s)
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
  return s;
}

}  // namespace

// ---------------------------------------------------------------------------
// Loading

Tokenizer Tokenizer::from_gguf(const gguf::File& file) {
  const std::string& path = file.path();
  if (!file.has("tokenizer.ggml.model"))
    throw Error(path + ": the file has no tokenizer (tokenizer.ggml.model is missing)");
  if (!file.has("tokenizer.ggml.tokens"))
    throw Error(path + ": the file has no vocabulary (tokenizer.ggml.tokens is missing)");
  VocabSpec spec;
  const char* key = "";
  auto optional_string = [&](const char* k, std::string& out) {
    key = k;
    if (file.has(k)) out = file.get(k).as_string();
  };
  try {
    optional_string("tokenizer.ggml.model", spec.model);
    optional_string("tokenizer.ggml.pre", spec.pre);
    optional_string("general.name", spec.name);
    key = "tokenizer.ggml.tokens";
    spec.tokens = file.get(key).as_string_array();
    key = "tokenizer.ggml.scores";
    if (file.has(key)) spec.scores = file.get(key).as_float_array();
    key = "tokenizer.ggml.token_type";
    if (file.has(key)) spec.types = file.get(key).as_int_array();
    key = "tokenizer.ggml.merges";
    if (file.has(key)) spec.merges = file.get(key).as_string_array();
    const std::pair<const char*, std::optional<int64_t>*> ids[] = {
        {"tokenizer.ggml.bos_token_id", &spec.bos},     {"tokenizer.ggml.eos_token_id", &spec.eos},
        {"tokenizer.ggml.eot_token_id", &spec.eot},     {"tokenizer.ggml.eom_token_id", &spec.eom},
        {"tokenizer.ggml.unknown_token_id", &spec.unk},
    };
    for (const auto& [id_key, slot] : ids) {
      key = id_key;
      if (file.has(key)) *slot = file.get(key).as_int();
    }
    const std::pair<const char*, std::optional<bool>*> flags[] = {
        {"tokenizer.ggml.add_bos_token", &spec.add_bos},
        {"tokenizer.ggml.add_eos_token", &spec.add_eos},
        {"tokenizer.ggml.add_space_prefix", &spec.add_space_prefix},
    };
    for (const auto& [flag_key, slot] : flags) {
      key = flag_key;
      if (file.has(key)) *slot = file.get(key).as_bool();
    }
  } catch (const Error& e) {
    throw Error(path + ": " + key + ": " + e.what());
  }
  try {
    return from_spec(spec);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
}

Tokenizer Tokenizer::from_spec(const VocabSpec& spec) {
  Tokenizer t;
  if (spec.model == "llama") {
    t.kind_ = Kind::SentencePiece;
    t.add_bos_ = true;
    t.add_space_prefix_ = true;
  } else if (spec.model == "gpt2") {
    t.kind_ = Kind::BytePairEncoding;
    auto config = pre_tokenizer_config(spec.pre);
    t.pre_ = std::make_shared<PreTokenizer>(config.patterns);
    t.ignore_merges_ = config.ignore_merges;
    t.add_bos_ = config.add_bos;
  } else {
    throw Error("unsupported tokenizer.ggml.model '" + spec.model + "' (supported: llama, gpt2)");
  }
  t.load_tokens(spec);
  t.load_specials(spec);
  if (t.kind_ == Kind::BytePairEncoding) t.load_merges(spec);
  t.build_pieces();
  t.build_special_list(spec);
  return t;
}

void Tokenizer::load_tokens(const VocabSpec& spec) {
  const size_t n = spec.tokens.size();
  if (n == 0) throw Error("tokenizer.ggml.tokens is empty");
  if (n >= size_t(INT32_MAX)) throw Error("tokenizer.ggml.tokens has too many entries");
  if (!spec.scores.empty() && spec.scores.size() != n)
    throw Error("tokenizer.ggml.scores has " + std::to_string(spec.scores.size()) + " entries for " +
                std::to_string(n) + " tokens");
  if (!spec.types.empty() && spec.types.size() != n)
    throw Error("tokenizer.ggml.token_type has " + std::to_string(spec.types.size()) + " entries for " +
                std::to_string(n) + " tokens");
  text_ = spec.tokens;
  score_ = spec.scores.empty() ? std::vector<float>(n, 0.0f) : spec.scores;
  type_.assign(n, TokenType::Normal);
  id_of_.reserve(n);
  for (size_t i = 0; i < n; i++) {
    if (!spec.types.empty()) {
      int64_t v = spec.types[i];
      type_[i] = (v >= 0 && v <= 6) ? TokenType(v) : TokenType::Undefined;
    }
    // An empty token could never be matched; give it a visible placeholder
    // text as the reference does.
    if (text_[i].empty()) text_[i] = "[EMPTY_" + std::to_string(i) + "]";
    id_of_[text_[i]] = int32_t(i);  // on duplicates the later id wins (reference behaviour)
  }

  // The token each raw byte falls back to. Never a control token: plain text
  // must not be able to produce one.
  byte_token_.fill(-1);
  auto usable_for_bytes = [&](int32_t id) {
    return id >= 0 && (type_[size_t(id)] == TokenType::Normal || type_[size_t(id)] == TokenType::Byte ||
                       type_[size_t(id)] == TokenType::UserDefined);
  };
  for (int b = 0; b < 256; b++) {
    int32_t id = -1;
    if (kind_ == Kind::SentencePiece) {
      static const char* hex = "0123456789ABCDEF";
      const char name[] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>'};
      id = lookup(std::string_view(name, sizeof name));
      if (!usable_for_bytes(id) && b < 0x80) {  // some vocabularies hold ASCII as plain one-byte tokens
        const char c = char(b);
        id = lookup(std::string_view(&c, 1));
      }
    } else {
      std::string ch;
      utf8::append(ch, byte_level().code_point[b]);
      id = lookup(ch);
    }
    byte_token_[b] = usable_for_bytes(id) ? id : -1;
  }
}

void Tokenizer::load_specials(const VocabSpec& spec) {
  const auto n = int64_t(text_.size());
  auto assign = [&](const char* what, const std::optional<int64_t>& value, int32_t& slot) {
    if (!value) return;
    if (*value < 0 || *value >= n) {
      log::warn("tokenizer: ignoring " + std::string(what) + " = " + std::to_string(*value) +
                " (outside the vocabulary of " + std::to_string(n) + " tokens)");
      return;
    }
    slot = int32_t(*value);
  };
  if (kind_ == Kind::SentencePiece) {  // the reference's defaults for llama vocabularies
    bos_ = n > 1 ? 1 : -1;
    eos_ = n > 2 ? 2 : -1;
    unk_ = 0;
  }
  assign("tokenizer.ggml.bos_token_id", spec.bos, bos_);
  assign("tokenizer.ggml.eos_token_id", spec.eos, eos_);
  assign("tokenizer.ggml.eot_token_id", spec.eot, eot_);
  assign("tokenizer.ggml.eom_token_id", spec.eom, eom_);
  assign("tokenizer.ggml.unknown_token_id", spec.unk, unk_);
  if (kind_ == Kind::BytePairEncoding && !pre_tokenizer_config(spec.pre).has_bos) bos_ = -1;
  if (spec.add_bos) add_bos_ = *spec.add_bos;
  if (spec.add_eos) add_eos_ = *spec.add_eos;
  if (spec.add_space_prefix) add_space_prefix_ = *spec.add_space_prefix;
  if (bos_ < 0) add_bos_ = false;
  if (eos_ < 0) add_eos_ = false;

  // Files often name no end-of-turn / end-of-message token; find them by
  // text (the lowest id if several match) and treat them as control tokens.
  auto lowest_id_with_text = [&](const auto& texts) {
    int32_t best = -1;
    for (std::string_view t : texts) {
      int32_t id = lookup(t);
      if (id >= 0 && (best < 0 || id < best)) best = id;
    }
    if (best >= 0) type_[size_t(best)] = TokenType::Control;
    return best;
  };
  if (eot_ < 0) eot_ = lowest_id_with_text(kEndOfTurnTexts);
  if (eom_ < 0) eom_ = lowest_id_with_text(std::array<std::string_view, 1>{"<|eom_id|>"});

  for (int32_t id : {eos_, eot_, eom_})
    if (id >= 0) eog_.push_back(id);
  for (std::string_view t : kEndOfGenerationTexts) {
    int32_t id = lookup(t);
    if (id < 0) continue;
    eog_.push_back(id);
    // An end marker must never come out of plain text: treat it as control.
    type_[size_t(id)] = TokenType::Control;
  }
  std::sort(eog_.begin(), eog_.end());
  eog_.erase(std::unique(eog_.begin(), eog_.end()), eog_.end());
}

void Tokenizer::load_merges(const VocabSpec& spec) {
  if (spec.merges.empty()) throw Error("tokenizer.ggml.merges is missing or empty (needed by a gpt2 tokenizer)");
  merges_.reserve(spec.merges.size());
  size_t skipped = 0;
  for (size_t rank = 0; rank < spec.merges.size(); rank++) {
    const std::string& line = spec.merges[rank];
    // The separator is the first space after the first character (a merge
    // part is never empty and never contains a space).
    size_t sep = line.size() > 1 ? line.find(' ', 1) : std::string::npos;
    if (sep == std::string::npos) {
      skipped++;
      continue;
    }
    std::string_view left(line.data(), sep), right(line.data() + sep + 1, line.size() - sep - 1);
    int32_t l = lookup(left), r = lookup(right), result = lookup(std::string(left) + std::string(right));
    // A merge is usable only if both parts and the result are tokens that
    // plain text may produce.
    if (l < 0 || r < 0 || result < 0 || !mergeable(result)) {
      skipped++;
      continue;
    }
    const uint64_t key = (uint64_t(uint32_t(l)) << 32) | uint32_t(r);
    merges_.emplace(key, Merge{int32_t(std::min<size_t>(rank, INT32_MAX)), result});  // first rank wins
  }
  if (skipped > 0)
    log::debug("tokenizer: " + std::to_string(skipped) + " of " + std::to_string(spec.merges.size()) +
               " merges are unusable (malformed or not in the vocabulary)");
}

void Tokenizer::build_pieces() {
  piece_.resize(text_.size());
  for (size_t id = 0; id < text_.size(); id++) {
    const std::string& text = text_[id];
    switch (type_[id]) {
      case TokenType::Control:
      case TokenType::Unknown:
      case TokenType::UserDefined:
        piece_[id] = text;
        break;
      case TokenType::Unused:
      case TokenType::Undefined:
        piece_[id].clear();
        break;
      case TokenType::Byte:
        if (kind_ == Kind::SentencePiece) {
          if (auto byte = parse_byte_token(text)) {
            piece_[id] = std::string(1, char(*byte));
            break;
          }
        }
        [[fallthrough]];
      case TokenType::Normal:
        piece_[id] = kind_ == Kind::SentencePiece ? replace_all(text, kSpmSpace, " ") : byte_level_decode(text);
        break;
    }
  }
}

void Tokenizer::build_special_list(const VocabSpec& spec) {
  strip_.assign(text_.size(), 0);
  for (size_t id = 0; id < text_.size(); id++) {
    TokenType t = type_[id];
    if (t == TokenType::Control || t == TokenType::UserDefined || t == TokenType::Unknown)
      specials_.push_back(int32_t(id));
  }
  // Longest first, so a special token never matches inside a longer one.
  std::stable_sort(specials_.begin(), specials_.end(),
                   [&](int32_t a, int32_t b) { return text_[size_t(a)].size() > text_[size_t(b)].size(); });

  // Phi-3's added tokens eat the whitespace that follows them (its
  // tokenizer.json marks them rstrip); the file does not record it, so the
  // reference keys it on the model name.
  const std::string name = lowercase(spec.name);
  if (name.find("phi-3") != std::string::npos || name.find("phi3") != std::string::npos) {
    for (int32_t id : specials_) strip_[size_t(id)] |= kStripRight;
    if (int32_t id = lookup("</s>"); id >= 0) strip_[size_t(id)] |= kStripRight;
    for (std::string_view t : {"<unk>", "<s>", "<|endoftext|>"})
      if (int32_t id = lookup(t); id >= 0) strip_[size_t(id)] &= uint8_t(~kStripRight);
  }
}

// ---------------------------------------------------------------------------
// Lookups

int32_t Tokenizer::lookup(std::string_view text) const {
  auto it = id_of_.find(text);
  return it == id_of_.end() ? -1 : it->second;
}

int32_t Tokenizer::find(std::string_view token_text) const { return lookup(token_text); }

// Tokens plain text may turn into: never control, unknown, unused or byte
// tokens (those come only from special-token parsing or byte fallback).
bool Tokenizer::mergeable(int32_t id) const {
  TokenType t = type_[size_t(id)];
  return t == TokenType::Normal || t == TokenType::UserDefined;
}

const std::string& Tokenizer::text(int32_t id) const {
  if (id < 0 || size_t(id) >= text_.size())
    throw Error("token id " + std::to_string(id) + " is outside the vocabulary of " + std::to_string(text_.size()));
  return text_[size_t(id)];
}

TokenType Tokenizer::type(int32_t id) const {
  text(id);  // range check
  return type_[size_t(id)];
}

float Tokenizer::score(int32_t id) const {
  text(id);
  return score_[size_t(id)];
}

bool Tokenizer::is_end_of_generation(int32_t id) const { return std::binary_search(eog_.begin(), eog_.end(), id); }

// ---------------------------------------------------------------------------
// Encoding

std::vector<Tokenizer::Fragment> Tokenizer::partition_specials(std::string_view text, bool parse_special) const {
  std::vector<Fragment> fragments;
  if (text.empty()) return fragments;
  fragments.push_back({-1, 0, text.size()});
  std::vector<Fragment> next;
  for (int32_t id : specials_) {
    const TokenType t = type_[size_t(id)];
    // User-defined tokens are always matched; control and unknown ones only
    // when asked to parse special tokens.
    if (!parse_special && (t == TokenType::Control || t == TokenType::Unknown)) continue;
    const std::string& special = text_[size_t(id)];
    const uint8_t strip = strip_[size_t(id)];
    next.clear();
    for (const Fragment& f : fragments) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      size_t pos = f.offset;
      const size_t end = f.offset + f.length;
      while (pos < end) {
        size_t hit = text.substr(pos, end - pos).find(special);
        if (hit == std::string_view::npos) break;
        hit += pos;
        size_t left_end = hit;
        if (strip & kStripLeft)
          while (left_end > pos && is_ascii_space(text[left_end - 1])) left_end--;
        if (left_end > pos) next.push_back({-1, pos, left_end - pos});
        next.push_back({id, 0, 0});
        pos = hit + special.size();
        if (strip & kStripRight)
          while (pos < end && is_ascii_space(text[pos])) pos++;
      }
      if (pos < end) next.push_back({-1, pos, end - pos});
    }
    fragments.swap(next);
  }
  return fragments;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_bos, bool parse_special) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 2);
  if (add_bos && bos_ >= 0) out.push_back(bos_);
  const auto fragments = partition_specials(text, parse_special);
  bool after_special = true;  // SentencePiece: the text start counts as after a special token
  for (const Fragment& f : fragments) {
    if (f.token >= 0) {
      out.push_back(f.token);
      after_special = true;
      continue;
    }
    std::string_view raw = text.substr(f.offset, f.length);
    if (kind_ == Kind::SentencePiece) {
      // The reference adds the space prefix to text at the start and after
      // every special token, then writes spaces as "▁".
      std::string prefixed = add_space_prefix_ && after_special ? " " : "";
      prefixed.append(raw);
      encode_spm(replace_all(prefixed, " ", kSpmSpace), out);
    } else {
      encode_bpe(raw, out);
    }
    after_special = false;
  }
  return out;
}

// A byte no token covers becomes the unknown token; without one it is
// dropped, as the reference does (e.g. Falcon has no token for byte 0x03).
void Tokenizer::push_byte(uint8_t byte, std::vector<int32_t>& out) const {
  const int32_t id = byte_token_[byte] >= 0 ? byte_token_[byte] : unk_;
  if (id >= 0) out.push_back(id);
}

// SentencePiece BPE: start from single characters and repeatedly merge the
// adjacent pair whose concatenation is the highest-scoring token (leftmost
// first on ties). Characters left without a token fall back to byte tokens.
void Tokenizer::encode_spm(std::string_view text, std::vector<int32_t>& out) const {
  struct Symbol {
    uint32_t start, length;
    int32_t prev, next;
  };
  std::vector<Symbol> symbols;
  symbols.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    size_t len = std::max<size_t>(1, utf8::sequence_length(text, pos));  // invalid bytes stand alone
    const auto index = int32_t(symbols.size());
    symbols.push_back({uint32_t(pos), uint32_t(len), index - 1, pos + len < text.size() ? index + 1 : -1});
    pos += len;
  }
  if (symbols.empty()) return;

  struct Bigram {
    float score;
    int32_t left, right;
    uint32_t length;
  };
  auto worse = [](const Bigram& a, const Bigram& b) {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  };
  std::priority_queue<Bigram, std::vector<Bigram>, decltype(worse)> queue(worse);
  auto try_add = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const uint32_t length = symbols[size_t(left)].length + symbols[size_t(right)].length;
    int32_t id = lookup(text.substr(symbols[size_t(left)].start, length));
    if (id < 0 || !mergeable(id)) return;
    queue.push({score_[size_t(id)], left, right, length});
  };
  for (size_t i = 1; i < symbols.size(); i++) try_add(int32_t(i - 1), int32_t(i));

  while (!queue.empty()) {
    const Bigram b = queue.top();
    queue.pop();
    Symbol& left = symbols[size_t(b.left)];
    Symbol& right = symbols[size_t(b.right)];
    // Stale entry: one side was merged away or has grown since.
    if (left.length == 0 || right.length == 0 || left.length + right.length != b.length) continue;
    left.length += right.length;
    right.length = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[size_t(right.next)].prev = b.left;
    try_add(left.prev, b.left);
    try_add(b.left, left.next);
  }

  for (int32_t i = 0; i != -1; i = symbols[size_t(i)].next) {
    const Symbol& s = symbols[size_t(i)];
    std::string_view piece = text.substr(s.start, s.length);
    int32_t id = lookup(piece);
    if (id >= 0 && mergeable(id)) {
      out.push_back(id);
    } else {
      for (unsigned char byte : piece) push_byte(byte, out);
    }
  }
}

void Tokenizer::encode_bpe(std::string_view text, std::vector<int32_t>& out) const {
  // Byte-level BPE works on text: invalid UTF-8 becomes U+FFFD first, as in
  // the reference (and the bytes some vocabularies lack, such as 0xC0, 0xC1
  // and 0xF5..0xFF, only ever occur in invalid UTF-8).
  if (!utf8::is_valid(text)) {
    const std::string clean = utf8::sanitize(text);
    for (std::string_view word : pre_->split(clean)) encode_bpe_word(word, out);
    return;
  }
  for (std::string_view word : pre_->split(text)) encode_bpe_word(word, out);
}

// Byte-level BPE inside one pre-tokenized word: start from one token per
// byte and repeatedly apply the lowest-ranked merge (leftmost first on ties).
void Tokenizer::encode_bpe_word(std::string_view word, std::vector<int32_t>& out) const {
  if (ignore_merges_) {
    int32_t whole = lookup(byte_level_encode(word));
    if (whole >= 0 && mergeable(whole)) {
      out.push_back(whole);
      return;
    }
  }
  const size_t n = word.size();
  std::vector<int32_t> id(n), prev(n), next(n);
  for (size_t i = 0; i < n; i++) {
    id[i] = byte_token_[static_cast<unsigned char>(word[i])];
    prev[i] = int32_t(i) - 1;
    next[i] = i + 1 < n ? int32_t(i + 1) : -1;
  }

  struct Candidate {
    int32_t rank, left, right;
    int32_t left_id, right_id, result;
  };
  auto worse = [](const Candidate& a, const Candidate& b) {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  };
  std::priority_queue<Candidate, std::vector<Candidate>, decltype(worse)> queue(worse);
  auto try_add = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const int32_t l = id[size_t(left)], r = id[size_t(right)];
    if (l < 0 || r < 0) return;
    auto it = merges_.find((uint64_t(uint32_t(l)) << 32) | uint32_t(r));
    if (it == merges_.end()) return;
    queue.push({it->second.rank, left, right, l, r, it->second.result});
  };
  for (size_t i = 1; i < n; i++) try_add(int32_t(i - 1), int32_t(i));

  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    // Stale entry: the pair is no longer adjacent or one side changed.
    if (next[size_t(c.left)] != c.right || id[size_t(c.left)] != c.left_id || id[size_t(c.right)] != c.right_id)
      continue;
    id[size_t(c.left)] = c.result;
    id[size_t(c.right)] = -1;
    next[size_t(c.left)] = next[size_t(c.right)];
    if (next[size_t(c.right)] >= 0) prev[size_t(next[size_t(c.right)])] = c.left;
    next[size_t(c.right)] = -1;
    try_add(prev[size_t(c.left)], c.left);
    try_add(c.left, next[size_t(c.left)]);
  }

  for (int32_t i = n > 0 ? 0 : -1; i != -1; i = next[size_t(i)]) {
    if (id[size_t(i)] >= 0)
      out.push_back(id[size_t(i)]);
    else
      push_byte(static_cast<unsigned char>(word[size_t(i)]), out);  // the byte has no token
  }
}

// ---------------------------------------------------------------------------
// Decoding

std::string Tokenizer::token_to_piece(int32_t id, bool render_special) const {
  const TokenType t = type(id);
  if (!render_special && (t == TokenType::Control || t == TokenType::Unknown)) return {};
  return piece_[size_t(id)];
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool render_special) const {
  std::string out;
  bool at_start = strips_leading_space();
  for (int32_t id : ids) {
    std::string piece = token_to_piece(id, render_special);
    if (at_start && !piece.empty()) {
      if (piece[0] == ' ') piece.erase(0, 1);
      at_start = false;
    }
    out += piece;
  }
  return out;
}

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool render_special)
    : tokenizer_(&tokenizer), render_special_(render_special), at_start_(tokenizer.strips_leading_space()) {}

void StreamDecoder::continue_after(const std::vector<int32_t>& preceding) {
  for (int32_t id : preceding)
    if (!tokenizer_->token_to_piece(id, render_special_).empty()) at_start_ = false;
}

std::string StreamDecoder::push(int32_t id) {
  std::string piece = tokenizer_->token_to_piece(id, render_special_);
  if (at_start_ && !piece.empty()) {
    if (piece[0] == ' ') piece.erase(0, 1);
    at_start_ = false;
  }
  pending_ += piece;
  return take_complete(false);
}

std::string StreamDecoder::flush() { return take_complete(true); }

std::string StreamDecoder::take_complete(bool at_end) {
  std::string out;
  size_t pos = 0;
  while (pos < pending_.size()) {
    size_t len = utf8::sequence_length(pending_, pos);
    if (len > 0) {
      out.append(pending_, pos, len);
      pos += len;
    } else if (!at_end && utf8::is_incomplete_prefix(pending_, pos)) {
      break;  // the rest of this character may come with the next token
    } else {
      out.append(utf8::kReplacement);
      pos += utf8::invalid_length(pending_, pos);
    }
  }
  pending_.erase(0, pos);
  return out;
}

}  // namespace warden::tokenizer
