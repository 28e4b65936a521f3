// warden bench: prompt processing (one batch of p tokens), generation (n
// single-token steps) and both in a row (-pg), tokens/s as mean ± sd over
// REPS runs, printed as a table like llama-bench's, with each model's load
// time and peak RSS. As in llama-bench, every value flag takes a list
// (-p 128,512, repeated flags, ranges such as -t 1-4 or -p 64-512*2) and
// every combination runs, models loaded once each. With -d (llama-bench's
// --n-depth) the tests start after d tokens already in the KV cache (a long
// conversation), prefilled once per combination and untimed. Tokens are
// random ids (the speed of a forward pass does not depend on which tokens it
// sees), so no tokenizer is needed and any loadable model file can be
// measured. With -n, the decode roofline too: the tokens/s at which reading
// the weights one token needs would take all the time (model/roofline.h),
// measured right after each generation run, and what fraction of it that
// run reached. The KV cache a token attends over is read too: its mean bytes
// per generated token are added at the bandwidth the passes measured. Per
// run, because this VM's memory bandwidth moves between runs (35 to 60 GB/s
// with two threads): a run is compared with the memory of its own moment.
// After each run also the time a cache line takes between its threads,
// which tells where the VM's vCPUs sit (one CCD or two, model/roofline.h).
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <random>

#include <nlohmann/json.hpp>

#include "command.h"
#include "engine_confinement.h"
#include "gguf/gguf.h"
#include "model/forward.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "model/roofline.h"
#include "tensor/quant.h"
#include "util/error.h"
#include "util/thread_pool.h"

namespace {

using namespace warden;

// ---- The flags' value lists ---------------------------------------------

struct BenchArgs {
  std::vector<std::string> models;
  // As typed: lists of counts or ranges, expanded by expand_counts.
  std::vector<std::string> n_prompt{"512"}, n_gen{"128"}, n_depth{"0"}, threads{"0"};
  std::vector<std::string> prompt_gen;  // "PP,TG" each
  std::vector<std::string> cache_k{"f16"}, cache_v{"f16"};
  int reps = 5;
  std::string output = "md";  // -o: md (the table), json, jsonl or csv
  bool json = false;          // --json: -o json
  bool output_given = false;  // -o was on the command line
};

constexpr size_t kMaxListValues = 1000;  // a typo such as 1-100000 is refused, not run for days
constexpr int64_t kMaxCount = 1'000'000'000;  // past any context; sums and products of two fit in int64_t

// A whole decimal number from 0 to kMaxCount, or nothing.
std::optional<int64_t> parse_count(std::string_view text) {
  int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < 0 || value > kMaxCount || text[0] == '-')
    return std::nullopt;
  return value;
}

// One value as llama-bench reads it: N, FIRST-LAST (every count between),
// FIRST-LAST+STEP or FIRST-LAST*MULT.
std::vector<int64_t> expand_count(const std::string& text, const std::string& flag) {
  const UsageError bad(flag + ": '" + text +
                       "' is not a count or a range (N, FIRST-LAST, FIRST-LAST+STEP or FIRST-LAST*MULT)");
  const size_t dash = text.find('-');
  if (dash == std::string::npos) {
    const auto n = parse_count(text);
    if (!n) throw bad;
    return {*n};
  }
  const size_t op = text.find_first_of("+*", dash);
  const auto first = parse_count(std::string_view(text).substr(0, dash));
  const auto last = parse_count(std::string_view(text).substr(dash + 1, op == std::string::npos ? op : op - dash - 1));
  const auto step = op == std::string::npos ? std::optional<int64_t>(1) : parse_count(std::string_view(text).substr(op + 1));
  const bool multiply = op != std::string::npos && text[op] == '*';
  if (!first || !last || !step || *last < *first || *step < (multiply ? 2 : 1) || (multiply && *first == 0))
    throw bad;
  std::vector<int64_t> values;
  for (int64_t v = *first; v <= *last; v = multiply ? v * *step : v + *step) {
    if (values.size() == kMaxListValues) throw UsageError(flag + ": '" + text + "' makes too many values");
    values.push_back(v);
  }
  return values;
}

