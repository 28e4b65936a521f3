// The decode roofline (model/roofline.h) and `warden bench`, which reports it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <map>
#include <tuple>

#include <nlohmann/json.hpp>

#include "common/test_env.h"
#include "gguf/gguf.h"
#include "model/model.h"
#include "model/roofline.h"
#include "util/cpu_topology.h"
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

// `warden bench --json`: an array with one object per test, as llama-bench
// -o json prints.
nlohmann::json bench_json(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"bench"};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back("--json");
  auto r = test::run_warden(argv);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_TRUE(j.is_array()) << r.out;
  return j;
}

TEST(WardenBench, JsonReportsSpeedRssAndTheRoofline) {
  const std::string path = tiny_model("tiny-qwen3", "q8_0");
  const auto j = bench_json({"-m", path, "-p", "16", "-n", "8", "-r", "2", "-t", "2"});
  ASSERT_EQ(j.size(), 2u);
  const auto& pp = j[0];
  const auto& tg = j[1];
  EXPECT_EQ(pp["test"], "pp16");
  EXPECT_EQ(tg["test"], "tg8");
  EXPECT_EQ(pp["samples"].size(), 2u);
  EXPECT_EQ(tg["samples"].size(), 2u);
  EXPECT_GT(pp["mean"].get<double>(), 0);
  EXPECT_FALSE(pp.contains("roofline"));  // a prompt test reads the weights once for 16 tokens
  for (const auto& test : j) {
    EXPECT_EQ(test["model"], path);
    EXPECT_GT(test["peak_rss_mib"].get<double>(), 0);
    // The repacked weights, and how much of them sits in huge pages.
    EXPECT_GT(test["packed_mib"].get<double>(), 0);
    EXPECT_GE(test["packed_huge_page_mib"].get<double>(), 0);
    EXPECT_LE(test["packed_huge_page_mib"].get<double>(), test["packed_mib"].get<double>());
  }
  const auto& roof = tg["roofline"];
  const double weights = roof["bytes_per_token"].get<double>(), kv = roof["kv_bytes_per_token"].get<double>();
  EXPECT_DOUBLE_EQ(weights, file_bytes_per_token(path));
  EXPECT_GT(kv, 0);
  // Three read passes right after each generation run; each run is compared
  // with the median of its own passes, stretched by the KV cache it reads.
  ASSERT_EQ(roof["read_s"].size(), 2u);
  ASSERT_EQ(roof["tg_fraction_samples"].size(), 2u);
  // And a cache line's trip between the two threads after each run (none
  // where the team is one thread: a single usable CPU).
  ASSERT_EQ(roof["handoff_ns"].size(), 2u);
  for (const auto& ns : roof["handoff_ns"]) {
    if (usable_cpus() >= 2) {
      EXPECT_GT(ns.get<double>(), 0);
    } else {
      EXPECT_EQ(ns.get<double>(), 0);
    }
  }
  // What generation itself read per second: the runs' median tokens/s
  // (of two, their mean) times a token's weights and cache.
  const double mean_tg = (tg["samples"][0].get<double>() + tg["samples"][1].get<double>()) / 2;
  EXPECT_NEAR(roof["decode_gb_per_s"].get<double>(), mean_tg * (weights + kv) / 1e9, 1e-9);
  for (size_t r = 0; r < 2; r++) {
    auto passes = roof["read_s"][r].get<std::vector<double>>();
    ASSERT_EQ(passes.size(), 3u);
    std::sort(passes.begin(), passes.end());
    EXPECT_NEAR(roof["tg_fraction_samples"][r].get<double>(),
                tg["samples"][r].get<double>() * passes[1] * (1 + kv / weights), 1e-9);
  }
}

