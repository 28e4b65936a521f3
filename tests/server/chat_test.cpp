// `warden chat`: commands, history, and Ctrl-C stopping only the answer.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>

#include "common/pty.h"
#include "common/test_env.h"
#include "server/serve_process.h"

namespace warden::test {
namespace {

TEST(WardenChat, CommandsAndTurns) {
  auto r = run_warden({"chat", "-m", tiny_model(), "-n", "6", "--seed", "1", "-t", "1"},
                      "hello\n/system be brief\nhi again\n/reset\n/unknown\n/exit\nnever read\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("(system prompt set; conversation cleared)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(conversation cleared)"), std::string::npos);
  EXPECT_NE(r.out.find("commands: /reset, /system TEXT, /exit"), std::string::npos);
}

// A conversation that outgrows the context drops its oldest exchanges (and
// says so) instead of refusing every later message; a message that does
// not fit even alone is refused, and the chat goes on. (On the random-weight
// model a 30-word line is about 125 tokens; the context is 512.)
TEST(WardenChat, ALongConversationDropsItsOldestExchanges) {
  std::string line;
  for (int i = 0; i < 30; ++i) line += "word" + std::to_string(i % 10) + " ";
  std::string long_line;
  for (int i = 0; i < 200; ++i) long_line += "word" + std::to_string(i % 10) + " ";
  std::string input;
  for (int i = 0; i < 6; ++i) input += line + "\n";
  input += long_line + "\n" + line + "\n";
  auto r = run_warden({"chat", "-m", tiny_model(), "-c", "512", "-n", "4", "--seed", "1", "-t", "1",
                       "--system", "be brief"},
                      input);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("(the oldest 2 messages were dropped to fit the context of 512 tokens)"), std::string::npos)
      << r.out;
  EXPECT_NE(r.err.find("this message ("), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("does not fit the context of 512 tokens; give a larger -c"), std::string::npos) << r.err;
  // The refused message changed nothing: the history it would have dropped
  // is still there for the next message, which drops one exchange again.
  EXPECT_EQ(r.out.find("(the oldest 4 messages"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("(the oldest 6 messages"), std::string::npos) << r.out;
  // Every message but the one too long was answered: seven answers, each
  // on its own line (the notes are lines that start with "(").
  size_t answers = 0;
  for (size_t start = 0, end; (end = r.out.find('\n', start)) != std::string::npos; start = end + 1)
    answers += r.out[start] != '(';
  EXPECT_EQ(answers, 7u) << r.out;
}

TEST(WardenChat, MissingModelIsAUserError) {
  auto r = run_warden({"chat", "-m", make_temp_dir() + "/none.gguf"}, "");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("warden chat: error:"), std::string::npos) << r.err;
}

// Reads from fd until `needle` appears in `seen` or the deadline passes.
bool read_pipe_until(int fd, std::string& seen, const std::string& needle, int seconds) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (seen.find(needle) == std::string::npos) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 200) <= 0) continue;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) return false;
    seen.append(buf, size_t(n));
  }
  return true;
}

TEST(WardenChat, CtrlCStopsTheAnswerNotTheProgram) {
  int in[2], out[2];
  ASSERT_EQ(pipe(in), 0);
  ASSERT_EQ(pipe(out), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    dup2(in[0], STDIN_FILENO);
    dup2(out[1], STDOUT_FILENO);
    close(in[0]); close(in[1]); close(out[0]); close(out[1]);
    // An answer that only the context (4096 tokens) would end: long enough
    // to interrupt.
    execl(warden_binary().c_str(), "warden", "chat", "-m", tiny_model().c_str(), "-t", "1", "--seed", "5",
          "--temp", "1", (char*)nullptr);
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  auto say = [&](const std::string& s) { ASSERT_EQ(write(in[1], s.data(), s.size()), ssize_t(s.size())); };
  std::string seen;
  say("tell me everything\n");
  // Some of the answer is out: generation is running. Interrupt it.
  ASSERT_TRUE(read_pipe_until(out[0], seen, " ", 60)) << seen;
  kill(pid, SIGINT);
  ASSERT_TRUE(read_pipe_until(out[0], seen, "[stopped]\n", 60)) << seen;
  // Still alive and taking commands.
  say("/reset\n");
  ASSERT_TRUE(read_pipe_until(out[0], seen, "(conversation cleared)", 30)) << seen;
  say("/exit\n");
  close(in[1]);
  int status = 0;
  waitpid(pid, &status, 0);
  close(out[0]);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

// Ctrl-C at the prompt, on a terminal, drops the line being typed, not the
// chat: the interrupted read used to look like the end of input.
TEST(WardenChat, CtrlCAtThePromptDropsTheLine) {
  PtyChild chat = spawn_on_pty({warden_binary(), "chat", "-m", tiny_model(), "-t", "1", "-n", "4"});
  ASSERT_GE(chat.pid, 0);
  std::string seen;
  ASSERT_TRUE(read_until(chat.master, seen, "> ")) << seen;
  const size_t typed = seen.size();
  ASSERT_EQ(write(chat.master, "abc", 3), 3);
  ASSERT_TRUE(read_until(chat.master, seen, "abc", typed)) << seen;
  ASSERT_EQ(write(chat.master, "\x03", 1), 1);  // the terminal sends SIGINT
  ASSERT_TRUE(read_until(chat.master, seen, "> ", typed)) << seen;
  const size_t after = seen.size();
  ASSERT_EQ(write(chat.master, "/reset\n", 7), 7);
  EXPECT_TRUE(read_until(chat.master, seen, "(conversation cleared)", after)) << seen;
  ASSERT_EQ(write(chat.master, "/exit\n", 6), 6);
  const int status = wait_for_exit(chat, seen);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << seen;
}

}  // namespace
}  // namespace warden::test
