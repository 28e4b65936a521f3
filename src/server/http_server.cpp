#include "server/http_server.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <utility>

#include "chat/jinja_error.h"
#include "grammar/json_schema.h"
#include "grammar/matcher.h"
#include "grammar/toolcall.h"
#include "sample/sampler.h"
#include "server/answer_json.h"
#include "server/api.h"
#include "server/browser_guard.h"
#include "server/chat_answer.h"
#include "server/connection.h"
#include "server/grammar_vocab.h"
#include "server/peer_socket.h"
#include "server/prompt.h"
#include "server/reasoning.h"
#include "server/request_extent.h"
#include "server/scheduler.h"
#include "server/tool_stream.h"
#include "util/display.h"
#include "util/error.h"
#include "util/log.h"

namespace warden::server {

using json = nlohmann::ordered_json;

namespace {

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Comparison whose time does not depend on where the strings differ.
bool same_secret(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) diff |= uint8_t(a[i]) ^ uint8_t(i < b.size() ? b[i] : 0);
  return diff == 0;
}

// How often a handler waiting on a generation looks at its client's socket.
constexpr std::chrono::milliseconds kClientCheckInterval{50};

// The connection of one request, watched for the client going away while
// its answer is generated (see peer_socket.h for why it works this way). The
// socket is looked up only once a check is due, so quick answers never pay
// for the search.
class ClientWatch {
 public:
  explicit ClientWatch(const httplib::Request& req)
      : local_addr_(req.local_addr), remote_addr_(req.remote_addr), local_port_(req.local_port),
        remote_port_(req.remote_port), next_check_(std::chrono::steady_clock::now() + kClientCheckInterval) {}
  // True once the client has gone; looks at the socket at most once per
  // kClientCheckInterval. Must be called on the connection's own thread,
  // while its request is being answered (the socket is open until then).
  bool client_left() {
    if (left_) return true;
    auto now = std::chrono::steady_clock::now();
    if (now < next_check_) return false;
    next_check_ = now + kClientCheckInterval;
    if (fd_ == kNotLookedUp) {
      fd_ = find_connection_socket(local_addr_, local_port_, remote_addr_, remote_port_);
      if (fd_ < 0)
        log::warn("no socket found for client " + remote_addr_ + ":" + std::to_string(remote_port_) +
                  "; its disconnect will only be noticed when writing");
    }
    left_ = fd_ >= 0 && peer_has_left(fd_);
    return left_;
  }

 private:
  static constexpr int kNotLookedUp = -2;
  std::string local_addr_, remote_addr_;
  int local_port_, remote_port_;
  int fd_ = kNotLookedUp;
  bool left_ = false;
  std::chrono::steady_clock::time_point next_check_;
};

// The job's next text (or its end). When the client goes away meanwhile the
// job is cancelled -- the scheduler frees its slot at its next step -- and
// this returns once the job has ended.
Job::Chunk next_or_cancel(Job& job, ClientWatch& watch) {
  for (;;) {
    Job::Chunk c = job.next_for(kClientCheckInterval);
    if (!job.cancelled() && !c.done && watch.client_left()) {
      log::debug("client disconnected: cancelling its generation");
      job.cancel();
    }
    if (!c.text.empty() || !c.logprobs.empty() || c.done) return c;
  }
}

// A non-streamed answer whose client left: nobody will read this reply, but
// the handler must still say something (nginx's "client closed request").
ApiError client_closed() {
  return ApiError(499, "the client closed the connection before the answer was ready", "invalid_request_error", "",
                  "client_closed_request");
}

// cpp-httplib's routing and answers, for requests the gate has read whole
// (connection.h): its own accept loop and connection handling go unused.
class RoutingHttpServer : public httplib::Server {
 public:
  // cpp-httplib ends a streamed answer once its socket member is no socket
  // ("shutting down"); it holds the gate's listening socket's number while
  // serving, and is never used as a socket.
  void serving(int listening_fd) { svr_sock_ = listening_fd; }
  void stopping() { svr_sock_ = INVALID_SOCKET; }
  bool answer(httplib::Stream& stream, bool close_connection, bool& connection_closed) {
    return process_request(stream, close_connection, connection_closed, nullptr);
  }
};

// The whole answer of a request the gate refuses before any worker sees it.
std::string gate_refusal(int status, const std::string& message, const std::string& code) {
  const std::string body = error_body(ApiError(status, message, "invalid_request_error", "", code)).dump();
  const char* reason = status == 408   ? "Request Timeout"
                       : status == 431 ? "Request Header Fields Too Large"
                       : status == 503 ? "Service Unavailable"
                                       : "Error";
  return "HTTP/1.1 " + std::to_string(status) + " " + reason +
         "\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

}  // namespace

// ------------------------------------------------------------------ Impl

struct Server::Impl {
  Impl(engine::Engine& engine, ServerOptions options);

