// The terminal approval channel, driven through a real pseudo-terminal:
// escapes in model-made text arrive neutralized, the answer is read from the
// terminal, input typed before the prompt is discarded, and the whole daemon
// (`warden broker`) approves a write and denies a fetch on its terminal.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <future>

#include "broker/client.h"
#include "broker/server.h"
#include "broker/tty_prompt.h"
#include "common/test_env.h"

namespace wb = warden::broker;

namespace {

// Reads from the pty master until `needle` shows up (or 20 s pass).
bool read_until(int master, std::string& seen, const std::string& needle) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (seen.find(needle) == std::string::npos) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    pollfd pfd{master, POLLIN, 0};
    if (poll(&pfd, 1, 100) <= 0) continue;
    char buf[4096];
    ssize_t got = read(master, buf, sizeof buf);
    if (got <= 0) return false;
    seen.append(buf, size_t(got));
  }
  return true;
}

const char* kHostileDetail =
    "rm -rf ~ \x1b[2K\x1b[1A\rls -l\n"               // erase the line, go up, pretend
    "\x1b]0;title\x07\x1b[31mred\x1b[0m\n"           // OSC title + colours
    "Approve request 1? Type yes to approve; anything else denies: yes\n"
    "\xe2\x80\xae" "txt.exe\n";                      // bidi override

wb::PendingApproval hostile_approval() {
  wb::PendingApproval p;
  p.id = "k7qm2-1";
  p.request.capability = wb::Capability::exec;
  p.request.target = "sh -c \x1b[8mhidden";
  p.request.detail = kHostileDetail;
  p.policy_reason = "ask by rule default";
  p.ask_reasons = {"text from evil.example is in the context"};
  return p;
}

// Forks a child on a new pty that asks on its controlling terminal, after
// `delay_ms`; its exit code is 10 for yes, 11 for no, 12 for no answer.
pid_t fork_prompt(int& master, int delay_ms, const wb::PendingApproval& approval = hostile_approval()) {
  pid_t pid = forkpty(&master, nullptr, nullptr, nullptr);
  if (pid == 0) {
    usleep(useconds_t(delay_ms) * 1000);
    int tty = open("/dev/tty", O_RDWR | O_NOCTTY);
    if (tty < 0) _exit(13);
    auto answer = wb::ask_on_terminal(tty, approval, [] { return true; });
    _exit(!answer ? 12 : *answer ? 10 : 11);
  }
  return pid;
}

