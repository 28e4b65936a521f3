// Grammar builder validation and the matcher's core behaviour on a small
// vocabulary: accept/reject, masks equal to a brute-force check of every
// token, end tokens only when complete, forced completion.
#include <gtest/gtest.h>

#include "byte_vocab.h"
#include "grammar/grammar.h"
#include "grammar/json_schema.h"
#include "grammar/matcher.h"
#include "util/error.h"

namespace warden::grammar {
namespace {

using Seq = GrammarBuilder::Sequence;

TEST(GrammarBuilder, RejectsLeftRecursion) {
  GrammarBuilder b;
  uint32_t a = b.new_rule("a");
  b.add_alternative(a, {GrammarBuilder::ref(a), b.byte('x')});
  b.add_alternative(a, {b.byte('y')});
  try {
    std::move(b).build(a);
    FAIL() << "left recursion accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("left-recursive"), std::string::npos) << e.what();
  }
}

TEST(GrammarBuilder, RejectsIndirectLeftRecursionThroughNullable) {
  GrammarBuilder b;
  uint32_t empty = b.rule("empty", {{}});
  uint32_t a = b.new_rule("a");
  uint32_t c = b.rule("c", {{GrammarBuilder::ref(empty), GrammarBuilder::ref(a)}, {b.byte('z')}});
  b.add_alternative(a, {GrammarBuilder::ref(c), b.byte('x')});
  EXPECT_THROW(std::move(b).build(a), Error);
}

TEST(GrammarBuilder, RejectsGrammarWithoutFiniteString) {
  GrammarBuilder b;
  uint32_t a = b.new_rule("a");
  b.add_alternative(a, {b.byte('x'), GrammarBuilder::ref(a)});  // only infinite strings
  EXPECT_THROW(std::move(b).build(a), Error);
}

TEST(GrammarBuilder, DropsDeadAlternativesAndKnowsShortest) {
  GrammarBuilder b;
  uint32_t dead = b.new_rule("dead");  // no alternatives
  uint32_t a = b.rule("a", {{b.byte('q'), GrammarBuilder::ref(dead)}, b.literal("hello"), b.literal("hi")});
  Grammar g = std::move(b).build(a);
  EXPECT_EQ(g.alternatives(a).size(), 2u);
  EXPECT_EQ(g.shortest(a), "hi");
}

std::shared_ptr<const Grammar> make(Grammar g) { return std::make_shared<Grammar>(std::move(g)); }

TEST(Matcher, AcceptsAndRejectsTokens) {
  auto vocab = test::small_vocab();
  auto g = make(grammar_from_json_schema(std::string_view(R"({"type":"boolean"})")));
  Matcher m(g, vocab);
  EXPECT_FALSE(m.is_complete());
  int32_t t = 't', f = 'f';
  EXPECT_FALSE(m.accept_token('x'));
  EXPECT_TRUE(m.accept_token(t));
  EXPECT_FALSE(m.accept_token(f));
  EXPECT_TRUE(m.accept_bytes("rue"));
  EXPECT_TRUE(m.is_complete());
  EXPECT_FALSE(m.can_continue());
  EXPECT_EQ(m.text(), "true");
  int32_t end = vocab->end_ids()[0];
  TokenMask mask = m.mask();
  EXPECT_EQ(mask.count(), 1u);
  EXPECT_TRUE(mask.test(end));
  EXPECT_TRUE(m.accept_token(end));
  EXPECT_TRUE(m.is_finished());
  EXPECT_EQ(m.mask().count(), 0u);
}

TEST(Matcher, EndTokenOnlyWhenComplete) {
  auto vocab = test::small_vocab();
  Matcher m(make(grammar_any_json_value()), vocab);
  int32_t end = vocab->end_ids()[0];
  EXPECT_FALSE(m.mask().test(end));
  EXPECT_FALSE(m.accept_token(end));
  ASSERT_TRUE(m.accept_bytes("12"));
  EXPECT_TRUE(m.mask().test(end));  // "12" is a complete number
  EXPECT_TRUE(m.mask().test('3'));  // but may go on
}

TEST(Matcher, NeverAllowsControlOrEmptyTokens) {
  auto vocab = test::small_vocab();
  Matcher m(make(grammar_any_json_value()), vocab);
  ASSERT_TRUE(m.accept_bytes("\""));
  TokenMask mask = m.mask();
  for (size_t id = 0; id < vocab->size(); ++id)
    if (!vocab->is_text(int32_t(id)) && !vocab->is_end(int32_t(id))) {
      EXPECT_FALSE(mask.test(int32_t(id))) << id;
    }
}

// The trie walk must allow exactly the tokens a one-by-one check allows.
void expect_mask_matches_brute_force(Matcher& m) {
  TokenMask mask = m.mask();
  for (size_t id = 0; id < m.vocabulary().size(); ++id) {
    Matcher copy = m;
    bool ok = copy.accept_token(int32_t(id));
    ASSERT_EQ(mask.test(int32_t(id)), ok) << "token " << id << " after '" << m.text() << "'";
    ASSERT_EQ(m.is_allowed(int32_t(id)), ok) << "token " << id << " after '" << m.text() << "'";
  }
}

TEST(Matcher, MaskEqualsBruteForceAlongAPath) {
  auto vocab = test::small_vocab();
  auto g = make(grammar_from_json_schema(std::string_view(R"({
    "type":"object","properties":{"name":{"type":"string","maxLength":3},"ok":{"type":"boolean"},
    "n":{"type":"integer","minimum":-5,"maximum":120}},"required":["name"]})")));
  Matcher m(g, vocab);
  for (std::string piece : {"{", "\"", "name", "\"", ":", " ", "\"", "ab", "\xc3\xa9", "\"", ",", " ", "\"n\":",
                            "-", "5", "}"}) {
    expect_mask_matches_brute_force(m);
    ASSERT_TRUE(m.accept_bytes(piece)) << piece << " after " << m.text();
  }
  EXPECT_TRUE(m.is_complete());
  expect_mask_matches_brute_force(m);
}

TEST(Matcher, RejectedTokenLeavesStateUnchanged) {
  auto vocab = test::small_vocab();
  Matcher m(make(grammar_from_json_schema(std::string_view(R"({"enum":["abc","abd"]})"))), vocab);
  ASSERT_TRUE(m.accept_bytes("\"ab"));
  EXPECT_FALSE(m.accept_bytes("x"));
  EXPECT_FALSE(m.accept_bytes("c\"x"));
  EXPECT_EQ(m.text(), "\"ab");
  EXPECT_TRUE(m.accept_bytes("d\""));
  EXPECT_TRUE(m.is_complete());
}

TEST(Matcher, ShortestCompletionCompletesFromAnyState) {
  auto vocab = test::small_vocab();
  auto g = make(grammar_from_json_schema(std::string_view(R"({
    "type":"object","properties":{"a":{"type":"array","items":{"type":"string"},"minItems":2},
    "b":{"type":"integer"}},"required":["a","b"]})")));
  Matcher m(g, vocab);
  EXPECT_EQ(m.shortest_completion(), R"({"a":["",""],"b":0})");
  ASSERT_TRUE(m.accept_bytes("{ \"a\": [\"x"));
  std::string rest = m.shortest_completion();
  ASSERT_TRUE(m.accept_bytes(rest)) << rest;
  EXPECT_TRUE(m.is_complete());
  EXPECT_EQ(m.text(), R"({ "a": ["x",""],"b":0})");
}

TEST(Matcher, WhitespaceIsBounded) {
  auto vocab = test::small_vocab();
  SchemaOptions opt;
  opt.max_whitespace = 3;
  Matcher m(make(grammar_any_json_value(opt)), vocab);
  ASSERT_TRUE(m.accept_bytes("[   "));
  EXPECT_FALSE(m.mask().test(' '));
  EXPECT_FALSE(m.accept_bytes(" "));
  EXPECT_TRUE(m.accept_bytes("1]"));
}

TEST(Matcher, CacheGivesTheSameMasks) {
  auto vocab = test::small_vocab();
  auto g = make(grammar_any_json_value());
  Matcher::Options no_cache;
  no_cache.mask_cache_entries = 0;
  Matcher cached(g, vocab), uncached(g, vocab, no_cache);
  for (char c : std::string(R"({"ab": ["abc", {"x": [1, 2.5e3, true]}], "c": null})")) {
    ASSERT_EQ(cached.mask().words(), uncached.mask().words()) << cached.text();
    ASSERT_TRUE(cached.accept_bytes(std::string(1, c)));
    ASSERT_TRUE(uncached.accept_bytes(std::string(1, c)));
  }
  EXPECT_TRUE(cached.is_complete());
}

TEST(Vocabulary, RejectsBadInput) {
  EXPECT_THROW(Vocabulary({"a", "b"}, {true}, {}), Error);
  EXPECT_THROW(Vocabulary({"a", "b"}, {true, true}, {2}), Error);
}

TEST(Vocabulary, Gpt2ByteMappingRoundTrips) {
  std::string out;
  ASSERT_TRUE(test::gpt2_token_bytes("\xc4\xa0hello", out));  // U+0120 is the space byte
  EXPECT_EQ(out, " hello");
  ASSERT_TRUE(test::gpt2_token_bytes("\xc4\x8a", out));  // U+010A is '\n'
  EXPECT_EQ(out, "\n");
  EXPECT_FALSE(test::gpt2_token_bytes("\xe4\xbd\xa0", out));  // CJK: not a byte-level symbol
}

}  // namespace
}  // namespace warden::grammar