std::vector<int64_t> expand_counts(const std::vector<std::string>& items, const std::string& flag) {
  std::vector<int64_t> values;
  for (const std::string& item : items)
    for (int64_t v : expand_count(item, flag)) values.push_back(v);
  return values;
}

// -pg PP,TG: a prompt of PP tokens, then TG generated (llama-bench's).
std::pair<int64_t, int64_t> parse_prompt_gen(const std::string& text) {
  const size_t comma = text.find(',');
  const auto pp = parse_count(std::string_view(text).substr(0, comma));
  const auto tg = comma == std::string::npos ? std::nullopt : parse_count(std::string_view(text).substr(comma + 1));
  if (!pp || !tg || *pp == 0 || *tg == 0) throw UsageError("-pg: '" + text + "' is not PP,TG (two counts above 0)");
  return {*pp, *tg};
}

gguf::TensorType cache_type(const std::string& name, const std::string& flag) {
  try {
    return model::parse_kv_cache_type(name, flag);
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
}

// What one run of the command measures: every combination of these.
struct Plan {
  std::vector<std::string> models;
  std::vector<int> threads;
  std::vector<model::KvCacheTypes> cache_types;
  std::vector<int64_t> depths;
  // The tests at each combination, in order: (n_prompt, n_gen); (p, 0) is a
  // prompt test, (0, n) a generation test, (p, n) both in a row.
  std::vector<std::pair<int64_t, int64_t>> tests;
  int reps = 1;
  std::string output;

  int64_t longest_test() const {
    int64_t longest = 0;
    for (const auto& [p, n] : tests) longest = std::max(longest, p + n);
    return longest;
  }
  // Throws before anything runs if a combination would not fit the model's
  // context.
  void check_context(const model::Config& c) const {
    const int64_t n_ctx = *std::max_element(depths.begin(), depths.end()) + longest_test();
    if (c.n_ctx_train > 0 && n_ctx > c.n_ctx_train)
      throw Error("-d plus -p/-n/-pg make " + std::to_string(n_ctx) + " positions, past the model's context of " +
                  std::to_string(c.n_ctx_train));
  }
};

Plan plan_of(const BenchArgs& a) {
  if (a.reps < 1) throw UsageError("-r must be at least 1");
  Plan plan;
  plan.models = a.models;
  plan.reps = a.reps;
  if (a.json && a.output_given && a.output != "json") throw UsageError("--json is -o json; -o says " + a.output);
  plan.output = a.json ? "json" : a.output;
  for (int64_t t : expand_counts(a.threads, "-t")) {
    if (t > 4096) throw UsageError("-t: " + std::to_string(t) + " threads is more than any machine this runs on");
    plan.threads.push_back(int(t));
  }
  for (const std::string& k : a.cache_k)
    for (const std::string& v : a.cache_v) plan.cache_types.push_back({cache_type(k, "-ctk"), cache_type(v, "-ctv")});
  plan.depths = expand_counts(a.n_depth, "-d");
  for (int64_t p : expand_counts(a.n_prompt, "-p"))
    if (p > 0) plan.tests.push_back({p, 0});
  for (int64_t n : expand_counts(a.n_gen, "-n"))
    if (n > 0) plan.tests.push_back({0, n});
  for (const std::string& pg : a.prompt_gen) plan.tests.push_back(parse_prompt_gen(pg));
  if (plan.tests.empty()) throw UsageError("nothing to measure: -p and -n are all 0 and there is no -pg");
  return plan;
}

// ---- Running the tests ----------------------------------------------------

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::vector<int32_t> random_tokens(int64_t n, int64_t n_vocab, std::mt19937& rng) {
  std::uniform_int_distribution<int32_t> pick(0, int32_t(n_vocab - 1));
  std::vector<int32_t> tokens(static_cast<size_t>(n));
  for (auto& t : tokens) t = pick(rng);
  return tokens;
}

// The tokens as one batch at positions first, first + 1, ...
void run_batch(model::Forward& fwd, model::KvCache& cache, const std::vector<int32_t>& tokens, int64_t first) {
  std::vector<model::BatchToken> batch(tokens.size());
  for (size_t i = 0; i < tokens.size(); i++) batch[i] = {tokens[i], first + int64_t(i), 0, i + 1 == tokens.size()};
  fwd.run(batch, cache);
}

// One run of a test after the first `depth` positions of the cache (what an
// earlier run wrote past them is forgotten): the prompt as a single batch,
// then `gen` tokens one step each, as llama-bench's pp, tg and pg tests;
// tokens/s.
double run_test(model::Forward& fwd, model::KvCache& cache, const std::vector<int32_t>& prompt,
                const std::vector<int32_t>& gen, int64_t depth) {
  cache.truncate(0, depth);
  const auto start = Clock::now();
  if (!prompt.empty()) run_batch(fwd, cache, prompt, depth);
  const int64_t first = depth + int64_t(prompt.size());
  std::vector<float> logits;  // one buffer for every step, as llama.cpp's context keeps one
  for (size_t i = 0; i < gen.size(); i++) fwd.run({{gen[i], first + int64_t(i), 0, true}}, cache, logits);
  return double(prompt.size() + gen.size()) / seconds_since(start);
}

// The median of `v` (v is not empty).
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t h = v.size() / 2;
  return v.size() % 2 ? v[h] : (v[h - 1] + v[h]) / 2;
}

