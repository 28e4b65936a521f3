// The agent's backend against the real `warden serve` (a tiny random-weight
// model, 256 tokens of context): the server's context-length error reaches
// the agent as a ContextOverflow with its counts, and the agent's answers to
// it (shorten, or end the task saying what to do) work end to end.
#include <gtest/gtest.h>

#include "agent/agent.h"
#include "agent/backend.h"
#include "fake_gate.h"
#include "server/serve_process.h"

using namespace warden::agent;
using nlohmann::json;

namespace {

constexpr long long kContext = 256;

OpenAIBackend backend_for(const warden::test::ServeProcess& serve) {
  OpenAIBackendConfig config;
  config.base_url = "http://127.0.0.1:" + std::to_string(serve.port());
  config.timeout_seconds = 120;
  return OpenAIBackend(config);
}

std::string words(int n) {
  std::string text;
  for (int i = 0; i < n; ++i) text += "word" + std::to_string(i % 10) + " ";
  return text;
}

TEST(AgentBackendServe, AConversationLongerThanTheContextIsAContextOverflowWithItsCounts) {
  warden::test::ServeProcess serve({"-c", std::to_string(kContext)});
  OpenAIBackend backend = backend_for(serve);
  try {
    backend.complete(json::array({{{"role", "user"}, {"content", words(600)}}}), json::array());
    ADD_FAILURE() << "accepted";
  } catch (const ContextOverflow& e) {
    EXPECT_EQ(e.context_tokens, kContext);
    EXPECT_GT(e.prompt_tokens, kContext);
  }
}

// A prompt that fills most of the context leaves the answer the rest: it
// ends with "length", and prompt and completion add up to the context (one
// more: the last token sampled is never evaluated), which is what the
// agent's retry after a cut answer relies on.
TEST(AgentBackendServe, AnAnswerCutAtTheContextsEndSaysSoWithItsCounts) {
  warden::test::ServeProcess serve(
      {"-c", std::to_string(kContext), "--temp", "0"});  // greedy: the same answer each run
  OpenAIBackend backend = backend_for(serve);
  const AssistantTurn turn = backend.complete(json::array({{{"role", "user"}, {"content", words(50)}}}), json::array());
  EXPECT_EQ(turn.finish_reason, "length");
  EXPECT_GT(turn.prompt_tokens, 3 * turn.completion_tokens);
  EXPECT_GE(turn.prompt_tokens + turn.completion_tokens, kContext);
  EXPECT_LE(turn.prompt_tokens + turn.completion_tokens, kContext + 1);
}

// With no tool result to shorten, the agent returns an answer cut at the
// context's end as it is, and says so. (The tools' schemas take some 2750
// of this model's tokens; the task 170 more.)
TEST(AgentBackendServe, TheAgentReportsAnAnswerCutAtTheContextsEnd) {
  warden::test::ServeProcess serve({"-c", "3072", "--temp", "0"});
  OpenAIBackend backend = backend_for(serve);
  EXPECT_EQ(backend.context_size(), 3072);  // from /v1/models, which the agent asks to tell a cut answer
  fakes::FakeGate gate;
  ToolConfig tools;
  tools.workspace = "/w";
  tools.run_sandbox = [](auto&&...) -> warden::sandbox::SandboxResult { throw std::logic_error("no tool may run"); };
  ToolRunner runner(tools, gate);
  Agent agent(backend, runner, gate, AgentConfig{});
  const AgentResult r = agent.run(words(40));
  EXPECT_TRUE(r.cut_off);
  EXPECT_NE(r.answer.find("[warden: the answer was cut off at the model's token limit]"), std::string::npos);
}

TEST(AgentBackendServe, ATaskLongerThanTheContextEndsWithWhatToDo) {
  warden::test::ServeProcess serve({"-c", std::to_string(kContext)});
  OpenAIBackend backend = backend_for(serve);
  fakes::FakeGate gate;
  ToolConfig tools;
  tools.workspace = "/w";
  ToolRunner runner(tools, gate);
  Agent agent(backend, runner, gate, AgentConfig{});
  try {
    agent.run(words(600));
    ADD_FAILURE() << "no error";
  } catch (const warden::Error& e) {
    EXPECT_NE(std::string(e.what()).find("does not fit the model's context ("), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("give the server a larger context (-c)"), std::string::npos) << e.what();
  }
}

// The model is scripted, but every conversation goes to the real server
// first, which refuses it if it does not fit: the agent's shortening meets
// the server's own token counts. Six reads of about 600 tokens each do not
// fit beside the tool schemas' 2750 in 4096; the task still ends with the
// model's answer, each file read once, and the log says what was shortened.
TEST(AgentBackendServe, AToolLoopLongerThanTheContextGoesOnAgainstTheRealServer) {
  class CheckedScript : public ModelBackend {
   public:
    OpenAIBackend& real;
    std::vector<AssistantTurn> turns;
    size_t next = 0;
    explicit CheckedScript(OpenAIBackend& r) : real(r) {}
    AssistantTurn complete(const json& messages, const json& tools) override {
      real.complete(messages, tools);  // throws ContextOverflow when the server refuses it
      return next < turns.size() ? turns[next++] : AssistantTurn{};
    }
    std::string describe() const override { return "checked script"; }
  };
  warden::test::ServeProcess serve({"-c", "4096", "--temp", "0", "-np", "1"});
  OpenAIBackend real = backend_for(serve);
  CheckedScript model(real);
  for (int i = 0; i < 6; ++i) {
    AssistantTurn read;
    read.tool_calls = {ToolCall{"c" + std::to_string(i), "read_file", R"({"path":"notes.txt"})"}};
    model.turns.push_back(read);
  }
  AssistantTurn done;
  done.content = "done";
  model.turns.push_back(done);

  fakes::FakeGate gate;
  ToolConfig tools;
  tools.workspace = "/w";
  int reads = 0;
  tools.run_sandbox = [&reads](auto&&...) {
    ++reads;
    warden::sandbox::SandboxResult r;
    r.exit_code = 0;
    r.out = "1 999\n" + words(150);  // read_file's jail script says the file's lines and bytes first
    return r;
  };
  ToolRunner runner(tools, gate);
  Agent agent(model, runner, gate, AgentConfig{});
  EXPECT_EQ(agent.run("read notes.txt six times").answer, "done");
  EXPECT_EQ(reads, 6);
  size_t shortened = 0;
  for (const auto& e : gate.events) shortened += e.rfind("context.shorten ", 0) == 0;
  EXPECT_GE(shortened, 1u);
}

}  // namespace