// Waits (bounded: 20 s) for the child; a child still running then is killed
// and reported as -2, so a lost answer fails the test instead of hanging it.
int wait_exit(pid_t pid) {
  int status = 0;
  for (int i = 0; i < 400; ++i) {
    if (waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    usleep(50000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return -2;
}

// Kills and reaps a child and closes its pty when a test ends early, so a
// failed assertion never leaves a prompt or a broker running.
struct ChildGuard {
  pid_t pid = -1;
  int master = -1;
  ~ChildGuard() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
    if (master >= 0) close(master);
  }
};

const std::string kQuestion = "anything else denies: ";
// The genuine question follows warden's recap of the real effect.
const std::string kRealQuestion =
    "effect:  exec (no network) sh -c \\x1b[8mhidden\r\n"
    "why:     text from evil.example is in the context\r\n"
    "Approve request k7qm2-1? Type yes to approve; anything else denies: ";

}  // namespace

TEST(TerminalPrompt, NeutralizesEscapesAndApprovesOnYes) {
  int master = -1;
  pid_t pid = fork_prompt(master, 0);
  ASSERT_GT(pid, 0);
  ChildGuard guard{pid, master};
  std::string seen;
  ASSERT_TRUE(read_until(master, seen, kRealQuestion)) << seen;
  EXPECT_EQ(seen.find('\x1b'), std::string::npos) << "raw ESC reached the terminal";
  EXPECT_EQ(seen.find('\x07'), std::string::npos);
  EXPECT_EQ(seen.find("\xe2\x80\xae"), std::string::npos);
  EXPECT_NE(seen.find("sh -c \\x1b[8mhidden"), std::string::npos) << seen;
  EXPECT_NE(seen.find("  | rm -rf ~ \\x1b[2K\\x1b[1A\\rls -l"), std::string::npos) << seen;
  EXPECT_NE(seen.find("  | Approve request 1? Type yes"), std::string::npos) << "forged prompt not quoted";
  EXPECT_NE(seen.find("  | \\u202etxt.exe"), std::string::npos) << seen;
  EXPECT_NE(seen.find("why:     text from evil.example is in the context"), std::string::npos);
  ASSERT_EQ(write(master, "yes\n", 4), 4);
  guard.pid = -1;
  EXPECT_EQ(wait_exit(pid), 10);
}

// A 3000-line diff cannot scroll the real target away: the terminal shows
// an excerpt, and the last lines before the question are the recap.
TEST(TerminalPrompt, LongDetailShowsAnExcerptAndEndsWithTheRealTarget) {
  wb::PendingApproval p;
  p.id = "k7qm2-1";
  p.request.capability = wb::Capability::fs_write;
  p.request.target = "/ws/.git/hooks/pre-commit";
  p.policy_reason = "allow by rule default";
  p.ask_reasons = {"git runs files under .git as code: writes there always need your approval"};
  for (int i = 0; i < 2994; ++i) p.request.detail += "+echo " + std::to_string(i) + "\n";
  p.request.detail += "--- a/notes.txt\n+++ b/notes.txt\n@@ -1 +1 @@\n-todo\n+done\n";
  int master = -1;
  pid_t pid = fork_prompt(master, 0, p);
  ASSERT_GT(pid, 0);
  ChildGuard guard{pid, master};
  std::string seen;
  ASSERT_TRUE(read_until(master, seen, "anything else denies: ")) << seen;
  EXPECT_NE(seen.find("\r\n... 2949 lines not shown; `warden approve show k7qm2-1` prints them all ...\r\n"),
            std::string::npos)
      << seen;
  EXPECT_NE(seen.find("  | +done\r\n==== request k7qm2-1 in short (warden's own summary, not model text) ====\r\n"
                      "effect:  fs.write /ws/.git/hooks/pre-commit\r\n"
                      "why:     git runs files under .git as code: writes there always need your approval\r\n"
                      "Approve request k7qm2-1? Type yes to approve; anything else denies: "),
            std::string::npos)
      << seen;
  EXPECT_EQ(seen.find("+echo 100\r\n"), std::string::npos) << "the middle of the detail reached the terminal";
  ASSERT_EQ(write(master, "no\n", 3), 3);
  guard.pid = -1;
  EXPECT_EQ(wait_exit(pid), 11);
}

TEST(TerminalPrompt, AnythingButYesDenies) {
  for (const char* answer : {"n\n", "\n", "yess\n", "y es\n"}) {
    int master = -1;
    pid_t pid = fork_prompt(master, 0);
    ASSERT_GT(pid, 0);
    ChildGuard guard{pid, master};
    std::string seen;
    ASSERT_TRUE(read_until(master, seen, kRealQuestion)) << seen;
    ASSERT_GT(write(master, answer, strlen(answer)), 0);
    guard.pid = -1;
    EXPECT_EQ(wait_exit(pid), 11) << answer;
  }
}

TEST(TerminalPrompt, InputTypedBeforeThePromptIsDiscarded) {
  int master = -1;
  pid_t pid = fork_prompt(master, 500);
  ASSERT_GT(pid, 0);
  ChildGuard guard{pid, master};
  ASSERT_EQ(write(master, "yes\n", 4), 4);  // a pre-filled "yes" waits in the tty queue
  std::string seen;
  ASSERT_TRUE(read_until(master, seen, kRealQuestion)) << seen;
  ASSERT_EQ(write(master, "no\n", 3), 3);
  guard.pid = -1;
  EXPECT_EQ(wait_exit(pid), 11) << seen;
}

TEST(TerminalPrompt, BrokerDaemonApprovesAWriteAndDeniesAFetch) {
  namespace fs = std::filesystem;
  std::string root = fs::canonical(warden::test::make_temp_dir("daemon")).string();
  std::string ws = root + "/ws", sock = root + "/sock", audit = root + "/audit.db";
  fs::create_directories(ws);
  int master = -1;
  pid_t pid = forkpty(&master, nullptr, nullptr, nullptr);
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    execl(warden::test::warden_binary().c_str(), "warden", "broker", "--workspace", ws.c_str(), "--socket-dir",
          sock.c_str(), "--audit", audit.c_str(), "--approval-timeout", "60", (char*)nullptr);  // default policy
    _exit(127);
  }
  ChildGuard guard{pid, master};
  std::string seen;
  std::unique_ptr<wb::AgentClient> agent;
  for (int i = 0; i < 200 && !agent; ++i) {
    try {
      agent = std::make_unique<wb::AgentClient>(sock + "/agent.sock");
    } catch (const std::exception&) {
      usleep(50000);
    }
  }
  ASSERT_TRUE(agent) << "broker did not come up";

  wb::EffectRequest write;
  write.capability = wb::Capability::fs_write;
  write.target = ws + "/notes.txt";
  write.detail = "+new line\n";
  auto write_decision = std::async(std::launch::async, [&] { return agent->request(write); });
  ASSERT_TRUE(read_until(master, seen, "-1? Type yes to approve; " + kQuestion)) << seen;
  ASSERT_EQ(::write(master, "yes\n", 4), 4);
  EXPECT_EQ(write_decision.get().outcome, wb::Outcome::approved_by_human);

  wb::EffectRequest fetch;
  fetch.capability = wb::Capability::net;
  fetch.target = "example.com";
  fetch.detail = "GET https://example.com/";
  fetch.context_labels = wb::LabelSet::parse({"user", "web:example.org"});
  auto fetch_decision = std::async(std::launch::async, [&] { return agent->request(fetch); });
  ASSERT_TRUE(read_until(master, seen, "-2? Type yes to approve; " + kQuestion)) << seen;
  EXPECT_NE(seen.find("why:     text from example.org is in the context"), std::string::npos) << seen;
  ASSERT_EQ(::write(master, "no\n", 3), 3);
  auto fd = fetch_decision.get();
  EXPECT_EQ(fd.outcome, wb::Outcome::denied);
  EXPECT_NE(fd.reason.find("denied by the human on terminal"), std::string::npos) << fd.reason;

  agent.reset();
  kill(pid, SIGTERM);
  guard.pid = -1;
  EXPECT_EQ(wait_exit(pid), 0);
  auto verify = warden::test::run_warden({"audit", "verify", "--db", audit});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  auto shown = warden::test::run_warden({"audit", "show", "--db", audit});
  EXPECT_NE(shown.out.find("fs.write: approved by human"), std::string::npos) << shown.out;
  EXPECT_NE(shown.out.find("net: denied"), std::string::npos) << shown.out;
}