struct Roofline {
  size_t bytes_per_token = 0;               // weights, as the read passes read them
  double kv_bytes_per_token = 0;            // the KV cache attended over, mean per generated token
  std::vector<std::vector<double>> read_s;  // per generation run, the weights' read passes right after it
  std::vector<double> fractions;            // per run: its tokens/s over the roofline of its moment
  std::vector<double> handoff_ns;           // per run: a cache line's trip between the threads, right after it

  // A token's time at the roofline from the weights' read time: the KV
  // cache is read at the same bandwidth.
  double token_s(double weights_read_s) const {
    return weights_read_s * (1.0 + kv_bytes_per_token / double(bytes_per_token));
  }
  void add_run(double tg_tokens_per_s, std::vector<double> passes) {
    fractions.push_back(tg_tokens_per_s * token_s(median(passes)));
    read_s.push_back(std::move(passes));
  }
  double median_read_s() const {
    std::vector<double> all;
    for (const auto& passes : read_s) all.insert(all.end(), passes.begin(), passes.end());
    return median(all);
  }
  double tokens_per_s() const { return 1.0 / token_s(median_read_s()); }
  double gb_per_s() const { return double(bytes_per_token) / median_read_s() / 1e9; }
  // What generation itself read per second, weights and KV cache (median
  // over the runs): unlike the fraction, it does not move with the read
  // passes, which on a VM swing from run to run.
  double decode_gb_per_s(const std::vector<double>& tg_tokens_per_s) const {
    return median(tg_tokens_per_s) * (double(bytes_per_token) + kv_bytes_per_token) / 1e9;
  }
};

// One model file as loaded.
struct ModelInfo {
  std::string path, arch;
  double file_mib = 0, load_s = 0, peak_rss_mib = 0;
  bool packed_from_cache = false;
  double packed_mib = 0, packed_huge_mib = 0;
};

// One test at one combination, measured.
struct Result {
  size_t model = 0;  // index into the models
  int threads = 0;
  model::KvCacheTypes cache_types;
  int64_t depth = 0, n_prompt = 0, n_gen = 0;
  double kv_cache_mib = 0;
  std::vector<double> samples;  // tokens/s per run
  std::optional<Roofline> roofline;  // generation tests
};