  void install_routes();
  void reply_error(httplib::Response& res, const ApiError& e);
  void guarded(const httplib::Request& req, httplib::Response& res,
               void (Impl::*handler)(const httplib::Request&, httplib::Response&));
  void check_model(const std::string& requested);

  void handle_chat(const httplib::Request& req, httplib::Response& res);
  void handle_completion(const httplib::Request& req, httplib::Response& res);
  void handle_models(const httplib::Request& req, httplib::Response& res);
  void handle_model(const httplib::Request& req, httplib::Response& res);
  json model_object() const;

  std::shared_ptr<const grammar::Grammar> constraint_for(const ChatRequest& chat);
  // `prompt_param` names the request field the prompt came from, for errors.
  std::shared_ptr<Job> submit(GenerationRequest g, const char* prompt_param);
  GenerationRequest generation(const CommonParams& common, std::vector<int32_t> prompt);

  engine::Engine& engine;
  ServerOptions options;
  std::string model_id;
  Metrics metrics;
  PromptBuilder prompts;
  std::shared_ptr<const grammar::Vocabulary> vocab;
  std::unique_ptr<Scheduler> scheduler;
  RoutingHttpServer http;
  std::unique_ptr<ConnectionGate> gate;
  int64_t created = unix_now();
};

Server::Impl::Impl(engine::Engine& e, ServerOptions o)
    : engine(e), options(std::move(o)), prompts(options.chat_template, e.tokenizer()) {
  // Every answer quotes it, and JSON text must be UTF-8 (a file name need not be).
  model_id = display::utf8_or_replacement(
      options.alias.empty() ? std::filesystem::path(engine.model().file().path()).filename().string() : options.alias);
  vocab = grammar_vocabulary(engine.tokenizer());
  scheduler =
      std::make_unique<Scheduler>(engine, vocab, metrics, SchedulerOptions{options.max_queue, options.lookup});
  // Every streaming client holds a worker thread for its whole answer, so
  // the pool must cover all slots and the whole queue, plus probes.
  const size_t workers = size_t(scheduler->slots()) + options.max_queue + 16;
  http.set_payload_max_length(options.max_body);
  ConnectionLimits limits;
  limits.request = limits.io = std::chrono::seconds(options.timeout_seconds);
  limits.keep_alive = std::min(limits.keep_alive, limits.request);
  limits.max_body = options.max_body;
  limits.max_buffered = std::max(limits.max_buffered, 16 * (limits.max_head + limits.max_body));
  // What cpp-httplib's answers say in their Keep-Alive header.
  http.set_keep_alive_timeout(std::chrono::duration_cast<std::chrono::seconds>(limits.keep_alive).count());
  http.set_keep_alive_max_count(limits.requests_per_connection);
  gate = std::make_unique<ConnectionGate>(
      limits, workers,
      [this](httplib::Stream& stream, bool close, bool& closed) { return http.answer(stream, close, closed); },
      gate_refusal, metrics);
  install_routes();
}

void Server::Impl::reply_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  res.set_content(error_body(e).dump(), "application/json");
}

void Server::Impl::guarded(const httplib::Request& req, httplib::Response& res,
                           void (Impl::*handler)(const httplib::Request&, httplib::Response&)) {
  try {
    (this->*handler)(req, res);
  } catch (const ApiError& e) {
    reply_error(res, e);
  } catch (const std::exception& e) {
    log::error(std::string("internal error on ") + req.path + ": " + e.what());
    reply_error(res, ApiError(500, std::string("internal error: ") + e.what(), "server_error"));
  }
}

