// ReasoningSplitter: a <think> block that starts an answer becomes
// reasoning_content, the rest content, however the text is cut into pieces.
#include "server/reasoning.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace warden::server {
namespace {

using Split = std::pair<std::string, std::string>;  // reasoning, content

// The text fed whole, and fed in every two-piece cut and byte by byte: all
// must give the same.
Split split(const std::string& text, bool starts_inside = false) {
  auto run = [&](const std::vector<std::string>& pieces) {
    ReasoningSplitter s(starts_inside);
    Split out;
    for (const auto& piece : pieces) {
      auto p = s.feed(piece);
      out.first += p.reasoning;
      out.second += p.content;
    }
    auto p = s.finish();
    out.first += p.reasoning;
    out.second += p.content;
    return out;
  };
  const Split whole = run({text});
  for (size_t cut = 0; cut <= text.size(); ++cut)
    EXPECT_EQ(run({text.substr(0, cut), text.substr(cut)}), whole) << "cut at " << cut << " of " << text;
  std::vector<std::string> bytes;
  for (char c : text) bytes.emplace_back(1, c);
  EXPECT_EQ(run(bytes), whole) << "byte by byte: " << text;
  return whole;
}

TEST(ReasoningSplitter, AThinkBlockAtTheStartIsReasoning) {
  EXPECT_EQ(split("<think>\nLet me see.\n</think>\n\nThe answer is 4."), Split("Let me see.", "The answer is 4."));
  EXPECT_EQ(split("  \n<think>a  b</think>c"), Split("a  b", "c"));
  EXPECT_EQ(split("<think>\n\n</think>\n\nHi"), Split("", "Hi"));  // Qwen3 with thinking off
  EXPECT_EQ(split("<think>one\n\ntwo\n</think>"), Split("one\n\ntwo", ""));
}

TEST(ReasoningSplitter, AnythingElseIsContent) {
  EXPECT_EQ(split("Hello <think>not at the start</think>"), Split("", "Hello <think>not at the start</think>"));
  EXPECT_EQ(split("<thinking>x</thinking>"), Split("", "<thinking>x</thinking>"));
  EXPECT_EQ(split("<thi"), Split("", "<thi"));  // a start that never became the tag
  EXPECT_EQ(split("  "), Split("", "  "));
  EXPECT_EQ(split(""), Split("", ""));
}

TEST(ReasoningSplitter, ReasoningCutShortStaysReasoning) {
  EXPECT_EQ(split("<think>still thinking </thi"), Split("still thinking </thi", ""));
  EXPECT_EQ(split("<think>a</think>b</think>"), Split("a", "b</think>"));  // only the first close counts
}

TEST(ReasoningSplitter, APromptThatOpenedTheBlockStartsInsideIt) {
  EXPECT_EQ(split("\nfirst I think</think>\n\nthen I answer", true), Split("first I think", "then I answer"));
  EXPECT_EQ(split("no close", true), Split("no close", ""));
  EXPECT_TRUE(prompt_opens_reasoning("<|im_start|>assistant\n<think>\n"));
  EXPECT_FALSE(prompt_opens_reasoning("<|im_start|>assistant\n<think>\n\n</think>\n\n"));
  EXPECT_FALSE(prompt_opens_reasoning("<|im_start|>assistant\n"));
}

// Text already sent is never taken back: reasoning goes out as it comes,
// holding back only what may turn out to be the closing tag or the
// whitespace before it.
TEST(ReasoningSplitter, ReasoningStreamsAsItComes) {
  ReasoningSplitter s;
  EXPECT_EQ(s.feed("<think>I wonder").reasoning, "I wonder");
  EXPECT_EQ(s.feed(" whether\n</th").reasoning, " whether");
  auto p = s.feed("ink>\nYes");
  EXPECT_EQ(p.reasoning, "");
  EXPECT_EQ(p.content, "Yes");
}

}  // namespace
}  // namespace warden::server
