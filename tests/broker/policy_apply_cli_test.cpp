// `warden policy apply` and `warden policy set`, as the real binary: through
// a running `warden broker` (approved and denied with `warden approve`), on
// this process's own terminal when no broker runs (a pty), and refused when
// nobody could approve. A bad file is refused before anything happens.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "broker/audit.h"
#include "broker/client.h"
#include "common/pty.h"
#include "common/test_env.h"

namespace fs = std::filesystem;
using nlohmann::json;
using warden::test::make_temp_dir;
using warden::test::read_until;
using warden::test::read_file;
using warden::test::run_warden;
using warden::test::write_file;

namespace {

const char kDenyWiki[] = "[[rule]]\ncapability = \"net\"\npattern = \"*.wikipedia.org\"\naction = \"deny\"\n";
const char kAllowWiki[] = "[[rule]]\ncapability = \"net\"\npattern = \"*.wikipedia.org\"\naction = \"allow\"\n";

// Runs warden in a new session (no controlling terminal), output to files.
struct Detached {
  pid_t pid = -1;
  std::string out_path, err_path;
  explicit Detached(const std::vector<std::string>& args) {
    std::string dir = make_temp_dir("proc");
    out_path = dir + "/out";
    err_path = dir + "/err";
    const std::string bin = warden::test::warden_binary();
    std::vector<std::string> all{bin};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid = ::fork();
    if (pid == 0) {
      ::setsid();
      int in = ::open("/dev/null", O_RDONLY);
      int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      ::dup2(in, 0), ::dup2(out, 1), ::dup2(err, 2);
      ::execv(bin.c_str(), argv.data());
      _exit(127);
    }
  }
  int wait() {
    int status = 0;
    ::waitpid(pid, &status, 0);
    pid = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  void stop() {
    if (pid <= 0) return;
    ::kill(pid, SIGTERM);
    wait();
  }
  ~Detached() { stop(); }
  std::string out() const { return read_file(out_path); }
  std::string err() const { return read_file(err_path); }
};

struct Scene {
  std::string root = fs::canonical(make_temp_dir("apply")).string();
  std::string ws = root + "/ws";
  std::string policy = root + "/config/policy.toml";
  std::string proposal = root + "/new.toml";
  std::string sock = root + "/sock";
  std::string audit = root + "/audit.db";
  Scene() {
    fs::create_directories(ws);
    write_file(policy, kDenyWiki);
  }
  std::vector<std::string> broker_args() const {
    return {"broker", "--workspace", ws, "--policy", policy, "--audit", audit, "--socket-dir", sock, "--no-tty",
            "--approval-timeout", "60"};
  }
  bool wait_for_socket() const {
    for (int i = 0; i < 300; ++i) {
      if (fs::exists(sock + "/approve.sock")) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
  json wait_pending() const {
    for (int i = 0; i < 600; ++i) {
      auto r = run_warden({"approve", "list", "--json", "--socket", sock + "/approve.sock"});
      json j = json::parse(r.out, nullptr, false);
      if (j.is_object() && j.contains("pending") && !j["pending"].empty()) return j["pending"][0];
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return json();
  }
  std::string audit_json() const { return run_warden({"audit", "show", "--json", "--db", audit}).out; }
};

TEST(PolicyApplyCli, ABadFileIsRefusedWithOneErrorAndNothingChanges) {
  Scene s;
  write_file(s.proposal, "[[rule]]\ncapability = \"net\"\naction = \"sometimes\"\n");
  auto r = run_warden({"policy", "apply", s.proposal, "--policy", s.policy, "--workspace", s.ws, "--socket-dir", s.sock});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "warden policy: error: " + s.proposal + ":3: action must be \"allow\", \"ask\" or \"deny\"\n");
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(read_file(s.policy), kDenyWiki);
  r = run_warden({"policy", "apply", s.root + "/missing.toml", "--policy", s.policy, "--socket-dir", s.sock});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "warden policy: error: " + s.root + "/missing.toml: no such file\n");
  for (const std::vector<std::string>& rule : {std::vector<std::string>{"net", "x.org", "sometimes"},
                                               {"net:x.org", "x.org", "allow"},  // the pattern twice
                                               {"net", "x.org", "allow", "extra"},
                                               {"net:x.org"}}) {
    std::vector<std::string> args{"policy", "set"};
    args.insert(args.end(), rule.begin(), rule.end());
    args.insert(args.end(), {"--policy", s.policy, "--socket-dir", s.sock});
    r = run_warden(args);
    EXPECT_EQ(r.exit_code, 2) << rule[0] << ": " << r.err;
  }
  EXPECT_EQ(read_file(s.policy), kDenyWiki);
}

TEST(PolicyApplyCli, RunningBrokerAppliesAnApprovedDiffAndRefusesADeniedOne) {
  Scene s;
  Detached broker(s.broker_args());
  ASSERT_TRUE(s.wait_for_socket()) << broker.err();

  // Approved: the human saw the exact diff; the file is replaced.
  write_file(s.proposal, kAllowWiki);
  auto apply = std::async(std::launch::async, [&] {
    return run_warden({"policy", "apply", s.proposal, "--policy", s.policy, "--socket-dir", s.sock});
  });
  json p = s.wait_pending();
  ASSERT_FALSE(p.is_null());
  EXPECT_EQ(p["capability"], "config.change");
  EXPECT_EQ(p["target"], s.policy);
  const std::string detail = p["detail"];
  EXPECT_NE(detail.find("-action = \"deny\"\n+action = \"allow\""), std::string::npos) << detail;
  auto show = run_warden({"approve", "show", p["id"].get<std::string>(), "--socket", s.sock + "/approve.sock"});
  EXPECT_NE(show.out.find("effect:  config.change " + s.policy), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("  | +action = \"allow\""), std::string::npos) << show.out;
  EXPECT_EQ(read_file(s.policy), kDenyWiki) << "written before the approval";
  ASSERT_EQ(run_warden({"approve", "approve", p["id"].get<std::string>(), "--socket", s.sock + "/approve.sock"})
                .exit_code,
            0);
  auto r = apply.get();
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("applied: " + s.policy), std::string::npos) << r.out;
  EXPECT_EQ(read_file(s.policy), kAllowWiki);