namespace {

// Request bodies cpp-httplib 0.11 would mishandle, refused before it reads
// them (the refusal then ends the connection, connection.h):
//  - it holds --max-body only against a Content-Length: a chunked body
//    could be any size (OpenAI clients always send the length);
//  - it inflates gzip, deflate and br bodies after that check;
//  - it reads no body for other methods than POST, PUT, PATCH and DELETE,
//    so the bytes of one would be read as the next request.
std::optional<ApiError> body_refusal(const httplib::Request& req) {
  const bool needs_length = req.method == "POST" || req.method == "PUT" || req.method == "PATCH";
  const bool takes_body = needs_length || req.method == "DELETE";  // a DELETE may also come without one
  if (req.has_header("Transfer-Encoding") || (needs_length && !req.has_header("Content-Length")))
    return ApiError(411, "a request body needs a Content-Length (chunked bodies are not taken)", "invalid_request_error",
                    "", "length_required");
  // One number however often it is given, as the gate reads it
  // (request_extent.h): cpp-httplib would take the first of two lengths.
  for (size_t i = 0; i < req.get_header_value_count("Content-Length"); i++) {
    const std::string length = req.get_header_value("Content-Length", i);
    if (!content_length_value(length) || length != req.get_header_value("Content-Length"))
      return ApiError(400, "Content-Length is not one decimal number", "invalid_request_error", "",
                      "invalid_content_length");
  }
  if (const std::string encoding = req.get_header_value("Content-Encoding"); !encoding.empty() && encoding != "identity")
    return ApiError(415, "compressed request bodies are not taken (Content-Encoding " + encoding.substr(0, 40) + ")",
                    "invalid_request_error", "", "unsupported_encoding");
  if (!takes_body && req.has_header("Content-Length") && req.get_header_value("Content-Length") != "0")
    return ApiError(400, "a " + req.method.substr(0, 16) + " request has no body", "invalid_request_error", "",
                    "unexpected_body");
  return std::nullopt;
}

}  // namespace

void Server::Impl::install_routes() {
  http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    metrics.requests_total++;
    if (auto refusal = body_refusal(req)) {
      reply_error(res, *refusal);
      return httplib::Server::HandlerResponse::Handled;
    }
    if (!host_header_allowed(req.get_header_value("Host"), !options.api_key.empty())) {
      reply_error(res, ApiError(403, "the Host header names neither this machine nor an IP address (a web page "
                                     "after DNS rebinding?); use 127.0.0.1 or localhost, or set --api-key",
                                "invalid_request_error", "", "forbidden_host"));
      return httplib::Server::HandlerResponse::Handled;
    }
    // With an API key required, a page cannot call anyway (it lacks the key),
    // and a web UI on its own origin behind a reverse proxy may.
    if (options.api_key.empty() && !origin_header_allowed(req.get_header_value("Origin"), req.has_header("Origin"))) {
      reply_error(res, ApiError(403, "requests from web pages of other sites are refused (Origin " +
                                         req.get_header_value("Origin").substr(0, 200) + ")",
                                "invalid_request_error", "", "forbidden_origin"));
      return httplib::Server::HandlerResponse::Handled;
    }
    if (options.api_key.empty() || req.path == "/health") return httplib::Server::HandlerResponse::Unhandled;
    const std::string expected = "Bearer " + options.api_key;
    if (same_secret(req.get_header_value("Authorization"), expected))
      return httplib::Server::HandlerResponse::Unhandled;
    reply_error(res, ApiError(401, "invalid or missing API key (send 'Authorization: Bearer KEY')",
                              "invalid_request_error", "", "invalid_api_key"));
    return httplib::Server::HandlerResponse::Handled;
  });
  // Runs for every answer: after an error or a refusal the connection ends,
  // since the rest of that request may be unread (connection.h).
  http.set_post_routing_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.status < 400) return;
    res.set_header("Connection", "close");
    close_after_answer();
  });
  // Runs for every answer with status >= 400, including those httplib makes
  // itself (no route: 404, body over the limit: 413); fills in an OpenAI
  // error object when the handler did not write one.
  http.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req, httplib::Response& res) {
    metrics.request_errors_total++;
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Handled;
    if (res.status == 404)
      reply_error(res, ApiError(404, "no route " + req.method + " " + req.path, "invalid_request_error", "",
                                "unknown_route"));
    else if (res.status == 413)
      reply_error(res, ApiError(413, "the request body is larger than " + std::to_string(options.max_body) +
                                         " bytes",
                                "invalid_request_error", "", "request_too_large"));
    else
      reply_error(res, ApiError(res.status, "HTTP error " + std::to_string(res.status), "invalid_request_error"));
    return httplib::Server::HandlerResponse::Handled;
  }));
  http.set_exception_handler([this](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    reply_error(res, ApiError(500, "internal error", "server_error"));
  });

  // A route runs once its request has arrived whole, body included. Each
  // API route also answers without its /v1 (as llama-server's do).
  for (const std::string prefix : {"/v1", ""}) {
    http.Post(prefix + "/chat/completions", [this](const httplib::Request& q, httplib::Response& s) {
      guarded(q, s, &Impl::handle_chat);
    });
    http.Post(prefix + "/completions", [this](const httplib::Request& q, httplib::Response& s) {
      guarded(q, s, &Impl::handle_completion);
    });
    http.Get(prefix + "/models", [this](const httplib::Request& q, httplib::Response& s) {
      guarded(q, s, &Impl::handle_models);
    });
    http.Get(prefix + "/models/(.+)", [this](const httplib::Request& q, httplib::Response& s) {
      guarded(q, s, &Impl::handle_model);
    });
  }
  http.Get("/health", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("{\"status\":\"ok\"}", "application/json");
  });
  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics.prometheus_text(), "text/plain; version=0.0.4");
  });
}