// Peak RSS per model: the kernel's high-water mark (VmHWM), reset before
// each load ("5" to clear_refs, Linux 4.0+). Where the reset is refused it
// is the process's peak so far, as getrusage's, the fallback without /proc.
// (Written without truncating, which the confined process may not.)
void reset_peak_rss() {
  const int fd = ::open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return;
  [[maybe_unused]] const ssize_t written = ::write(fd, "5", 1);
  ::close(fd);
}

double peak_rss_mib() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;  // "VmHWM:  123456 kB"
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return double(usage.ru_maxrss) / 1024.0;  // Linux reports KiB
}

// llama-bench's test names: pp512, tg128, pp512+tg128, and " @ d2048" at a depth.
std::string test_label(int64_t depth, int64_t n_prompt, int64_t n_gen) {
  std::string label = n_gen == 0      ? "pp" + std::to_string(n_prompt)
                      : n_prompt == 0 ? "tg" + std::to_string(n_gen)
                                      : "pp" + std::to_string(n_prompt) + "+tg" + std::to_string(n_gen);
  if (depth > 0) label += " @ d" + std::to_string(depth);
  return label;
}

struct Stats {
  double mean = 0, sd = 0;
};

Stats stats_of(const std::vector<double>& v) {
  Stats s;
  if (v.empty()) return s;
  for (double x : v) s.mean += x;
  s.mean /= double(v.size());
  if (v.size() > 1) {
    double sq = 0;
    for (double x : v) sq += (x - s.mean) * (x - s.mean);
    s.sd = std::sqrt(sq / double(v.size() - 1));
  }
  return s;
}

// ---- The table --------------------------------------------------------------

// Rows are printed as each test ends; the notes (load, peak RSS, rooflines)
// follow the table.
class Table {
 public:
  explicit Table(const Plan& plan) {
    for (const std::string& path : plan.models) widths_[0] = std::max(widths_[0], file_name(path).size());
    for (const auto& types : plan.cache_types)
      show_cache_types_ |= types.key != gguf::TensorType::F16 || types.value != gguf::TensorType::F16;
    for (const auto& [p, n] : plan.tests)
      for (int64_t depth : plan.depths) widths_[6] = std::max(widths_[6], test_label(depth, p, n).size());
    several_models_ = plan.models.size() > 1;
    const size_t generation_tests = size_t(std::count_if(plan.tests.begin(), plan.tests.end(),
                                                         [](const auto& test) { return test.first == 0; }));
    several_generation_rows_ = plan.models.size() * plan.threads.size() * plan.cache_types.size() *
                                   plan.depths.size() * generation_tests > 1;
  }

  void add(const Result& r, const ModelInfo& m) {
    if (!header_printed_) print_header();
    char size[32], value[48];
    std::snprintf(size, sizeof size, "%.2f MiB", m.file_mib);
    const Stats s = stats_of(r.samples);
    std::snprintf(value, sizeof value, "%.2f ± %.2f", s.mean, s.sd);
    print_row({file_name(m.path), size, std::to_string(r.threads), tensor::kernel_set_name(),
               std::string(gguf::type_name(r.cache_types.key)), std::string(gguf::type_name(r.cache_types.value)),
               test_label(r.depth, r.n_prompt, r.n_gen), value});
    if (r.roofline) add_roofline_note(r, m, *r.roofline);
  }

  // After a model's tests: its load line, then its rooflines.
  void add_model_note(const ModelInfo& m, int reps) {
    const std::string context = several_models_ ? " (" + file_name(m.path) + ")" : "";
    char note[400];
    std::snprintf(note, sizeof note, "load%s: %.3f s%s, peak RSS: %.1f MiB, reps: %d", context.c_str(), m.load_s,
                  packed_note(m).c_str(), m.peak_rss_mib, reps);
    notes_.push_back(note);
    notes_.insert(notes_.end(), rooflines_.begin(), rooflines_.end());
    rooflines_.clear();
  }

