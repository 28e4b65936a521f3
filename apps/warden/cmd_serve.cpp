// warden serve -m FILE [--host H] [--port P] [-c CTX] [-np|--parallel N] [-t THREADS]
//              [--api-key KEY | --api-key-file F] [--alias NAME] [--max-body BYTES]
// An OpenAI-compatible HTTP API over a local GGUF model (see docs/server.md).
// Prints "listening on http://HOST:PORT" on stdout once the socket is bound
// (with --port 0 the kernel picks the port), then serves until SIGINT/SIGTERM.
#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <future>
#include <memory>
#include <set>
#include <thread>

#include "command.h"
#include "engine_confinement.h"
#include "engine/engine.h"
#include "gguf/gguf.h"
#include "server/http_server.h"
#include "server/serve_args.h"
#include "util/error.h"
#include "util/log.h"
#include "util/paths.h"

namespace {

// The longest a stop waits for requests still being prepared (less with a
// shorter --timeout).
constexpr int kStopGraceSeconds = 5;

struct ServeArgs {
  std::string model;
  int64_t n_ctx = 0;  // as given with -c: the total over explicitly given slots
  warden::model::KvCacheTypes cache_types;
  int parallel = 4;
  bool parallel_given = false;  // -np/--parallel on the command line
  int threads = 0;
  std::string api_key_file;
  bool verbose = false;
  warden::server::ServerOptions server;
  std::set<std::string> sampling_given;  // flags the model file's recommendation must not change
};

std::string read_api_key_file(const std::string& path) {
  std::string key = warden::cli::read_text_file(path, "--api-key-file");
  while (!key.empty() && (key.back() == '\n' || key.back() == '\r' || key.back() == ' ' || key.back() == '\t'))
    key.pop_back();
  if (key.empty()) throw warden::Error("--api-key-file " + path + ": the file is empty");
  if (key.find_first_of("\r\n") != std::string::npos)
    throw warden::Error("--api-key-file " + path + ": the key must be a single line");
  return key;
}

// The model's training context, which -c 0 stands for (the same metadata key
// and fallback the model loader uses).
int64_t training_context(const std::string& model_path) {
  warden::gguf::File file(model_path);
  const std::string arch = file.get_string("general.architecture", "");
  return int64_t(file.get_uint(arch + ".context_length", 2048));
}

void log_sampling_defaults(const warden::server::SamplingDefaults& d) {
  const warden::sample::SamplerParams& p = d.params;
  char line[320];
  std::snprintf(line, sizeof line,
                "a request that sets none samples with temperature %g, top_k %d, top_p %g, min_p %g, "
                "repeat_penalty %g, repeat_last_n %d, presence_penalty %g, frequency_penalty %g, seed %s",
                double(p.temperature), p.top_k, double(p.top_p), double(p.min_p), double(p.repeat_penalty),
                p.repeat_last_n, double(p.presence_penalty), double(p.frequency_penalty),
                d.fixed_seed ? std::to_string(p.seed).c_str() : "random");
  warden::log::info(line);
}

int run_serve(ServeArgs& a) {
  using namespace warden;
  if (a.verbose) log::set_level(log::Level::debug);
  sample::validate(a.server.sampling.params);
  if (!a.api_key_file.empty()) a.server.api_key = read_api_key_file(a.api_key_file);
  const std::string shown_host = a.server.host.find(':') != std::string::npos ? "[" + a.server.host + "]" : a.server.host;
  // The socket first, while names can still be looked up; then confinement,
  // before the first byte of the model file is parsed.
  const server::ListeningSocket socket = server::listen_on(a.server.host, a.server.port);
  cli::confine_engine(a.model);
  const int64_t n_ctx_train = training_context(a.model);
  const server::SlotContext slot_ctx = server::slot_context(a.n_ctx, n_ctx_train, a.parallel, a.parallel_given);
  if (slot_ctx.capped)
    log::warn("the slot context is capped at the model's training context of " + std::to_string(n_ctx_train) +
              " tokens (as llama-server does)");
  if (!socket.loopback)
    log::warn("listening on " + shown_host + ": other machines may reach this server" +
              (a.server.api_key.empty() ? " and no --api-key is set" : ""));

  // Signals go to one watcher thread (blocked everywhere else, so the HTTP
  // and engine threads inherit the mask); a client that disconnects mid-write
  // must not kill the server with SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  engine::EngineOptions eo;
  eo.model_path = a.model;
  eo.n_ctx = slot_ctx.per_slot;
  eo.cache_types = a.cache_types;
  eo.threads = a.threads;
  eo.n_seq = a.parallel;
  engine::Engine engine(eo);
  cli::confine_loaded_engine();
  cli::take_model_sampling(engine.model().file(), a.server.sampling.params, a.sampling_given);
  log_sampling_defaults(a.server.sampling);
  a.server.chat_template = engine.model().file().get_string("tokenizer.chat_template", "");
  server::Server server(engine, a.server);
  std::printf("listening on http://%s:%d\n", shown_host.c_str(), socket.port);
  std::fflush(stdout);
  log::info("serving '" + server.model_id() + "' with " + std::to_string(a.parallel) + " slots of " +
            std::to_string(engine.n_ctx()) + " tokens");
  if (a.server.lookup.enabled())
    log::info("lookup decoding: up to " + std::to_string(a.server.lookup.draft_max) + " drafted tokens after " +
              std::to_string(a.server.lookup.ngram) + " matching ones");

  std::promise<void> listening_ended;
  std::thread watcher([&, ended = listening_ended.get_future()] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    if (ended.wait_for(std::chrono::seconds(0)) == std::future_status::ready) return;
    log::info("stopping on signal " + std::to_string(sig));
    // A generation ends at once, but a worker still preparing a request
    // (tokenizing a 4 MiB word, rendering a template) notices no stop. The
    // loaded engine writes no file, so leaving that work undone loses nothing.
    const int grace = std::min(a.server.timeout_seconds, kStopGraceSeconds);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(grace);
    server.stop();  // waits for the forward pass under way
    if (ended.wait_until(deadline) == std::future_status::timeout) {
      log::warn("requests were still being prepared " + std::to_string(grace) +
                " s after the stop; not waiting for them");
      std::_Exit(0);
    }
  });
  server.listen(socket);
  // listen() also returns if the server stopped on its own: wake the watcher.
  listening_ended.set_value();
  pthread_kill(watcher.native_handle(), SIGTERM);
  watcher.join();
  return 0;
}

