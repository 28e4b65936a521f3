// llama-server's spellings for `warden serve`: -np N (which CLI11 2.1 cannot
// declare) and -c as the total context divided over explicitly given slots.
#include <gtest/gtest.h>

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
  EXPECT_NE(foreign.err.find("cannot listen on 192.0.2.1:0 (in use, or not a local address)"), std::string::npos)
      << foreign.err;
}

}  // namespace
}  // namespace warden::test
