// warden chat -m FILE [-c CTX] [-t THREADS] [--system TEXT] [sampling options]
// Interactive terminal chat with a local model on its own chat template:
// streamed answers, the conversation kept as history (its prompt prefix is
// reused from the KV cache each turn), and commands /reset, /system TEXT,
// /exit. Ctrl-C stops the current answer, not the program.
//
// warden chat --agent [--workspace DIR] (-m FILE | --backend URL [--model
//            NAME] [--api-key-file F]) [the broker options of `warden run`]
// Interactive agent: each line the user types (trusted, labelled `user`) goes
// to the agent loop of `warden run` (same setup, agent_session.h); tool calls
// go through the broker, which prompts on this terminal or waits for `warden
// approve`. The conversation and its taint labels last until /reset.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <limits>
#include <memory>
#include <string>
#include <pthread.h>
#include <poll.h>
#include <unistd.h>

#include "chat/jinja_error.h"
#include "command.h"
#include "engine/engine.h"
#include "engine_confinement.h"
#include "server/prompt.h"
#include "util/error.h"
#include "util/log.h"
#if WARDEN_HAVE_AGENT
#include "agent_session.h"
#include "broker/render.h"
#endif

namespace {

// The model's text as the chat prints it. On a terminal, escape sequences
// (which can rewrite the screen, set the window title or, with OSC 52, the
// clipboard), other control characters and invisible code points are shown
// as visible escapes; piped, the text is passed on as it is. The engine hands
// over whole UTF-8 characters, so each piece can be rendered alone.
std::string for_terminal(std::string_view text) {
#if WARDEN_HAVE_AGENT
  static const bool tty = isatty(STDOUT_FILENO);
  if (tty) return warden::broker::neutralize(text, /*keep_newlines=*/true);
#endif
  return std::string(text);
}

using json = nlohmann::ordered_json;

std::atomic<bool> g_interrupted{false};

extern "C" void on_sigint(int) { g_interrupted = true; }

struct ChatArgs {
  std::string model;
  int64_t n_ctx = 0;
  warden::model::KvCacheTypes cache_types;
  int threads = 0;
  int64_t max_tokens = -1;
  std::string system;
  warden::sample::SamplerParams sampling;
  warden::engine::LookupParams lookup;
  bool agent = false;
#if WARDEN_HAVE_AGENT
  warden::cli::AgentSessionOptions session;
#endif
  // Given on the command line: options only one of the two modes takes.
  std::vector<std::string> engine_options_given;
  std::vector<std::string> agent_options_given;
  std::set<std::string> sampling_given;  // flags the model file's recommendation must not change
};

void install_sigint_handler() {
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a read at the prompt returns on Ctrl-C
  sigaction(SIGINT, &sa, nullptr);
}

// Reads one line; false on end of input. A Ctrl-C at the prompt discards the
// line being typed and asks again. SIGINT stays blocked here but while ppoll
// waits, which unblocks it atomically: one that came between the prompt and
// the wait is taken by ppoll, not lost before a read that would then wait
// forever for a line the terminal already threw away.
bool read_line(std::string& line) {
  static std::string pending;  // read past the last line returned (piped input)
  sigset_t sigint, previous;
  sigemptyset(&sigint);
  sigaddset(&sigint, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigint, &previous);
  struct RestoreMask {
    sigset_t mask;
    ~RestoreMask() { pthread_sigmask(SIG_SETMASK, &mask, nullptr); }
  } restore{previous};
  sigset_t waiting = previous;
  sigdelset(&waiting, SIGINT);
  const bool tty = isatty(STDIN_FILENO);
  bool prompt = tty;
  for (;;) {
    if (const size_t end = pending.find('\n'); end != std::string::npos) {
      line = pending.substr(0, end);
      pending.erase(0, end + 1);
      return true;
    }
    if (prompt) std::fputs("> ", stdout);
    prompt = false;
    std::fflush(stdout);  // what was written comes out before the wait, as a read of std::cin flushed it
    g_interrupted = false;
    pollfd input{STDIN_FILENO, POLLIN, 0};
    if (ppoll(&input, 1, nullptr, &waiting) < 0) {
      if (errno != EINTR) return false;
      if (g_interrupted) {  // Ctrl-C: the line is dropped
        pending.clear();
        std::fputs("\n", stdout);
        prompt = tty;
      }
      continue;
    }
    char buffer[4096];
    const ssize_t n = read(STDIN_FILENO, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {  // end of input: a last line without its newline still counts
      if (pending.empty()) return false;
      line = std::move(pending);
      pending.clear();
      return true;
    }
    pending.append(buffer, size_t(n));
  }
}

json history_with_system(const std::string& system) {
  json h = json::array();
  if (!system.empty()) h.push_back({{"role", "system"}, {"content", system}});
  return h;
}

// Tokenizes `conversation` into `prompt`, first dropping its oldest
// exchanges (a user message and the answer to it; the system prompt and the
// new message stay) while the prompt would leave the answer less than a
// quarter of the context, or less than -n tokens where that is smaller.
// Returns how many messages were dropped. The prompt may still not fit when
// nothing is left to drop: the caller says so.
size_t fit_to_context(json& conversation, const warden::server::PromptBuilder& prompts, int64_t n_ctx,
                      int64_t max_tokens, std::vector<int32_t>& prompt) {
  const int64_t room = max_tokens > 0 ? std::min(max_tokens, n_ctx / 4) : n_ctx / 4;
  const size_t first = !conversation.empty() && conversation[0]["role"] == "system" ? 1 : 0;
  size_t dropped = 0;
  for (;;) {
    prompt = prompts.tokenize_rendered(prompts.render(conversation, nullptr));
    if (int64_t(prompt.size()) + room <= n_ctx || conversation.size() < first + 3) return dropped;
    conversation.erase(conversation.begin() + long(first), conversation.begin() + long(first) + 2);
    dropped += 2;
  }
}

int run_chat(const ChatArgs& a) {
  using namespace warden;
  if (!a.agent_options_given.empty())
    throw UsageError(a.agent_options_given.front() + " is an option of chat --agent");
  if (a.model.empty()) throw UsageError("-m FILE is required (or --agent with --backend URL)");
  sample::validate(a.sampling);
  cli::confine_engine(a.model);
  engine::EngineOptions eo;
  eo.model_path = a.model;
  eo.n_ctx = a.n_ctx;
  eo.cache_types = a.cache_types;
  eo.threads = a.threads;
  // Ctrl-C must reach this thread, the one reading the prompt (its read
  // returns on it): the engine's threads, started now, keep it blocked.
  sigset_t sigint;
  sigemptyset(&sigint);
  sigaddset(&sigint, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigint, nullptr);
  engine::Engine engine(eo);
  pthread_sigmask(SIG_UNBLOCK, &sigint, nullptr);
  cli::confine_loaded_engine();
  sample::SamplerParams sampling = a.sampling;
  cli::take_model_sampling(engine.model().file(), sampling, a.sampling_given);
  server::PromptBuilder prompts(engine.model().file().get_string("tokenizer.chat_template", ""), engine.tokenizer());
  install_sigint_handler();

  std::string system = a.system;
  json history = history_with_system(system);
  std::string line;
  while (read_line(line)) {
    if (line.empty()) continue;
    if (line == "/exit" || line == "/quit") break;
    if (line == "/reset") {
      history = history_with_system(system);
      std::puts("(conversation cleared)");
      continue;
    }
    if (line.rfind("/system", 0) == 0 && (line.size() == 7 || line[7] == ' ')) {
      system = line.size() > 8 ? line.substr(8) : "";
      history = history_with_system(system);
      std::puts(system.empty() ? "(system prompt removed; conversation cleared)"
                               : "(system prompt set; conversation cleared)");
      continue;
    }
    if (line[0] == '/') {
      std::puts("commands: /reset, /system TEXT, /exit");
      continue;
    }

    json attempt = history;
    attempt.push_back({{"role", "user"}, {"content", line}});
    std::vector<int32_t> prompt;
    size_t dropped = 0;
    try {
      dropped = fit_to_context(attempt, prompts, engine.n_ctx(), a.max_tokens, prompt);
    } catch (const chat::TemplateError& e) {
      log::error(std::string("the chat template refused the conversation: ") + e.what());
      continue;
    } catch (const Error& e) {
      log::error(e.what());
      continue;
    }
    if (int64_t(prompt.size()) >= engine.n_ctx()) {
      log::error("this message (" + std::to_string(prompt.size()) + " tokens with the system prompt) does not fit "
                 "the context of " + std::to_string(engine.n_ctx()) + " tokens; give a larger -c");
      continue;
    }
    if (dropped > 0)
      std::printf("(the oldest %zu messages were dropped to fit the context of %lld tokens)\n", dropped,
                  (long long)engine.n_ctx());
    engine::GenerateParams params;
    params.sampling = sampling;
    params.max_tokens = a.max_tokens;
    params.lookup = a.lookup;
    g_interrupted = false;
    auto result = engine::generate(engine, 0, prompt, params, [](std::string_view text) {
      const std::string shown = for_terminal(text);
      std::fwrite(shown.data(), 1, shown.size(), stdout);
      std::fflush(stdout);
      return !g_interrupted.load();
    });
    if (result.finish == engine::FinishReason::Cancelled) std::fputs(" [stopped]", stdout);
    std::fputs("\n", stdout);
    std::fflush(stdout);
    // What was shown is what the model said, even if cut short.
    history = std::move(attempt);
    history.push_back({{"role", "assistant"}, {"content", result.text}});
  }
  return 0;
}

#if WARDEN_HAVE_AGENT
// The interactive agent. Ctrl-C keeps its default action here (it ends the
// session, the broker and engine children with it): the agent loop has no
// point where a half-done task could be stopped cleanly.
int run_agent_chat(const ChatArgs& a) {
  using namespace warden;
  if (!a.engine_options_given.empty())
    throw UsageError(a.engine_options_given.front() + " is not an option of chat --agent");
  cli::AgentSessionOptions options = a.session;
  options.model_file = a.model;
  options.lookup = a.lookup;
  cli::AgentSession session(options, "chat");
  const bool tty = isatty(STDIN_FILENO);
  if (tty) std::printf("(agent in %s; /reset clears the conversation, /exit ends)\n", session.workspace().c_str());
  std::string line;
  for (;;) {
    if (tty) {
      std::fputs("> ", stdout);
      std::fflush(stdout);
    }
    if (!std::getline(std::cin, line)) break;
    if (line.empty()) continue;
    if (line == "/exit" || line == "/quit") break;
    if (line == "/reset") {
      session.reset();
      std::puts("(conversation and taint cleared)");
      std::fflush(stdout);
      continue;
    }
    if (line[0] == '/') {
      std::puts("commands: /reset, /exit");
      std::fflush(stdout);
      continue;
    }
    try {
      agent::AgentResult r = session.ask(line);
      std::printf("%s\n", r.answer.c_str());
    } catch (const Error& e) {
      // The backend failed mid-answer; the message stays in the conversation.
      log::error(std::string("chat: ") + e.what());
    }
    std::fflush(stdout);
  }
  session.finish();
  return 0;
}
#endif

std::function<int()> setup_chat(CLI::App& app) {
  auto a = std::make_shared<ChatArgs>();
  app.add_option("-m,--model-file", a->model, "GGUF model file");
  std::vector<CLI::Option*> engine_options = warden::cli::add_cache_type_options(app, a->cache_types);
  engine_options.insert(engine_options.end(), {
      app.add_option("-c,--ctx-size", a->n_ctx, "Context length (0 = the model's)")
          ->capture_default_str()
          ->check(CLI::Range(int64_t(0), std::numeric_limits<int64_t>::max())),
      warden::cli::add_threads_option(app, a->threads),
      app.add_option("-n,--n-predict", a->max_tokens, "Most tokens per answer (-1 = until the end)")
          ->capture_default_str()
          ->check(CLI::Range(int64_t(-1), std::numeric_limits<int64_t>::max())),
      app.add_option("--system", a->system, "System prompt")});
  // Both modes: in --agent, for the embedded engine.
  const warden::cli::SamplingFlags sampling = warden::cli::add_sampling_options(app, a->sampling);
  [[maybe_unused]] const std::vector<CLI::Option*> lookup_options = warden::cli::add_lookup_options(app, a->lookup);
  std::vector<CLI::Option*> agent_options;
#if WARDEN_HAVE_AGENT
  app.add_flag("--agent", a->agent, "Agent mode: tools through the broker and sandbox, as `warden run`");
  agent_options = warden::cli::add_agent_session_options(app, a->session, false);
  // A backend decodes as it was started: its lookup and sampling flags are a usage error.
  for (auto* option : lookup_options) option->excludes(app.get_option("--backend"));
  for (auto* option : sampling.options) option->excludes(app.get_option("--backend"));
#endif
  return [a, engine_options, agent_options, sampling] {
    a->sampling_given = sampling.given();
#if WARDEN_HAVE_AGENT
    a->session.sampling_flags = sampling;
#endif
    // Which options were given decides nothing by itself, but a mode given
    // the other mode's option says so instead of ignoring it.
    for (auto* o : engine_options)
      if (o->count() > 0) a->engine_options_given.push_back(o->get_name());
    for (auto* o : agent_options)
      if (o->count() > 0) a->agent_options_given.push_back(o->get_name());
#if WARDEN_HAVE_AGENT
    if (a->agent) return run_agent_chat(*a);
#endif
    return run_chat(*a);
  };
}

WARDEN_COMMAND("chat", "Interactive terminal chat with a local GGUF model (or an agent with --agent)", setup_chat);

}  // namespace