void Server::Impl::check_model(const std::string& requested) {
  if (requested.empty() || requested == model_id) return;
  throw ApiError(404, "the model '" + requested + "' does not exist; this server serves '" + model_id + "'",
                 "invalid_request_error", "model", "model_not_found");
}

json Server::Impl::model_object() const {
  return {{"id", model_id},
          {"object", "model"},
          {"created", created},
          {"owned_by", "warden"},
          {"meta", {{"n_ctx", engine.n_ctx()}, {"n_vocab", engine.tokenizer().size()}, {"slots", scheduler->slots()}}}};
}

void Server::Impl::handle_models(const httplib::Request&, httplib::Response& res) {
  json body = {{"object", "list"}, {"data", json::array({model_object()})}};
  res.set_content(body.dump(), "application/json");
}

// GET /v1/models/{id}: the model, if that is its name.
void Server::Impl::handle_model(const httplib::Request& req, httplib::Response& res) {
  check_model(req.matches[1]);  // never empty: the route's pattern is (.+)
  res.set_content(model_object().dump(), "application/json");
}

GenerationRequest Server::Impl::generation(const CommonParams& common, std::vector<int32_t> prompt) {
  GenerationRequest g;
  g.prompt = std::move(prompt);
  g.sampling = common.sampling;
  g.top_logprobs = common.top_logprobs;
  for (const auto& [token, bias] : g.sampling.logit_bias)
    if (size_t(token) >= engine.tokenizer().size())
      throw bad_request("'logit_bias' names token id " + std::to_string(token) + "; this model's vocabulary has " +
                            std::to_string(engine.tokenizer().size()) + " tokens",
                        "logit_bias", "out_of_range");
  g.max_tokens = common.max_tokens;
  g.stop = common.stop;
  g.ignore_eos = common.ignore_eos;
  return g;
}

std::shared_ptr<Job> Server::Impl::submit(GenerationRequest g, const char* prompt_param) {
  if (g.prompt.empty()) throw bad_request("the prompt is empty", prompt_param, "invalid_value");
  if (int64_t(g.prompt.size()) >= engine.n_ctx()) {
    ApiError e = bad_request("the prompt has " + std::to_string(g.prompt.size()) +
                                 " tokens; this model's context holds " + std::to_string(engine.n_ctx()) +
                                 " tokens for prompt and completion together",
                             prompt_param, "context_length_exceeded");
    e.extra = {{"n_prompt_tokens", g.prompt.size()}, {"n_ctx", engine.n_ctx()}};  // as llama-server gives them
    throw e;
  }
  try {
    return scheduler->submit(std::move(g));
  } catch (const QueueFull& e) {
    throw ApiError(503, e.what(), "server_error", "", "server_busy");
  }
}

std::shared_ptr<const grammar::Grammar> Server::Impl::constraint_for(const ChatRequest& chat) {
  try {
    std::shared_ptr<const grammar::Grammar> g;
    if (chat.tool_choice == ToolChoice::Required || chat.tool_choice == ToolChoice::Named) {
      grammar::ToolGrammarOptions o;
      o.parallel = chat.parallel_tool_calls;
      if (chat.tool_choice == ToolChoice::Named) o.only_tool = chat.tool_name;
      g = std::make_shared<const grammar::Grammar>(grammar::tool_call_grammar(prompts.tool_format(), chat.tools, o));
    } else if (chat.response_format == ResponseFormat::JsonObject) {
      g = std::make_shared<const grammar::Grammar>(grammar::grammar_any_json_object());
    } else if (chat.response_format == ResponseFormat::JsonSchema) {
      g = std::make_shared<const grammar::Grammar>(grammar::grammar_from_json_schema(chat.json_schema));
    }
    // A grammar too ambiguous to start (an enum of thousands of values) is
    // this request's error, found here rather than on the scheduler thread.
    if (g) [[maybe_unused]] grammar::Matcher starts(g, vocab);
    return g;
  } catch (const Error& e) {
    const bool tools = chat.tool_choice == ToolChoice::Required || chat.tool_choice == ToolChoice::Named;
    throw bad_request(std::string(tools ? "tools: " : "response_format: ") + e.what(),
                      tools ? "tools" : "response_format", "unsupported_schema");
  }
}

