// Cost of the constrained-decoding mask per generated token, on real
// byte-level vocabularies (DeepSeek LLM: 102k tokens; GPT-2: 50k).
//
// Each benchmark replays a fixed random walk (uniformly random allowed
// tokens, seeded) through a grammar: one iteration = compute the mask for
// the current state + accept the chosen token. "cold" disables the mask
// cache, so every state pays the full trie walk; "cached" is what a decode
// loop sees. Run: build-<x>/bench/grammar_mask_bench
#include <benchmark/benchmark.h>

#include <random>

#include "byte_vocab.h"
#include "grammar/json_schema.h"
#include "grammar/matcher.h"

namespace {
using namespace warden::grammar;

std::shared_ptr<const Vocabulary> vocab(const std::string& name) {
  static std::map<std::string, std::shared_ptr<const Vocabulary>> cache;
  auto& v = cache[name];
  if (!v) v = test::load_byte_level_vocab(std::string(WARDEN_SHARED_DIR) + "/vocab/" + name);
  return v;
}

const char* kToolSchema = R"({
  "type": "object",
  "properties": {
    "location": {"type": "string", "maxLength": 40},
    "unit": {"enum": ["celsius", "fahrenheit"]},
    "days": {"type": "integer", "minimum": 1, "maximum": 14},
    "details": {"type": "object", "properties": {
        "hourly": {"type": "boolean"}, "fields": {"type": "array", "items": {"type": "string"}, "maxItems": 4}},
      "required": ["hourly"]}
  },
  "required": ["location", "unit"]
})";

std::shared_ptr<const Grammar> grammar_named(const std::string& which) {
  if (which == "any") return std::make_shared<Grammar>(grammar_any_json_value());
  return std::make_shared<Grammar>(grammar_from_json_schema(std::string_view(kToolSchema)));
}

// Random walk: state i's mask, then a uniformly random allowed token; restart
// when the value is complete or after 256 tokens.
void run(benchmark::State& state, const std::string& vocab_name, const std::string& grammar_name, bool cached) {
  auto v = vocab(vocab_name);
  auto g = grammar_named(grammar_name);
  Matcher::Options opt;
  opt.mask_cache_entries = cached ? 64 : 0;
  Matcher m(g, v, opt);
  std::mt19937_64 rng(42);
  TokenMask mask(v->size());
  std::vector<int32_t> allowed;
  size_t steps = 0, allowed_total = 0;
  for (auto _ : state) {
    m.fill_mask(mask);
    allowed.clear();
    for (size_t w = 0; w < mask.words().size(); ++w)
      for (uint64_t bits = mask.words()[w]; bits; bits &= bits - 1)
        allowed.push_back(int32_t(w * 64 + size_t(__builtin_ctzll(bits))));
    allowed_total += allowed.size();
    int32_t pick = allowed[std::uniform_int_distribution<size_t>(0, allowed.size() - 1)(rng)];
    ++steps;
    if (v->is_end(pick) || steps % 256 == 0) {
      m.reset();
      continue;
    }
    if (!m.accept_token(pick)) state.SkipWithError("matcher rejected a token from its own mask");
  }
  state.counters["allowed_avg"] = double(allowed_total) / double(std::max<size_t>(steps, 1));
  state.counters["vocab"] = double(v->size());
}

}  // namespace

BENCHMARK_CAPTURE(run, deepseek_tool_schema_cold, "ggml-vocab-deepseek-llm.gguf", "tool", false)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(run, deepseek_tool_schema_cached, "ggml-vocab-deepseek-llm.gguf", "tool", true)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(run, deepseek_any_json_cold, "ggml-vocab-deepseek-llm.gguf", "any", false)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(run, deepseek_any_json_cached, "ggml-vocab-deepseek-llm.gguf", "any", true)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(run, gpt2_tool_schema_cold, "ggml-vocab-gpt-2.gguf", "tool", false)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(run, gpt2_any_json_cold, "ggml-vocab-gpt-2.gguf", "any", false)->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
