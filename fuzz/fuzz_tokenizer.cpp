// Fuzzes encode / decode / StreamDecoder on small vocabularies built in code
// (a SentencePiece one and byte-level BPE ones with each pre-tokenizer), since
// no shared data is available to fuzz builds.
//
// Input: byte 0 picks the vocabulary and flags, the rest is the text.
// Checked on every input:
//  - encode never throws and only returns ids inside the vocabulary;
//  - without special-token parsing no control token comes out of the text;
//  - decode gives the text back (SentencePiece: byte for byte; BPE: with
//    invalid UTF-8 read as U+FFFD);
//  - the stream decoder emits exactly the valid-UTF-8 form of decode().
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

using warden::tokenizer::Kind;
using warden::tokenizer::StreamDecoder;
using warden::tokenizer::Tokenizer;
using warden::tokenizer::TokenType;
using warden::tokenizer::VocabSpec;

namespace {

const char* const kSpace = "\xE2\x96\x81";  // "▁"

void add(VocabSpec& s, std::string text, int type, float score = 0.0f) {
  s.tokens.push_back(std::move(text));
  s.types.push_back(type);
  s.scores.push_back(score);
}

VocabSpec tiny_spm() {
  VocabSpec s;
  s.model = "llama";
  add(s, "<unk>", 2);
  add(s, "<s>", 3);
  add(s, "</s>", 3);
  static const char* hex = "0123456789ABCDEF";
  for (int b = 0; b < 256; b++) add(s, std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">", 6);
  const std::string sp = kSpace;
  const char* pieces[] = {"t", "h", "e", "a", "b", "he", "ab", "\xC3\xA9", "\xE4\xBD\xA0", "\xE5\xA5\xBD",
                          "\xE4\xBD\xA0\xE5\xA5\xBD"};
  float score = -1.0f;
  for (const std::string& p : {sp, sp + "t", sp + "th", sp + "the", sp + "a", sp + "ab"}) add(s, p, 1, score -= 0.5f);
  for (const char* p : pieces) add(s, p, 1, score -= 0.5f);
  add(s, "<|end|>", 3);
  add(s, "<tool>", 4);
  return s;
}

// GPT-2's byte-level alphabet, in byte order.
std::string byte_char(uint32_t b) {
  uint32_t next = 256, cp = 0;
  for (uint32_t i = 0; i <= b; i++) {
    const bool printable = (i >= 33 && i <= 126) || (i >= 161 && i <= 172) || (i >= 174 && i <= 255);
    cp = printable ? i : next++;
  }
  std::string out;
  warden::tokenizer::utf8::append(out, cp);
  return out;
}

VocabSpec tiny_bpe(const char* pre) {
  VocabSpec s;
  s.model = "gpt2";
  s.pre = pre;
  for (uint32_t b = 0; b < 256; b++) add(s, byte_char(b), 1);
  const std::string G = byte_char(' ');
  for (const std::string& t : {G + "t", G + "th", G + "the", std::string("he"), std::string("ab"), G + "a", G + "ab",
                              std::string("11"), std::string("111")})
    add(s, t, 1);
  s.merges = {G + " t", "h e", G + "t h", G + "th e", "a b", G + " a", G + "a b", "1 1", "11 1"};
  add(s, "<|endoftext|>", 3);
  add(s, "<|im_end|>", 3);
  add(s, "<tool>", 4);
  s.eos = int64_t(s.tokens.size() - 3);
  return s;
}

struct Vocabs {
  std::vector<std::unique_ptr<Tokenizer>> all;
  Vocabs() {
    all.push_back(std::make_unique<Tokenizer>(Tokenizer::from_spec(tiny_spm())));
    for (const char* pre : {"gpt-2", "llama-bpe", "qwen2", "deepseek-llm", "deepseek-coder", "falcon", "starcoder",
                            "default", "gpt-4o", "tekken", "deepseek-v3", "bloom"})
      all.push_back(std::make_unique<Tokenizer>(Tokenizer::from_spec(tiny_bpe(pre))));
  }
};

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Vocabs vocabs;
  if (size == 0) return 0;
  const Tokenizer& tok = *vocabs.all[data[0] % vocabs.all.size()];
  const bool parse_special = (data[0] >> 4) & 1;
  const bool add_bos = (data[0] >> 5) & 1;
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);

  const std::vector<int32_t> ids = tok.encode(text, add_bos, parse_special);
  for (size_t i = 0; i < ids.size(); i++) {
    check(ids[i] >= 0 && size_t(ids[i]) < tok.size());
    if (!parse_special && !(add_bos && i == 0)) check(tok.type(ids[i]) != TokenType::Control);
  }

  const std::string decoded = tok.decode(ids, false);
  (void)tok.decode(ids, true);
  if (!parse_special && !add_bos) {
    if (tok.kind() == Kind::SentencePiece) {
      // A literal "▁" reads back as a space, and text after the user-defined
      // "<tool>" gets a space prefix; everything else is kept.
      if (text.find(kSpace) == std::string::npos && text.find("<tool>") == std::string::npos)
        check(decoded == text);
    } else {
      check(decoded == warden::tokenizer::utf8::sanitize(text));
    }
  }

  StreamDecoder stream(tok);
  std::string streamed;
  for (int32_t id : ids) streamed += stream.push(id);
  streamed += stream.flush();
  check(warden::tokenizer::utf8::is_valid(streamed));
  check(streamed == warden::tokenizer::utf8::sanitize(decoded));
  return 0;
}
