// "Whatever the weights": random walks that pick uniformly random tokens
// from the mask, on real 50k/102k byte-level vocabularies, must always
// produce text that parses as JSON and validates against the schema (checked
// by an independent validator). Walks that run long are finished with the
// matcher's forced completion, which must also validate.
#include <gtest/gtest.h>

#include <cstdlib>
#include <random>

#include "byte_vocab.h"
#include "common/test_env.h"
#include "grammar/json_schema.h"
#include "grammar/matcher.h"
#include "schema_validator.h"

namespace warden::grammar {
namespace {

using nlohmann::ordered_json;

std::shared_ptr<const Vocabulary> vocab(const std::string& file) {
  static std::map<std::string, std::shared_ptr<const Vocabulary>> loaded;
  auto& v = loaded[file];
  if (!v) v = test::load_byte_level_vocab(warden::test::shared_path("vocab/" + file));
  return v;
}

const char* kSchemas[] = {
    R"({"type":"object","properties":{"location":{"type":"string","maxLength":12},
        "unit":{"enum":["celsius","fahrenheit"]},"days":{"type":"integer","minimum":1,"maximum":14},
        "details":{"type":"object","properties":{"hourly":{"type":"boolean"},
          "fields":{"type":"array","items":{"type":"string","maxLength":4},"maxItems":3}},"required":["hourly"]}},
        "required":["location","unit"]})",
    R"({"type":"array","items":{"type":"integer","minimum":-50,"maximum":50},"minItems":2,"maxItems":5})",
    R"({"anyOf":[{"type":"string","maxLength":5},{"type":"null"},
        {"type":"object","properties":{"k":{"type":"boolean"}},"required":["k"],"additionalProperties":false}]})",
    R"({"$defs":{"node":{"type":"object","properties":{"v":{"type":"integer"},
        "kids":{"type":"array","items":{"$ref":"#/$defs/node"},"maxItems":2}},"required":["v"],
        "additionalProperties":false}},"$ref":"#/$defs/node"})",
    R"({"enum":[1,"two",{"three":[3]},null,true,2.5]})",
    R"({"type":"object","properties":{"a":{"type":"number","minimum":0},"b":{"type":"string","minLength":2,"maxLength":4},
        "c":{"type":"array","items":false}},"additionalProperties":false})",
    R"({"type":"object","additionalProperties":{"type":"integer","maximum":0}})",
    R"({"type":"string","minLength":3,"maxLength":6})",
    R"({"type":["integer","string","null"],"maxLength":3})",
    R"({"type":"array","prefixItems":[{"type":"boolean"},{"type":"string","maxLength":2}],
        "items":{"type":"null"},"maxItems":4})",
    R"({"type":"object","properties":{"x":{"type":"integer"}},"required":["x","y"],
        "additionalProperties":{"type":"boolean"}})",
    R"({})",
    R"({"oneOf":[{"type":"integer","minimum":10},{"type":"boolean"}]})",
    R"({"type":"integer","exclusiveMinimum":-3,"exclusiveMaximum":1000})",
    R"({"type":"string","nullable":true,"maxLength":2})",
    R"({"definitions":{"p":{"type":"object","properties":{"id":{"const":"X-1"},"tags":{"type":"array",
        "items":{"enum":["a","b"]},"minItems":1}},"required":["id","tags"]}},
        "type":"object","properties":{"people":{"type":"array","items":{"$ref":"#/definitions/p"},"maxItems":2},
        "count":{"type":"number","maximum":0}},"required":["people"]})",
};

struct WalkStats {
  int natural = 0;  // ended by the walk itself
  int forced = 0;   // finished with shortest_completion()
};

