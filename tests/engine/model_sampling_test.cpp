// The sampling a model file recommends (general.sampling.*): taken where
// the user set nothing, left where a flag did, skipped with a warning when
// a value is of the wrong type or out of range; and `warden generate`
// samples as the file says, on the real trained tiny model.
#include "engine/model_sampling.h"

#include <gtest/gtest.h>

#include <cmath>

#include "common/test_env.h"
#include "gguf/gguf.h"

using namespace warden;
using gguf::Value;
using gguf::ValueType;

namespace {

// stories260K with `extra` metadata added (tensors and metadata copied).
std::string stories_with(const std::vector<std::pair<std::string, Value>>& extra) {
  const gguf::File source(test::shared_path("models/stories260K.gguf"));
  gguf::Writer w;
  w.set_alignment(uint32_t(source.alignment()));
  for (const auto& [key, value] : source.metadata()) w.set(key, value);
  for (const auto& [key, value] : extra) w.set(key, value);
  for (const auto& t : source.tensors()) {
    const gguf::TensorView view = source.tensor(t.name);
    w.add_tensor(t.name, t.dims, t.type, std::vector<uint8_t>(view.data, view.data + t.size));
  }
  const std::string path = test::make_temp_dir("sampling") + "/stories-recommended.gguf";
  w.write(path);
  return path;
}

Value i32(int32_t v) { return Value::i32(v); }
Value f32(float v) { return Value::f32(v); }

TEST(ModelSampling, TheFilesRecommendationIsTakenWhereTheUserSetNothing) {
  const gguf::File file(stories_with({{"general.sampling.temp", f32(0.6f)},
                                      {"general.sampling.top_k", i32(20)},
                                      {"general.sampling.top_p", f32(0.5f)},
                                      {"general.sampling.min_p", f32(0.0f)},
                                      {"general.sampling.penalty_last_n", i32(128)},
                                      {"general.sampling.penalty_repeat", f32(1.25f)}}));
  sample::SamplerParams p;
  EXPECT_EQ(engine::apply_model_sampling(file, p, {}),
            "temp 0.6, top_k 20, top_p 0.5, min_p 0, penalty_last_n 128, penalty_repeat 1.25");
  EXPECT_FLOAT_EQ(p.temperature, 0.6f);
  EXPECT_EQ(p.top_k, 20);
  EXPECT_FLOAT_EQ(p.top_p, 0.5f);
  EXPECT_FLOAT_EQ(p.min_p, 0.0f);
  EXPECT_EQ(p.repeat_last_n, 128);
  EXPECT_FLOAT_EQ(p.repeat_penalty, 1.25f);

  sample::SamplerParams given;
  given.temperature = 1.5f;
  given.top_k = 7;
  EXPECT_EQ(engine::apply_model_sampling(file, given, {"temp", "top_k"}),
            "top_p 0.5, min_p 0, penalty_last_n 128, penalty_repeat 1.25");
  EXPECT_FLOAT_EQ(given.temperature, 1.5f);
  EXPECT_EQ(given.top_k, 7);
}

TEST(ModelSampling, AValueThatIsNoNumberOrOutOfRangeIsSkipped) {
  const gguf::File file(stories_with({{"general.sampling.temp", f32(std::nanf(""))},
                                      {"general.sampling.top_k", f32(20.5f)},
                                      {"general.sampling.top_p", f32(-0.5f)},
                                      {"general.sampling.min_p", Value::string("0.1x")},
                                      {"general.sampling.penalty_last_n", i32(-2)},
                                      {"general.sampling.penalty_repeat", f32(0.0f)}}));
  const sample::SamplerParams before;
  sample::SamplerParams p = before;
  EXPECT_EQ(engine::apply_model_sampling(file, p, {}), "");
  EXPECT_EQ(p.temperature, before.temperature);
  EXPECT_EQ(p.top_k, before.top_k);
  EXPECT_EQ(p.top_p, before.top_p);
  EXPECT_EQ(p.min_p, before.min_p);
  EXPECT_EQ(p.repeat_last_n, before.repeat_last_n);
  EXPECT_EQ(p.repeat_penalty, before.repeat_penalty);
}

// As llama.cpp reads them (each value as text): an integer stored as a
// float, a number in a string; and the flags' ranges (top_k 0 or less is
// off, temp 0 or less greedy).
TEST(ModelSampling, NumbersAreReadWhateverTheirTypeAsLlamaCppReadsThem) {
  const gguf::File file(stories_with({{"general.sampling.top_k", f32(20.0f)},
                                      {"general.sampling.temp", Value::string("0.6")},
                                      {"general.sampling.min_p", Value{ValueType::FLOAT64, 0.125}},
                                      {"general.sampling.penalty_last_n", Value{ValueType::INT64, int64_t(-1)}}}));
  sample::SamplerParams p;
  EXPECT_EQ(engine::apply_model_sampling(file, p, {}), "top_k 20, temp 0.6, min_p 0.125, penalty_last_n -1");
  EXPECT_EQ(p.top_k, 20);
  EXPECT_FLOAT_EQ(p.temperature, 0.6f);
  EXPECT_FLOAT_EQ(p.min_p, 0.125f);
  EXPECT_EQ(p.repeat_last_n, -1);
  const gguf::File off(stories_with({{"general.sampling.top_k", i32(-5)}, {"general.sampling.temp", f32(-1.0f)}}));
  EXPECT_EQ(engine::apply_model_sampling(off, p, {}), "top_k -5, temp -1");
}

std::vector<std::string> generate(const std::string& model, const std::string& seed,
                                  const std::vector<std::string>& more = {}) {
  std::vector<std::string> args{"generate", "-m", model,    "-p", "Once upon a time", "-n", "40",
                                "-t",       "1",  "--seed", seed};
  args.insert(args.end(), more.begin(), more.end());
  const auto r = test::run_warden(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return {r.out, r.err};
}

// A file that recommends greedy decoding (temp 0) gives the same story
// whatever the seed, and says where its sampling came from; --temp given
// on the command line wins. The file as it came samples at warden's
// default temperature, so the seeds differ there.
TEST(ModelSampling, GenerateSamplesAsTheFileRecommendsUnlessAFlagSaysOtherwise) {
  const std::string original = test::shared_path("models/stories260K.gguf");
  const std::string greedy =
      stories_with({{"general.sampling.temp", f32(0.0f)}, {"general.sampling.mirostat", i32(2)}});
  EXPECT_NE(generate(original, "1")[0], generate(original, "2")[0]);
  const auto one = generate(greedy, "1");
  EXPECT_EQ(one[0], generate(greedy, "2")[0]);
  EXPECT_EQ(one[0], generate(original, "3", {"--temp", "0"})[0]);
  EXPECT_NE(one[1].find("sampling as the model file recommends: temp 0"), std::string::npos) << one[1];
  EXPECT_NE(one[1].find("general.sampling.mirostat is not used: warden's sampler has no such setting"),
            std::string::npos)
      << one[1];
  // llama.cpp's spellings: -s, --temperature; the last of a flag given twice wins.
  EXPECT_EQ(generate(original, "4", {"--temp", "5", "--temperature", "0"})[0],
            generate(original, "5", {"-s", "6", "--temp", "0"})[0]);
  const auto hot = generate(greedy, "1", {"--temp", "1"});
  EXPECT_EQ(hot[1].find("sampling as the model file recommends"), std::string::npos) << hot[1];
  EXPECT_NE(hot[0], generate(greedy, "2", {"--temp", "1"})[0]);
}

// Each sampling flag keeps the file's recommendation of its own setting
// out, and only that one (the flag's name and the key's are matched in
// apps/warden/command.cpp).
TEST(ModelSampling, EachFlagOverridesItsOwnKey) {
  const std::string file = stories_with({{"general.sampling.temp", f32(0.5f)},
                                         {"general.sampling.top_k", i32(20)},
                                         {"general.sampling.top_p", f32(0.5f)},
                                         {"general.sampling.min_p", f32(0.25f)},
                                         {"general.sampling.penalty_last_n", i32(32)},
                                         {"general.sampling.penalty_repeat", f32(1.5f)}});
  const std::string all = "temp 0.5, top_k 20, top_p 0.5, min_p 0.25, penalty_last_n 32, penalty_repeat 1.5";
  EXPECT_NE(generate(file, "1")[1].find("recommends: " + all), std::string::npos);
  const std::vector<std::pair<std::string, std::string>> flags{{"--temp", "temp 0.5, "},
                                                               {"--top-k", "top_k 20, "},
                                                               {"--top-p", "top_p 0.5, "},
                                                               {"--min-p", "min_p 0.25, "},
                                                               {"--repeat-last-n", "penalty_last_n 32, "},
                                                               {"--repeat-penalty", ", penalty_repeat 1.5"}};
  for (const auto& [flag, part] : flags) {
    std::string expected = all;
    expected.erase(expected.find(part), part.size());
    const auto err = generate(file, "1", {flag, "1"})[1];
    EXPECT_NE(err.find("recommends: " + expected + "\n"), std::string::npos) << flag << ": " << err;
  }
}

}  // namespace
