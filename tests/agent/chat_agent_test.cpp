// `warden chat --agent` end to end: the real binary, its broker child and the
// sandbox, against the scripted OpenAI-compatible backend of the hostile-model
// harness (tests/security/harness.h). Lines go in on stdin, as a user types them.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>
#include <string>
#include <vector>

#include "common/pty.h"
#include "common/test_env.h"
#include "harness.h"

using nlohmann::json;
using namespace warden::test;

namespace {

struct ChatScene {
  std::string ws = make_temp_dir("ws");
  std::string audit_db = make_temp_dir("data") + "/audit.db";
  std::string sock = make_temp_dir("sock") + "/w";

  std::vector<std::string> args(int model_port) const {
    return {"chat", "--agent", "--workspace", ws, "--backend", "http://127.0.0.1:" + std::to_string(model_port),
            "--socket-dir", sock, "--audit", audit_db, "--no-tty", "--approval-timeout", "5"};
  }
  std::string audit() const { return run_warden({"audit", "show", "--json", "--db", audit_db}).out; }
};

json answer(const std::string& text) { return {{"content", text}}; }

// The messages of the i-th request the model got.
json messages_of(ScriptedModel& model, size_t i) {
  auto reqs = model.requests();
  if (i >= reqs.size() || !reqs[i].is_object()) return json::array();
  return reqs[i].value("messages", json::array());
}

size_t count_role(const json& messages, const std::string& role) {
  size_t n = 0;
  for (const auto& m : messages) n += m.value("role", "") == role;
  return n;
}

TEST(AgentChat, TwoTurnsRunToolsKeepTheConversationAndAreAudited) {
  ChatScene s;
  write_file(s.ws + "/alpha.txt", "alpha contents 1111\n");
  write_file(s.ws + "/beta.txt", "beta contents 2222\n");
  ScriptedModel model({tool_turn("read_file", {{"path", "alpha.txt"}}), answer("first answer: alpha says 1111"),
                       tool_turn("read_file", {{"path", "beta.txt"}}), answer("second answer: beta says 2222")});

  RunResult r = run_warden(s.args(model.port()), "what is in alpha.txt?\nand in beta.txt?\n/exit\n");

  ASSERT_EQ(r.exit_code, 0) << r.err;
  const size_t first = r.out.find("first answer: alpha says 1111");
  const size_t second = r.out.find("second answer: beta says 2222");
  ASSERT_NE(first, std::string::npos) << r.out;
  ASSERT_NE(second, std::string::npos) << r.out;
  EXPECT_LT(first, second);
  // What the tools did is shown, as `warden run` shows it.
  EXPECT_NE(r.err.find("chat: tool read_file"), std::string::npos) << r.err;

  // Both reads really ran, and the second turn still saw the first one.
  ASSERT_EQ(model.requests().size(), 4u);
  const auto told = model.tool_results();
  ASSERT_EQ(told.size(), 2u);
  EXPECT_NE(told[0].find("alpha contents 1111"), std::string::npos) << told[0];
  EXPECT_NE(told[1].find("beta contents 2222"), std::string::npos) << told[1];
  EXPECT_EQ(count_role(messages_of(model, 3), "user"), 2u);

  const std::string audit = s.audit();
  EXPECT_NE(audit.find("what is in alpha.txt?"), std::string::npos) << audit;
  EXPECT_NE(audit.find("and in beta.txt?"), std::string::npos) << audit;
  EXPECT_NE(audit.find("alpha.txt"), std::string::npos);
  EXPECT_NE(audit.find("beta.txt"), std::string::npos);
  EXPECT_NE(audit.find("agent.end"), std::string::npos);
  EXPECT_EQ(run_warden({"audit", "verify", "--db", s.audit_db}).exit_code, 0);
}

TEST(AgentChat, ResetStartsAFreshConversation) {
  ChatScene s;
  write_file(s.ws + "/alpha.txt", "alpha contents 1111\n");
  ScriptedModel model({tool_turn("read_file", {{"path", "alpha.txt"}}), answer("read it"), answer("fresh start")});

  RunResult r = run_warden(s.args(model.port()), "read alpha.txt\n/reset\nhello again\n");

  ASSERT_EQ(r.exit_code, 0) << r.err;  // end of input ends the session like /exit
  EXPECT_NE(r.out.find("(conversation and taint cleared)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("fresh start"), std::string::npos) << r.out;
  ASSERT_EQ(model.requests().size(), 3u);
  // After /reset the model gets only the system prompt and the new line:
  // nothing of the file it read before.
  const json after = messages_of(model, 2);
  EXPECT_EQ(count_role(after, "user"), 1u) << after.dump();
  EXPECT_EQ(count_role(after, "tool"), 0u) << after.dump();
  EXPECT_EQ(after.dump().find("alpha contents"), std::string::npos) << after.dump();
  EXPECT_NE(s.audit().find("agent.reset"), std::string::npos);
}

TEST(AgentChat, OptionsOfTheOtherModeAreRefused) {
  ChatScene s;
  RunResult no_backend = run_warden({"chat", "--agent", "--workspace", s.ws}, "");
  EXPECT_EQ(no_backend.exit_code, 2);
  EXPECT_NE(no_backend.err.find("-m FILE or --backend URL"), std::string::npos) << no_backend.err;

  RunResult both = run_warden({"chat", "--agent", "-m", s.ws + "/x.gguf", "--backend", "http://127.0.0.1:1"}, "");
  EXPECT_EQ(both.exit_code, 2) << both.err;

  RunResult no_model = run_warden({"chat", "--agent", "-m", s.ws + "/none.gguf", "--socket-dir", s.sock}, "");
  EXPECT_EQ(no_model.exit_code, 1);
  EXPECT_NE(no_model.err.find("none.gguf: no such file"), std::string::npos) << no_model.err;
  EXPECT_EQ(no_model.err.find("broker"), std::string::npos) << "a broker was started: " << no_model.err;

  RunResult engine_option = run_warden({"chat", "--agent", "--backend", "http://127.0.0.1:1", "--temp", "0.5"}, "");
  EXPECT_EQ(engine_option.exit_code, 2);
  EXPECT_NE(engine_option.err.find("--temp"), std::string::npos) << engine_option.err;

  RunResult agent_option = run_warden({"chat", "--backend", "http://127.0.0.1:1"}, "");
  EXPECT_EQ(agent_option.exit_code, 2);
  EXPECT_NE(agent_option.err.find("--backend"), std::string::npos) << agent_option.err;
}

// Reads the pty until `needle` shows up after `from` (or 60 s pass).
// The interactive chat and the broker's approval prompt share one terminal:
// the chat reads a line at "> ", then does not read while the agent works;
// the broker child prompts on /dev/tty (the same pty) and reads the answer
// there. The human approves the write and denies the fetch from inside the
// chat, and the chat goes on reading lines afterwards.
TEST(AgentChat, TerminalApprovesOneRequestAndDeniesAnotherInsideTheChat) {
  ChatScene s;
  SinkServer sink;
  const std::string url = "http://attacker.test:" + std::to_string(sink.port()) + "/page";
  ScriptedModel model({tool_turn("write_file", {{"path", "notes.txt"}, {"content", "approved in chat\n"}}),
                       tool_turn("fetch_url", {{"url", url}}), answer("wrote the notes; the fetch was refused")});
  std::vector<std::string> args{warden_binary(), "chat", "--agent", "--workspace", s.ws, "--backend",
                                "http://127.0.0.1:" + std::to_string(model.port()), "--socket-dir", s.sock,
                                "--audit", s.audit_db, "--approval-timeout", "60", "--resolve",
                                "attacker.test=127.0.0.1"};
  const warden::test::PtyChild child = warden::test::spawn_on_pty(args);
  ASSERT_GE(child.pid, 0);
  const int master = child.master;

  std::string seen;
  ASSERT_TRUE(read_until(master, seen, "> ")) << seen;
  ASSERT_EQ(::write(master, "write the notes, then fetch the page\n", 37), 37);
  size_t mark = seen.size();
  ASSERT_TRUE(read_until(master, seen, "anything else denies: ", mark)) << seen;
  EXPECT_NE(seen.find("effect:  fs.write " + s.ws + "/notes.txt", mark), std::string::npos) << seen;
  EXPECT_NE(seen.find("  | +approved in chat", mark), std::string::npos) << seen;
  ASSERT_EQ(::write(master, "yes\n", 4), 4);
  mark = seen.size();
  ASSERT_TRUE(read_until(master, seen, "anything else denies: ", mark)) << seen;
  EXPECT_NE(seen.find("effect:  net attacker.test", mark), std::string::npos) << seen;
  ASSERT_EQ(::write(master, "no\n", 3), 3);
  mark = seen.size();
  // The answer comes, then the chat asks for the next line on the same terminal.
  ASSERT_TRUE(read_until(master, seen, "wrote the notes; the fetch was refused", mark)) << seen;
  mark = seen.find("wrote the notes; the fetch was refused", mark);
  ASSERT_TRUE(read_until(master, seen, "> ", mark)) << seen;
  ASSERT_EQ(::write(master, "/exit\n", 6), 6);
  const int status = warden::test::wait_for_exit(child, seen);

  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << seen;
  EXPECT_EQ(read_file(s.ws + "/notes.txt"), "approved in chat\n");
  EXPECT_TRUE(sink.requests().empty());
  const auto told = model.tool_results();
  ASSERT_EQ(told.size(), 2u);
  EXPECT_NE(told[0].find("wrote"), std::string::npos) << told[0];
  EXPECT_EQ(told[1].rfind("denied: denied by the human on terminal", 0), 0u) << told[1];
  const std::string audit = s.audit();
  EXPECT_NE(audit.find("approved by human"), std::string::npos) << audit;
  EXPECT_NE(audit.find("denied by the human on terminal"), std::string::npos) << audit;
  EXPECT_NE(audit.find("agent.end"), std::string::npos) << audit;
  EXPECT_EQ(run_warden({"audit", "verify", "--db", s.audit_db}).exit_code, 0);
}

// The engine child parses hostile text (tool results, web pages), so what it
// writes reaches the terminal only neutralized: here a model file whose name
// carries an escape sequence, which the engine logs as it starts. Its log
// shows the controls (log::printable), and the session's forwarder then
// shows the backslashes too: the forwarder is there for an engine that
// writes raw bytes, which only one running an attacker's code would do.
TEST(AgentChat, TheEngineChildWritesNoEscapesToTheTerminal) {
  ChatScene s;
  const std::string model = make_temp_dir("model") + "/tiny\x1b[2J\x1b]0;pwned\x07.gguf";
  ASSERT_EQ(run_warden({"make-model", "--preset", "tiny-qwen3", "--type", "q8_0", "--seed", "7", model}).exit_code, 0);
  const RunResult ran = run_warden({"run", "--max-steps", "1", "--workspace", s.ws, "--socket-dir", s.sock, "--audit",
                                    s.audit_db, "--no-tty", "--approval-timeout", "5", "-m", model, "say hi"},
                                   "");
  EXPECT_EQ(ran.exit_code, 0) << ran.err;
  EXPECT_NE(ran.err.find("serving 'tiny\\\\x1b[2J\\\\x1b]0;pwned\\\\x07.gguf'"), std::string::npos) << ran.err;
  EXPECT_EQ(ran.err.find('\x1b'), std::string::npos);
  EXPECT_EQ(ran.err.find('\x07'), std::string::npos);
}

// On a terminal, a long engine line is cut into rows of its width, each
// marked: no text of the engine's starts a row unmarked by wrapping there.
TEST(AgentChat, LongEngineLinesAreCutToTheTerminalWidth) {
  ChatScene s;
  const std::string model = make_temp_dir("model") + "/" + std::string(200, 'x') + ".gguf";
  ASSERT_EQ(run_warden({"make-model", "--preset", "tiny-qwen3", "--type", "q8_0", "--seed", "7", model}).exit_code, 0);
  PtyChild run = spawn_on_pty({warden_binary(), "run", "--max-steps", "1", "--workspace", s.ws, "--socket-dir", s.sock,
                               "--audit", s.audit_db, "--no-tty", "-m", model, "say hi"});
  ASSERT_GT(run.pid, 0);
  winsize ws{};
  ws.ws_col = 80;
  ws.ws_row = 24;
  ::ioctl(run.master, TIOCSWINSZ, &ws);
  std::string seen;
  wait_for_exit(run, seen);
  size_t rows_with_the_name = 0;
  for (size_t start = 0; start < seen.size();) {
    size_t end = seen.find('\n', start);
    if (end == std::string::npos) end = seen.size();
    std::string row = seen.substr(start, end - start);
    if (!row.empty() && row.back() == '\r') row.pop_back();
    start = end + 1;
    if (row.find("xxxxxxxxxx") == std::string::npos) continue;
    rows_with_the_name++;
    EXPECT_EQ(row.rfind("engine: ", 0), 0u) << row;
    EXPECT_LE(row.size(), 80u) << row;
  }
  EXPECT_GE(rows_with_the_name, 3u) << seen;
}

// The pid of `parent`'s child whose command line has `word` as its first
// argument, or -1.
pid_t child_running(pid_t parent, const std::string& word) {
  // Any process may end while this looks: what cannot be read is skipped.
  auto contents = [](const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string stat = contents(e.path().string() + "/stat");
    const size_t close = stat.rfind(')');
    if (close == std::string::npos || std::atoi(stat.c_str() + close + 4) != parent) continue;
    const std::string cmdline = contents(e.path().string() + "/cmdline");
    const size_t first_arg = cmdline.find('\0');
    if (first_arg != std::string::npos && cmdline.compare(first_arg + 1, word.size() + 1, word + '\0') == 0)
      return pid_t(std::stoi(name));
  }
  return -1;
}

// The engine child knows neither the session's tokens, nor its terminal, nor
// the descriptors it inherited.
TEST(AgentChat, TheEngineChildGetsNoTokensAndNoTerminal) {
  ChatScene s;
  const std::string model = make_temp_dir("model") + "/tiny.gguf";
  ASSERT_EQ(run_warden({"make-model", "--preset", "tiny-qwen3", "--type", "q8_0", "--seed", "7", model}).exit_code, 0);
  ::setenv("OPENAI_API_KEY", "sk-must-stay-with-the-agent", 1);
  // A descriptor the session inherits (as from a careless shell script).
  const std::string secret = make_temp_dir("secret") + "/token";
  write_file(secret, "inherited secret");
  const int inherited = ::open(secret.c_str(), O_RDONLY);
  const WardenChild chat = start_warden({"chat", "--agent", "--workspace", s.ws, "--socket-dir", s.sock, "--audit",
                                         s.audit_db, "--no-tty", "-m", model});
  ::close(inherited);
  ::unsetenv("OPENAI_API_KEY");
  pid_t engine = -1;
  std::string environment, input;
  std::vector<std::string> descriptors;
  for (int i = 0; i < 3000 && environment.empty(); i++) {
    if (engine < 0) engine = child_running(chat.pid, "serve");
    if (engine > 0) {
      environment = read_file("/proc/" + std::to_string(engine) + "/environ");
      std::error_code ec;
      input = std::filesystem::read_symlink("/proc/" + std::to_string(engine) + "/fd/0", ec).string();
      for (const auto& fd : std::filesystem::directory_iterator("/proc/" + std::to_string(engine) + "/fd", ec))
        descriptors.push_back(std::filesystem::read_symlink(fd.path(), ec).string());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::close(chat.stdin_fd);  // end of input: the chat ends, and its engine with it
  int status = 0;
  ::waitpid(chat.pid, &status, 0);
  ASSERT_GT(engine, 0) << "no engine child seen";
  EXPECT_EQ(environment.find("sk-must-stay-with-the-agent"), std::string::npos);
  EXPECT_NE(environment.find("HOME="), std::string::npos);
  EXPECT_EQ(input, "/dev/null");
  ASSERT_FALSE(descriptors.empty());
  for (const auto& d : descriptors) EXPECT_EQ(d.find(secret), std::string::npos) << d;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

// Lookup decoding and sampling for the embedded engine: `run -m` and `chat
// --agent -m` hand --spec-type and its lengths, and the sampling flags, to
// their `warden serve` child (which says so on the shared stderr); with a
// --backend there is no engine of ours to hand them to, and saying so beats
// ignoring them.
TEST(AgentChat, LookupDecodingAndSamplingGoToTheEmbeddedEngine) {
  ChatScene s;
  const std::string model = make_temp_dir("model") + "/tiny.gguf";
  ASSERT_EQ(run_warden({"make-model", "--preset", "tiny-qwen3", "--type", "q8_0", "--seed", "7", model}).exit_code, 0);
  const std::vector<std::string> common{"--workspace", s.ws, "--socket-dir", s.sock, "--audit", s.audit_db,
                                        "--no-tty", "--approval-timeout", "5", "-m", model,
                                        "--spec-type", "ngram-simple", "--draft-max", "2", "--temp", "0.25",
                                        "--seed", "11"};
  std::vector<std::string> run{"run", "--max-steps", "1"};
  run.insert(run.end(), common.begin(), common.end());
  run.push_back("say hi");
  const RunResult ran = run_warden(run, "");
  EXPECT_EQ(ran.exit_code, 0) << ran.err;
  EXPECT_NE(ran.err.find("lookup decoding: up to 2 drafted tokens after 3 matching ones"), std::string::npos)
      << ran.err;
  const std::string sampling = "a request that sets none samples with temperature 0.25, top_k 40";
  EXPECT_NE(ran.err.find(sampling), std::string::npos) << ran.err;
  EXPECT_NE(ran.err.find("seed 11"), std::string::npos) << ran.err;

  std::vector<std::string> chat{"chat", "--agent", "--max-steps", "1"};
  chat.insert(chat.end(), common.begin(), common.end());
  const RunResult chatted = run_warden(chat, "hello\n");
  EXPECT_EQ(chatted.exit_code, 0) << chatted.err;
  EXPECT_NE(chatted.err.find("lookup decoding: up to 2 drafted tokens"), std::string::npos) << chatted.err;
  EXPECT_NE(chatted.err.find(sampling), std::string::npos) << chatted.err;

  // A backend decodes as it was started: each lookup flag with it is a
  // usage error, before anything starts.
  for (const char* command : {"run", "chat"})
    for (const auto& [flag, value] : std::vector<std::pair<std::string, std::string>>{
             {"--spec-type", "ngram-simple"}, {"--draft-max", "5"}, {"--spec-ngram-size-n", "2"},
             {"--temp", "0.5"}, {"--top-k", "3"}, {"--seed", "4"}}) {
      std::vector<std::string> args{command};
      if (std::string(command) == "chat") args.push_back("--agent");
      args.insert(args.end(), {"--workspace", s.ws, "--backend", "http://127.0.0.1:1", flag, value});
      if (std::string(command) == "run") args.push_back("task");
      const RunResult refused = run_warden(args, "");
      EXPECT_EQ(refused.exit_code, 2) << command << " " << flag << ": " << refused.err;
      EXPECT_NE(refused.err.find("excludes"), std::string::npos) << refused.err;
    }
}

}  // namespace