// One walk; returns the generated text (already checked to be complete).
std::string random_walk(Matcher& m, std::mt19937_64& rng, size_t max_steps, WalkStats& stats) {
  m.reset();
  TokenMask mask;
  std::vector<int32_t> allowed;
  std::bernoulli_distribution take_end(0.3);
  for (size_t step = 0; step < max_steps; ++step) {
    m.fill_mask(mask);
    allowed.clear();
    int32_t end_token = -1;
    for (size_t w = 0; w < mask.words().size(); ++w)
      for (uint64_t bits = mask.words()[w]; bits; bits &= bits - 1) {
        int32_t id = int32_t(w * 64 + size_t(__builtin_ctzll(bits)));
        if (m.vocabulary().is_end(id)) end_token = id;
        allowed.push_back(id);
      }
    EXPECT_FALSE(allowed.empty()) << "dead end after: " << m.text();
    if (allowed.empty()) return m.text();
    EXPECT_EQ(end_token >= 0, m.is_complete());
    int32_t pick = end_token >= 0 && take_end(rng)
                       ? end_token
                       : allowed[std::uniform_int_distribution<size_t>(0, allowed.size() - 1)(rng)];
    EXPECT_TRUE(m.accept_token(pick)) << "mask allowed a token the matcher rejects: " << pick;
    if (m.is_finished()) {
      ++stats.natural;
      return m.text();
    }
  }
  std::string rest = m.shortest_completion();
  EXPECT_TRUE(m.accept_bytes(rest)) << "forced completion rejected after: " << m.text();
  EXPECT_TRUE(m.is_complete());
  ++stats.forced;
  return m.text();
}

void walk_schemas(const std::string& vocab_file, int walks_per_schema, size_t max_steps, uint64_t seed) {
  auto v = vocab(vocab_file);
  std::mt19937_64 rng(seed);
  WalkStats stats;
  for (const char* text : kSchemas) {
    ordered_json schema = ordered_json::parse(text);
    auto g = std::make_shared<Grammar>(grammar_from_json_schema(schema));
    Matcher m(g, v);
    for (int i = 0; i < walks_per_schema; ++i) {
      std::string out = random_walk(m, rng, max_steps, stats);
      nlohmann::json value;
      try {
        value = nlohmann::json::parse(out);
      } catch (const std::exception& e) {
        ADD_FAILURE() << "not JSON: " << out << "\nschema: " << text << "\n" << e.what();
        continue;
      }
      if (std::getenv("GRAMMAR_SHOW")) std::printf("%s\n", out.c_str());
      std::string err = test::validate(value, schema);
      EXPECT_EQ(err, "") << "output: " << out << "\nschema: " << text;
    }
  }
  // Most walks should end on their own; the forced path is the fallback.
  EXPECT_GT(stats.natural, 0);
  std::printf("%s: %d walks ended naturally, %d forced\n", vocab_file.c_str(), stats.natural, stats.forced);
}

TEST(GrammarProperty, RandomWalksValidateGpt2Vocab) { walk_schemas("ggml-vocab-gpt-2.gguf", 40, 160, 1); }

TEST(GrammarProperty, RandomWalksValidateDeepseekVocab) {
  walk_schemas("ggml-vocab-deepseek-llm.gguf", 20, 160, 2);
}

TEST(GrammarProperty, AnyJsonObjectIsAnObject) {
  auto v = vocab("ggml-vocab-gpt-2.gguf");
  Matcher m(std::make_shared<Grammar>(grammar_any_json_object()), v);
  std::mt19937_64 rng(3);
  WalkStats stats;
  for (int i = 0; i < 10; ++i) {
    std::string out = random_walk(m, rng, 160, stats);
    auto value = nlohmann::json::parse(out);
    EXPECT_TRUE(value.is_object()) << out;
  }
}

// On the real vocabulary, the trie walk must agree with checking each token
// one by one, in states inside keys, strings, numbers and between values.
TEST(GrammarProperty, MaskEqualsBruteForceOnRealVocab) {
  auto v = vocab("ggml-vocab-gpt-2.gguf");
  auto g = std::make_shared<Grammar>(grammar_from_json_schema(std::string_view(kSchemas[0])));
  Matcher::Options opt;
  opt.mask_cache_entries = 0;
  Matcher m(g, v, opt);
  for (std::string prefix : {"", "{\"loc", "{\"location\": \"Par", "{\"location\": \"Paris\", \"unit\":",
                             "{\"location\": \"Paris\", \"unit\": \"celsius\", \"days\": 1"}) {
    m.reset();
    ASSERT_TRUE(m.accept_bytes(prefix)) << prefix;
    TokenMask mask = m.mask();
    size_t allowed = 0;
    for (size_t id = 0; id < v->size(); ++id) {
      Matcher copy = m;
      bool ok = copy.accept_token(int32_t(id));
      ASSERT_EQ(mask.test(int32_t(id)), ok) << "token " << id << " '" << v->bytes(int32_t(id)) << "' after " << prefix;
      allowed += ok;
    }
    EXPECT_GT(allowed, 0u);
  }
}

}  // namespace
}  // namespace warden::grammar
