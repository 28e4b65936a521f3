// The decode roofline (model/roofline.h) and `warden bench`, which reports it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "common/test_env.h"
#include "gguf/gguf.h"
#include "model/model.h"
#include "model/roofline.h"
#include "util/thread_pool.h"

namespace warden {
namespace {

std::string tiny_model(const std::string& preset, const std::string& type) {
  const std::string path = test::temp_root() + "/" + preset + "-" + type + ".gguf";
  if (!std::ifstream(path).good()) {
    auto r = test::run_warden({"make-model", "--preset", preset, "--type", type, "--seed", "3", path});
    if (r.exit_code != 0) throw std::runtime_error("make-model failed: " + r.err);
  }
  return path;
}

// What a decoded token reads, from the file's tensor table alone: every
// matrix, the used share of the expert stacks, and the embedding only when
// it doubles as the output matrix.
double file_bytes_per_token(const std::string& path) {
  gguf::File f(path);
  const std::string arch = f.get_string("general.architecture");
  const double used = double(f.get_uint(arch + ".expert_used_count", 0));
  const double total = double(f.get_uint(arch + ".expert_count", 0));
  const bool tied = f.find_tensor("output.weight") == nullptr;
  double bytes = 0;
  for (const gguf::TensorInfo& t : f.tensors()) {
    if (t.dims.size() < 2) continue;  // norms and biases
    if (t.name == "token_embd.weight" && !tied) continue;
    const bool experts = t.name.find("_exps.") != std::string::npos;
    bytes += experts ? double(t.size) * used / total : double(t.size);
  }
  return bytes;
}

class Roofline : public ::testing::TestWithParam<std::string> {};

// Q8_0's packed panels hold exactly the bytes of the rows they replace, so
// with or without repacking the read set must match the tensor table.
TEST_P(Roofline, ReadSetIsEveryMatrixADecodedTokenMultipliesBy) {
  for (const char* type : {"f32", "q8_0"}) {
    const std::string path = tiny_model(GetParam(), type);
    auto m = model::Model::load(path);
    const auto spans = model::decode_read_set(*m);
    EXPECT_DOUBLE_EQ(double(model::total_bytes(spans)), file_bytes_per_token(path)) << type;
    ThreadPool pool(2);
    const double s = model::time_read_pass(spans, pool);
    EXPECT_TRUE(std::isfinite(s) && s > 0) << s;
  }
}

INSTANTIATE_TEST_SUITE_P(Tiny, Roofline, ::testing::Values("tiny-llama", "tiny-qwen3", "tiny-qwen3moe"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (auto& ch : n)
                             if (ch == '-') ch = '_';
                           return n;
                         });

TEST(WardenBench, JsonReportsSpeedRssAndTheRoofline) {
  const std::string path = tiny_model("tiny-qwen3", "q8_0");
  auto r = test::run_warden({"bench", "-m", path, "-p", "16", "-n", "8", "-r", "2", "-t", "2", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["pp"]["samples"].size(), 2u);
  EXPECT_EQ(j["tg"]["samples"].size(), 2u);
  EXPECT_GT(j["pp"]["mean"].get<double>(), 0);
  EXPECT_GT(j["peak_rss_mib"].get<double>(), 0);
  // The repacked weights, and how much of them sits in huge pages.
  EXPECT_GT(j["packed_mib"].get<double>(), 0);
  EXPECT_GE(j["packed_huge_page_mib"].get<double>(), 0);
  EXPECT_LE(j["packed_huge_page_mib"].get<double>(), j["packed_mib"].get<double>());
  const auto& roof = j["roofline"];
  const double weights = roof["bytes_per_token"].get<double>(), kv = roof["kv_bytes_per_token"].get<double>();
  EXPECT_DOUBLE_EQ(weights, file_bytes_per_token(path));
  EXPECT_GT(kv, 0);
  // Three read passes right after each generation run; each run is compared
  // with the median of its own passes, stretched by the KV cache it reads.
  ASSERT_EQ(roof["read_s"].size(), 2u);
  ASSERT_EQ(roof["tg_fraction_samples"].size(), 2u);
  for (size_t r = 0; r < 2; r++) {
    auto passes = roof["read_s"][r].get<std::vector<double>>();
    ASSERT_EQ(passes.size(), 3u);
    std::sort(passes.begin(), passes.end());
    EXPECT_NEAR(roof["tg_fraction_samples"][r].get<double>(),
                j["tg"]["samples"][r].get<double>() * passes[1] * (1 + kv / weights), 1e-9);
  }
}

// -d: the tests run after that many tokens in the cache (llama-bench's
// --n-depth), and a generated token reads the cache up to its position.
TEST(WardenBench, DepthStartsTheTestsAfterAFilledCache) {
  const std::string path = tiny_model("tiny-qwen3", "q8_0");
  auto kv_at = [&](const char* depth) {
    auto r = test::run_warden({"bench", "-m", path, "-p", "8", "-n", "4", "-d", depth, "-r", "1", "-t", "2", "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["depth"].get<int64_t>(), std::stoll(depth));
    EXPECT_GT(j["tg"]["mean"].get<double>(), 0);
    return j["roofline"]["kv_bytes_per_token"].get<double>();
  };
  const double at_0 = kv_at("0"), at_40 = kv_at("40");
  // At depth 0 the four tokens attend over 1..4 positions: 2.5 on average.
  EXPECT_NEAR(at_40 - at_0, 40 * at_0 / 2.5, 1e-6 * at_40);

  auto table = test::run_warden({"bench", "-m", path, "-p", "8", "-n", "4", "-d", "16", "-r", "1"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("pp8 @ d16 |"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("tg4 @ d16 |"), std::string::npos) << table.out;
}

TEST(WardenBench, TableEndsWithTheRooflineLine) {
  auto r = test::run_warden({"bench", "-m", tiny_model("tiny-llama", "q8_0"), "-p", "0", "-n", "4", "-r", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(" tg4 |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("roofline: a token reads"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("of the roofline measured right after it"), std::string::npos) << r.out;
}

TEST(WardenBench, BadArgumentsAreUsageErrors) {
  const std::string path = tiny_model("tiny-llama", "q8_0");
  EXPECT_EQ(test::run_warden({"bench", "-m", path, "-p", "0", "-n", "0"}).exit_code, 2);
  EXPECT_EQ(test::run_warden({"bench", "-m", path, "-r", "0"}).exit_code, 2);
  EXPECT_EQ(test::run_warden({"bench", "-m", path, "-d", "-1"}).exit_code, 2);
  // Past the model's training context: an error naming both figures.
  auto too_deep = test::run_warden({"bench", "-m", path, "-d", "100000000", "-p", "0", "-n", "1"});
  EXPECT_EQ(too_deep.exit_code, 1);
  EXPECT_NE(too_deep.err.find("past the model's context"), std::string::npos) << too_deep.err;
  auto missing = test::run_warden({"bench", "-m", test::temp_root() + "/absent.gguf"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("absent.gguf"), std::string::npos) << missing.err;
}

}  // namespace
}  // namespace warden
