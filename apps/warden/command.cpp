#include "command.h"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <limits>
#include <fstream>
#include <map>

#include "engine/model_sampling.h"
#include "sample/sampler.h"
#include "util/error.h"
#include "util/log.h"

namespace warden::cli {

std::vector<Command>& registry() {
  static std::vector<Command> commands;
  return commands;
}

bool add_command(Command c) {
  registry().push_back(std::move(c));
  return true;
}

namespace {

// llama.cpp's spellings that CLI11 cannot declare (one dash, several letters).
std::vector<char*> with_long_names(int argc, char** argv) {
  static const struct {
    const char* short_name;
    const char* long_name;
  } kAliases[] = {{"-ctk", "--cache-type-k"}, {"-ctv", "--cache-type-v"}, {"-pg", "--prompt-gen"}};
  std::vector<char*> args(argv, argv + argc);
  for (char*& arg : args)
    for (const auto& alias : kAliases)
      if (std::strcmp(arg, alias.short_name) == 0) arg = const_cast<char*>(alias.long_name);
  return args;
}

}  // namespace

std::vector<CLI::Option*> add_cache_type_options(CLI::App& app, model::KvCacheTypes& types) {
  const auto type_names = CLI::IsMember({"f16", "q8_0"});
  return {app.add_option_function<std::string>(
                 "--cache-type-k",
                 [&types](const std::string& name) { types.key = model::parse_kv_cache_type(name, "-ctk"); },
                 "KV cache key type: f16 (default) or q8_0, half the memory (also -ctk)")
              ->check(type_names),
          app.add_option_function<std::string>(
                 "--cache-type-v",
                 [&types](const std::string& name) { types.value = model::parse_kv_cache_type(name, "-ctv"); },
                 "KV cache value type: f16 (default) or q8_0 (also -ctv)")
              ->check(type_names)};
}

CLI::Option* add_threads_option(CLI::App& app, int& threads) {
  return app
      .add_option("-t,--threads", threads,
                  "Threads (0 = one per physical core this process may use, within its cgroup CPU limit)")
      ->capture_default_str()
      ->check(CLI::Range(0, 4096));  // bench's bound too: more than any machine this runs on
}

namespace {

// --seed as llama.cpp's: a number, or -1 (as without the flag) for a
// random one.
CLI::Option* add_seed_option(CLI::App& app, uint64_t& seed) {
  return app
      .add_option_function<std::string>(
          "-s,--seed",
          [&seed](const std::string& text) {
            if (text == "-1") {
              seed = sample::random_seed();
              return;
            }
            uint64_t value = 0;
            const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
            if (text.empty() || ec != std::errc() || end != text.data() + text.size())
              throw CLI::ValidationError("--seed",
                                         "'" + text + "' is not a seed: a number from 0, or -1 for a random one");
            seed = value;
          },
          "Random seed (-1 or none: a random one)")
      ->type_name("INT");
}

// --seed -1 asks for a random seed, as no --seed does: a server then draws
// one for each request, and a child server must be told nothing.
bool given_as_fixed(const CLI::Option* o) {
  return o->count() > 0 && !(o->get_name() == "--seed" && o->results().back() == "-1");
}

}  // namespace

SamplingFlags add_sampling_options(CLI::App& app, sample::SamplerParams& s, bool for_requests) {
  const std::string which = for_requests ? " for requests that set none" : "";
  const auto from_file = [&](const std::string& what, const char* fallback) {
    return what + which + "; default: the model file's, else " + fallback;
  };
  SamplingFlags flags;
  const auto add = [&](CLI::Option* option, const char* key) {
    flags.options.push_back(option);
    flags.keys.push_back(key);
  };
  // What sample::validate accepts, checked at parsing: a bad value is a
  // usage error (exit 2) that names its flag.
  const auto number = [](const std::string& what, float min, float max) {
    return CLI::Validator(
        [=](std::string& text) -> std::string {
          char* end = nullptr;
          const float v = std::strtof(text.c_str(), &end);
          if (text.empty() || *end != '\0' || !std::isfinite(v) || v < min || v > max) return "must be " + what;
          return "";
        },
        what);
  };
  const float max = std::numeric_limits<float>::max();
  add(app.add_option("--temp,--temperature", s.temperature, from_file("Temperature (0 or less: greedy)", "0.8"))
          ->check(number("a finite number", -max, max)),
      "temp");
  add(app.add_option("--top-k", s.top_k, from_file("Top-k sampling (0 or less: off)", "40")), "top_k");
  add(app.add_option("--top-p", s.top_p, from_file("Top-p (nucleus) sampling (1: off)", "0.95"))
          ->check(number("a finite number >= 0", 0, max)),
      "top_p");
  add(app.add_option("--min-p", s.min_p, from_file("Min-p sampling (0: off)", "0.05"))
          ->check(number("a finite number <= 1", -max, 1)),
      "min_p");
  add(app.add_option("--repeat-penalty", s.repeat_penalty, from_file("Repetition penalty (1: off)", "1"))
          ->check(number("a finite number > 0", std::numeric_limits<float>::min(), max)),
      "penalty_repeat");
  add(app.add_option("--repeat-last-n", s.repeat_last_n,
                     from_file("Tokens the penalties count (-1: all, 0: none)", "64"))
          ->check(CLI::Range(-1, std::numeric_limits<int>::max())),
      "penalty_last_n");
  add(app.add_option("--presence-penalty", s.presence_penalty, "Presence penalty" + which + "; default 0")
          ->check(number("a finite number", -max, max)),
      "presence_penalty");
  add(app.add_option("--frequency-penalty", s.frequency_penalty, "Frequency penalty" + which + "; default 0")
          ->check(number("a finite number", -max, max)),
      "frequency_penalty");

  add(add_seed_option(app, s.seed), "seed");
  return flags;
}

std::vector<std::string> SamplingFlags::given_args() const {
  std::vector<std::string> args;
  for (const CLI::Option* o : options)
    if (given_as_fixed(o)) args.insert(args.end(), {o->get_name(), o->results().back()});
  return args;
}

std::string read_text_file(const std::string& path, const std::string& flag) {
  constexpr size_t kMaxBytes = size_t(256) << 20;  // far beyond any context; /dev/zero must not fill memory
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(flag + " " + path + ": cannot read the file: " + std::strerror(errno));
  std::string text;
  char buffer[1 << 16];
  while (in && (in.read(buffer, sizeof buffer) || in.gcount() > 0)) {
    text.append(buffer, size_t(in.gcount()));
    if (text.size() > kMaxBytes) throw Error(flag + " " + path + ": the file is larger than 256 MiB");
  }
  if (in.bad() || (!in.eof() && in.fail()))
    throw Error(flag + " " + path + ": cannot read the file" + (errno ? std::string(": ") + std::strerror(errno) : ""));
  return text;
}

std::string process_escapes(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  const auto hex = [](char c) {
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\' || i + 1 == text.size()) {
      out += text[i];
      continue;
    }
    const char next = text[i + 1];
    static constexpr std::string_view kFrom = "nrt'\"\\", kTo = "\n\r\t'\"\\";
    if (const size_t at = kFrom.find(next); at != std::string_view::npos) {
      out += kTo[at];
      ++i;
    } else if (next == 'x' && i + 3 < text.size() && hex(text[i + 2]) >= 0 && hex(text[i + 3]) >= 0) {
      out += char(hex(text[i + 2]) * 16 + hex(text[i + 3]));
      i += 3;
    } else {
      out += text[i];
    }
  }
  return out;
}

