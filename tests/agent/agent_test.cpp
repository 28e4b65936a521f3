// Unit tests of the agent library with a fake broker gate and a fake sandbox:
// what each tool asks the broker (capability, target, detail, labels), what
// it runs in the sandbox, how results are labelled, and the loop's handling
// of denials, bad arguments and the step limit.
#include <gtest/gtest.h>

#include "agent/agent.h"
#include "agent/backend.h"
#include "agent/html_text.h"
#include "agent/tools.h"
#include "util/error.h"

using namespace warden::agent;
using warden::broker::Capability;
using warden::broker::Decision;
using warden::broker::EffectRequest;
using warden::broker::Outcome;
using nlohmann::json;

namespace {

class FakeGate : public Gate {
 public:
  std::function<bool(const EffectRequest&)> allow = [](const EffectRequest&) { return true; };
  std::vector<EffectRequest> requests;
  std::vector<std::string> events;
  Decision request(const EffectRequest& r) override {
    requests.push_back(r);
    Decision d;
    d.outcome = allow(r) ? Outcome::allowed_by_policy : Outcome::denied;
    d.reason = d.allowed() ? "ok" : "policy says no";
    d.audit_seq = static_cast<int64_t>(requests.size());
    return d;
  }
  void report_result(int64_t, const std::string&) override {}
  void record_event(const std::string& kind, const std::string& detail) override { events.push_back(kind + " " + detail); }
};

struct SandboxCall {
  warden::sandbox::Profile profile;
  std::vector<std::string> argv;
  std::string input;
  warden::sandbox::RunOptions options;
};

struct Fixture {
  FakeGate gate;
  std::vector<SandboxCall> calls;
  std::function<warden::sandbox::SandboxResult(const SandboxCall&)> respond = [](const SandboxCall&) {
    warden::sandbox::SandboxResult r;
    r.exit_code = 0;
    r.out = "file text";
    return r;
  };
  ToolRunner runner;
  static ToolConfig config(Fixture* f) {
    ToolConfig c;
    c.workspace = "/w/proj";
    c.home = "/home/u";
    c.resolve["docs.test"] = "127.0.0.1";
    c.run_sandbox = [f](const warden::sandbox::Profile& p, const std::vector<std::string>& argv, const std::string& in,
                        const warden::sandbox::RunOptions& o) {
      f->calls.push_back({p, argv, in, o});
      return f->respond(f->calls.back());
    };
    return c;
  }
  Fixture() : runner(config(this), gate) {}
  ToolOutcome call(const std::string& name, const json& args, warden::broker::LabelSet ctx = {}) {
    return runner.execute(ToolCall{"id1", name, args.dump()}, ctx);
  }
};

warden::broker::LabelSet user_only() { return {warden::broker::Label{warden::broker::Source::user, ""}}; }

TEST(AgentTools, ReadFileAsksFsReadRunsReadOnlyAndLabelsWithTheFile) {
  Fixture f;
  ToolOutcome out = f.call("read_file", {{"path", "src/a.txt"}}, user_only());
  ASSERT_EQ(f.gate.requests.size(), 1u);
  EXPECT_EQ(f.gate.requests[0].capability, Capability::fs_read);
  EXPECT_EQ(f.gate.requests[0].target, "/w/proj/src/a.txt");
  ASSERT_EQ(f.calls.size(), 1u);
  EXPECT_FALSE(f.calls[0].profile.workspace_writable);
  EXPECT_FALSE(f.calls[0].profile.network);
  EXPECT_EQ(f.calls[0].argv.back(), "/workspace/src/a.txt");
  EXPECT_EQ(out.text, "file text");
  EXPECT_EQ(out.labels.to_strings(), std::vector<std::string>{"workspace:/w/proj/src/a.txt"});
}

TEST(AgentTools, PathsOutsideTheWorkspaceAreAskedAboutButNeverRun) {
  Fixture f;  // even a broker that allows everything cannot make a tool reach outside
  for (const char* p : {"~/.ssh/id_ed25519", "/etc/shadow", "../other/x", "a/../../x"}) {
    ToolOutcome out = f.call("read_file", {{"path", p}});
    EXPECT_NE(out.text.find("outside"), std::string::npos) << p << ": " << out.text;
  }
  EXPECT_EQ(f.gate.requests[0].target, "/home/u/.ssh/id_ed25519");
  EXPECT_EQ(f.gate.requests[2].target, "/w/other/x");
  EXPECT_EQ(f.gate.requests[3].target, "/w/x");
  EXPECT_TRUE(f.calls.empty());
}

TEST(AgentTools, DenialIsToldToTheModelAndNothingRuns) {
  Fixture f;
  f.gate.allow = [](const EffectRequest&) { return false; };
  ToolOutcome out = f.call("run_command", {{"command", "make"}});
  EXPECT_EQ(out.text, "denied: policy says no");
  EXPECT_TRUE(f.calls.empty());
}

TEST(AgentTools, WriteShowsADiffAndCarriesContextLabelsOnTheArguments) {
  Fixture f;
  f.respond = [](const SandboxCall& c) {
    warden::sandbox::SandboxResult r;
    r.exit_code = 0;
    if (!c.profile.workspace_writable) r.out = "--- a/n.txt\n+++ b/n.txt\n@@ -0,0 +1 @@\n+hi\n";
    return r;
  };
  warden::broker::LabelSet ctx = user_only();
  ctx.add({warden::broker::Source::web, "evil.example"});
  ToolOutcome out = f.call("write_file", {{"path", "n.txt"}, {"content", "hi\n"}}, ctx);
  ASSERT_EQ(f.gate.requests.size(), 1u);
  const auto& r = f.gate.requests[0];
  EXPECT_EQ(r.capability, Capability::fs_write);
  EXPECT_NE(r.detail.find("+hi"), std::string::npos);
  EXPECT_TRUE(r.argument_labels.has_untrusted());
  EXPECT_TRUE(r.context_labels.has_untrusted());
  ASSERT_EQ(f.calls.size(), 2u);  // diff (read-only), then the write
  EXPECT_TRUE(f.calls[1].profile.workspace_writable);
  EXPECT_EQ(f.calls[1].input, "hi\n");
  EXPECT_NE(out.text.find("wrote 3 bytes"), std::string::npos);
}

TEST(AgentTools, EditFileNeedsExactlyOneOccurrence) {
  Fixture f;
  f.respond = [](const SandboxCall&) {
    warden::sandbox::SandboxResult r;
    r.exit_code = 0;
    r.out = "a b a";
    return r;
  };
  EXPECT_NE(f.call("edit_file", {{"path", "x"}, {"old_string", "a"}, {"new_string", "c"}}).text.find("more than once"),
            std::string::npos);
  EXPECT_NE(f.call("edit_file", {{"path", "x"}, {"old_string", "zz"}, {"new_string", "c"}}).text.find("not found"),
            std::string::npos);
  f.calls.clear();
  f.call("edit_file", {{"path", "x"}, {"old_string", "b"}, {"new_string", "B"}});
  ASSERT_EQ(f.calls.size(), 3u);  // read, diff, write
  EXPECT_EQ(f.calls[2].input, "a B a");
}

TEST(AgentTools, RunCommandHasNoNetworkUnlessDomainsAreGrantedOneByOne) {
  Fixture f;
  f.call("run_command", {{"command", "ls"}});
  EXPECT_FALSE(f.calls.back().profile.network);
  EXPECT_FALSE(f.gate.requests.back().network);
  f.call("run_command", {{"command", "pip download x"}, {"allow_domains", {"PyPI.org"}}});
  EXPECT_TRUE(f.calls.back().profile.network);
  EXPECT_EQ(f.calls.back().profile.allowed_domains, std::vector<std::string>{"pypi.org"});
  ASSERT_GE(f.gate.requests.size(), 3u);
  EXPECT_TRUE(f.gate.requests[1].network);
  EXPECT_EQ(f.gate.requests[2].capability, Capability::net);
  EXPECT_EQ(f.gate.requests[2].target, "pypi.org");
}

std::vector<std::string> protected_names(const warden::sandbox::Profile& p) {
  std::vector<std::string> names;
  for (const auto& e : p.readonly_in_workspace) names.push_back(e.name);
  return names;
}

TEST(AgentTools, RunCommandKeepsAutorunFilesReadOnlyUnlessAGitWriteIsApproved) {
  Fixture f;
  f.call("run_command", {{"command", "make"}});
  ASSERT_EQ(f.calls.size(), 1u);
  EXPECT_EQ(protected_names(f.calls.back().profile), (std::vector<std::string>{".git", ".envrc", ".vscode"}));
  EXPECT_EQ(f.gate.requests.size(), 1u);  // only the exec request

  // write_git asks for fs.write WORKSPACE/.git; approved, .git is writable.
  f.call("run_command", {{"command", "git commit -qam wip"}, {"write_git", true}});
  ASSERT_EQ(f.gate.requests.size(), 3u);
  EXPECT_EQ(f.gate.requests[2].capability, Capability::fs_write);
  EXPECT_EQ(f.gate.requests[2].target, "/w/proj/.git");
  EXPECT_NE(f.gate.requests[2].detail.find("$ git commit -qam wip"), std::string::npos);
  ASSERT_EQ(f.calls.size(), 2u);
  EXPECT_EQ(protected_names(f.calls.back().profile), (std::vector<std::string>{".envrc", ".vscode"}));

  // Denied: nothing runs.
  f.gate.allow = [](const EffectRequest& r) { return r.capability != Capability::fs_write; };
  ToolOutcome out = f.call("run_command", {{"command", "git init"}, {"write_git", true}});
  EXPECT_EQ(out.text.rfind("denied: ", 0), 0u) << out.text;
  EXPECT_EQ(f.calls.size(), 2u);
  out = f.call("run_command", {{"command", "git init"}, {"write_git", "yes"}});
  EXPECT_NE(out.text.find("'write_git' must be true or false"), std::string::npos) << out.text;
}

TEST(AgentTools, FetchAsksForTheDomainAndRunsCurlWithOnlyThatDomain) {
  Fixture f;
  f.respond = [](const SandboxCall&) {
    warden::sandbox::SandboxResult r;
    r.exit_code = 0;
    r.out = "<html><body><p>Hello &amp; bye</p><script>evil()</script></body></html>";
    return r;
  };
  ToolOutcome out = f.call("fetch_url", {{"url", "http://Docs.Test:8080/a?b=1"}});
  ASSERT_EQ(f.gate.requests.size(), 1u);
  EXPECT_EQ(f.gate.requests[0].capability, Capability::net);
  EXPECT_EQ(f.gate.requests[0].target, "docs.test");
  EXPECT_EQ(f.gate.requests[0].detail, "GET http://Docs.Test:8080/a?b=1");
  ASSERT_EQ(f.calls.size(), 1u);
  EXPECT_TRUE(f.calls[0].profile.network);
  EXPECT_TRUE(f.calls[0].profile.workspace.empty());
  EXPECT_EQ(f.calls[0].profile.allowed_domains, std::vector<std::string>{"docs.test"});
  EXPECT_EQ(f.calls[0].options.allowed_ports, std::vector<uint16_t>{8080});
  // docs.test is mapped by the user (--resolve): only it may be private.
  EXPECT_EQ(f.calls[0].profile.private_destinations, std::vector<std::string>{"docs.test"});
  ASSERT_TRUE(f.calls[0].options.resolver);
  EXPECT_EQ(f.calls[0].options.resolver("docs.test").at(0).to_string(), "127.0.0.1");
  EXPECT_EQ(out.text, "Hello & bye");
  EXPECT_EQ(out.labels.to_strings(), std::vector<std::string>{"web:docs.test"});
}

TEST(AgentTools, BadArgumentsAreErrorsNotCrashes) {
  Fixture f;
  EXPECT_NE(f.call("read_file", json::object()).text.find("'path' is required"), std::string::npos);
  EXPECT_NE(f.runner.execute(ToolCall{"i", "read_file", "not json"}, {}).text.find("not a JSON object"), std::string::npos);
  EXPECT_NE(f.call("nope", json::object()).text.find("unknown tool"), std::string::npos);
  EXPECT_NE(f.call("fetch_url", {{"url", "file:///etc/passwd"}}).text.find("only http"), std::string::npos);
  EXPECT_TRUE(f.calls.empty());
  EXPECT_EQ(f.gate.events.size(), 4u);  // every attempt is audited
}

TEST(AgentUrl, ParsesAndRefusesTricks) {
  ParsedUrl u = parse_url("https://Example.COM./x");
  EXPECT_EQ(u.host, "example.com");
  EXPECT_EQ(u.port, 443);
  EXPECT_EQ(u.path, "/x");
  EXPECT_THROW(parse_url("http://good.com@evil.com/"), warden::Error);
  EXPECT_THROW(parse_url("http://[::1]/"), warden::Error);
  EXPECT_THROW(parse_url("http://a.com:99999/"), warden::Error);
  EXPECT_THROW(parse_url("http://a.com/\x1b[2J"), warden::Error);
  EXPECT_THROW(parse_url("http://a_b%2e.com/"), warden::Error);
  EXPECT_THROW(parse_url("gopher://a.com/"), warden::Error);
}

TEST(AgentHtmlText, ExtractsReadableText) {
  EXPECT_EQ(html_to_text("<html><head><title>T</title><style>p{}</style></head><body><h1>A</h1><p>b&lt;c&#33;</p>"
                         "<!-- x --><p>d\x1b[31m</p></body></html>"),
            "T\n\nA\n\nb<c!\n\nd[31m");
  EXPECT_EQ(html_to_text("<script>never closed"), "");
  EXPECT_TRUE(looks_like_html("", "  <!DOCTYPE html><p>"));
  EXPECT_FALSE(looks_like_html("", "plain text"));
}

TEST(AgentBackend, ParsesToolCallsAndErrors) {
  AssistantTurn t = parse_chat_completion(
      R"({"choices":[{"message":{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function",)"
      R"("function":{"name":"read_file","arguments":"{\"path\":\"a\"}"}},{"function":{"name":"list_dir","arguments":{"path":"."}}}]}}]})");
  ASSERT_EQ(t.tool_calls.size(), 2u);
  EXPECT_EQ(t.tool_calls[0].id, "c1");
  EXPECT_EQ(t.tool_calls[0].arguments, "{\"path\":\"a\"}");
  EXPECT_EQ(t.tool_calls[1].id, "call_1");
  EXPECT_EQ(t.tool_calls[1].arguments, "{\"path\":\".\"}");
  EXPECT_THROW(parse_chat_completion("{}"), warden::Error);
  EXPECT_THROW(parse_chat_completion("[1]"), warden::Error);
  EXPECT_THROW(parse_chat_completion(R"({"error":{"message":"overloaded"}})"), warden::Error);
}