  void print_notes() const {
    std::printf("\n");
    for (const std::string& note : notes_) std::printf("%s\n", note.c_str());
  }

 private:
  static constexpr size_t kColumns = 8;
  static constexpr bool kRightAligned[kColumns] = {false, true, true, false, false, false, true, true};

  // With the first row, so that a run that fails first prints no table.
  void print_header() {
    print_row({"model", "size", "threads", "kernel", "type_k", "type_v", "test", "t/s"});
    std::vector<std::string> rule;
    for (size_t i = 0; i < kColumns; i++)
      rule.push_back(kRightAligned[i] ? std::string(widths_[i] - 1, '-') + ":" : std::string(widths_[i], '-'));
    print_row(rule);
    header_printed_ = true;
  }

  static std::string file_name(const std::string& path) { return std::filesystem::path(path).filename().string(); }

  // Cells padded to the columns' widths (the type columns only where a
  // cache type other than f16 is measured).
  void print_row(const std::vector<std::string>& cells) const {
    std::string line = "|";
    for (size_t i = 0; i < kColumns; i++) {
      if ((i == 4 || i == 5) && !show_cache_types_) continue;
      const std::string& cell = cells[i];
      const size_t shown = cell.size() - (cell.find("±") != std::string::npos ? 1 : 0);  // two bytes, one column
      const std::string pad(widths_[i] > shown ? widths_[i] - shown : 0, ' ');
      line += " " + (kRightAligned[i] ? pad + cell : cell + pad) + " |";
    }
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
  }

  // What the load line says of the repacked weights: whether they were
  // mapped from the cache, and how much of them decode reaches through huge
  // pages.
  static std::string packed_note(const ModelInfo& m) {
    if (m.packed_mib == 0) return "";
    char note[160];
    std::snprintf(note, sizeof note, " (packed weights %s; %.0f of %.0f MiB in huge pages)",
                  m.packed_from_cache ? "mapped from the cache" : "packed by this load", m.packed_huge_mib,
                  m.packed_mib);
    return note;
  }

  void add_roofline_note(const Result& r, const ModelInfo& m, const Roofline& roof) {
    const std::string label = test_label(r.depth, r.n_prompt, r.n_gen);
    std::string context;
    if (several_generation_rows_) {
      context = " (" + file_name(m.path) + ", " + std::to_string(r.threads) + " threads, ";
      if (show_cache_types_)
        context += std::string(gguf::type_name(r.cache_types.key)) + "/" +
                   std::string(gguf::type_name(r.cache_types.value)) + " cache, ";
      context += label + ")";
    }
    char note[600];
    std::snprintf(note, sizeof note,
                  "roofline%s: a token reads %.1f MB of weights and %.1f MB of KV cache; %d threads read them in "
                  "%.2f ms (%.1f GB/s, median over the runs) = %.2f tokens/s; each %s run reached %.0f %% (median; "
                  "%.0f-%.0f %%) of the roofline measured right after it, reading at %.1f GB/s (median)",
                  context.c_str(), double(roof.bytes_per_token) / 1e6, roof.kv_bytes_per_token / 1e6, r.threads,
                  1e3 / roof.tokens_per_s(), roof.gb_per_s(), roof.tokens_per_s(), label.c_str(),
                  100 * median(roof.fractions), 100 * *std::min_element(roof.fractions.begin(), roof.fractions.end()),
                  100 * *std::max_element(roof.fractions.begin(), roof.fractions.end()),
                  roof.decode_gb_per_s(r.samples));
    std::string line = note;
    if (!roof.handoff_ns.empty() && median(roof.handoff_ns) > 0) {
      std::snprintf(note, sizeof note, "; a cache line passed between its threads in %.0f ns (median; %.0f-%.0f)",
                    median(roof.handoff_ns), *std::min_element(roof.handoff_ns.begin(), roof.handoff_ns.end()),
                    *std::max_element(roof.handoff_ns.begin(), roof.handoff_ns.end()));
      line += note;
    }
    rooflines_.push_back(line);
  }

