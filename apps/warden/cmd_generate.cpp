// warden generate -m FILE (-p TEXT | -f FILE) [-n N] [-c CTX] [--temp T] ...:
// runs the model on a prompt and prints only the generated text on stdout.
#include <cstdio>
#include <limits>
#include <memory>

#include "command.h"
#include "engine/engine.h"
#include "engine_confinement.h"
#include "util/error.h"
#include "util/log.h"

namespace {

struct GenerateArgs {
  std::string model;
  std::string prompt;
  std::string prompt_file;  // -f: the prompt is this file's text
  bool escape = true;       // \n, \t, ... in the prompt are read as llama.cpp reads them
  int64_t n_predict = -1;
  int64_t n_ctx = 0;
  warden::model::KvCacheTypes cache_types;
  int threads = 0;
  bool quiet = false;
  std::vector<std::string> stop;
  warden::sample::SamplerParams sampling;
  warden::engine::LookupParams lookup;
  std::set<std::string> sampling_given;  // flags the model file's recommendation must not change
};

// The prompt as llama.cpp takes it: -p's text or -f's file (less one
// final newline), its escapes read unless --no-escape. Read before the
// engine confines itself to the model's folder.
std::string prompt_of(const GenerateArgs& a) {
  std::string prompt = a.prompt;
  if (!a.prompt_file.empty()) {
    prompt = warden::cli::read_text_file(a.prompt_file, "-f");
    if (!prompt.empty() && prompt.back() == '\n') prompt.pop_back();
  }
  return a.escape ? warden::cli::process_escapes(prompt) : prompt;
}

int run_generate(const GenerateArgs& a) {
  using namespace warden;
  if (a.quiet) log::set_level(log::Level::warn);
  const std::string prompt_text = prompt_of(a);
  sample::validate(a.sampling);
  cli::confine_engine(a.model);
  engine::EngineOptions options;
  options.model_path = a.model;
  options.n_ctx = a.n_ctx;
  options.cache_types = a.cache_types;
  options.threads = a.threads;
  engine::Engine engine(options);
  cli::confine_loaded_engine();
  sample::SamplerParams sampling = a.sampling;
  cli::take_model_sampling(engine.model().file(), sampling, a.sampling_given);

  const auto& tok = engine.tokenizer();
  std::vector<int32_t> prompt = tok.encode(prompt_text, tok.add_bos(), /*parse_special=*/true);
  if (prompt.empty()) throw Error("the prompt is empty and the model adds no BOS token; give -p TEXT or -f FILE");

  engine::GenerateParams params;
  params.sampling = sampling;
  params.max_tokens = a.n_predict;
  params.stop = a.stop;
  params.lookup = a.lookup;
  auto result = engine::generate(engine, 0, prompt, params, [](std::string_view text) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
    return true;
  });
  // Like llama2.c, end the output with a newline so the shell prompt starts
  // on its own line; text that already ends with one is left as it is.
  if (!result.text.empty() && result.text.back() != '\n') std::fputc('\n', stdout);
  std::fflush(stdout);
  char line[256];
  std::snprintf(line, sizeof line, "prompt: %lld tokens, %.1f tokens/s; generated: %zu tokens, %.1f tokens/s",
                (long long)result.prompt_tokens, double(result.prompt_tokens) / std::max(1e-9, result.prompt_seconds),
                result.tokens.size(), double(result.tokens.size()) / std::max(1e-9, result.generate_seconds));
  log::info(line);
  if (a.lookup.enabled()) {
    std::snprintf(line, sizeof line, "lookup decoding: %lld drafted tokens, %lld confirmed (%.0f %%)",
                  (long long)result.drafted, (long long)result.accepted,
                  100.0 * double(result.accepted) / double(std::max<int64_t>(1, result.drafted)));
    log::info(line);
  }
  return 0;
}

// Runs after parsing: the options given decide the prompt and what the
// model file's sampling may set.
std::function<int()> generate_body(std::shared_ptr<GenerateArgs> a, const warden::cli::SamplingFlags& sampling,
                                   CLI::Option* prompt, CLI::Option* file) {
  return [a, sampling, prompt, file] {
    if (prompt->count() + file->count() == 0) throw warden::UsageError("give the prompt: -p TEXT or -f FILE");
    a->sampling_given = sampling.given();
    return run_generate(*a);
  };
}

WARDEN_COMMAND("generate", "Generate text from a prompt with a local GGUF model", [](CLI::App& app) {
  auto a = std::make_shared<GenerateArgs>();
  app.add_option("-m,--model", a->model, "GGUF model file")->required();
  auto* prompt = app.add_option("-p,--prompt", a->prompt, "Prompt text");
  auto* file = app.add_option("-f,--file", a->prompt_file, "A file whose text is the prompt (less one final newline)")
                   ->excludes(prompt);
  app.add_flag("-e,--escape,!--no-escape", a->escape,
               "Read \\n, \\r, \\t, \\', \\\", \\\\ and \\xHH in the prompt as the characters they stand for "
               "(default, as llama.cpp; --no-escape: as written)");
  app.add_option("-n,--n-predict", a->n_predict, "Tokens to generate (-1 = until end or context full)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t(-1), std::numeric_limits<int64_t>::max()));
  app.add_option("-c,--ctx-size", a->n_ctx, "Context length (0 = the model's)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t(0), std::numeric_limits<int64_t>::max()));
  warden::cli::add_cache_type_options(app, a->cache_types);
  warden::cli::add_threads_option(app, a->threads);
  app.add_option("--stop", a->stop, "Stop when this text is generated (repeatable)");
  app.add_flag("-q,--quiet", a->quiet, "Only warnings and errors on stderr");
  const warden::cli::SamplingFlags sampling = warden::cli::add_sampling_options(app, a->sampling);
  warden::cli::add_lookup_options(app, a->lookup);
  return generate_body(a, sampling, prompt, file);
});

}  // namespace
