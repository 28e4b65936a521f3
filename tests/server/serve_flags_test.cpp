// `warden serve`'s flags: llama-server's spellings (-np N, which CLI11 2.1
// cannot declare, and -c as the total context divided over explicitly given
// slots), and where and how it listens.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "common/test_env.h"
#include "server/http_client.h"
#include "server/serve_args.h"
#include "server/serve_process.h"
#include "util/error.h"

namespace warden::test {
namespace {

using server::parallel_from_llama_flags;
using server::slot_context;
using server::SlotContext;

TEST(ServeFlags, NpGivesTheSlotCount) {
  EXPECT_EQ(parallel_from_llama_flags({"-np", "3"}), 3);
  EXPECT_EQ(parallel_from_llama_flags({"-np=8"}), 8);
  EXPECT_EQ(parallel_from_llama_flags({}), std::nullopt);
  EXPECT_EQ(parallel_from_llama_flags({"-np", "2", "-np", "5"}), 5);  // the last wins, as in CLI11
}

TEST(ServeFlags, AnythingElseLeftOverIsAUsageError) {
  EXPECT_THROW(parallel_from_llama_flags({"-np"}), UsageError);
  EXPECT_THROW(parallel_from_llama_flags({"-np", "0"}), UsageError);
  EXPECT_THROW(parallel_from_llama_flags({"-np", "257"}), UsageError);
  EXPECT_THROW(parallel_from_llama_flags({"-np", "4x"}), UsageError);
  EXPECT_THROW(parallel_from_llama_flags({"-np="}), UsageError);
  EXPECT_THROW(parallel_from_llama_flags({"--prot", "80"}), UsageError);
  EXPECT_THROW(parallel_from_llama_flags({"stray"}), UsageError);
  EXPECT_THROW(parallel_from_llama_flags({"-np", "2", "-x"}), UsageError);
}

// The figures are what llama-server b9749 reports in /props for the same
// flags on a model trained for 4096 tokens.
TEST(ServeFlags, ContextIsSizedAsLlamaServerSizesIt) {
  auto per_slot = [](int64_t ctx, int slots, bool given) { return slot_context(ctx, 4096, slots, given).per_slot; };
  EXPECT_EQ(per_slot(3000, 3, true), 1024);   // 3000 -> 3072 cells, 1024 each
  EXPECT_EQ(per_slot(1000, 3, true), 512);    // 1024 / 3 = 341 -> 512
  EXPECT_EQ(per_slot(8192, 4, true), 2048);
  EXPECT_EQ(per_slot(3000, 4, false), 3072);  // default slots: each the whole (rounded) total
  EXPECT_EQ(per_slot(0, 4, true), 1024);      // 0: the training context, divided too
  EXPECT_EQ(per_slot(0, 4, false), 4096);
  EXPECT_EQ(per_slot(4096, 1, true), 4096);
  EXPECT_EQ(per_slot(1, 2, true), 256);
  EXPECT_FALSE(slot_context(8192, 4096, 2, true).capped);
  SlotContext capped = slot_context(8192, 4096, 4, false);  // each slot may not exceed training
  EXPECT_EQ(capped.per_slot, 4096);
  EXPECT_TRUE(capped.capped);
  EXPECT_THROW(slot_context(-1, 4096, 4, true), UsageError);
  EXPECT_THROW(slot_context(0, 0, 4, true), UsageError);
}

nlohmann::json model_meta(const ServeProcess& server) {
  auto r = ApiClient(server.port()).get("/v1/models");
  EXPECT_EQ(r.status, 200) << r.body;
  return r.json()["data"][0]["meta"];
}

// --max-queue counts requests that wait for a slot: with none allowed to
// wait, an idle server still takes one (it used to answer 503 to all).
TEST(ServeFlags, AnIdleServerWithNoQueueStillAnswers) {
  ServeProcess server({"--parallel", "1", "--max-queue", "0", "-t", "1"});
  auto r = ApiClient(server.port()).post("/v1/completions", nlohmann::json{{"prompt", "hi"}, {"max_tokens", 2}});
  EXPECT_EQ(r.status, 200) << r.body;
}

TEST(ServeFlags, ServeTakesNpAndDividesTheContext) {
  ServeProcess np({"-np", "3", "-c", "3000", "-t", "1"});
  auto meta = model_meta(np);
  EXPECT_EQ(meta["slots"], 3);
  EXPECT_EQ(meta["n_ctx"], 1024);
  np.stop();

  ServeProcess parallel({"--parallel", "2", "-c", "3000", "-t", "1"});
  meta = model_meta(parallel);
  EXPECT_EQ(meta["slots"], 2);
  EXPECT_EQ(meta["n_ctx"], 1536);
  parallel.stop();

  ServeProcess defaults({"-c", "3000", "-t", "1"});
  meta = model_meta(defaults);
  EXPECT_EQ(meta["slots"], 4);
  EXPECT_EQ(meta["n_ctx"], 3072);
}

TEST(ServeFlags, BadFlagsExitWithUsageErrors) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"serve", "-m", tiny_model(), "-np"},
           {"serve", "-m", tiny_model(), "-np", "two"},
           {"serve", "-m", tiny_model(), "-np", "2", "--parallel", "2"},
           {"serve", "-m", tiny_model(), "--no-such-flag"},
           {"serve", "-m", tiny_model(), "-c", "-5", "-np", "4"}}) {
    auto r = run_warden(args);
    EXPECT_EQ(r.exit_code, 2) << args.back() << ": " << r.err;
    EXPECT_NE(r.err.find("warden serve: "), std::string::npos) << r.err;
  }
}