// -d: the tests run after that many tokens in the cache (llama-bench's
// --n-depth), and a generated token reads the cache up to its position.
TEST(WardenBench, DepthStartsTheTestsAfterAFilledCache) {
  const std::string path = tiny_model("tiny-qwen3", "q8_0");
  const auto j = bench_json({"-m", path, "-p", "8", "-n", "4", "-d", "0,40", "-r", "1", "-t", "2"});
  ASSERT_EQ(j.size(), 4u);  // depth by depth, each with its pp and tg
  std::vector<std::string> tests;
  for (const auto& test : j) tests.push_back(test["test"]);
  EXPECT_EQ(tests, (std::vector<std::string>{"pp8", "tg4", "pp8 @ d40", "tg4 @ d40"}));
  EXPECT_EQ(j[3]["depth"].get<int64_t>(), 40);
  EXPECT_GT(j[3]["mean"].get<double>(), 0);
  const double at_0 = j[1]["roofline"]["kv_bytes_per_token"].get<double>();
  const double at_40 = j[3]["roofline"]["kv_bytes_per_token"].get<double>();
  // At depth 0 the four tokens attend over 1..4 positions: 2.5 on average.
  EXPECT_NEAR(at_40 - at_0, 40 * at_0 / 2.5, 1e-6 * at_40);

  auto table = test::run_warden({"bench", "-m", path, "-p", "8", "-n", "4", "-d", "16", "-r", "1"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("pp8 @ d16 |"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("tg4 @ d16 |"), std::string::npos) << table.out;
}

// As llama-bench: every flag takes a list (commas, repeats, ranges), and
// every combination runs, each model loaded once.
TEST(WardenBench, ListsRunEveryCombination) {
  const std::string qwen = tiny_model("tiny-qwen3", "q8_0"), llama = tiny_model("tiny-llama", "q4_K_M");
  const auto j = bench_json({"-m", qwen + "," + llama, "-p", "2-8*2", "-n", "1-3+2", "-pg", "4,2", "-t", "1", "-t",
                             "2", "-ctk", "f16,q8_0", "-r", "2"});
  // 2 models x 2 thread counts x 2 key types x (3 prompts + 2 generations + 1 pg).
  ASSERT_EQ(j.size(), 2u * 2 * 2 * 6);
  std::vector<std::string> first_six;
  for (size_t i = 0; i < 6; i++) first_six.push_back(j[i]["test"]);
  EXPECT_EQ(first_six, (std::vector<std::string>{"pp2", "pp4", "pp8", "tg1", "tg3", "pp4+tg2"}));
  std::map<std::tuple<std::string, int, std::string, std::string>, int> seen;
  for (const auto& test : j) {
    seen[{test["model"], test["threads"], test["cache_type_k"], test["test"]}]++;
    EXPECT_EQ(test["cache_type_v"], "f16");
    EXPECT_EQ(test["samples"].size(), 2u);
    EXPECT_EQ(test.contains("roofline"), test["n_prompt"] == 0) << test["test"];
    EXPECT_GT(test["peak_rss_mib"].get<double>(), 0);
  }
  EXPECT_EQ(seen.size(), j.size()) << "each combination measured once";
  const auto& pg = j[5];
  EXPECT_EQ(pg["n_prompt"], 4);
  EXPECT_EQ(pg["n_gen"], 2);
  EXPECT_EQ(j.back()["model"], llama);
  EXPECT_EQ(j.back()["arch"], "llama");
}

// -o as llama-bench's: jsonl (an object per line) and csv (a header, then a
// row per test; fields with quotes or commas quoted).
TEST(WardenBench, JsonLinesAndCsvCarryTheSameRecords) {
  const std::string path = test::temp_root() + "/say \"hi\".gguf";
  std::filesystem::copy_file(tiny_model("tiny-qwen3", "q8_0"), path, std::filesystem::copy_options::overwrite_existing);
  auto jsonl = test::run_warden({"bench", "-m", path, "-p", "4", "-n", "2", "-r", "1", "-t", "1", "-o", "jsonl"});
  ASSERT_EQ(jsonl.exit_code, 0) << jsonl.err;
  std::istringstream lines(jsonl.out);
  std::vector<std::string> tests;
  for (std::string line; std::getline(lines, line);) tests.push_back(nlohmann::json::parse(line)["test"]);
  EXPECT_EQ(tests, (std::vector<std::string>{"pp4", "tg2"}));

  auto csv = test::run_warden({"bench", "-m", path, "-p", "4", "-n", "2", "-r", "1", "-t", "1", "-o", "csv"});
  ASSERT_EQ(csv.exit_code, 0) << csv.err;
  std::istringstream rows(csv.out);
  std::string header, pp, tg, extra;
  ASSERT_TRUE(std::getline(rows, header) && std::getline(rows, pp) && std::getline(rows, tg)) << csv.out;
  EXPECT_FALSE(std::getline(rows, extra));
  EXPECT_EQ(header.rfind("model,arch,file_mib,threads,", 0), 0u) << header;
  const std::string quoted_path = "\"" + test::temp_root() + "/say \"\"hi\"\".gguf\",";
  EXPECT_EQ(pp.rfind(quoted_path, 0), 0u) << pp;
  EXPECT_NE(pp.find(",pp4,4,0,1,"), std::string::npos) << pp;
  EXPECT_NE(tg.find(",tg2,0,2,1,"), std::string::npos) << tg;
  // The roofline columns are empty for the prompt test and filled for generation.
  EXPECT_EQ(pp.substr(pp.size() - 3), ",,,") << pp;
  EXPECT_NE(tg.back(), ',') << tg;
  EXPECT_EQ(test::run_warden({"bench", "-m", path, "-o", "xml"}).exit_code, 2);
  EXPECT_EQ(test::run_warden({"bench", "-m", path, "--json", "-o", "csv"}).exit_code, 2);  // two formats
  // A bad file among several is found before any is measured: no half output.
  auto bad = test::run_warden({"bench", "-m", path + "," + test::temp_root() + "/missing.gguf", "-p", "4", "-n", "2",
                               "-r", "1", "-o", "json"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_EQ(bad.out, "");
  EXPECT_NE(bad.err.find("missing.gguf"), std::string::npos) << bad.err;
}

TEST(WardenBench, TableNamesWhatEachNoteIsAbout) {
  const std::string qwen = tiny_model("tiny-qwen3", "q8_0"), llama = tiny_model("tiny-llama", "q4_K_M");
  auto r = test::run_warden({"bench", "-m", qwen, "-m", llama, "-p", "4", "-n", "2", "-ctk", "q8_0", "-r", "1",
                             "-t", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // The cache types get columns once one is not f16; the notes name their model.
  EXPECT_NE(r.out.find("| type_k | type_v |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| q8_0   | f16    |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("load (tiny-qwen3-q8_0.gguf): "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("load (tiny-llama-q4_K_M.gguf): "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("roofline (tiny-llama-q4_K_M.gguf, 1 threads, q8_0/f16 cache, tg2): a token reads"),
            std::string::npos)
      << r.out;
  // Each model's load line comes before its rooflines.
  EXPECT_LT(r.out.find("load (tiny-llama"), r.out.find("roofline (tiny-llama")) << r.out;
  EXPECT_LT(r.out.find("roofline (tiny-qwen3"), r.out.find("load (tiny-llama")) << r.out;
}

TEST(WardenBench, TableEndsWithTheRooflineLine) {
  auto r = test::run_warden({"bench", "-m", tiny_model("tiny-llama", "q8_0"), "-p", "0", "-n", "4", "-r", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(" tg4 |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("roofline: a token reads"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("of the roofline measured right after it, reading at "), std::string::npos) << r.out;
}

// A handoff between a team's two threads takes some time; a team of one has
// none to measure.
TEST(Roofline, HandoffIsTimedBetweenTwoThreadsOnly) {
  ThreadPool one(1);
  EXPECT_EQ(model::time_handoff(one), 0);
  ThreadPool two(2);
  if (two.team_size() < 2) GTEST_SKIP() << "one usable CPU: the team is one thread";
  EXPECT_GT(model::time_handoff(two), 0);
}

TEST(WardenBench, BadArgumentsAreUsageErrors) {
  const std::string path = tiny_model("tiny-llama", "q8_0");
  EXPECT_EQ(test::run_warden({"bench", "-m", path, "-p", "0", "-n", "0"}).exit_code, 2);
  EXPECT_EQ(test::run_warden({"bench", "-m", path, "-r", "0"}).exit_code, 2);
  EXPECT_EQ(test::run_warden({"bench", "-m", path, "-d", "-1"}).exit_code, 2);
  // Lists and ranges that make no sense name the flag and the value.
  for (const std::vector<std::string>& bad :
       std::vector<std::vector<std::string>>{{"-p", "8-2"}, {"-p", "x"}, {"-p", "4-8*1"}, {"-n", "1-"}, {"-t", "1-100000"},
                                             {"-pg", "8"}, {"-pg", "0,4"}, {"-ctk", "q4_0"}, {"-ctv", "f16,q4_0"}}) {
    auto r = test::run_warden({"bench", "-m", path, bad[0], bad[1], "-r", "1"});
    EXPECT_EQ(r.exit_code, 2) << bad[0] << " " << bad[1];
    EXPECT_NE(r.err.find(bad[0]), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
  }
  // Past the model's training context: an error naming both figures.
  auto too_deep = test::run_warden({"bench", "-m", path, "-d", "0,100000000", "-p", "0", "-n", "1"});
  EXPECT_EQ(too_deep.exit_code, 1);
  EXPECT_TRUE(too_deep.out.empty()) << "checked before the first test: " << too_deep.out;
  EXPECT_NE(too_deep.err.find("past the model's context"), std::string::npos) << too_deep.err;
  auto missing = test::run_warden({"bench", "-m", test::temp_root() + "/absent.gguf"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("absent.gguf"), std::string::npos) << missing.err;
}

}  // namespace
}  // namespace warden