// ------------------------------------------------------------------ chat

namespace {

struct ChatStream {
  std::shared_ptr<Job> job;
  ChatOutput output;
  std::string id;
  std::string model;
  int64_t created;
  bool include_usage;
  bool lookup;          // lookup decoding on: timings show the drafts
  bool parallel_calls;  // parallel_tool_calls: more than one call may be sent
  bool named_call;      // tool_choice names the function (finish_name)
  const tokenizer::Tokenizer& tok;
  std::vector<TokenLogprob> logprobs = {};  // asked for and not yet sent: go with the next chunk
  size_t tool_calls_sent = 0;
  bool role_sent = false;
  bool finished = false;
  // Forced tool calls (tool_choice "required" or a named function) stream
  // their arguments as generated; see tool_stream.h.
  std::optional<ToolCallStreamer> forced = std::nullopt;

  // A chunk carrying `delta`, and the logprobs not yet sent (taken).
  json chunk(json delta, const json& finish_reason) {
    json choice = {{"index", 0}, {"delta", std::move(delta)}, {"logprobs", nullptr}, {"finish_reason", finish_reason}};
    if (!logprobs.empty()) choice["logprobs"] = chat_logprobs(std::exchange(logprobs, {}), tok);
    json c = {{"id", id}, {"object", "chat.completion.chunk"}, {"created", created}, {"model", model},
              {"choices", json::array({choice})}};
    if (include_usage) c["usage"] = nullptr;
    return c;
  }
  // The next generated text, as deltas.
  void add_text(std::string& out, const std::string& text) {
    if (forced) add_fragments(out, forced->feed(text));
    else add_delta(out, output.feed(text));
  }
  // OpenAI's streamed call: {index, id, type, function: {name, arguments: ""}}
  // first, then {index, function: {arguments: piece}} for each piece.
  void add_fragments(std::string& out, const std::vector<ToolCallFragment>& fragments) {
    for (const auto& f : fragments) {
      json call = {{"index", f.index}};
      if (f.opens) {
        call["id"] = random_id("call_");
        call["type"] = "function";
        call["function"] = {{"name", f.name}, {"arguments", ""}};
        tool_calls_sent = std::max(tool_calls_sent, f.index + 1);
      } else {
        call["function"] = {{"arguments", f.arguments}};
      }
      out += sse(chunk({{"tool_calls", json::array({call})}}, nullptr));
    }
  }
  // End of a forced call stream: calls only the parser saw, or -- when the
  // output never became a call (cut short before its name) -- the raw text
  // as content, as the non-streamed answer gives it.
  void finish_forced(std::string& out, const JobResult& r) {
    ToolCallStreamer::Final f = forced->finish();
    log_mismatches(f, r.finish);
    add_fragments(out, f.fragments);
    if (tool_calls_sent == 0 && has_text(f.content))
      out += sse(chunk({{"content", f.content}}, nullptr));
  }
  void add_delta(std::string& out, const ChatDelta& delta) {
    if (!delta.reasoning.empty()) out += sse(chunk({{"reasoning_content", delta.reasoning}}, nullptr));
    const grammar::ToolCallDelta& d = delta.answer;
    if (!d.content.empty()) out += sse(chunk({{"content", d.content}}, nullptr));
    for (const auto& call : d.tool_calls) {
      if (!parallel_calls && tool_calls_sent > 0) break;
      out += sse(chunk({{"tool_calls", json::array({tool_call_json(call, tool_calls_sent, true)})}}, nullptr));
      tool_calls_sent++;
    }
  }
  // The job is done: flush the parser, then the stream's end, and [DONE].
  void finish(std::string& out) {
    JobResult r = job->result();
    if (forced) finish_forced(out, r);
    else add_delta(out, output.finish());
    if (r.finish == Finish::Error)
      out += sse(error_body(ApiError(500, r.error, "server_error")));
    else
      out += stream_end(chunk(json::object(), finish_name(r.finish, tool_calls_sent > 0 && !named_call)), r, lookup,
                        include_usage);
    out += "data: [DONE]\n\n";
    finished = true;
  }
};

}  // namespace