// The server makes its socket before it confines itself (no /etc/hosts,
// no new sockets then); the address printed is the one given.
TEST(ServeFlags, HostNamesAreLookedUpBeforeTheServerConfinesItself) {
  ServeProcess by_name({"--host", "localhost", "-t", "1"});
  EXPECT_EQ(ApiClient(by_name.port()).get("/health").status, 200);
  by_name.stop();

  auto unknown = run_warden({"serve", "-m", tiny_model(), "--host", "no-such-host.invalid", "--port", "0"});
  EXPECT_EQ(unknown.exit_code, 1) << unknown.err;
  EXPECT_NE(unknown.err.find("cannot listen on no-such-host.invalid: cannot resolve it"), std::string::npos)
      << unknown.err;
  auto foreign = run_warden({"serve", "-m", tiny_model(), "--host", "192.0.2.1", "--port", "0"});
  EXPECT_EQ(foreign.exit_code, 1) << foreign.err;
  EXPECT_NE(foreign.err.find("cannot listen on 192.0.2.1:0 (not a local address)"), std::string::npos)
      << foreign.err;
}

// A port in use on the name's address is an error, not a reason to listen
// on the name's next address (localhost has two on many machines).
TEST(ServeFlags, APortInUseIsAnErrorOnEveryAddressOfTheName) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  ASSERT_EQ(::getaddrinfo("localhost", nullptr, &hints, &found), 0);
  const int held = ::socket(found->ai_family, SOCK_STREAM, 0);
  ASSERT_EQ(::bind(held, found->ai_addr, found->ai_addrlen), 0);  // port 0: any
  ::freeaddrinfo(found);
  ASSERT_EQ(::listen(held, 1), 0);
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(held, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const int port = ntohs(addr.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6&>(addr).sin6_port
                                                    : reinterpret_cast<sockaddr_in&>(addr).sin_port);
  auto r = run_warden({"serve", "-m", tiny_model(), "--host", "localhost", "--port", std::to_string(port)});
  ::close(held);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("(in use, or not a local address)"), std::string::npos) << r.err;
}

// The warning about other machines follows the address bound, not its
// spelling: the stderr of a server started on `host` until it listens.
std::string stderr_until_listening(const std::string& host) {
  const std::string err_file = make_temp_dir("serve") + "/stderr";
  int out[2];
  if (::pipe(out) != 0) return "";
  const std::string binary = warden_binary();
  std::vector<std::string> args{binary, "serve", "-m", tiny_model(), "--port", "0", "-t", "1", "--host", host};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    const int err = ::open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(out[1], 1);
    ::dup2(err, 2);
    ::execv(binary.c_str(), argv.data());
    _exit(127);
  }
  ::close(out[1]);
  char c;
  std::string line;
  while (::read(out[0], &c, 1) == 1 && c != '\n') line += c;
  ::close(out[0]);
  ::kill(pid, SIGTERM);
  ::waitpid(pid, nullptr, 0);
  return line.rfind("listening on", 0) == 0 ? read_file(err_file) : "did not listen: " + read_file(err_file);
}

TEST(ServeFlags, OnlyANonLoopbackAddressWarnsThatOtherMachinesMayReachIt) {
  const std::string warning = "other machines may reach this server";
  for (const char* host : {"localhost", "127.0.0.1"}) {
    const std::string err = stderr_until_listening(host);
    EXPECT_EQ(err.find("did not listen"), std::string::npos) << err;
    EXPECT_EQ(err.find(warning), std::string::npos) << host << ": " << err;
  }
  const std::string any = stderr_until_listening("0.0.0.0");
  EXPECT_NE(any.find(warning), std::string::npos) << any;
}

// The sampling flags set what a request that names no sampling field gets,
// as llama-server's do; a request's own fields win. (The random-weight
// model's texts of 24 tokens differ between seeds at any temperature above
// 0 with overwhelming likelihood.)
TEST(ServeFlags, SamplingFlagsAreWhatARequestDefaultsTo) {
  auto text = [](ApiClient& api, nlohmann::json fields) {
    fields["prompt"] = "the sampling";
    fields["max_tokens"] = 24;
    const HttpReply r = api.post("/v1/completions", fields);
    EXPECT_EQ(r.status, 200) << r.body;
    return r.status == 200 ? r.json()["choices"][0]["text"].get<std::string>() : std::string();
  };
  {
    ServeProcess greedy({"--temp", "0", "-np", "1"});
    ApiClient api(greedy.port());
    EXPECT_EQ(text(api, {{"seed", 1}}), text(api, {{"seed", 2}}));
    EXPECT_NE(text(api, {{"seed", 1}, {"temperature", 1.5}}), text(api, {{"seed", 2}, {"temperature", 1.5}}));
  }
  {
    ServeProcess seeded({"--seed", "5", "-np", "1"});
    ApiClient api(seeded.port());
    const std::string first = text(api, {});
    EXPECT_EQ(first, text(api, {}));
    EXPECT_NE(first, text(api, {{"seed", 6}}));
  }
  for (const char* random : {"", "-1"}) {  // no --seed, or --seed -1: each request a random one
    ServeProcess plain(*random ? std::vector<std::string>{"--seed", random, "-np", "1"}
                               : std::vector<std::string>{"-np", "1"});
    ApiClient api(plain.port());
    EXPECT_NE(text(api, {}), text(api, {})) << random;
  }
}

}  // namespace
}  // namespace warden::test