// Runs after parsing: takes -np from what CLI11 left aside, then serves.
std::function<int()> serve_body(std::shared_ptr<ServeArgs> a, CLI::Option* parallel,
                                const warden::cli::SamplingFlags& sampling, CLI::App& app) {
  return [a, parallel, sampling, &app] {
    a->sampling_given = sampling.given();
    a->server.sampling.fixed_seed = a->sampling_given.count("seed") > 0;
    std::optional<int> np = warden::server::parallel_from_llama_flags(app.remaining());
    if (np && parallel->count() > 0) throw warden::UsageError("give the slot count once: -np or --parallel");
    if (np) a->parallel = *np;
    a->parallel_given = np.has_value() || parallel->count() > 0;
    return run_serve(*a);
  };
}

WARDEN_COMMAND("serve", "OpenAI-compatible HTTP API over a local GGUF model", [](CLI::App& app) {
  auto a = std::make_shared<ServeArgs>();
  app.add_option("-m,--model", a->model, "GGUF model file")->required();
  app.add_option("--host", a->server.host, "Address to listen on")->capture_default_str();
  app.add_option("--port", a->server.port, "Port (0 = any free port)")->capture_default_str()->check(
      CLI::Range(0, 65535));
  app.add_option("-c,--ctx-size", a->n_ctx,
                 "Context size as in llama-server: with -np/--parallel N the total, divided over the N slots; "
                 "without it, what each of the default slots may use; rounded up to a multiple of 256 and "
                 "capped at the model's training context (0 = the training context)")
      ->capture_default_str();
  warden::cli::add_cache_type_options(app, a->cache_types);
  auto parallel = app.add_option("--parallel,--np", a->parallel,
                                 "Slots: requests decoded together (-np N also works, as in llama-server)")
                      ->capture_default_str()
                      ->check(CLI::Range(1, 256));
  warden::cli::add_threads_option(app, a->threads);
  auto key = app.add_option("--api-key", a->server.api_key, "Require 'Authorization: Bearer KEY'");
  app.add_option("--api-key-file", a->api_key_file, "Read the API key from this file")->excludes(key);
  app.add_option("--alias", a->server.alias, "Model id clients use (default: the file name)");
  app.add_option("--max-body", a->server.max_body, "Request body limit in bytes")
      ->capture_default_str()
      ->check(CLI::Range(size_t(1024), size_t(1) << 30));
  app.add_option("--max-queue", a->server.max_queue, "Requests that may wait when all slots are busy")
      ->capture_default_str()
      ->check(CLI::Range(size_t(0), size_t(4096)));
  app.add_option("--timeout", a->server.timeout_seconds,
                 "Seconds a client may take to send a whole request, and to take any more of an answer "
                 "(as llama-server's --timeout)")
      ->capture_default_str()
      ->check(CLI::Range(1, 3600));
  warden::cli::add_lookup_options(app, a->server.lookup);
  // Defaults for requests that do not set them, as llama-server's flags.
  const warden::cli::SamplingFlags sampling =
      warden::cli::add_sampling_options(app, a->server.sampling.params, /*for_requests=*/true);
  app.add_option_function<std::string>(
         "--reasoning-format",
         [a](const std::string& format) { a->server.split_reasoning = format == "auto" || format == "deepseek"; },
         "auto (or deepseek): a <think> block that starts a chat answer goes out as reasoning_content; "
         "none: it stays in content (as llama-server's flag)")
      ->default_str("auto")
      ->check(CLI::IsMember({"auto", "deepseek", "none"}));
  app.add_flag("-v,--verbose", a->verbose, "Log every forward pass (size, time) on stderr");
  // CLI11 2.1 cannot declare the two-letter short option -np: it keeps
  // unrecognised arguments aside and serve_args.h reads them (and refuses
  // anything that is not -np, as CLI11 would have).
  app.allow_extras();
  return serve_body(a, parallel, sampling, app);
});

}  // namespace
