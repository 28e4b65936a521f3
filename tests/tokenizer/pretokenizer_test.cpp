// Pre-tokenizer splits with real Unicode categories, and the UTF-8 helpers.
#include <gtest/gtest.h>

#include "tokenizer/pretokenizer.h"
#include "tokenizer/utf8.h"
#include "util/error.h"

namespace warden::tokenizer {
namespace {

std::vector<std::string> split(std::string_view pre, std::string_view text) {
  PreTokenizer p(pre_tokenizer_config(pre).patterns);
  std::vector<std::string> out;
  for (auto piece : p.split(text)) out.emplace_back(piece);
  return out;
}

using Pieces = std::vector<std::string>;

TEST(PreTokenizer, Gpt2) {
  EXPECT_EQ(split("gpt-2", "Hello world's 12345!!"), (Pieces{"Hello", " world", "'s", " 12345", "!!"}));
  EXPECT_EQ(split("gpt-2", "I'M"), (Pieces{"I", "'", "M"})) << "GPT-2 contractions are case-sensitive";
  EXPECT_EQ(split("gpt-2", "a  b\n"), (Pieces{"a", " ", " b", "\n"}));
}

TEST(PreTokenizer, UnicodeLettersAndDigitsAreNotAsciiOnly) {
  // é, ö, Cyrillic are letters; Arabic-Indic digits are numbers.
  EXPECT_EQ(split("gpt-2", "h\xC3\xA9llo w\xC3\xB6rld"), (Pieces{"h\xC3\xA9llo", " w\xC3\xB6rld"}));
  EXPECT_EQ(split("gpt-2", "\xD0\x9F\xD1\x80\xD0\xB8 \xD9\xA1\xD9\xA2"),
            (Pieces{"\xD0\x9F\xD1\x80\xD0\xB8", " \xD9\xA1\xD9\xA2"}));
  // U+3000 IDEOGRAPHIC SPACE is whitespace (and not the optional ASCII
  // space in front of a word).
  EXPECT_EQ(split("gpt-2", "a\xE3\x80\x80\xE3\x80\x80" "b"), (Pieces{"a", "\xE3\x80\x80", "\xE3\x80\x80", "b"}));
  EXPECT_EQ(split("gpt-2", "a\xE3\x80\x80\xE3\x80\x80"), (Pieces{"a", "\xE3\x80\x80\xE3\x80\x80"}));
}

TEST(PreTokenizer, Llama3) {
  EXPECT_EQ(split("llama-bpe", "I'm 12345 apples"), (Pieces{"I", "'m", " ", "123", "45", " apples"}));
  EXPECT_EQ(split("llama-bpe", "I'M"), (Pieces{"I", "'M"})) << "llama3 contractions ignore case";
  EXPECT_EQ(split("llama-bpe", "x\n\n  y"), (Pieces{"x", "\n\n", " ", " y"}));
  EXPECT_EQ(split("llama-bpe", "(hello)"), (Pieces{"(hello", ")"}));
  EXPECT_TRUE(pre_tokenizer_config("llama-bpe").ignore_merges);
  EXPECT_TRUE(pre_tokenizer_config("llama-bpe").add_bos);
}

TEST(PreTokenizer, Qwen2SplitsDigitsOneByOne) {
  EXPECT_EQ(split("qwen2", "I'm 12345 apples"), (Pieces{"I", "'m", " ", "1", "2", "3", "4", "5", " apples"}));
}

TEST(PreTokenizer, DeepseekCoder) {
  EXPECT_EQ(split("deepseek-coder", "abc 123\nx"), (Pieces{"abc", " ", "1", "2", "3", "\n", "x"}));
}

TEST(PreTokenizer, DeepseekLlm) {
  // Newlines alone, letters with one leading space, CJK runs, digit runs.
  EXPECT_EQ(split("deepseek-llm", "ab 12\n\xE4\xBD\xA0\xE5\xA5\xBD"),
            (Pieces{"ab", " ", "12", "\n", "\xE4\xBD\xA0\xE5\xA5\xBD"}));
}

TEST(PreTokenizer, FalconAndStarcoder) {
  EXPECT_EQ(split("falcon", "x=1234"), (Pieces{"x", "=", "123", "4"}));
  EXPECT_EQ(split("starcoder", "x 12"), (Pieces{"x", " ", "1", "2"}));
}

TEST(PreTokenizer, InvalidUtf8IsKeptAsItsOwnPiece) {
  EXPECT_EQ(split("gpt-2", "ab\xFF" "cd"), (Pieces{"ab", "\xFF", "cd"}));
  EXPECT_EQ(split("llama-bpe", "\xC3"), (Pieces{"\xC3"}));
}

TEST(PreTokenizer, PiecesAlwaysConcatenateBackToTheInput) {
  const char* names[] = {"default", "gpt-2", "llama-bpe", "qwen2", "deepseek-llm", "deepseek-coder", "deepseek-v3",
                         "falcon", "mpt", "starcoder", "refact", "gpt-4o", "tekken", "bloom", "viking"};
  const std::string text =
      "Hello, y'all! How are you \xF0\x9F\x98\x81 ?\xE6\x88\x91\xE6\x83\xB3 3.33 \t\n\n  \xC3\x84pfel\xFF\x80 end";
  for (const char* name : names) {
    std::string joined;
    for (const auto& p : split(name, text)) {
      EXPECT_FALSE(p.empty()) << name;
      joined += p;
    }
    EXPECT_EQ(joined, text) << name;
  }
}

TEST(PreTokenizer, UnknownNameIsAnError) {
  try {
    pre_tokenizer_config("whatever-7b");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer.ggml.pre = 'whatever-7b'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(PreTokenizer({"(unclosed"}), Error);
}

TEST(Utf8, SequenceLength) {
  EXPECT_EQ(utf8::sequence_length("a", 0), 1u);
  EXPECT_EQ(utf8::sequence_length("\xC3\xA9", 0), 2u);
  EXPECT_EQ(utf8::sequence_length("\xE2\x96\x81", 0), 3u);
  EXPECT_EQ(utf8::sequence_length("\xF0\x9F\xA6\x99", 0), 4u);
  EXPECT_EQ(utf8::sequence_length("\xC0\x80", 0), 0u) << "overlong";
  EXPECT_EQ(utf8::sequence_length("\xE0\x80\x80", 0), 0u) << "overlong";
  EXPECT_EQ(utf8::sequence_length("\xED\xA0\x80", 0), 0u) << "surrogate";
  EXPECT_EQ(utf8::sequence_length("\xF4\x90\x80\x80", 0), 0u) << "above U+10FFFF";
  EXPECT_EQ(utf8::sequence_length("\x80", 0), 0u);
  EXPECT_EQ(utf8::sequence_length("\xE2\x96", 0), 0u) << "truncated";
}

TEST(Utf8, IncompletePrefix) {
  EXPECT_TRUE(utf8::is_incomplete_prefix("\xE2", 0));
  EXPECT_TRUE(utf8::is_incomplete_prefix("\xE2\x96", 0));
  EXPECT_TRUE(utf8::is_incomplete_prefix("\xF0\x9F\xA6", 0));
  EXPECT_FALSE(utf8::is_incomplete_prefix("\xE2\x96\x81", 0));
  EXPECT_FALSE(utf8::is_incomplete_prefix("\xE2" "a", 0));
  EXPECT_FALSE(utf8::is_incomplete_prefix("\xED\xA0", 0)) << "a surrogate can never complete";
  EXPECT_FALSE(utf8::is_incomplete_prefix("\xFF", 0));
  EXPECT_FALSE(utf8::is_incomplete_prefix("a", 0));
}

TEST(Utf8, SanitizeReplacesEachInvalidStretchOnce) {
  EXPECT_EQ(utf8::sanitize("ok \xC3\xA9"), "ok \xC3\xA9");
  EXPECT_EQ(utf8::sanitize("a\xFF" "b"), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(utf8::sanitize("a\xE4\xBD" "b"), "a\xEF\xBF\xBD" "b") << "truncated sequence: one U+FFFD";
  EXPECT_EQ(utf8::sanitize("\x80\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(utf8::sanitize("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD") << "surrogates are not UTF-8";
  EXPECT_TRUE(utf8::is_valid(""));
  EXPECT_FALSE(utf8::is_valid("\xC3"));
}

TEST(Utf8, AppendAndDecodeRoundTrip) {
  for (uint32_t cp : {0x41u, 0xE9u, 0x2581u, 0xFFFDu, 0x1F999u, 0x10FFFFu}) {
    std::string s;
    utf8::append(s, cp);
    ASSERT_EQ(utf8::sequence_length(s, 0), s.size());
    EXPECT_EQ(utf8::decode(s, 0, s.size()), cp);
  }
}

}  // namespace
}  // namespace warden::tokenizer