  size_t widths_[kColumns] = {5, 10, 7, 10, 6, 6, 14, 20};
  bool show_cache_types_ = false, several_models_ = false, several_generation_rows_ = false, header_printed_ = false;
  std::vector<std::string> notes_, rooflines_;  // rooflines_: the current model's, until its load line
};

// ---- Machine-readable: one record per test, as llama-bench -o json / jsonl / csv

nlohmann::json json_of(const Result& r, const ModelInfo& m, int reps) {
  const Stats s = stats_of(r.samples);
  nlohmann::json j = {{"model", m.path},
                      {"arch", m.arch},
                      {"file_mib", m.file_mib},
                      {"threads", r.threads},
                      {"kernels", tensor::kernel_set_name()},
                      {"reps", reps},
                      {"load_s", m.load_s},
                      {"peak_rss_mib", m.peak_rss_mib},
                      {"packed_from_cache", m.packed_from_cache},
                      {"packed_mib", m.packed_mib},
                      {"packed_huge_page_mib", m.packed_huge_mib},
                      {"depth", r.depth},
                      {"cache_type_k", gguf::type_name(r.cache_types.key)},
                      {"cache_type_v", gguf::type_name(r.cache_types.value)},
                      {"kv_cache_mib", r.kv_cache_mib},
                      {"test", test_label(r.depth, r.n_prompt, r.n_gen)},
                      {"n_prompt", r.n_prompt},
                      {"n_gen", r.n_gen},
                      {"mean", s.mean},
                      {"sd", s.sd},
                      {"samples", r.samples}};
  if (r.roofline) {
    const Roofline& roof = *r.roofline;
    j["roofline"] = {{"bytes_per_token", roof.bytes_per_token},
                     {"kv_bytes_per_token", roof.kv_bytes_per_token},
                     {"read_s", roof.read_s},
                     {"gb_per_s", roof.gb_per_s()},
                     {"decode_gb_per_s", roof.decode_gb_per_s(r.samples)},
                     {"tokens_per_s", roof.tokens_per_s()},
                     {"tg_fraction", median(roof.fractions)},
                     {"tg_fraction_samples", roof.fractions},
                     {"handoff_ns", roof.handoff_ns}};
  }
  return j;
}

// A CSV field as RFC 4180 has it: quoted where it holds a comma, a quote or
// a line break, quotes doubled.
std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char ch : text) quoted += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return quoted + "\"";
}

// The results in `format` (json, jsonl or csv): every field of the JSON
// object per test; in CSV the roofline's figures flattened into columns.
void print_records(const std::vector<Result>& results, const std::vector<ModelInfo>& models, int reps,
                   const std::string& format) {
  if (format == "json") {
    nlohmann::json all = nlohmann::json::array();
    for (const Result& r : results) all.push_back(json_of(r, models[r.model], reps));
    std::printf("%s\n", all.dump(2).c_str());
    return;
  }
  if (format == "jsonl") {
    for (const Result& r : results) std::printf("%s\n", json_of(r, models[r.model], reps).dump().c_str());
    return;
  }
  static const char* const kColumns[] = {"model", "arch", "file_mib", "threads", "kernels", "cache_type_k",
                                         "cache_type_v", "depth", "test", "n_prompt", "n_gen", "reps", "mean", "sd",
                                         "load_s", "peak_rss_mib", "kv_cache_mib", "roofline_tokens_per_s",
                                         "roofline_gb_per_s", "roofline_tg_fraction"};
  const size_t n_columns = std::size(kColumns);
  for (size_t c = 0; c < n_columns; c++) std::printf("%s%s", c ? "," : "", kColumns[c]);
  std::printf("\n");
  for (const Result& r : results) {
    nlohmann::json j = json_of(r, models[r.model], reps);
    if (j.contains("roofline")) {
      j["roofline_tokens_per_s"] = j["roofline"]["tokens_per_s"];
      j["roofline_gb_per_s"] = j["roofline"]["gb_per_s"];
      j["roofline_tg_fraction"] = j["roofline"]["tg_fraction"];
    }
    for (size_t c = 0; c < n_columns; c++) {
      const nlohmann::json v = j.value(kColumns[c], nlohmann::json());
      const std::string cell = v.is_null() ? "" : v.is_string() ? v.get<std::string>() : v.dump();
      std::printf("%s%s", c ? "," : "", csv_field(cell).c_str());
    }
    std::printf("\n");
  }
}

