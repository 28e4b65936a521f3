// Engine correctness: the real trained tiny model reproduces its reference
// output exactly; for each architecture, batched prefill matches token-by-token
// decoding; F32 and Q8_0 versions of a peaked random model agree; releasing
// the vocabulary arrays after load changes no token.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "common/test_env.h"
#include "engine/engine.h"
#include "model/decode_layout.h"
#include "model/forward.h"
#include "model/model.h"
#include "tensor/quant.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace warden {
namespace {

// The expected story: the fenced block of ../shared/models/README.md.
std::string expected_story() {
  std::string readme = test::read_file(test::shared_path("models/README.md"));
  size_t open = readme.find("```\n");
  size_t close = readme.find("```", open + 4);
  if (open == std::string::npos || close == std::string::npos) throw std::runtime_error("no fenced block");
  return readme.substr(open + 4, close - open - 4);
}

TEST(Stories260K, GreedyOutputMatchesTheReferenceExactly) {
  auto r = test::run_warden({"generate", "-m", test::shared_path("models/stories260K.gguf"), "-p", "", "-n", "256",
                             "-c", "512", "--temp", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, expected_story());
  // Asking for more context than the file declares is allowed, with a warning.
  EXPECT_NE(r.err.find("longer than the 128 tokens"), std::string::npos) << r.err;
}

TEST(Stories260K, SameOutputWithOneThreadAndInTheLibrary) {
  engine::EngineOptions o;
  o.model_path = test::shared_path("models/stories260K.gguf");
  o.n_ctx = 512;
  o.threads = 1;
  engine::Engine e(o);
  engine::GenerateParams p;
  p.sampling.temperature = 0;
  p.max_tokens = 256;
  auto result = e.tokenizer().encode("", true, false);
  ASSERT_EQ(result.size(), 1u);  // BOS alone
  auto out = engine::generate(e, 0, result, p);
  EXPECT_EQ(out.text + "\n", expected_story());  // the CLI adds the final newline
  EXPECT_EQ(out.tokens.size(), 256u);
}

TEST(Stories260K, ContextOverflowIsAClearError) {
  auto r = test::run_warden({"generate", "-m", test::shared_path("models/stories260K.gguf"), "-p", "Once upon a time",
                             "-n", "10", "-c", "3", "--temp", "0"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("context"), std::string::npos) << r.err;
}

// llama.cpp's meanings: -n 0 evaluates the prompt and generates nothing;
// --seed -1 is a random seed; numbers no run can use are usage errors.
TEST(Generate, NumbersMeanWhatLlamaCppsDo) {
  const std::string model = test::shared_path("models/stories260K.gguf");
  auto r = test::run_warden({"generate", "-m", model, "-p", "Once", "-n", "0", "--temp", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("generated: 0 tokens"), std::string::npos) << r.err;
  std::set<std::string> texts;
  for (int i = 0; i < 3; i++) {
    r = test::run_warden({"generate", "-m", model, "-p", "Once", "-n", "30", "--temp", "1.5", "--seed", "-1"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    texts.insert(r.out);
  }
  EXPECT_GT(texts.size(), 1u) << "--seed -1 gave the same text three times";
  for (const std::vector<std::string>& bad :
       {std::vector<std::string>{"-n", "-5"}, {"-c", "-1"}, {"-t", "-2"}, {"-t", "100000"}, {"--seed", "x"},
        {"--seed", "-2"}}) {
    std::vector<std::string> args{"generate", "-m", model, "-p", "Once"};
    args.insert(args.end(), bad.begin(), bad.end());
    r = test::run_warden(args);
    EXPECT_EQ(r.exit_code, 2) << bad[0] << " " << bad[1] << ": " << r.err;
  }
}

TEST(Generate, BadArgumentsAndFiles) {
  auto r = test::run_warden({"generate", "-p", "x"});
  EXPECT_EQ(r.exit_code, 2);
  r = test::run_warden({"generate", "-m", "/nonexistent.gguf", "-p", "x"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("/nonexistent.gguf"), std::string::npos);
  std::string junk = test::make_temp_dir() + "/junk.gguf";
  test::write_file(junk, "this is not a model");
  r = test::run_warden({"generate", "-m", junk, "-p", "x"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("not a GGUF file"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;  // one line
  r = test::run_warden({"generate", "-m", test::shared_path("models/stories260K.gguf"), "-p", "x", "--temp", "abc"});
  EXPECT_EQ(r.exit_code, 2);
}

// A tiny random model of the given preset, written once per test process.
std::string tiny_model(const std::string& preset, const std::string& type, bool peaked = false) {
  std::string path = test::temp_root() + "/" + preset + "-" + type + (peaked ? "-peaked" : "") + ".gguf";
  if (!std::ifstream(path).good()) {
    std::vector<std::string> args{"make-model", "--preset", preset, "--type", type, "--seed", "7"};
    if (peaked) args.push_back("--peaked");
    args.push_back(path);
    auto r = test::run_warden(args);
    if (r.exit_code != 0) throw std::runtime_error("make-model failed: " + r.err);
  }
  return path;
}

class PerArchitecture : public ::testing::TestWithParam<std::string> {};

// A 24-token prefill goes through the batched paths (matrix kernels for
// quantized weights, the f32 attention of a run); single steps through the
// per-token ones. Each logit may differ by `tolerance` of max(1, |logit|);
// with `same_argmax`, every position's top token must agree too.
void expect_batched_prefill_matches_single_steps(const std::string& path, float tolerance, bool same_argmax,
                                                 model::KvCacheTypes cache_types = {}) {
  auto model = model::Model::load(path);
  const auto& c = model->config();
  ThreadPool pool(2);
  model::Forward fwd(*model, pool);
  std::vector<int32_t> tokens;
  for (int i = 0; i < 24; i++) tokens.push_back(int32_t((i * 7919 + 13) % c.n_vocab));

  model::KvCache batched_cache(c, 64, 1, cache_types);
  std::vector<model::BatchToken> batch;
  for (size_t i = 0; i < tokens.size(); i++) batch.push_back({tokens[i], int64_t(i), 0, true});
  std::vector<float> batched = fwd.run(batch, batched_cache);

  model::KvCache step_cache(c, 64, 1, cache_types);
  for (size_t i = 0; i < tokens.size(); i++) {
    std::vector<float> one = fwd.run({{tokens[i], int64_t(i), 0, true}}, step_cache);
    ASSERT_EQ(one.size(), size_t(c.n_vocab));
    const float* row = batched.data() + i * size_t(c.n_vocab);
    float max_diff = 0, max_abs = 0;
    for (int64_t v = 0; v < c.n_vocab; v++) {
      max_diff = std::max(max_diff, std::fabs(one[size_t(v)] - row[v]));
      max_abs = std::max(max_abs, std::fabs(one[size_t(v)]));
    }
    EXPECT_LE(max_diff, tolerance * std::max(1.0f, max_abs)) << path << " token " << i;
    if (same_argmax) {
      EXPECT_EQ(std::max_element(one.begin(), one.end()) - one.begin(), std::max_element(row, row + c.n_vocab) - row)
          << path << " token " << i;
    }
  }
}

TEST_P(PerArchitecture, BatchedPrefillEqualsSingleSteps) {
  expect_batched_prefill_matches_single_steps(tiny_model(GetParam(), "f32"), 1e-4f, false);
}

// Quantized weights: both paths quantize their activations before each
// matrix product, and a float-rounding difference upstream can move an
// activation across a rounding boundary (half a quantization step). Random
// weights amplify that, so the bound is looser; peaked models keep the top
// token, which must agree. The kernels themselves are held to 1e-5 in
// tests/tensor/gemm_test.cpp.
TEST_P(PerArchitecture, QuantizedBatchedPrefillAgreesWithSingleSteps) {
  for (const char* type : {"q8_0", "q4_0", "q5_0", "q4_K_M", "q6_K", "q5_K", "q3_K", "q2_K"})
    expect_batched_prefill_matches_single_steps(tiny_model(GetParam(), type, true), 3e-2f, true);
}

TEST_P(PerArchitecture, TwoSequencesInOneBatchMatchSeparateRuns) {
  auto model = model::Model::load(tiny_model(GetParam(), "f32"));
  const auto& c = model->config();
  ThreadPool pool(2);
  model::Forward fwd(*model, pool);
  std::vector<int32_t> a{1, 5, 9, 13}, b{2, 4, 8};
  model::KvCache both(c, 16, 2);
  std::vector<model::BatchToken> batch;
  for (size_t i = 0; i < a.size(); i++) batch.push_back({a[i], int64_t(i), 0, i + 1 == a.size()});
  for (size_t i = 0; i < b.size(); i++) batch.push_back({b[i], int64_t(i), 1, i + 1 == b.size()});
  auto mixed = fwd.run(batch, both);
  ASSERT_EQ(mixed.size(), 2 * size_t(c.n_vocab));
  for (int s = 0; s < 2; s++) {
    const auto& seq = s == 0 ? a : b;
    model::KvCache alone(c, 16, 1);
    std::vector<model::BatchToken> single;
    for (size_t i = 0; i < seq.size(); i++) single.push_back({seq[i], int64_t(i), 0, i + 1 == seq.size()});
    auto ref = fwd.run(single, alone);
    for (int64_t v = 0; v < c.n_vocab; v++)
      EXPECT_NEAR(ref[size_t(v)], mixed[size_t(s) * size_t(c.n_vocab) + size_t(v)], 1e-4f);
  }
}

// Decode steps run as a team of the pool's threads; the same
// steps as one parallel loop per matrix give exactly the same logits, packed
// weights or not, with two threads or three (the tiny models have two
// key/value heads). Single tokens, then a step of three tokens from two
// sequences.
TEST_P(PerArchitecture, DecodeStepsAsATeamGiveExactlyTheLogitsOfTheLoops) {
  for (const char* type : {"f32", "q8_0", "q4_K_M", "q6_K", "q5_0", "f16"}) {
    auto model = model::Model::load(tiny_model(GetParam(), type, true));
    const auto& c = model->config();
    ThreadPool two(2), three(3);
    model::Forward loops(*model, two, false), team(*model, two), team_of_three(*model, three);
    model::KvCache loops_cache(c, 64, 2), team_cache(c, 64, 2), three_cache(c, 64, 2);
    auto expect_same = [&](const std::vector<model::BatchToken>& batch, const std::string& what) {
      const std::vector<float> expected = loops.run(batch, loops_cache);
      const std::vector<float> a = team.run(batch, team_cache), b = team_of_three.run(batch, three_cache);
      ASSERT_EQ(a.size(), expected.size());
      ASSERT_EQ(b.size(), expected.size());
      for (size_t v = 0; v < expected.size(); v++) {
        ASSERT_EQ(a[v], expected[v]) << type << " " << what << " logit " << v << ", 2 threads";
        ASSERT_EQ(b[v], expected[v]) << type << " " << what << " logit " << v << ", 3 threads";
      }
    };
    for (int64_t pos = 0; pos < 12; pos++)
      expect_same({{int32_t((pos * 7919 + 13) % c.n_vocab), pos, 0, true}}, "step " + std::to_string(pos));
    expect_same({{5, 12, 0, false}, {9, 13, 0, true}, {11, 0, 1, true}}, "three tokens");
  }
}

// Timing a team's stages (bench/model/bench_decode_stages) times each
// member's steps, the stages a layer of this architecture has and nothing
// else, within the steps, and changes no logit.
TEST_P(PerArchitecture, TimedStagesAddUpWithinTheStepsAndChangeNoLogit) {
  auto model = model::Model::load(tiny_model(GetParam(), "q4_K_M", true));
  const auto& c = model->config();
  ThreadPool pool(2);
  model::Forward plain(*model, pool), timed(*model, pool);
  model::KvCache plain_cache(c, 64, 1), timed_cache(c, 64, 1);
  std::vector<model::Forward::StageSeconds> times;
  timed.time_stages(&times);
  ASSERT_EQ(times.size(), size_t(pool.team_size()));
  for (int64_t pos = 0; pos < 6; pos++) {
    const std::vector<model::BatchToken> step{{int32_t((pos * 7919 + 13) % c.n_vocab), pos, 0, true}};
    EXPECT_EQ(timed.run(step, timed_cache), plain.run(step, plain_cache)) << "step " << pos;
  }
  const bool moe = c.n_expert > 0;
  for (const model::Forward::StageSeconds& t : times) {
    double stages = 0;
    for (int k = 0; k < model::Forward::kStages; k++) {
      const bool has = k == model::Forward::kRouter || k == model::Forward::kExperts
                           ? moe
                           : !(moe && (k == model::Forward::kGateUp || k == model::Forward::kDown));
      if (has) {
        EXPECT_GT(t.stage[k], 0) << "stage " << k;
      } else {
        EXPECT_EQ(t.stage[k], 0) << "stage " << k;
      }
      stages += t.stage[k];
    }
    EXPECT_GT(t.steps, 0);
    EXPECT_LE(stages + t.barriers, t.steps * (1 + 1e-9));  // disjoint parts of each step
  }
  // Stopped, the times stay as they were.
  timed.time_stages(nullptr);
  const std::vector<model::Forward::StageSeconds> before = times;
  timed.run({{3, 6, 0, true}}, timed_cache);
  EXPECT_EQ(times[0].steps, before[0].steps);
}

// The packed copy is laid out for a decode team (model/decode_layout.h):
// each member's share of every stage right after its share of the stage
// before, each share one run of panels, for teams of two and three; and
// whatever team it was laid out for, prefill and decode give exactly the
// same logits.
TEST_P(PerArchitecture, PackedCopyIsLaidOutForTheDecodeTeamAndAnyLayoutGivesTheSameLogits) {
  for (const char* type : {"q4_0", "q4_K_M", "q6_K"}) {
    const std::string path = tiny_model(GetParam(), type, true);
    std::vector<float> expected;
    for (int members : {1, 2, 3}) {
      auto model = model::Model::load(path, {}, members);
      if (model->packed_bytes() == 0) GTEST_SKIP() << "this kernel set packs nothing";
      for (const auto& reads : model::decode_reads(*model, members)) {
        const uint8_t* next = nullptr;  // where this member's next read should begin
        for (const model::PanelRange& r : reads) {
          if (!r.w->packed) continue;  // a type the kernel set does not pack (a MoE router in f32)
          int64_t run_end = 0;
          const uint8_t* begin = r.w->packed_panel(r.begin, 0, run_end);
          EXPECT_GE(run_end, r.end) << type << ", a team of " << members << ": a share split over runs";
          if (next) {
            EXPECT_EQ(begin, next) << type << ", a team of " << members << ": a gap between shares";
          }
          const uintptr_t end = reinterpret_cast<uintptr_t>(begin) + size_t(r.end - r.begin) * r.w->panel_bytes;
          next = reinterpret_cast<const uint8_t*>((end + 63) / 64 * 64);
        }
      }
      ThreadPool pool(2);
      model::Forward fwd(*model, pool);
      model::KvCache cache(model->config(), 32, 1);
      std::vector<model::BatchToken> prompt;
      for (int64_t p = 0; p < 5; p++) prompt.push_back({int32_t(3 + 7 * p), p, 0, true});
      std::vector<float> logits = fwd.run(prompt, cache);
      for (int64_t p = 5; p < 9; p++) {
        const std::vector<float> step = fwd.run({{int32_t(11 * p), p, 0, true}}, cache);
        logits.insert(logits.end(), step.begin(), step.end());
      }
      if (expected.empty()) expected = logits;
      ASSERT_EQ(logits.size(), expected.size());
      for (size_t v = 0; v < logits.size(); v++)
        ASSERT_EQ(logits[v], expected[v]) << type << ", a team of " << members << ", logit " << v;
    }
  }
}

// A decode step as a team counts wq, wk and wv's rows in units of key/value
// heads whose rows fill whole panels of 8, so that a head's attention can
// wait for its own unit alone.
TEST(Forward, QkvUnitsAreTheFewestHeadsThatFillWholePanels) {
  model::Config c;
  c.n_head = 16, c.n_head_kv = 8, c.head_dim = c.head_dim_v = 128;  // qwen3-0.6b
  model::Forward::QkvUnits u = model::Forward::qkv_units(c);
  EXPECT_EQ(u.heads, 1);
  EXPECT_EQ(u.count, 8);
  EXPECT_EQ(u.rows[0], 256);
  EXPECT_EQ(u.rows[1], 128);
  EXPECT_EQ(u.rows[2], 128);

  c.n_head = 8, c.n_head_kv = 4, c.head_dim = 12, c.head_dim_v = 20;  // two heads: 48, 24 and 40 rows
  u = model::Forward::qkv_units(c);
  EXPECT_EQ(u.heads, 2);
  EXPECT_EQ(u.count, 2);
  EXPECT_EQ(u.rows[0], 48);
  EXPECT_EQ(u.rows[1], 24);
  EXPECT_EQ(u.rows[2], 40);

  c.n_head = 3, c.n_head_kv = 3, c.head_dim = c.head_dim_v = 12;  // no divisor of 3 fills panels: one unit
  u = model::Forward::qkv_units(c);
  EXPECT_EQ(u.heads, 3);
  EXPECT_EQ(u.count, 1);
  EXPECT_EQ(u.rows[0], 36);  // the last panel part-filled
}

// Lookup decoding (engine/lookup.h) checks drafted tokens in one pass of a
// few tokens and samples each row as if it came from a single step: for
// its output to be the plain decode's, such a pass must give exactly the
// logits of single steps. It does for f32 and every quantized type (integer
// sums per block, the same float steps per token); f16 and bf16 weights
// keep a number of float accumulators per token that depends on the tokens
// in the pass, so there the sums differ in their last bits.
TEST_P(PerArchitecture, PassesOfAFewTokensGiveExactlyTheLogitsOfSingleSteps) {
  for (const char* type : {"f32", "q8_0", "q4_0", "q5_0", "q4_K_M", "q6_K", "q5_K", "q3_K", "q2_K"}) {
    auto model = model::Model::load(tiny_model(GetParam(), type, true));
    const auto& c = model->config();
    ThreadPool pool(2);
    model::Forward fwd(*model, pool);
    std::vector<model::BatchToken> prompt;
    for (int64_t i = 0; i < 10; i++) prompt.push_back({int32_t((i * 7919 + 13) % c.n_vocab), i, 0, i == 9});
    for (int64_t tokens = 2; tokens <= 4; tokens++) {
      model::KvCache single_cache(c, 64, 1), pass_cache(c, 64, 1);
      fwd.run(prompt, single_cache);
      fwd.run(prompt, pass_cache);
      std::vector<model::BatchToken> pass;
      std::vector<float> singles;
      for (int64_t i = 0; i < tokens; i++) {
        const model::BatchToken t{int32_t((i * 31 + 5) % c.n_vocab), 10 + i, 0, true};
        pass.push_back(t);
        const std::vector<float> one = fwd.run({t}, single_cache);
        singles.insert(singles.end(), one.begin(), one.end());
      }
      const std::vector<float> together = fwd.run(pass, pass_cache);
      ASSERT_EQ(together.size(), singles.size());
      for (size_t v = 0; v < singles.size(); v++)
        ASSERT_EQ(together[v], singles[v]) << type << ", a pass of " << tokens << ", logit " << v;
    }
  }
}

// Forward::run into the caller's vector (what decode loops do, reusing it
// step after step) gives exactly what a fresh vector gets, whatever the
// vector held before: a prompt long enough to run in slices, batches that
// run as loops, decode steps and passes that run as a team, and a batch
// that wants no logits.
TEST_P(PerArchitecture, LogitsIntoAReusedVectorAreThoseOfAFreshOne) {
  auto model = model::Model::load(tiny_model(GetParam(), "q4_K_M", true));
  const auto& c = model->config();
  ThreadPool pool(2);
  model::Forward fwd(*model, pool);
  model::KvCache fresh_cache(c, 512, 1), reused_cache(c, 512, 1);
  std::vector<float> reused(size_t(3 * c.n_vocab), std::nanf(""));
  int64_t pos = 0;
  for (const int64_t n : {300, 20, 1, 3, 1, 5, 1}) {
    std::vector<model::BatchToken> b;
    for (int64_t i = 0; i < n; i++, pos++)
      b.push_back({int32_t((pos * 7919 + 13) % c.n_vocab), pos, 0, n != 5 && (i % 7 == 0 || i == n - 1)});
    const std::vector<float> fresh = fwd.run(b, fresh_cache);
    fwd.run(b, reused_cache, reused);
    ASSERT_EQ(reused.size(), fresh.size()) << "a batch of " << n;
    for (size_t v = 0; v < fresh.size(); v++) ASSERT_EQ(reused[v], fresh[v]) << "a batch of " << n << ", logit " << v;
  }
}

// The cache grows by moving its layers to the doubled storage one after
// another over the last quarter before each doubling (kv_cache.h); decode
// steps and batches that read layers on both sides of that move give exactly
// the logits of a cache reserved whole from the start.
TEST_P(PerArchitecture, GrowingTheCacheLayerByLayerChangesNoLogit) {
  auto model = model::Model::load(tiny_model(GetParam(), "q4_K_M", true));
  const auto& c = model->config();
  ThreadPool pool(2);
  model::Forward fwd(*model, pool);
  model::KvCache growing(c, 512, 1), whole(c, 512, 1);
  whole.reserve(0, 511);
  auto expect_same = [&](int64_t first, int64_t n) {
    std::vector<model::BatchToken> b;
    for (int64_t p = first; p < first + n; p++) b.push_back({int32_t((p * 7919 + 13) % c.n_vocab), p, 0, true});
    const std::vector<float> expected = fwd.run(b, whole), got = fwd.run(b, growing);
    ASSERT_EQ(got.size(), expected.size());
    for (size_t v = 0; v < expected.size(); v++)
      ASSERT_EQ(got[v], expected[v]) << "positions " << first << "-" << first + n - 1 << " logit " << v;
  };
  expect_same(0, 40);
  for (int64_t pos = 40; pos < 111; pos++) expect_same(pos, 1);  // 64 -> 128 over 48-63, then 96-110 of 128 -> 256
  expect_same(111, 90);                                          // to 256 at 128, then 192-200 of 256 -> 512
  EXPECT_EQ(growing.bytes(), size_t(256 + 512) * growing.bytes_per_position());  // both, while it moves
  for (int64_t pos = 201; pos < 261; pos++) expect_same(pos, 1);
  EXPECT_EQ(growing.bytes(), whole.bytes());
}

std::vector<int32_t> greedy_tokens(const std::string& path, int n, model::KvCacheTypes cache_types = {}) {
  engine::EngineOptions o;
  o.model_path = path;
  o.n_ctx = 128;
  o.threads = 2;
  o.cache_types = cache_types;
  engine::Engine e(o);
  engine::GenerateParams p;
  p.sampling.temperature = 0;
  p.max_tokens = n;
  auto prompt = e.tokenizer().encode("Hello world, this is a test", e.tokenizer().add_bos(), false);
  return engine::generate(e, 0, prompt, p).tokens;
}

// A Q8_0 KV cache (-ctk/-ctv q8_0) keeps keys and values to 8 bits: the
// batched prefill (keys and values converted to f32 per run) and the decode
// steps (read from the Q8_0 rows) agree as with the f16 cache, every
// combination of key and value types keeps a peaked model's greedy tokens,
// and the logits stay near the f16 cache's.
TEST_P(PerArchitecture, Q8_0KvCacheKeepsTheF16CachesTokens) {
  const auto q8 = gguf::TensorType::Q8_0, f16 = gguf::TensorType::F16;
  expect_batched_prefill_matches_single_steps(tiny_model(GetParam(), "f32"), 1e-4f, false, {q8, q8});
  const std::string peaked = tiny_model(GetParam(), "f32", true);
  const auto reference = greedy_tokens(peaked, 32);
  EXPECT_GE(reference.size(), 8u);
  for (const model::KvCacheTypes types : {model::KvCacheTypes{q8, q8}, model::KvCacheTypes{q8, f16},
                                          model::KvCacheTypes{f16, q8}})
    EXPECT_EQ(greedy_tokens(peaked, 32, types), reference)
        << gguf::type_name(types.key) << " keys, " << gguf::type_name(types.value) << " values";

  auto model = model::Model::load(tiny_model(GetParam(), "f32"));
  const auto& c = model->config();
  ThreadPool pool(2);
  model::Forward fwd(*model, pool);
  model::KvCache f16_cache(c, 64, 1), q8_cache(c, 64, 1, {q8, q8});
  float worst = 0;
  for (int64_t pos = 0; pos < 40; pos++) {
    const std::vector<model::BatchToken> step{{int32_t((pos * 7919 + 13) % c.n_vocab), pos, 0, true}};
    const auto want = fwd.run(step, f16_cache), got = fwd.run(step, q8_cache);
    float max_abs = 1;
    for (float v : want) max_abs = std::max(max_abs, std::fabs(v));
    for (size_t v = 0; v < want.size(); v++) worst = std::max(worst, std::fabs(got[v] - want[v]) / max_abs);
  }
  EXPECT_LT(worst, 2e-2f) << "largest logit difference, relative to the largest logit";
  EXPECT_GT(worst, 0.0f) << "the Q8_0 cache rounds keys and values, so some logit must move";
  EXPECT_LT(double(q8_cache.bytes()), 0.55 * double(f16_cache.bytes()));
}

TEST(KvCacheTypeFlags, LlamaCppSpellingsWorkAndOtherTypesAreUsageErrors) {
  const std::string path = tiny_model("tiny-llama", "q8_0");
  auto ok = test::run_warden({"generate", "-m", path, "-p", "Hello", "-n", "4", "--temp", "0", "-ctk", "q8_0", "-ctv",
                              "q8_0"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  auto bench = test::run_warden({"bench", "-m", path, "-p", "8", "-n", "4", "-r", "1", "-t", "1", "--cache-type-k",
                                 "q8_0", "--json"});
  ASSERT_EQ(bench.exit_code, 0) << bench.err;
  const auto j = nlohmann::json::parse(bench.out);
  ASSERT_EQ(j.size(), 2u);  // pp8, tg4
  EXPECT_EQ(j[0]["cache_type_k"], "q8_0");
  EXPECT_EQ(j[0]["cache_type_v"], "f16");
  auto bad = test::run_warden({"generate", "-m", path, "-p", "Hello", "-n", "4", "-ctv", "q4_0"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--cache-type-v"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("q4_0"), std::string::npos) << bad.err;
}

TEST_P(PerArchitecture, F32AndQ8_0OfAPeakedModelAgreeOnGreedyTokens) {
  auto f32 = greedy_tokens(tiny_model(GetParam(), "f32", true), 32);
  auto q8 = greedy_tokens(tiny_model(GetParam(), "q8_0", true), 32);
  EXPECT_GE(f32.size(), 8u);
  EXPECT_EQ(f32, q8);
}

// The weights the SIMD sets repack at load (decode and prefill then run the
// packed matrix kernels; BF16 with vdpbf16ps where the CPU has AVX512-BF16)
// give the same greedy text as the scalar reference kernels, which compute
// one dot per row and never repack.
TEST_P(PerArchitecture, RepackedWeightsGenerateWhatTheScalarKernelsGenerate) {
  for (const char* type : {"q8_0", "q4_0", "q4_K_M", "q6_K", "f16", "bf16"}) {
    const std::string path = tiny_model(GetParam(), type, true);
    if (tensor::kernel_set_name() != std::string("scalar")) {
      EXPECT_GT(model::Model::load(path)->packed_bytes(), 0u) << type;
    }
    const std::vector<std::string> args{"generate", "-m", path, "-p", "Once upon", "-n", "24", "--temp", "0"};
    const auto fast = test::run_warden(args);
    ::setenv("WARDEN_KERNELS", "scalar", 1);
    const auto reference = test::run_warden(args);
    ::unsetenv("WARDEN_KERNELS");
    ASSERT_EQ(fast.exit_code, 0) << fast.err;
    ASSERT_EQ(reference.exit_code, 0) << reference.err;
    EXPECT_GT(fast.out.size(), 9u) << type;
    EXPECT_EQ(fast.out, reference.out) << type;
  }
}

// A token's embedding is its row of token_embd as the file has it, whether
// Model::embed reads it back from the packed output matrix (a tied Q6_K,
// Q8_0, Q4_0 or F16 embedding: every row of a panel), from the file, or
// through the mapping; an untied embedding is not repacked (only matrices the
// forward pass multiplies by are).
TEST_P(PerArchitecture, EmbeddingsAreTheFilesRows) {
  for (const char* type : {"q8_0", "q4_K_M", "q6_K", "q4_0", "f16", "bf16"}) {
    auto m = model::Model::load(tiny_model(GetParam(), type));
    const model::Matrix& e = m->token_embd;
    if (m->output.data != e.data) {
      EXPECT_EQ(e.packed, nullptr) << type;
    }
    std::vector<float> got(size_t(e.cols)), want(size_t(e.cols));
    for (int32_t token : {0, 1, 2, 3, 4, 5, 6, 7, 13, 777, int32_t(e.rows) - 1}) {
      m->embed(token, got.data());
      tensor::dequantize_row(e.type, e.row(token), want.data(), e.cols);
      EXPECT_EQ(got, want) << type << " token " << token;
    }
  }
}

// The engine builds its tokenizer while the model loads, then the file's
// vocabulary arrays are released (Model::load). Nothing may change: the
// tokenizer must equal one built from a fresh parse of the whole file, and
// greedy generation must equal a plain forward-pass loop decoded with that
// fresh tokenizer.
TEST_P(PerArchitecture, ReleasingTheVocabularyAfterLoadChangesNothing) {
  const std::string path = tiny_model(GetParam(), "f32", true);
  engine::EngineOptions o;
  o.model_path = path;
  o.n_ctx = 128;
  o.threads = 2;
  engine::Engine e(o);

  // The loaded file no longer holds the vocabulary; reading it is a clear
  // error, while the small values (the chat template) are still there.
  const gguf::File& loaded = e.model().file();
  for (const char* key : {"tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.merges"}) {
    ASSERT_TRUE(loaded.has(key)) << key;
    EXPECT_TRUE(loaded.find(key)->released()) << key;
    try {
      loaded.get(key);
      ADD_FAILURE() << key << " is still readable";
    } catch (const Error& err) {
      EXPECT_NE(std::string(err.what()).find(std::string(key) + " ("), std::string::npos) << err.what();
      EXPECT_NE(std::string(err.what()).find("was released"), std::string::npos) << err.what();
    }
  }
  EXPECT_THROW(tokenizer::Tokenizer::from_gguf(loaded), Error);
  const gguf::File fresh(path);
  EXPECT_EQ(loaded.get_string("tokenizer.chat_template"), fresh.get_string("tokenizer.chat_template"));
  EXPECT_FALSE(loaded.get_string("tokenizer.chat_template").empty());

  const tokenizer::Tokenizer reference = tokenizer::Tokenizer::from_gguf(fresh);
  const tokenizer::Tokenizer& tok = e.tokenizer();
  ASSERT_EQ(tok.size(), reference.size());
  EXPECT_EQ(tok.bos(), reference.bos());
  EXPECT_EQ(tok.eos(), reference.eos());
  EXPECT_EQ(tok.eot(), reference.eot());
  for (int32_t id = 0; id < int32_t(reference.size()); id++) {
    ASSERT_EQ(tok.text(id), reference.text(id)) << id;
    ASSERT_EQ(tok.type(id), reference.type(id)) << id;
    ASSERT_EQ(tok.score(id), reference.score(id)) << id;
    ASSERT_EQ(tok.token_to_piece(id, true), reference.token_to_piece(id, true)) << id;
    ASSERT_EQ(tok.is_end_of_generation(id), reference.is_end_of_generation(id)) << id;
  }
  const std::string prompt_text = "Hello world, this is a test: ünïcode, 12345 and\n\tspaces  ";
  for (bool special : {false, true}) {
    const std::string text = prompt_text + reference.text(reference.eos());
    EXPECT_EQ(tok.encode(text, true, special), reference.encode(text, true, special)) << special;
  }

  const std::vector<int32_t> prompt = reference.encode(prompt_text, reference.add_bos(), false);
  engine::GenerateParams p;
  p.sampling.temperature = 0;
  p.max_tokens = 24;
  const engine::GenerateResult generated = engine::generate(e, 0, prompt, p);

  auto model = model::Model::load(path);
  const auto& c = model->config();
  ThreadPool pool(2);
  model::Forward fwd(*model, pool);
  model::KvCache cache(c, 128, 1);
  std::vector<model::BatchToken> batch;
  for (size_t i = 0; i < prompt.size(); i++) batch.push_back({prompt[i], int64_t(i), 0, i + 1 == prompt.size()});
  std::vector<float> logits = fwd.run(batch, cache);
  std::vector<int32_t> expected;
  tokenizer::StreamDecoder decoder(reference);
  decoder.continue_after(prompt);
  std::string expected_text;
  for (int64_t pos = int64_t(prompt.size()); expected.size() < 24; pos++) {
    const auto token = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
    if (reference.is_end_of_generation(token)) break;
    expected.push_back(token);
    expected_text += decoder.push(token);
    logits = fwd.run({{token, pos, 0, true}}, cache);
  }
  expected_text += decoder.flush();
  EXPECT_GE(expected.size(), 8u);
  EXPECT_EQ(generated.tokens, expected);
  EXPECT_EQ(generated.text, expected_text);
}

INSTANTIATE_TEST_SUITE_P(Tiny, PerArchitecture,
                         ::testing::Values("tiny-llama", "tiny-qwen2", "tiny-qwen3", "tiny-qwen3moe"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (auto& ch : n)
                             if (ch == '-') ch = '_';
                           return n;
                         });

}  // namespace
}  // namespace warden