void take_model_sampling(const gguf::File& file, sample::SamplerParams& params, const std::set<std::string>& given) {
  const std::string taken = engine::apply_model_sampling(file, params, given);
  if (!taken.empty()) log::info("sampling as the model file recommends: " + taken);
}

std::set<std::string> SamplingFlags::given() const {
  std::set<std::string> names;
  for (size_t i = 0; i < options.size(); ++i)
    if (given_as_fixed(options[i])) names.insert(keys[i]);
  return names;
}

std::vector<CLI::Option*> add_lookup_options(CLI::App& app, engine::LookupParams& lookup) {
  auto* type = app.add_option_function<std::string>(
                      "--spec-type", [&lookup](const std::string& name) { lookup.on = name == "ngram-simple"; },
                      "Speculative decoding: none (default) or ngram-simple (draft the tokens that followed "
                      "the last n tokens where they appeared before; the same output in fewer forward passes "
                      "where the text repeats itself)")
                   ->check(CLI::IsMember({"none", "ngram-simple"}));
  auto* draft_max = app.add_option("--draft-max,--spec-draft-n-max", lookup.draft_max,
                                   "Tokens drafted per pass at most (ngram-simple)")
                        ->capture_default_str()
                        ->check(CLI::Range(1, 64));
  auto* ngram = app.add_option("--spec-ngram-size-n", lookup.ngram, "Tokens that must match before a draft")
                    ->capture_default_str()
                    ->check(CLI::Range(1, 16));
  return {type, draft_max, ngram};
}

