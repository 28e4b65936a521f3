#pragma once
// Subcommand registry. Each cmd_*.cpp in this folder registers its
// subcommands with WARDEN_COMMAND; main() dispatches on argv[1].
//
// A command body throws warden::Error for user errors (exit 1) and
// warden::UsageError or CLI11 parse errors for bad usage (exit 2).
#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "engine/lookup.h"
#include "gguf/gguf.h"
#include "model/kv_cache.h"
#include "sample/sampler.h"

namespace warden::cli {

struct Command {
  std::string name;
  std::string summary;
  // Adds options to `app` and returns the body to run after parsing.
  std::function<std::function<int()>(CLI::App& app)> setup;
};

std::vector<Command>& registry();
bool add_command(Command c);

// Parses argv for one subcommand and runs it with warden's error conventions.
// llama.cpp's multi-letter short flags (-ctk, -ctv, -pg) are read as their long
// names, which is all CLI11 accepts.
int run_command(const Command& c, int argc, char** argv);

// --cache-type-k / --cache-type-v (-ctk / -ctv): the KV cache's key and value
// types, f16 or q8_0. Returns the two options.
std::vector<CLI::Option*> add_cache_type_options(CLI::App& app, model::KvCacheTypes& types);

// -t / --threads, as llama.cpp's: 0 (the default) is one per physical core
// this process may run on, within its cgroup CPU limit.
CLI::Option* add_threads_option(CLI::App& app, int& threads);

// The sampling flags, with llama.cpp's names: --temp, --top-k, --top-p,
// --min-p, --repeat-penalty, --repeat-last-n, --presence-penalty,
// --frequency-penalty, -s/--seed (a number, or -1 for a random one). With
// for_requests (serve), the help says they are what a request that sets
// none gets.
struct SamplingFlags {
  std::vector<CLI::Option*> options;
  std::vector<const char*> keys;  // each option's name in engine::apply_model_sampling ("temp", ...)
  // Which were given, by the names engine::apply_model_sampling reads
  // ("temp", "top_k", ..., and "seed"): what a model file's recommendation
  // must leave alone. Valid once the command line is parsed.
  std::set<std::string> given() const;
  // Those given, as they were given ({"--temp", "0.6", ...}): for a child
  // `warden serve` that must sample as this command was told.
  std::vector<std::string> given_args() const;
};
SamplingFlags add_sampling_options(CLI::App& app, sample::SamplerParams& s, bool for_requests = false);
// Takes what the model file recommends for the settings not `given`
// (engine::apply_model_sampling), and logs what it took.
void take_model_sampling(const gguf::File& file, sample::SamplerParams& params, const std::set<std::string>& given);

// The folder --workspace names (the current folder when empty) as an
// absolute path; a relative one is read from the current folder. Throws
// UsageError naming the flag when it is no folder.
std::string workspace_folder(const std::string& given);

// The text of a file named by `flag` (an Error naming both when it cannot
// be read, or holds more than 256 MiB).
std::string read_text_file(const std::string& path, const std::string& flag);

// Escapes read as llama.cpp's -e reads them: \n \r \t \' \" \\ and \xHH
// (exactly two hex digits, where llama.cpp's strtol also takes a sign or a
// space); any other backslash stays as it is.
std::string process_escapes(std::string_view text);

// Lookup decoding, with llama.cpp's flags: --spec-type none|ngram-simple,
// --draft-max N (also --spec-draft-n-max), --spec-ngram-size-n N. Returns
// the three options.
std::vector<CLI::Option*> add_lookup_options(CLI::App& app, engine::LookupParams& lookup);

}  // namespace warden::cli

#define WARDEN_CONCAT_INNER(a, b) a##b
#define WARDEN_CONCAT(a, b) WARDEN_CONCAT_INNER(a, b)
#define WARDEN_COMMAND(NAME, SUMMARY, SETUP) \
  static const bool WARDEN_CONCAT(warden_cmd_registered_, __LINE__) = \
      ::warden::cli::add_command({NAME, SUMMARY, SETUP})