// A backend's error or arguments nested 200000 levels deep used to overflow
// the stack when dumped into the error message or the call's arguments.
TEST(AgentBackend, RefusesResponsesNestedTooDeep) {
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  for (const std::string& body :
       {R"({"error":)" + deep + "}",
        R"({"choices":[{"message":{"tool_calls":[{"function":{"name":"f","arguments":{"a":)" + deep + "}}}]}}]}"}) {
    try {
      parse_chat_completion(body);
      ADD_FAILURE() << "accepted";
    } catch (const warden::Error& e) {
      EXPECT_NE(std::string(e.what()).find("more than 256 levels deep"), std::string::npos) << e.what();
    }
  }
}

class ScriptBackend : public ModelBackend {
 public:
  std::vector<AssistantTurn> turns;
  std::vector<json> seen;
  AssistantTurn complete(const json& messages, const json&) override {
    seen.push_back(messages);
    if (seen.size() <= turns.size()) return turns[seen.size() - 1];
    return AssistantTurn{"finished", {}};
  }
  std::string describe() const override { return "script"; }
};

TEST(AgentLoop, ResultsJoinTheContextAndTaintLaterRequests) {
  Fixture f;
  ScriptBackend model;
  model.turns = {AssistantTurn{"", {ToolCall{"a", "read_file", R"({"path":"README"})"}}},
                 AssistantTurn{"", {ToolCall{"b", "fetch_url", R"({"url":"http://x.org/"})"}}}};
  f.gate.allow = [](const EffectRequest& r) { return r.capability != Capability::net; };
  AgentConfig config;
  config.system_prompt = "sys";
  Agent agent(model, f.runner, f.gate, config);
  AgentResult r = agent.run("task");
  EXPECT_EQ(r.answer, "finished");
  EXPECT_EQ(r.steps, 3);
  EXPECT_EQ(r.tool_calls, 2);
  EXPECT_EQ(r.denied, 1);
  ASSERT_EQ(f.gate.requests.size(), 2u);
  EXPECT_FALSE(f.gate.requests[0].context_labels.has_untrusted());
  EXPECT_TRUE(f.gate.requests[1].context_labels.has_untrusted());
  const json& last = model.seen.back();
  EXPECT_EQ(last.back()["role"], "tool");
  EXPECT_EQ(last.back()["content"], "denied: policy says no");
}

TEST(AgentLoop, ConversationAndTaintPersistAcrossUserMessages) {
  Fixture f;
  ScriptBackend model;
  model.turns = {AssistantTurn{"", {ToolCall{"a", "read_file", R"({"path":"README"})"}}}, AssistantTurn{"read it", {}},
                 AssistantTurn{"", {ToolCall{"b", "list_dir", "{}"}}}, AssistantTurn{"listed", {}}};
  Agent agent(model, f.runner, f.gate, AgentConfig{});
  EXPECT_EQ(agent.ask("read the readme").answer, "read it");
  EXPECT_EQ(agent.ask("now list").answer, "listed");
  ASSERT_EQ(f.gate.requests.size(), 2u);
  EXPECT_TRUE(f.gate.requests[1].context_labels.has_untrusted());  // the README is still in the context
  const json& last = model.seen.back();
  ASSERT_GE(last.size(), 6u);
  EXPECT_EQ(last[0]["content"], "read the readme");
  EXPECT_EQ(last[3]["content"], "read it");
  EXPECT_EQ(last[4]["content"], "now list");
}

// A hostile model's arguments nested 200000 levels deep: refused before
// any tool sees them, with the reason, and the run goes on.
TEST(AgentLoop, ArgumentsNestedTooDeepAreRefused) {
  Fixture f;
  ScriptBackend model;
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  model.turns = {AssistantTurn{"", {ToolCall{"a", "read_file", R"({"path":)" + deep + "}"}}}};
  Agent agent(model, f.runner, f.gate, AgentConfig{});
  AgentResult r = agent.run("task");
  EXPECT_EQ(r.answer, "finished");
  EXPECT_TRUE(f.gate.requests.empty());
  EXPECT_EQ(model.seen.back().back()["content"], "error: the arguments of read_file nest more than 256 levels deep");
}

TEST(AgentLoop, StopsAtTheStepLimit) {
  Fixture f;
  ScriptBackend model;
  for (int i = 0; i < 10; ++i) model.turns.push_back(AssistantTurn{"", {ToolCall{"a", "list_dir", "{}"}}});
  AgentConfig config;
  config.max_steps = 3;
  Agent agent(model, f.runner, f.gate, config);
  AgentResult r = agent.run("task");
  EXPECT_TRUE(r.step_limit);
  EXPECT_EQ(r.steps, 3);
}

}  // namespace