std::string workspace_folder(const std::string& given) {
  namespace fs = std::filesystem;
  const std::string ws = given.empty() ? fs::current_path().string() : fs::absolute(given).lexically_normal().string();
  std::error_code ec;
  if (!fs::is_directory(ws, ec)) throw UsageError("--workspace " + ws + " is not a folder");
  return ws.size() > 1 && ws.back() == '/' ? ws.substr(0, ws.size() - 1) : ws;
}

// A command made of subcommands (audit, policy, ...) given a word that
// names none: CLI11 would only say that a subcommand is required.
void check_subcommand(CLI::App& app, const std::vector<char*>& args) {
  const std::vector<CLI::App*> subcommands = app.get_subcommands([](CLI::App*) { return true; });
  if (subcommands.empty() || args.size() < 2 || args[1] == nullptr || args[1][0] == '-') return;
  std::string names;
  for (const CLI::App* sub : subcommands) {
    if (sub->get_name() == args[1]) return;
    names.append(names.empty() ? "" : ", ").append(sub->get_name());
  }
  throw CLI::ValidationError("unknown subcommand '" + std::string(args[1]) + "'; it takes " + names);
}

int run_command(const Command& c, int argc, char** argv) {
  CLI::App app{c.summary, "warden " + c.name};
  std::vector<char*> args = with_long_names(argc, argv);
  app.set_help_flag("-h,--help", "Print this help and exit");
  std::function<int()> body;
  // As llama.cpp's: the last of a flag given twice wins (lists still keep
  // every value).
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  try {
    body = c.setup(app);
    check_subcommand(app, args);
    app.parse(int(args.size()), args.data());
  } catch (const CLI::CallForHelp&) {
    std::fputs(app.help().c_str(), stdout);
    return 0;
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "warden %s: %s (see warden %s --help)\n", c.name.c_str(), log::printable(e.what()).c_str(),
                 c.name.c_str());
    return 2;
  }
  try {
    const int status = body();
    // Output that could not be written (a full disk, /dev/full) fails the
    // command: a cut file must not pass for the whole.
    errno = 0;
    if (std::fflush(stdout) != 0 || std::ferror(stdout))
      throw Error(std::string("cannot write to the standard output") +
                  (errno ? std::string(": ") + std::strerror(errno) : ""));
    return status;
  } catch (const UsageError& e) {
    std::fprintf(stderr, "warden %s: %s\n", c.name.c_str(), log::printable(e.what()).c_str());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "warden %s: error: %s\n", c.name.c_str(), log::printable(e.what()).c_str());
    return 1;
  }
}

}  // namespace warden::cli
