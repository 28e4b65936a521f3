// The generated vocabularies: layout like the real families, every merge
// valid, specials at their real ids with the right types, chat templates.
#include <gtest/gtest.h>

#include <unordered_map>

#include "common/test_env.h"
#include "modelgen/chat_templates.h"
#include "modelgen/preset.h"
#include "modelgen/vocab.h"

namespace warden::modelgen {
namespace {

// Checks everything that makes a BPE vocabulary usable; returns id by text.
std::unordered_map<std::string, int64_t> check_valid(const Vocab& v, int64_t n_vocab) {
  std::unordered_map<std::string, int64_t> id;
  EXPECT_EQ(int64_t(v.tokens.size()), n_vocab);
  EXPECT_EQ(v.types.size(), v.tokens.size());
  for (size_t i = 0; i < v.tokens.size(); i++) {
    EXPECT_TRUE(id.emplace(v.tokens[i], int64_t(i)).second) << "duplicate token " << v.tokens[i];
  }
  // 256 byte tokens in GPT-2 order.
  const auto order = gpt2_byte_order();
  for (size_t i = 0; i < 256; i++) EXPECT_EQ(v.tokens[i], byte_to_unicode(order[i])) << i;
  // Every merge joins two existing tokens into a token that comes later in
  // merge order, and every ordinary token after the bytes has exactly one merge.
  std::unordered_map<std::string, size_t> made_by;
  for (size_t m = 0; m < v.merges.size(); m++) {
    const std::string& merge = v.merges[m];
    const size_t space = merge.find(' ');
    EXPECT_NE(space, std::string::npos) << merge;
    EXPECT_EQ(merge.find(' ', space + 1), std::string::npos) << merge;
    const std::string left = merge.substr(0, space), right = merge.substr(space + 1);
    EXPECT_TRUE(id.count(left)) << merge;
    EXPECT_TRUE(id.count(right)) << merge;
    EXPECT_TRUE(id.count(left + right)) << merge;
    EXPECT_TRUE(made_by.emplace(left + right, m).second) << "two merges make " << left + right;
    for (const auto& part : {left, right}) {
      if (made_by.count(part)) {
        EXPECT_LT(made_by[part], m) << part << " used before it is made";
      }
    }
  }
  int64_t ordinary = 0;
  for (auto t : v.types) ordinary += t == kNormal;
  EXPECT_EQ(int64_t(v.merges.size()), ordinary - 256);
  return id;
}

TEST(Vocab, QwenFullSizeMatchesTheRealLayout) {
  const Vocab v = build_vocab(VocabFamily::qwen3, 151936, 0);
  auto id = check_valid(v, 151936);
  EXPECT_EQ(v.pre, "qwen2");
  EXPECT_EQ(v.model, "gpt2");
  EXPECT_EQ(v.tokens[220], "\xc4\xa0");  // "Ġ", the space byte, as in every GPT-2-style vocab
  EXPECT_EQ(v.tokens[0], "!");
  EXPECT_EQ(id.at("<|endoftext|>"), 151643);
  EXPECT_EQ(id.at("<|im_start|>"), 151644);
  EXPECT_EQ(id.at("<|im_end|>"), 151645);
  EXPECT_EQ(id.at("<tool_call>"), 151657);
  EXPECT_EQ(id.at("</tool_call>"), 151658);
  EXPECT_EQ(id.at("<think>"), 151667);
  EXPECT_EQ(id.at("</think>"), 151668);
  EXPECT_EQ(v.types[151644], kControl);
  EXPECT_EQ(v.types[151657], kUserDefined);
  EXPECT_EQ(v.types[151667], kUserDefined);
  EXPECT_EQ(v.types[151669], kNormal);  // the rest is filled with merged tokens, not padding
  EXPECT_EQ(v.eos, 151645);
  EXPECT_EQ(v.eot, 151645);
  EXPECT_EQ(v.pad, 151643);
  EXPECT_EQ(v.bos, 151643);
  EXPECT_FALSE(v.add_bos);
  // Real multi-byte tokens exist: words with a leading space, and UTF-8 characters.
  EXPECT_TRUE(id.count("\xc4\xa0the") || id.count("\xc4\xa0th"));
  EXPECT_TRUE(id.count(byte_to_unicode(0xC3) + byte_to_unicode(0xA9)));  // "é"
}

TEST(Vocab, Qwen25HasNoThinkTokens) {
  const Vocab v = build_vocab(VocabFamily::qwen2, 151936, 0);
  auto id = check_valid(v, 151936);
  EXPECT_EQ(id.at("<|file_sep|>"), 151664);
  EXPECT_EQ(id.count("<think>"), 0u);
  EXPECT_EQ(v.chat_template, std::string(qwen25_chat_template()));
}

TEST(Vocab, Llama3FullSizeMatchesTheRealLayout) {
  const auto& preset = find_preset("llama-3.2-1b");
  const Vocab v = build_vocab(VocabFamily::llama3, 128256, preset.n_reserved_special);
  auto id = check_valid(v, 128256);
  EXPECT_EQ(v.pre, "llama-bpe");
  EXPECT_EQ(id.at("<|begin_of_text|>"), 128000);
  EXPECT_EQ(id.at("<|end_of_text|>"), 128001);
  EXPECT_EQ(id.at("<|start_header_id|>"), 128006);
  EXPECT_EQ(id.at("<|end_header_id|>"), 128007);
  EXPECT_EQ(id.at("<|eot_id|>"), 128009);
  EXPECT_EQ(id.at("<|python_tag|>"), 128010);
  EXPECT_EQ(id.at("<|reserved_special_token_247|>"), 128255);
  for (int64_t i = 128000; i < 128256; i++) EXPECT_EQ(v.types[size_t(i)], kControl) << i;
  EXPECT_EQ(v.bos, 128000);
  EXPECT_EQ(v.eos, 128009);
  EXPECT_TRUE(v.add_bos);
}

TEST(Vocab, SmallVocabKeepsSpecialsAtTheEnd) {
  const Vocab v = build_vocab(VocabFamily::qwen3, 4096, 0);
  auto id = check_valid(v, 4096);
  EXPECT_EQ(id.at("</think>"), 4095);
  EXPECT_EQ(id.at("<|endoftext|>"), 4096 - 26);
  EXPECT_EQ(v.eos, id.at("<|im_end|>"));
}

TEST(Vocab, IsDeterministic) {
  const Vocab a = build_vocab(VocabFamily::llama3, 4096, 5);
  const Vocab b = build_vocab(VocabFamily::llama3, 4096, 5);
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.merges, b.merges);
}

TEST(ChatTemplates, AreTheModelsPublishedTemplates) {
  EXPECT_EQ(std::string(qwen3_chat_template()), test::read_file(test::shared_path("templates/Qwen-Qwen3-0.6B.jinja")));
  EXPECT_EQ(std::string(qwen25_chat_template()),
            test::read_file(test::shared_path("templates/Qwen-Qwen2.5-7B-Instruct.jinja")));
  EXPECT_EQ(std::string(llama32_chat_template()),
            test::read_file(test::shared_path("templates/meta-llama-Llama-3.2-3B-Instruct.jinja")));
}

}  // namespace
}  // namespace warden::modelgen