void Server::Impl::handle_chat(const httplib::Request& req, httplib::Response& res) {
  ChatRequest chat = parse_chat_request(parse_body(req.body), options.sampling);
  check_model(chat.common.model);
  const bool use_tools = !chat.tools.is_null() && chat.tool_choice != ToolChoice::None;
  const bool forced_tool_call =
      use_tools && (chat.tool_choice == ToolChoice::Required || chat.tool_choice == ToolChoice::Named);

  std::string rendered;
  try {
    rendered = prompts.render(chat.messages, use_tools ? chat.tools : json(nullptr), chat.template_kwargs);
  } catch (const chat::TemplateError& e) {
    throw bad_request(std::string("the model's chat template refused the conversation: ") + e.what(), "messages",
                      "template_error");
  } catch (const ControlTextError& e) {
    throw bad_request(e.what(), e.where, "invalid_value");
  } catch (const Error& e) {
    throw bad_request(e.what(), "messages", "invalid_value");
  }
  GenerationRequest g = generation(chat.common, prompts.tokenize_rendered(rendered));
  g.grammar = constraint_for(chat);
  // A stop string would cut a forced call's JSON short: the grammar ends it.
  if (forced_tool_call) g.stop.clear();
  // Reasoning is split off free output only: a grammar allows none.
  std::optional<ReasoningSplitter> reasoning;
  if (options.split_reasoning && !g.grammar) reasoning.emplace(prompt_opens_reasoning(rendered));
  auto job = submit(std::move(g), "messages");

  const std::string id = random_id("chatcmpl-");
  const int64_t now = unix_now();
  if (chat.common.stream) {
    auto stream = std::make_shared<ChatStream>(
        ChatStream{.job = job,
                   .output = ChatOutput(use_tools, prompts.tool_format(), reasoning),
                   .id = id,
                   .model = model_id,
                   .created = now,
                   .include_usage = chat.common.include_usage,
                   .lookup = options.lookup.enabled(),
                   .parallel_calls = chat.parallel_tool_calls,
                   .named_call = chat.tool_choice == ToolChoice::Named,
                   .tok = engine.tokenizer()});
    if (forced_tool_call) stream->forced.emplace(prompts.tool_format());
    auto watch = std::make_shared<ClientWatch>(req);
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream",
        [stream, watch](size_t, httplib::DataSink& sink) {
          std::string out;
          if (!stream->role_sent) {
            out += sse(stream->chunk({{"role", "assistant"}, {"content", ""}}, nullptr));
            stream->role_sent = true;
          }
          Job::Chunk c = next_or_cancel(*stream->job, *watch);
          if (stream->job->cancelled()) return false;  // the client left
          stream->logprobs.insert(stream->logprobs.end(), c.logprobs.begin(), c.logprobs.end());
          stream->add_text(out, c.text);
          if (c.done) stream->finish(out);
          // Text the tool-call parser holds back yields nothing to send yet;
          // a zero-length write would end the chunked body.
          if (out.empty()) return true;
          if (!sink.write(out.data(), out.size())) {
            stream->job->cancel();  // the client went away: free the slot
            return false;
          }
          if (stream->finished) sink.done();
          return true;
        },
        [stream](bool) { stream->job->cancel(); });
    return;
  }

  ChatOutput output(use_tools && !forced_tool_call, prompts.tool_format(), reasoning);
  ClientWatch watch(req);
  std::string text, reasoning_text, content;
  std::vector<grammar::ToolCall> calls;
  std::vector<TokenLogprob> logprobs;
  for (;;) {
    Job::Chunk c = next_or_cancel(*job, watch);
    text += c.text;
    logprobs.insert(logprobs.end(), c.logprobs.begin(), c.logprobs.end());
    if (c.done) break;
  }
  JobResult r = job->result();
  if (r.finish == Finish::Error) throw ApiError(500, r.error, "server_error");
  if (r.finish == Finish::Cancelled) throw client_closed();
  if (forced_tool_call) {
    ForcedAnswer a = forced_answer(text, prompts.tool_format(), r.finish);
    content = std::move(a.content);
    calls = std::move(a.calls);
  } else {
    for (const ChatDelta& d : {output.feed(text), output.finish()}) {
      reasoning_text += d.reasoning;
      content += d.answer.content;
      calls.insert(calls.end(), d.answer.tool_calls.begin(), d.answer.tool_calls.end());
    }
  }
  if (!chat.parallel_tool_calls && calls.size() > 1) calls.resize(1);

  json message = {{"role", "assistant"}, {"content", calls.empty() || !content.empty() ? json(content) : json(nullptr)}};
  if (!reasoning_text.empty()) message["reasoning_content"] = reasoning_text;
  if (!calls.empty()) {
    message["tool_calls"] = json::array();
    for (size_t i = 0; i < calls.size(); ++i) message["tool_calls"].push_back(tool_call_json(calls[i], i, false));
  }
  json choice = {{"index", 0}, {"message", message}, {"logprobs", nullptr},
                 {"finish_reason", finish_name(r.finish, !calls.empty() && chat.tool_choice != ToolChoice::Named)}};
  if (chat.common.top_logprobs >= 0) choice["logprobs"] = chat_logprobs(logprobs, engine.tokenizer());
  json body = {{"id", id}, {"object", "chat.completion"}, {"created", now}, {"model", model_id},
               {"choices", json::array({choice})}};
  add_usage(body, r, options.lookup.enabled());
  res.set_content(body.dump(), "application/json");
}

