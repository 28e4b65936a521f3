// Lookup decoding (engine/lookup.h): the drafts it proposes, and generation
// with it giving exactly the tokens of generation without it -- greedy and
// sampled, on the real trained tiny model and on random-weight models of
// each architecture, through stop strings, token limits and a full context.
#include <gtest/gtest.h>

#include <vector>

#include "common/test_env.h"
#include "engine/engine.h"
#include "engine/lookup.h"

namespace warden::engine {
namespace {

LookupParams lookup(int draft_max, int ngram) {
  LookupParams p;
  p.on = true;
  p.draft_max = draft_max;
  p.ngram = ngram;
  return p;
}

TEST(LookupDraft, ProposesWhatFollowedTheMostRecentEarlierMatch) {
  // "1 2 3" appears twice before the end; the later one was followed by 7 8.
  const std::vector<int32_t> history{1, 2, 3, 4, 5, 9, 1, 2, 3, 7, 8, 6, 1, 2, 3};
  EXPECT_EQ(lookup_draft(history, lookup(8, 3), 8), (std::vector<int32_t>{7, 8, 6, 1, 2, 3}));
  EXPECT_EQ(lookup_draft(history, lookup(8, 3), 2), (std::vector<int32_t>{7, 8}));
  EXPECT_EQ(lookup_draft(history, lookup(1, 3), 8), (std::vector<int32_t>{7}));
  // A longer key: "6 1 2 3" appears nowhere else.
  EXPECT_TRUE(lookup_draft(history, lookup(8, 4), 8).empty());
  // One token: the last 3 before the end is at index 8.
  EXPECT_EQ(lookup_draft(history, lookup(3, 1), 8), (std::vector<int32_t>{7, 8, 6}));
}

TEST(LookupDraft, RepeatsARunningPattern) {
  // The key's latest earlier occurrence overlaps it; the draft runs up to
  // the end of the history.
  const std::vector<int32_t> history{5, 6, 5, 6, 5, 6};
  EXPECT_EQ(lookup_draft(history, lookup(8, 2), 8), (std::vector<int32_t>{5, 6}));
}

TEST(LookupDraft, NothingWithoutAMatchRoomOrHistory) {
  const std::vector<int32_t> history{1, 2, 3, 4, 1, 2, 3};
  EXPECT_TRUE(lookup_draft(std::vector<int32_t>{1, 2, 3, 4, 5, 6}, lookup(4, 2), 4).empty());
  EXPECT_TRUE(lookup_draft(history, lookup(4, 3), 0).empty());
  EXPECT_TRUE(lookup_draft(history, lookup(0, 3), 4).empty());
  EXPECT_TRUE(lookup_draft(history, lookup(4, 0), 4).empty());
  EXPECT_TRUE(lookup_draft(std::vector<int32_t>{1, 2, 3}, lookup(4, 3), 4).empty());
  EXPECT_TRUE(lookup_draft(std::vector<int32_t>{}, lookup(4, 1), 4).empty());
  EXPECT_EQ(lookup_draft(history, lookup(4, 3), 4), (std::vector<int32_t>{4, 1, 2, 3}));
}

std::string tiny_model(const std::string& preset, const std::string& type) {
  const std::string path = test::temp_root() + "/" + preset + "-" + type + ".gguf";
  auto r = test::run_warden({"make-model", "--preset", preset, "--type", type, "--seed", "11", path});
  if (r.exit_code != 0) throw std::runtime_error("make-model failed: " + r.err);
  return path;
}

struct Outcome {
  GenerateResult result;
  std::vector<int32_t> cached;  // the engine's tokens afterwards
  int64_t cache_length = 0;     // the KV cache's length afterwards
};

Outcome run(Engine& engine, const std::vector<int32_t>& prompt, GenerateParams params) {
  engine.truncate(0, 0);  // every run starts from an empty cache
  Outcome r;
  r.result = generate(engine, 0, prompt, params);
  r.cached = engine.cached_tokens(0);
  r.cache_length = engine.cache().length(0);
  return r;
}

// Generates with and without lookup decoding and expects the same tokens,
// text and finish; the cache afterwards holds exactly the engine's tokens,
// a prefix of the prompt and the generated tokens. Returns the confirmed
// drafts.
int64_t expect_same_generation(Engine& engine, const std::vector<int32_t>& prompt, GenerateParams params,
                               const LookupParams& with, const std::string& what) {
  const Outcome plain = run(engine, prompt, params);
  params.lookup = with;
  const Outcome looked = run(engine, prompt, params);
  EXPECT_EQ(looked.result.tokens, plain.result.tokens) << what;
  EXPECT_EQ(looked.result.text, plain.result.text) << what;
  EXPECT_EQ(int(looked.result.finish), int(plain.result.finish)) << what;
  EXPECT_EQ(plain.result.drafted, 0) << what;
  EXPECT_LE(looked.result.accepted, looked.result.drafted) << what;
  EXPECT_EQ(looked.cache_length, int64_t(looked.cached.size())) << what;
  std::vector<int32_t> all = prompt;
  all.insert(all.end(), looked.result.tokens.begin(), looked.result.tokens.end());
  EXPECT_LE(looked.cached.size(), all.size()) << what;
  EXPECT_TRUE(std::equal(looked.cached.begin(), looked.cached.end(), all.begin())) << what;
  return looked.result.accepted;
}

// Stories260K, the real trained model: greedy and sampled (each seed's
// random draws fall on the same positions either way), with a repetition
// penalty (it sees the sampled tokens only, never a draft). Drafts of 8
// make passes of 9 tokens, past the team decode's 8.
TEST(LookupDecoding, TheTrainedModelSaysTheSameWithIt) {
  EngineOptions o;
  o.model_path = test::shared_path("models/stories260K.gguf");
  o.threads = 2;
  Engine engine(o);
  const auto& tok = engine.tokenizer();
  const auto prompt = tok.encode(
      "Once upon a time, there was a little girl named Lily. She loved to play outside. Once upon a time, there was",
      tok.add_bos(), false);
  int64_t confirmed = 0;
  for (int draft_max : {1, 3, 8}) {
    GenerateParams p;
    p.max_tokens = 80;
    p.sampling.temperature = 0;
    confirmed += expect_same_generation(engine, prompt, p, lookup(draft_max, 2), "greedy");
    for (uint64_t seed : {1, 2, 3}) {
      p.sampling.temperature = 0.9f;
      p.sampling.top_k = 40;
      p.sampling.repeat_penalty = 1.1f;
      p.sampling.seed = seed;
      confirmed += expect_same_generation(engine, prompt, p, lookup(draft_max, 2),
                                          "seed " + std::to_string(seed) + ", draft " + std::to_string(draft_max));
    }
  }
  EXPECT_GT(confirmed, 20);  // the drafts were checked, not just proposed
}

// Random-weight models fall into loops, so their drafts are mostly right:
// each architecture, quantized, greedy, with limits and stops that end a
// generation inside a pass of drafts.
TEST(LookupDecoding, EachArchitectureSaysTheSameWithIt) {
  for (const char* preset : {"tiny-llama", "tiny-qwen2", "tiny-qwen3", "tiny-qwen3moe"}) {
    EngineOptions o;
    o.model_path = tiny_model(preset, "q4_K_M");
    o.threads = 2;
    o.n_ctx = 96;
    Engine engine(o);
    const std::vector<int32_t> prompt{1, 17, 33, 17, 33, 5, 9};
    GenerateParams p;
    p.sampling.temperature = 0;
    int64_t confirmed = 0;
    for (int64_t max_tokens : {-1, 1, 2, 7, 30}) {  // -1: until the context is full
      p.max_tokens = max_tokens;
      confirmed += expect_same_generation(engine, prompt, p, lookup(3, 2),
                                          std::string(preset) + " max_tokens " + std::to_string(max_tokens));
    }
    // A full context ends the generation after the token that would take
    // position n_ctx (sampled from the logits at n_ctx - 1), with or
    // without drafts.
    p.max_tokens = -1;
    p.lookup = lookup(3, 2);
    const Outcome full = run(engine, prompt, p);
    if (full.result.finish == FinishReason::Length) {
      EXPECT_EQ(int64_t(full.result.tokens.size()), engine.n_ctx() - int64_t(prompt.size()) + 1) << preset;
    }
    p.lookup = {};
    // A stop string that the plain run meets: the text up to it, cut there.
    p.max_tokens = 40;
    const Outcome plain = run(engine, prompt, p);
    ASSERT_GE(plain.result.text.size(), 12u) << preset;
    p.stop = {plain.result.text.substr(8, 4)};
    expect_same_generation(engine, prompt, p, lookup(3, 2), std::string(preset) + " stop");
    EXPECT_GT(confirmed, 10) << preset;
  }
}

// `warden generate` with llama.cpp's flags: the same text on stdout, the
// drafts counted on stderr, and bad values refused as usage errors.
TEST(LookupDecoding, GenerateTakesLlamaCppsFlags) {
  const std::vector<std::string> base{"generate", "-m", test::shared_path("models/stories260K.gguf"), "-p",
                                      "Once upon a time, there was a girl. Once upon a time, there was", "-n", "60",
                                      "--temp", "0", "-t", "2"};
  const auto plain = test::run_warden(base);
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  auto with = base;
  with.insert(with.end(), {"--spec-type", "ngram-simple", "--draft-max", "4", "--spec-ngram-size-n", "2"});
  const auto looked = test::run_warden(with);
  ASSERT_EQ(looked.exit_code, 0) << looked.err;
  EXPECT_EQ(looked.out, plain.out);
  EXPECT_NE(looked.err.find("lookup decoding: "), std::string::npos) << looked.err;
  EXPECT_EQ(plain.err.find("lookup decoding: "), std::string::npos) << plain.err;
  // Each bad value, and the flag the error must name.
  const std::vector<std::pair<std::vector<std::string>, std::string>> bad{
      {{"--spec-type", "draft"}, "--spec-type"},
      {{"--spec-type", "ngram-simple", "--draft-max", "0"}, "--draft-max"},
      {{"--spec-draft-n-max", "65"}, "--draft-max"},
      {{"--spec-ngram-size-n", "0"}, "--spec-ngram-size-n"}};
  for (const auto& [flags, named] : bad) {
    auto args = base;
    args.insert(args.end(), flags.begin(), flags.end());
    const auto r = test::run_warden(args);
    EXPECT_EQ(r.exit_code, 2) << named << ": " << r.err;
    EXPECT_NE(r.err.find(named), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
  }
}

}  // namespace
}  // namespace warden::engine