// ---- One model's combinations ----------------------------------------------

// Every test of the plan at one (threads, cache types, depth) combination.
// `report` gets each result as it is measured.
template <typename Report>
void run_combination(const model::Model& m, const Plan& plan, size_t model_index, int threads,
                     model::KvCacheTypes types, int64_t depth, const Report& report) {
  const model::Config& c = m.config();
  ThreadPool pool(threads);
  model::KvCache cache(c, depth + plan.longest_test(), 1, types);
  model::Forward fwd(m, pool);
  std::mt19937 rng(1234);
  // The depth, once, in batches of at most 512 tokens; the tests start after it.
  const auto filler = random_tokens(depth, c.n_vocab, rng);
  for (int64_t at = 0; at < depth; at += 512) {
    const auto first = filler.begin() + at;
    run_batch(fwd, cache, std::vector<int32_t>(first, first + std::min<int64_t>(512, depth - at)), at);
  }
  const std::vector<model::ReadSpan> reads = model::decode_read_set(m);
  for (const auto& [n_prompt, n_gen] : plan.tests) {
    Result r{model_index, threads, types, depth, n_prompt, n_gen, 0, {}, {}};
    const auto prompt = random_tokens(n_prompt, c.n_vocab, rng), gen = random_tokens(n_gen, c.n_vocab, rng);
    // One untimed warm-up pages the weights in and sizes buffers (four
    // generated tokens stand for all of them), and the cache is grown to the
    // test's last position, as llama-bench's context holds its whole cache
    // before it times anything (growing copies the cache into fresh pages).
    run_test(fwd, cache, prompt, std::vector<int32_t>(gen.begin(), gen.begin() + std::min<int64_t>(n_gen, 4)), depth);
    if (n_prompt + n_gen > 0) cache.reserve(0, depth + n_prompt + n_gen - 1);
    if (n_prompt == 0) {
      r.roofline.emplace();
      r.roofline->bytes_per_token = model::total_bytes(reads);
      // Generated token i attends over depth + i + 1 positions of K and V in every layer.
      r.roofline->kv_bytes_per_token = double(cache.bytes_per_position()) * (double(depth) + double(n_gen + 1) / 2);
    }
    for (int rep = 0; rep < plan.reps; rep++) {
      r.samples.push_back(run_test(fwd, cache, prompt, gen, depth));
      if (!r.roofline) continue;
      std::vector<double> passes;
      for (int k = 0; k < 3; k++) passes.push_back(model::time_read_pass(reads, pool));
      r.roofline->add_run(r.samples.back(), std::move(passes));
      r.roofline->handoff_ns.push_back(1e9 * model::time_handoff(pool));
    }
    r.kv_cache_mib = double(cache.bytes()) / (1024.0 * 1024.0);
    report(std::move(r));
  }
}

