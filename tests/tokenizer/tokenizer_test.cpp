// Tokenizers: every reference vector in ../shared/vocab reproduced exactly,
// special-token handling, BOS/EOS/end-of-generation ids, decoding and
// streaming, and clear errors for vocabularies we cannot use.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <random>
#include <sstream>

#include "common/test_env.h"
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"
#include "util/error.h"

namespace warden::tokenizer {
namespace {

// Loading a large vocabulary takes a moment; load each file once per process.
const Tokenizer& vocab(const std::string& name) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  auto& slot = cache[name];
  if (!slot) {
    gguf::File file(test::shared_path("vocab/ggml-vocab-" + name + ".gguf"));
    slot = std::make_unique<Tokenizer>(Tokenizer::from_gguf(file));
  }
  return *slot;
}

const Tokenizer& stories() {
  static const Tokenizer t = Tokenizer::from_gguf(gguf::File(test::shared_path("models/stories260K.gguf")));
  return t;
}

struct Case {
  std::string text;
  std::vector<int32_t> ids;
};

// The .inp file holds texts separated by "\n__ggml_vocab_test__\n"; line i of
// the .out file holds the ids of text i (no BOS).
std::vector<Case> load_cases(const std::string& name) {
  const std::string base = test::shared_path("vocab/ggml-vocab-" + name + ".gguf");
  const std::string inp = test::read_file(base + ".inp");
  const std::string out = test::read_file(base + ".out");
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  for (size_t pos = 0; pos < inp.size();) {
    size_t next = inp.find(sep, pos);
    if (next == std::string::npos) {
      texts.push_back(inp.substr(pos));
      break;
    }
    texts.push_back(inp.substr(pos, next - pos));
    pos = next + sep.size();
  }
  std::vector<Case> cases;
  std::istringstream lines(out);
  std::string line;
  for (const auto& text : texts) {
    if (!std::getline(lines, line)) break;
    Case c{text, {}};
    std::istringstream ids(line);
    int64_t id;
    while (ids >> id) c.ids.push_back(int32_t(id));
    cases.push_back(std::move(c));
  }
  EXPECT_EQ(cases.size(), texts.size()) << name << ": fewer .out lines than texts";
  return cases;
}

std::string show(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += std::to_string(id) + " ";
  return s;
}

class ReferenceVectors : public ::testing::TestWithParam<std::string> {};

TEST_P(ReferenceVectors, EncodeMatchesEveryVectorExactly) {
  const auto& tok = vocab(GetParam());
  auto cases = load_cases(GetParam());
  ASSERT_EQ(cases.size(), 46u);
  for (size_t i = 0; i < cases.size(); i++) {
    auto ids = tok.encode(cases[i].text, /*add_bos=*/false, /*parse_special=*/false);
    EXPECT_EQ(ids, cases[i].ids) << GetParam() << " text #" << i << " [" << cases[i].text << "]\n  got: " << show(ids)
                                 << "\n  want: " << show(cases[i].ids);
  }
}

TEST_P(ReferenceVectors, DecodeGivesBackTheText) {
  const auto& tok = vocab(GetParam());
  for (const auto& c : load_cases(GetParam()))
    EXPECT_EQ(tok.decode(c.ids, false), c.text) << GetParam() << ": " << show(c.ids);
}

// Plain text must never turn into a control token, even when it spells one:
// that is how untrusted content would forge an end-of-turn marker.
TEST_P(ReferenceVectors, PlainTextNeverBecomesAControlToken) {
  const auto& tok = vocab(GetParam());
  std::string all;
  for (int32_t id = 0; id < int32_t(tok.size()); id++) {
    if (tok.type(id) != TokenType::Control && tok.type(id) != TokenType::Unknown) continue;
    all += tok.text(id) + " x";
    for (int32_t got : tok.encode(tok.text(id), false, false))
      EXPECT_NE(tok.type(got), TokenType::Control) << GetParam() << ": '" << tok.text(id) << "' gave " << got;
  }
  for (int32_t got : tok.encode(all, false, false)) EXPECT_NE(tok.type(got), TokenType::Control);
}

TEST_P(ReferenceVectors, ParseSpecialTurnsControlTextIntoTheToken) {
  const auto& tok = vocab(GetParam());
  for (int32_t id = 0; id < int32_t(tok.size()); id++) {
    if (tok.type(id) != TokenType::Control) continue;
    auto ids = tok.encode("a" + tok.text(id) + "b", false, true);
    EXPECT_NE(std::find(ids.begin(), ids.end(), id), ids.end()) << GetParam() << ": " << tok.text(id);
  }
}

// Random text from many scripts (letters, marks, digits, CJK, emoji,
// whitespace) decodes back to exactly itself.
TEST_P(ReferenceVectors, RandomTextRoundTrips) {
  const auto& tok = vocab(GetParam());
  const std::pair<uint32_t, uint32_t> ranges[] = {
      {0x20, 0x7E}, {0x20, 0x7E}, {0x20, 0x7E}, {'\n', '\n'}, {'\t', '\t'}, {0xA1, 0xFF},
      {0x300, 0x36F}, {0x400, 0x4FF}, {0x660, 0x669}, {0x1780, 0x17FF}, {0x3000, 0x3002},
      {0x4E00, 0x9FFF}, {0xAC00, 0xD7A3}, {0x1F300, 0x1F64F}};
  std::mt19937 rng(1234);
  for (int round = 0; round < 100; round++) {
    std::string text;
    const size_t n = rng() % 60;
    for (size_t i = 0; i < n; i++) {
      const auto& [lo, hi] = ranges[rng() % std::size(ranges)];
      utf8::append(text, lo + uint32_t(rng() % (hi - lo + 1)));
    }
    EXPECT_EQ(tok.decode(tok.encode(text, false, false), false), text) << GetParam() << " round " << round;
  }
}

// Arbitrary bytes never make encode fail. SentencePiece keeps every byte
// (byte fallback); byte-level BPE reads invalid UTF-8 as U+FFFD, like the
// reference.
TEST_P(ReferenceVectors, RandomBytesAreEncodedSafely) {
  const auto& tok = vocab(GetParam());
  // These have a token for every byte a valid UTF-8 text can hold (the
  // others lack a few, e.g. starcoder has none for the lead byte 0xF1, and
  // drop such bytes as the reference does).
  const bool covers_utf8 = GetParam() == "gpt-2" || GetParam() == "deepseek-llm" || GetParam() == "deepseek-coder";
  std::mt19937 rng(99);
  for (int round = 0; round < 100; round++) {
    std::string bytes(size_t(rng() % 100), '\0');
    for (auto& c : bytes) {
      c = char(rng() % 256);
      // SentencePiece writes spaces as U+2581, so a literal U+2581 would
      // decode as a space; keep its lead byte out.
      if (tok.kind() == Kind::SentencePiece && c == '\xE2') c = 'x';
    }
    std::string decoded;
    ASSERT_NO_THROW(decoded = tok.decode(tok.encode(bytes, false, false), false));
    if (tok.kind() == Kind::SentencePiece) {
      EXPECT_EQ(decoded, bytes) << GetParam() << " round " << round;
    } else if (covers_utf8) {
      EXPECT_EQ(decoded, utf8::sanitize(bytes)) << GetParam() << " round " << round;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllVocabs, ReferenceVectors,
                         ::testing::Values("llama-spm", "phi-3", "gpt-2", "falcon", "mpt", "starcoder", "refact",
                                           "deepseek-llm", "deepseek-coder"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (auto& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

TEST(Tokenizer, SentencePieceBasics) {
  const auto& tok = vocab("llama-spm");
  EXPECT_EQ(tok.kind(), Kind::SentencePiece);
  EXPECT_EQ(tok.size(), 32000u);
  EXPECT_EQ(tok.bos(), 1);
  EXPECT_EQ(tok.eos(), 2);
  EXPECT_TRUE(tok.add_bos());
  EXPECT_FALSE(tok.add_eos());
  EXPECT_TRUE(tok.is_end_of_generation(2));
  EXPECT_FALSE(tok.is_end_of_generation(1));
  EXPECT_EQ(tok.type(0), TokenType::Unknown);
  EXPECT_EQ(tok.type(1), TokenType::Control);
  EXPECT_EQ(tok.type(3 + 0x0A), TokenType::Byte);
  EXPECT_EQ(tok.token_to_piece(3 + 0x0A, false), "\n");
  EXPECT_EQ(tok.token_to_piece(1, false), "");
  EXPECT_EQ(tok.token_to_piece(1, true), "<s>");

  auto ids = tok.encode("Hello world", true, false);
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(tok.text(ids[1]), "\xE2\x96\x81Hello");
  EXPECT_EQ(tok.token_to_piece(ids[1], false), " Hello");
  EXPECT_EQ(tok.decode(ids, false), "Hello world");
  EXPECT_EQ(tok.decode(ids, true), "<s> Hello world");
  EXPECT_TRUE(tok.encode("", false, false).empty());
  EXPECT_EQ(tok.encode("", true, false), std::vector<int32_t>{1});
}

TEST(Tokenizer, SentencePieceByteFallbackForUnknownCharacters) {
  const auto& tok = vocab("llama-spm");
  // U+1F999 is not a token: it becomes its four UTF-8 bytes.
  auto ids = tok.encode("\xF0\x9F\xA6\x99", false, false);
  ASSERT_EQ(ids.size(), 5u);
  EXPECT_EQ(tok.text(ids[0]), "\xE2\x96\x81");
  for (size_t i = 1; i < 5; i++) EXPECT_EQ(tok.type(ids[i]), TokenType::Byte);
  EXPECT_EQ(tok.decode(ids, false), "\xF0\x9F\xA6\x99");
}

TEST(Tokenizer, SpecialTokensAreParsedOnlyWhenAsked) {
  const auto& tok = vocab("llama-spm");
  auto parsed = tok.encode("<s>Hi</s>", false, true);
  ASSERT_GE(parsed.size(), 3u);
  EXPECT_EQ(parsed.front(), 1);
  EXPECT_EQ(parsed.back(), 2);
  auto plain = tok.encode("<s>Hi</s>", false, false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 1), 0);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 2), 0);
  EXPECT_EQ(tok.decode(plain, false), "<s>Hi</s>");
}

TEST(Tokenizer, Phi3SpecialsEatFollowingWhitespaceAndEndGeneration) {
  const auto& tok = vocab("phi-3");
  const int32_t user = tok.find("<|user|>"), end = tok.find("<|end|>"), hello = tok.find("\xE2\x96\x81Hello");
  ASSERT_GE(user, 0);
  ASSERT_GE(end, 0);
  ASSERT_GE(hello, 0);
  // The newline after <|user|> is stripped; text after a special token gets
  // the SentencePiece space prefix.
  EXPECT_EQ(tok.encode("<|user|>\nHello<|end|>", false, true), (std::vector<int32_t>{user, hello, end}));
  EXPECT_TRUE(tok.is_end_of_generation(end));
  EXPECT_TRUE(tok.is_end_of_generation(tok.eos()));
  EXPECT_EQ(tok.eos(), 32000);
  EXPECT_FALSE(tok.is_end_of_generation(user));
}

TEST(Tokenizer, BytePairEncodingBasics) {
  const auto& tok = vocab("gpt-2");
  EXPECT_EQ(tok.kind(), Kind::BytePairEncoding);
  EXPECT_EQ(tok.size(), 50257u);
  EXPECT_EQ(tok.bos(), 50256);
  EXPECT_EQ(tok.eos(), 50256);
  EXPECT_FALSE(tok.add_bos());
  EXPECT_TRUE(tok.is_end_of_generation(50256));
  auto ids = tok.encode("Hello world", false, false);
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(tok.text(ids[1]), "\xC4\xA0world");  // "Ġworld"
  EXPECT_EQ(tok.token_to_piece(ids[1], false), " world");
  EXPECT_EQ(tok.encode("Hello", true, false).front(), 50256);
  EXPECT_EQ(tok.encode("a<|endoftext|>", false, true).back(), 50256);
  EXPECT_EQ(tok.decode({50256}, false), "");
  EXPECT_EQ(tok.decode({50256}, true), "<|endoftext|>");
}

TEST(Tokenizer, AddBosComesFromTheFile) {
  EXPECT_TRUE(vocab("deepseek-llm").add_bos());
  EXPECT_EQ(vocab("deepseek-llm").bos(), 100000);
  EXPECT_EQ(vocab("deepseek-llm").encode("x", true, false).front(), 100000);
  EXPECT_TRUE(vocab("deepseek-llm").is_end_of_generation(100001));
  EXPECT_FALSE(vocab("falcon").add_bos());
  EXPECT_EQ(vocab("falcon").encode("x", false, false).size(), 1u);
}

TEST(Tokenizer, InvalidUtf8IsReadAsReplacementCharacterByBpe) {
  const auto& tok = vocab("gpt-2");
  EXPECT_EQ(tok.encode("a\xFF" "b\xE4\xBD", false, false), tok.encode("a\xEF\xBF\xBD" "b\xEF\xBF\xBD", false, false));
  // Falcon has no token for byte 0x03; like the reference, it is left out.
  EXPECT_EQ(vocab("falcon").encode("a\x03", false, false), vocab("falcon").encode("a", false, false));
}

TEST(Tokenizer, OutOfRangeIdsAreErrors) {
  const auto& tok = vocab("gpt-2");
  EXPECT_THROW(tok.token_to_piece(-1, false), Error);
  EXPECT_THROW(tok.token_to_piece(50257, false), Error);
  EXPECT_THROW(tok.decode({1, 2, 99999999}, false), Error);
  EXPECT_THROW(tok.text(50257), Error);
  EXPECT_FALSE(tok.is_end_of_generation(-1));
}

TEST(Tokenizer, Stories260KLoadsAndDecodes) {
  const auto& tok = stories();
  EXPECT_EQ(tok.kind(), Kind::SentencePiece);
  EXPECT_EQ(tok.size(), 512u);
  EXPECT_EQ(tok.bos(), 1);
  EXPECT_EQ(tok.eos(), 2);
  EXPECT_TRUE(tok.add_bos());
  EXPECT_TRUE(tok.is_end_of_generation(2));
  const int32_t once = tok.find("\xE2\x96\x81Once");
  ASSERT_GE(once, 0);
  EXPECT_EQ(tok.token_to_piece(once, false), " Once");
  // The first piece's leading space is dropped, as sentencepiece does.
  EXPECT_EQ(tok.decode({1, once}, false), "Once");
  const std::string story =
      "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.\n"
      "Lily's mom said, \"Lily, let's go to the park.\"\n";
  auto ids = tok.encode(story, true, false);
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(ids[1], once);
  EXPECT_EQ(tok.decode(ids, false), story);
  for (size_t id = 0; id < tok.size(); id++) EXPECT_NO_THROW(tok.token_to_piece(int32_t(id), true));
}

TEST(StreamDecoder, DropsTheLeadingSpaceOfTheFirstPieceOnly) {
  const auto& tok = stories();
  const int32_t once = tok.find("\xE2\x96\x81Once"), upon = tok.find("\xE2\x96\x81upon");
  ASSERT_GE(upon, 0);
  StreamDecoder d(tok);
  EXPECT_EQ(d.push(1), "");  // BOS has no text
  EXPECT_EQ(d.push(once), "Once");
  EXPECT_EQ(d.push(upon), " upon");
  EXPECT_EQ(d.flush(), "");

  StreamDecoder after_prompt(tok);
  after_prompt.continue_after(tok.encode("Once", true, false));
  EXPECT_EQ(after_prompt.push(upon), " upon");
  StreamDecoder after_bos(tok);
  after_bos.continue_after({1});
  EXPECT_EQ(after_bos.push(once), "Once");
}

TEST(StreamDecoder, HoldsBackPartialCharacters) {
  const auto& tok = vocab("gpt-2");
  const std::string text = "llama \xF0\x9F\xA6\x99 and \xE4\xBD\xA0\xE5\xA5\xBD!";  // 🦙, 你好
  auto ids = tok.encode(text, false, false);
  StreamDecoder d(tok);
  std::string streamed;
  size_t partial_pushes = 0;
  for (int32_t id : ids) {
    std::string out = d.push(id);
    if (out.empty()) partial_pushes++;
    EXPECT_EQ(out.find("\xEF\xBF\xBD"), std::string::npos) << "a character was cut";
    streamed += out;
  }
  streamed += d.flush();
  EXPECT_EQ(streamed, text);
  EXPECT_GT(partial_pushes, 0u) << "the emoji should span several byte-level tokens";
}

TEST(StreamDecoder, InvalidAndUnfinishedBytesBecomeReplacementCharacters) {
  const auto& tok = vocab("llama-spm");
  const int32_t byte_ff = tok.find("<0xFF>"), byte_e4 = tok.find("<0xE4>"), byte_bd = tok.find("<0xBD>");
  StreamDecoder d(tok);
  EXPECT_EQ(d.push(byte_ff), "\xEF\xBF\xBD");
  EXPECT_EQ(d.push(byte_e4), "");
  EXPECT_EQ(d.push(byte_bd), "");
  EXPECT_EQ(d.flush(), "\xEF\xBF\xBD") << "one replacement for the unfinished character";
  // Raw decode keeps the bytes as they are.
  EXPECT_EQ(tok.decode({byte_ff, byte_e4}, false), "\xFF\xE4");
}

// ---------------------------------------------------------------------------
// Small hand-built vocabularies

VocabSpec tiny_bpe() {
  VocabSpec s;
  s.model = "gpt2";
  s.pre = "gpt-2";
  // The byte-level alphabet: printable bytes as themselves, others from U+0100.
  uint32_t next = 256;
  for (uint32_t b = 0; b < 256; b++) {
    bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    uint32_t cp = printable ? b : next++;
    std::string ch;
    if (cp < 0x80) {
      ch += char(cp);
    } else {
      ch += char(0xC0 | (cp >> 6));
      ch += char(0x80 | (cp & 0x3F));
    }
    s.tokens.push_back(ch);
  }
  for (const char* t : {"ab", "abc", "\xC4\xA0" "a", "<|a|>", "<|a|><|b|>"}) s.tokens.push_back(t);
  s.types.assign(s.tokens.size(), 1);
  s.types[s.types.size() - 2] = 3;
  s.types[s.types.size() - 1] = 3;
  s.merges = {"a b", "ab c", "\xC4\xA0 a"};
  s.eos = int64_t(s.tokens.size() - 2);
  return s;
}

TEST(Tokenizer, BpeAppliesMergesByRank) {
  auto tok = Tokenizer::from_spec(tiny_bpe());
  const int32_t abc = tok.find("abc"), ab = tok.find("ab"), space_a = tok.find("\xC4\xA0" "a");
  const int32_t space = tok.find("\xC4\xA0"), d = tok.find("d"), x = tok.find("x");
  EXPECT_EQ(tok.encode("abc", false, false), std::vector<int32_t>{abc});
  EXPECT_EQ(tok.encode("abd", false, false), (std::vector<int32_t>{ab, d}));
  // "a b" (rank 0) beats "Ġ a" (rank 2), and then "ab c" (rank 1) applies.
  EXPECT_EQ(tok.encode(" abc", false, false), (std::vector<int32_t>{space, abc}));
  EXPECT_EQ(tok.encode(" ax", false, false), (std::vector<int32_t>{space_a, x}));
}

TEST(Tokenizer, LongestSpecialTokenWins) {
  auto tok = Tokenizer::from_spec(tiny_bpe());
  const int32_t a = tok.find("<|a|>"), ab = tok.find("<|a|><|b|>");
  EXPECT_EQ(tok.encode("<|a|><|b|>", false, true), std::vector<int32_t>{ab});
  EXPECT_EQ(tok.encode("<|a|><|a|><|b|>", false, true), (std::vector<int32_t>{a, ab}));
  EXPECT_TRUE(tok.is_end_of_generation(a));
  EXPECT_EQ(tok.bos(), -1);
  EXPECT_EQ(tok.encode("x", true, false).size(), 1u) << "no BOS token to add";
}

TEST(Tokenizer, BadSpecsAreClearErrors) {
  auto expect_error = [](const VocabSpec& s, const std::string& needle) {
    try {
      Tokenizer::from_spec(s);
      ADD_FAILURE() << "no error for: " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  VocabSpec s = tiny_bpe();
  s.model = "bert";
  expect_error(s, "unsupported tokenizer.ggml.model 'bert'");
  s = tiny_bpe();
  s.pre = "no-such-pre";
  expect_error(s, "no-such-pre");
  s = tiny_bpe();
  s.scores = {1.0f};
  expect_error(s, "tokenizer.ggml.scores has 1 entries");
  s = tiny_bpe();
  s.types.pop_back();
  expect_error(s, "tokenizer.ggml.token_type");
  s = tiny_bpe();
  s.merges.clear();
  expect_error(s, "tokenizer.ggml.merges");
  s = tiny_bpe();
  s.tokens.clear();
  s.types.clear();
  expect_error(s, "tokenizer.ggml.tokens is empty");
}

TEST(Tokenizer, UnsupportedFileNamesTheFileAndTheModel) {
  const std::string path = test::shared_path("vocab/ggml-vocab-bert-bge.gguf");
  try {
    Tokenizer::from_gguf(gguf::File(path));
    FAIL() << "the BERT vocabulary is not supported and must be refused";
  } catch (const Error& e) {
    std::string what = e.what();
    EXPECT_NE(what.find(path), std::string::npos) << what;
    EXPECT_NE(what.find("'bert'"), std::string::npos) << what;
  }
}

TEST(Tokenizer, OutOfRangeSpecialIdsAreIgnored) {
  VocabSpec s = tiny_bpe();
  s.bos = 1 << 30;
  s.eos = -5;
  auto tok = Tokenizer::from_spec(s);
  EXPECT_EQ(tok.bos(), -1);
  EXPECT_EQ(tok.eos(), -1);
}

TEST(Tokenizer, SentencePieceWithoutByteTokensFallsBackToUnknown) {
  VocabSpec s;
  s.model = "llama";
  s.tokens = {"<unk>", "<s>", "</s>", "\xE2\x96\x81", "a", "\xE2\x96\x81" "a"};
  s.types = {2, 3, 3, 1, 1, 1};
  s.scores = {0, 0, 0, -1, -2, -0.5f};
  auto tok = Tokenizer::from_spec(s);
  EXPECT_EQ(tok.encode("a", false, false), std::vector<int32_t>{5});
  EXPECT_EQ(tok.encode("az", false, false), (std::vector<int32_t>{5, 0}));
}

}  // namespace
}  // namespace warden::tokenizer