// ------------------------------------------------------------------ completions

void Server::Impl::handle_completion(const httplib::Request& req, httplib::Response& res) {
  CompletionRequest comp = parse_completion_request(parse_body(req.body), options.sampling);
  check_model(comp.common.model);
  std::vector<int32_t> prompt;
  if (comp.prompt_tokens.empty()) {
    prompt = prompts.tokenize_plain(comp.prompt);
  } else {
    for (int64_t token : comp.prompt_tokens) {
      if (token < 0 || uint64_t(token) >= engine.tokenizer().size())
        throw bad_request("the prompt's token id " + std::to_string(token) + " is not in this model's vocabulary of " +
                              std::to_string(engine.tokenizer().size()) + " tokens",
                          "prompt", "out_of_range");
      prompt.push_back(int32_t(token));
    }
  }
  // echo: the answer's text starts with the prompt's.
  std::string echoed;
  if (comp.echo)
    echoed = comp.prompt_tokens.empty() ? comp.prompt
                                        : display::utf8_or_replacement(engine.tokenizer().decode(prompt, false));
  auto job = submit(generation(comp.common, std::move(prompt)), "prompt");
  const std::string id = random_id("cmpl-");
  const int64_t now = unix_now();
  const bool include_usage = comp.common.include_usage;
  // text_offset counts from the start of the answer's text (logprobs come
  // without echo).
  auto offset = std::make_shared<size_t>(0);
  auto body_for = [id, now, include_usage, offset, this](const std::string& text, const json& finish_reason,
                                                         const std::vector<TokenLogprob>& logprobs) {
    json choice = {{"text", text}, {"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish_reason}};
    if (!logprobs.empty())  // only when asked for
      choice["logprobs"] = completion_logprobs(logprobs, engine.tokenizer(), *offset);
    json body = {{"id", id}, {"object", "text_completion"}, {"created", now}, {"model", model_id},
                 {"choices", json::array({choice})}};
    if (include_usage) body["usage"] = nullptr;
    return body;
  };
  if (comp.common.stream) {
    auto watch = std::make_shared<ClientWatch>(req);
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream",
        [job, body_for, watch, echoed, include_usage, lookup = options.lookup.enabled()](
            size_t, httplib::DataSink& sink) mutable {
          std::string out;
          if (!echoed.empty()) out += sse(body_for(std::exchange(echoed, ""), nullptr, {}));
          Job::Chunk c = next_or_cancel(*job, *watch);
          if (job->cancelled()) return false;  // the client left
          if (!c.text.empty() || !c.logprobs.empty()) out += sse(body_for(c.text, nullptr, c.logprobs));
          if (c.done) {
            JobResult r = job->result();
            if (r.finish == Finish::Error)
              out += sse(error_body(ApiError(500, r.error, "server_error")));
            else
              out += stream_end(body_for("", finish_name(r.finish, false), {}), r, lookup, include_usage);
            out += "data: [DONE]\n\n";
          }
          if (out.empty()) return true;
          if (!sink.write(out.data(), out.size())) {
            job->cancel();
            return false;
          }
          if (c.done) sink.done();
          return true;
        },
        [job](bool) { job->cancel(); });
    return;
  }
  ClientWatch watch(req);
  std::string text = echoed;
  std::vector<TokenLogprob> logprobs;
  for (;;) {
    Job::Chunk c = next_or_cancel(*job, watch);
    text += c.text;
    logprobs.insert(logprobs.end(), c.logprobs.begin(), c.logprobs.end());
    if (c.done) break;
  }
  JobResult r = job->result();
  if (r.finish == Finish::Error) throw ApiError(500, r.error, "server_error");
  if (r.finish == Finish::Cancelled) throw client_closed();
  json body = body_for(text, finish_name(r.finish, false), logprobs);
  add_usage(body, r, options.lookup.enabled());
  res.set_content(body.dump(), "application/json");
}

// ------------------------------------------------------------------ Server

Server::Server(engine::Engine& engine, ServerOptions options)
    : impl_(std::make_unique<Impl>(engine, std::move(options))) {}

Server::~Server() { stop(); }

namespace {

bool is_loopback(const sockaddr_storage& a) {
  if (a.ss_family == AF_INET)
    return (ntohl(reinterpret_cast<const sockaddr_in&>(a).sin_addr.s_addr) >> 24) == 127;
  if (a.ss_family != AF_INET6) return false;
  const in6_addr& v6 = reinterpret_cast<const sockaddr_in6&>(a).sin6_addr;
  return IN6_IS_ADDR_LOOPBACK(&v6) || (IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127);
}

// The first of `host`'s addresses this machine can bind (on any port), as
// cpp-httplib chose it.
sockaddr_storage bindable_address(const std::string& host, socklen_t& len) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), nullptr, &hints, &found) != 0 || !found)
    throw Error("cannot listen on " + host + ": cannot resolve it");
  sockaddr_storage chosen{};
  len = 0;
  for (addrinfo* ai = found; ai && len == 0; ai = ai->ai_next) {
    const int fd = ::socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
      std::memcpy(&chosen, ai->ai_addr, ai->ai_addrlen);
      len = ai->ai_addrlen;
    }
    ::close(fd);
  }
  ::freeaddrinfo(found);
  return chosen;
}

}  // namespace