  // `policy set` puts a rule first; denied, it changes nothing.
  auto set = std::async(std::launch::async, [&] {
    // CAP:PATTERN ACTION, the short form (the long one is net evil.example allow)
    return run_warden({"policy", "set", "net:evil.example", "allow", "--policy", s.policy, "--socket-dir", s.sock});
  });
  p = s.wait_pending();
  ASSERT_FALSE(p.is_null());
  EXPECT_NE(p["detail"].get<std::string>().find("+pattern = \"evil.example\""), std::string::npos) << p.dump();
  ASSERT_EQ(run_warden({"approve", "deny", p["id"].get<std::string>(), "--socket", s.sock + "/approve.sock"})
                .exit_code,
            0);
  r = set.get();
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("not applied: denied by the human on warden approve"), std::string::npos) << r.err;
  EXPECT_EQ(read_file(s.policy), kAllowWiki);

  // An edit behind the broker's back: `policy show` says it is not in force,
  // and the broker audits the drift.
  write_file(s.policy, std::string(kAllowWiki) + "[[rule]]\ncapability = \"exec\"\naction = \"allow\"\nnetwork = true\n");
  auto shown = run_warden({"policy", "show", "--policy", s.policy, "--workspace", s.ws, "--socket-dir", s.sock});
  EXPECT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_NE(shown.out.find("note: this file differs from the policy the running broker has in force"),
            std::string::npos)
      << shown.out;
  write_file(s.policy, kAllowWiki);  // edited back: nothing to note
  shown = run_warden({"policy", "show", "--policy", s.policy, "--workspace", s.ws, "--socket-dir", s.sock});
  EXPECT_EQ(shown.out.find("note:"), std::string::npos) << shown.out;

