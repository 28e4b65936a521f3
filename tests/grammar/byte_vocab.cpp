#include "byte_vocab.h"

#include <vector>

#include "gguf/gguf.h"

namespace warden::grammar::test {

namespace {
// GPT-2: printable bytes map to themselves; the other 68 bytes map, in
// order, to code points 256, 257, ...
std::vector<int> unicode_to_byte_table() {
  std::vector<int> table(512, -1);
  auto printable = [](int b) { return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255); };
  int next = 256;
  for (int b = 0; b < 256; ++b) {
    if (printable(b))
      table[size_t(b)] = b;
    else
      table[size_t(next++)] = b;
  }
  return table;
}

// Decodes one UTF-8 code point at s[i]; -1 on malformed input.
int next_code_point(const std::string& s, size_t& i) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (len == 0 || i + size_t(len) > s.size()) return -1;
  int cp = len == 1 ? c : len == 2 ? (c & 0x1f) : len == 3 ? (c & 0x0f) : (c & 0x07);
  for (int k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + size_t(k)]) & 0x3f);
  i += size_t(len);
  return cp;
}
}  // namespace

bool gpt2_token_bytes(const std::string& text, std::string& bytes) {
  static const std::vector<int> table = unicode_to_byte_table();
  bytes.clear();
  for (size_t i = 0; i < text.size();) {
    int cp = next_code_point(text, i);
    if (cp < 0 || cp >= int(table.size()) || table[size_t(cp)] < 0) return false;
    bytes.push_back(char(table[size_t(cp)]));
  }
  return true;
}

std::shared_ptr<const Vocabulary> load_byte_level_vocab(const std::string& gguf_path) {
  gguf::File f(gguf_path);
  std::vector<std::string> texts = f.get("tokenizer.ggml.tokens").as_string_array();
  std::vector<int64_t> types;
  if (f.has("tokenizer.ggml.token_type")) types = f.get("tokenizer.ggml.token_type").as_int_array();
  std::vector<std::string> bytes(texts.size());
  std::vector<bool> is_text(texts.size(), false);
  for (size_t id = 0; id < texts.size(); ++id) {
    int64_t type = id < types.size() ? types[id] : 1;
    if (type != 1 && type != 6) continue;  // normal and byte tokens only
    is_text[id] = gpt2_token_bytes(texts[id], bytes[id]);
  }
  std::vector<int32_t> ends;
  if (f.has("tokenizer.ggml.eos_token_id")) ends.push_back(int32_t(f.get("tokenizer.ggml.eos_token_id").as_uint()));
  return std::make_shared<Vocabulary>(std::move(bytes), std::move(is_text), std::move(ends));
}

std::shared_ptr<const Vocabulary> small_vocab() {
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) tokens.push_back(std::string(1, char(b)));
  for (const char* piece : {"{\"", "\":", "\": ", "\"}", "true", "false", "null", "12", "345", ", \"",
                            "name", "ab", "abc", "\n  ", "  ", "[{", "}]", "\\u00e9", "\xc3\xa9", "]}"})
    tokens.push_back(piece);
  tokens.push_back("<special>");  // a control token: never text
  tokens.push_back("");           // an empty token: never allowed
  tokens.push_back("</s>");       // end
  std::vector<bool> is_text(tokens.size(), true);
  is_text[tokens.size() - 3] = false;
  is_text[tokens.size() - 1] = false;
  int32_t end = int32_t(tokens.size() - 1);
  return std::make_shared<Vocabulary>(std::move(tokens), std::move(is_text), std::vector<int32_t>{end});
}

}  // namespace warden::grammar::test