ListeningSocket listen_on(const std::string& host, int port) {
  const std::string where = "cannot listen on " + host + ":" + std::to_string(port);
  socklen_t len = 0;
  sockaddr_storage addr = bindable_address(host, len);
  if (len == 0) throw Error(where + " (not a local address)");
  // The port is bound on that address alone: a port in use there is an
  // error, not a reason to listen on the name's next address.
  if (addr.ss_family == AF_INET6) reinterpret_cast<sockaddr_in6&>(addr).sin6_port = htons(uint16_t(port));
  else reinterpret_cast<sockaddr_in&>(addr).sin_port = htons(uint16_t(port));
  ListeningSocket s;
  s.fd = ::socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s.fd < 0) throw Error(where + ": " + std::strerror(errno));
  const int yes = 1, no = 0;
  ::setsockopt(s.fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  if (addr.ss_family == AF_INET6) ::setsockopt(s.fd, IPPROTO_IPV6, IPV6_V6ONLY, &no, sizeof no);  // "::" takes IPv4 too
  // cpp-httplib would listen with a backlog of 5 (compiled into Debian's
  // library): a burst of clients would overflow it and be reset.
  if (::bind(s.fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(s.fd, SOMAXCONN) != 0) {
    ::close(s.fd);
    throw Error(where + " (in use, or not a local address)");
  }
  socklen_t bound_len = sizeof addr;
  ::getsockname(s.fd, reinterpret_cast<sockaddr*>(&addr), &bound_len);
  s.port = ntohs(addr.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6&>(addr).sin6_port
                                            : reinterpret_cast<sockaddr_in&>(addr).sin_port);
  s.loopback = is_loopback(addr);
  return s;
}

void Server::listen(ListeningSocket socket) {
  impl_->http.serving(socket.fd);
  impl_->gate->run(socket.fd);
}
void Server::stop() {
  // Jobs first: workers waiting on a generation return at once, so that
  // the gate's workers can end.
  impl_->scheduler->stop();
  impl_->http.stopping();
  impl_->gate->stop();
}
const std::string& Server::model_id() const { return impl_->model_id; }
Metrics& Server::metrics() { return impl_->metrics; }

}  // namespace warden::server