  // A different file than the broker's is refused.
  r = run_warden({"policy", "apply", s.proposal, "--policy", s.root + "/other.toml", "--socket-dir", s.sock});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("the running broker's policy is " + s.policy), std::string::npos) << r.err;

  broker.stop();
  const std::string audit = s.audit_json();
  EXPECT_NE(audit.find("\"capability\":\"policy.load\""), std::string::npos);
  EXPECT_NE(audit.find("\"capability\":\"policy.apply\""), std::string::npos);
  EXPECT_NE(audit.find("\"capability\":\"policy.drift\""), std::string::npos);
  EXPECT_NE(audit.find(warden::broker::sha256_hex(kAllowWiki)), std::string::npos);
  EXPECT_EQ(run_warden({"audit", "verify", "--db", s.audit}).exit_code, 0);
}

TEST(PolicyApplyCli, WithoutABrokerOrATerminalNothingIsApplied) {
  Scene s;
  write_file(s.proposal, kAllowWiki);
  Detached apply({"policy", "apply", s.proposal, "--policy", s.policy, "--socket-dir", s.sock, "--audit", s.audit});
  EXPECT_EQ(apply.wait(), 1);
  EXPECT_EQ(apply.err(),
            "warden policy: error: no broker is running and there is no terminal here to approve the change on\n");
  EXPECT_EQ(read_file(s.policy), kDenyWiki);
}

TEST(PolicyApplyCli, WithoutABrokerThisTerminalApprovesTheDiff) {
  Scene s;
  write_file(s.proposal, kAllowWiki);
  const std::string bin = warden::test::warden_binary();
  std::vector<std::string> args{bin, "policy", "apply", s.proposal, "--policy", s.policy, "--socket-dir", s.sock,
                                "--audit", s.audit, "--workspace", s.ws};
  const warden::test::PtyChild child = warden::test::spawn_on_pty(args);
  ASSERT_GE(child.pid, 0);
  const int master = child.master;
  std::string seen;
  ASSERT_TRUE(read_until(master, seen, "anything else denies: ")) << seen;
  EXPECT_NE(seen.find("effect:  config.change " + s.policy), std::string::npos) << seen;
  EXPECT_NE(seen.find("  | -action = \"deny\""), std::string::npos) << seen;
  EXPECT_NE(seen.find("  | +action = \"allow\""), std::string::npos) << seen;
  EXPECT_EQ(read_file(s.policy), kDenyWiki);
  ASSERT_EQ(::write(master, "yes\n", 4), 4);
  const int status = warden::test::wait_for_exit(child, seen);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << seen;
  EXPECT_NE(seen.find("applied: " + s.policy), std::string::npos) << seen;
  EXPECT_EQ(read_file(s.policy), kAllowWiki);
  const std::string audit = s.audit_json();
  EXPECT_NE(audit.find("approved by human"), std::string::npos) << audit;
  EXPECT_NE(audit.find("\"capability\":\"policy.apply\""), std::string::npos) << audit;
}

}  // namespace