int run_bench(const BenchArgs& a) {
  const Plan plan = plan_of(a);
  // The files may come from anywhere: confined as the engine of serve is.
  cli::confine_engine(plan.models, {"/proc/self/clear_refs"});
  // Every file opens and reads as GGUF before any is measured: a bad one
  // last would otherwise end a table, or a JSON array, half printed.
  for (const std::string& path : plan.models) (void)gguf::File(path);
  std::optional<Table> table;
  if (plan.output == "md") table.emplace(plan);
  std::vector<ModelInfo> models;
  std::vector<Result> results;
  for (size_t i = 0; i < plan.models.size(); i++) {
    reset_peak_rss();
    ModelInfo info;
    info.path = plan.models[i];
    const auto load_start = Clock::now();
    auto m = model::Model::load(info.path);
    info.load_s = seconds_since(load_start);
    plan.check_context(m->config());
    info.arch = m->config().arch;
    info.file_mib = double(std::filesystem::file_size(info.path)) / (1024.0 * 1024.0);
    info.packed_from_cache = m->packed_from_cache();
    info.packed_mib = double(m->packed_bytes()) / (1024.0 * 1024.0);
    info.packed_huge_mib = double(m->packed_huge_bytes()) / (1024.0 * 1024.0);
    models.push_back(info);
    for (int t : plan.threads)
      for (const model::KvCacheTypes& types : plan.cache_types)
        for (int64_t depth : plan.depths)
          run_combination(*m, plan, i, t > 0 ? t : ThreadPool::default_threads(), types, depth, [&](Result r) {
            if (table) table->add(r, models[i]);
            results.push_back(std::move(r));
          });
    models[i].peak_rss_mib = peak_rss_mib();
    if (table) table->add_model_note(models[i], plan.reps);
  }
  if (table) {
    table->print_notes();
  } else {
    print_records(results, models, plan.reps, plan.output);
  }
  return 0;
}

WARDEN_COMMAND("bench", "Measure prompt and generation speed of GGUF models (like llama-bench)", [](CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  app.footer(
      "Every flag but -r, -pg and -o takes a list, as llama-bench's: values separated by commas or the flag "
      "repeated, and counts also as ranges FIRST-LAST, FIRST-LAST+STEP or FIRST-LAST*MULT (-p 64-512*2). Every "
      "combination is measured; each model is loaded once.");
  // A flag that takes a list (commas or the flag repeated), its default shown.
  auto list_option = [&app](const std::string& names, auto& values, const std::string& what) {
    app.add_option(names, values, what)->delimiter(',')->capture_default_str();
  };
  app.add_option("-m,--model", a->models, "GGUF model files")->required()->delimiter(',');
  list_option("-p,--n-prompt", a->n_prompt, "Prompt tokens processed as one batch (0 = skip)");
  list_option("-n,--n-gen", a->n_gen, "Tokens generated one at a time (0 = skip)");
  app.add_option("--prompt-gen", a->prompt_gen,
                 "PP,TG: a prompt of PP tokens, then TG generated, timed together (also -pg; repeat for more)");
  list_option("-d,--n-depth", a->n_depth, "Tokens already in the KV cache when each test starts");
  app.add_option("-r,--repetitions", a->reps, "Timed repetitions of each test")->capture_default_str();
  list_option("-t,--threads", a->threads,
              "Threads (0 = one per physical core this process may use, within its cgroup CPU limit)");
  list_option("--cache-type-k", a->cache_k, "KV cache key types: f16 (default) or q8_0, half the memory (also -ctk)");
  list_option("--cache-type-v", a->cache_v, "KV cache value types: f16 (default) or q8_0 (also -ctv)");
  auto* output = app.add_option("-o,--output", a->output,
                 "Output format: md (a table), json (an array with one object per test), jsonl (one per line) or "
                 "csv, as llama-bench's")
      ->check(CLI::IsMember({"md", "json", "jsonl", "csv"}))
      ->capture_default_str();
  app.add_flag("--json", a->json, "The same as -o json");
  return [=] {
    a->output_given = output->count() > 0;
    return run_bench(*a);
  };
});

}  // namespace