namespace {

// State given on the command line is protected like the default folders:
// refused inside the workspace (a jailed command could rewrite it), and never
// open to a tool outside it, whatever the policy allows.
TEST(BrokerCli, StatePathsStayOutOfReach) {
  Scene s;
  for (std::string flag : {"--policy", "--audit", "--socket-dir"}) {
    std::vector<std::string> args{"broker", "--workspace", s.ws, "--no-tty", flag, s.ws + "/sub/../state"};
    auto r = run_warden(args);
    EXPECT_EQ(r.exit_code, 1) << flag;
    EXPECT_NE(r.err.find(flag + " " + s.ws + "/sub/../state is inside the workspace " + s.ws), std::string::npos)
        << r.err;
    EXPECT_FALSE(fs::exists(s.ws + "/state")) << flag;
  }
  // Outside the workspace, under a policy that lets tools read everything.
  write_file(s.policy, "[[rule]]\ncapability = \"fs.read\"\npattern = \"/**\"\naction = \"allow\"\n");
  Detached broker(s.broker_args());
  ASSERT_TRUE(s.wait_for_socket()) << broker.err();
  warden::broker::AgentClient agent(s.sock + "/agent.sock");
  for (const std::string& path : {s.policy, s.audit, s.audit + ".head", s.sock + "/approve.sock", s.ws + "/notes"}) {
    warden::broker::EffectRequest r;
    r.capability = warden::broker::Capability::fs_read;
    r.target = path;
    r.context_labels = warden::broker::LabelSet::parse({"user"});
    auto d = agent.request(r);
    EXPECT_EQ(d.allowed(), path == s.ws + "/notes") << path << ": " << d.reason;
  }
}

// `warden run` uses a broker already listening only when it serves the
// run's workspace, and the policy and audit log the run names; otherwise the
// user would believe a policy in force that is not.
TEST(BrokerCli, RunRefusesARunningBrokerThatServesSomethingElse) {
  Scene s;
  Detached broker(s.broker_args());
  ASSERT_TRUE(s.wait_for_socket()) << broker.err();
  const std::string other = s.root + "/other";
  fs::create_directories(other);
  write_file(other + "/policy.toml", kAllowWiki);
  // Port 9 on loopback: nothing answers, so a run that gets past the broker
  // stops at the model instead.
  auto run = [&](const std::string& ws, std::vector<std::string> extra) {
    std::vector<std::string> args{"run", "--workspace", ws, "--socket-dir", s.sock, "--backend", "http://127.0.0.1:9"};
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back("list the files");
    return run_warden(args);
  };
  const std::string fix = "; stop that broker, or give --socket-dir for one of this run's own\n";
  auto r = run(other, {});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("the broker at " + s.sock + "/agent.sock serves the workspace " + s.ws + ", not " + other + fix),
            std::string::npos)
      << r.err;
  r = run(s.ws, {"--policy", other + "/policy.toml"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("uses the policy " + s.policy + ", not --policy " + other + "/policy.toml" + fix),
            std::string::npos)
      << r.err;
  r = run(s.ws, {"--audit", other + "/audit.db"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("writes the audit log " + s.audit + ", not --audit " + other + "/audit.db" + fix),
            std::string::npos)
      << r.err;
  EXPECT_EQ(s.audit_json().find("agent.start"), std::string::npos) << "a refused run reached the broker's log";
  // The same workspace, policy (spelled through a symlink) and log: used.
  fs::create_symlink(s.root + "/config", s.root + "/config-link");
  r = run(s.ws, {"--policy", s.root + "/config-link/policy.toml", "--audit", s.audit});
  EXPECT_EQ(r.err.find("stop that broker"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("error: backend http://127.0.0.1:9/"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("using the broker at " + s.sock + "/agent.sock"), std::string::npos) << r.err;
  EXPECT_NE(s.audit_json().find("agent.start"), std::string::npos);
}

// Paths given relative to where each command ran are compared as the
// files they name: the broker reports its audit log as an absolute path.
TEST(BrokerCli, RunComparesRelativeStatePathsAsTheFilesTheyName) {
  Scene s;
  const fs::path before = fs::current_path();
  fs::current_path(s.root);
  Detached broker({"broker", "--workspace", s.ws, "--policy", s.policy, "--audit", "audit.db", "--socket-dir", s.sock,
                   "--no-tty"});
  ASSERT_TRUE(s.wait_for_socket()) << broker.err();
  fs::create_directories(s.root + "/sub");
  fs::current_path(s.root + "/sub");
  auto run = [&](const std::string& audit) {
    return run_warden({"run", "--workspace", s.ws, "--socket-dir", s.sock, "--backend", "http://127.0.0.1:9",
                       "--audit", audit, "list the files"});
  };
  auto same = run("../audit.db");
  auto other = run("audit.db");
  fs::current_path(before);
  EXPECT_NE(same.err.find("using the broker at"), std::string::npos) << same.err;
  EXPECT_NE(other.err.find("writes the audit log " + s.audit + ", not --audit audit.db"), std::string::npos)
      << other.err;
}

}  // namespace
