// Every attack from issue 3, each asserted to fail, and why.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <thread>

#include "sandbox/cgroup.h"
#include "sandbox/memory_watch.h"
#include "sandbox/sandbox.h"
#include "sandbox/sandbox_test_util.h"
#include "sandbox/test_servers.h"
#include "util/error.h"

namespace warden::sandbox {
namespace {

using namespace test;
namespace fs = std::filesystem;

class JailAttack : public ::testing::Test {
 protected:
  void SetUp() override {
    key_ = plant_secrets();
    ws_ = warden::test::make_temp_dir("ws");
  }
  void expect_no_secret(const SandboxResult& r) {
    EXPECT_EQ(r.out.find(kSecret), std::string::npos) << r.out;
    EXPECT_EQ(r.err.find(kSecret), std::string::npos) << r.err;
  }
  std::string key_, ws_;
};

TEST_F(JailAttack, CannotReadSshKeyOrWardenConfig) {
  auto r = sh(test_profile("default", ws_),
              "cat " + key_ + " " + paths::config_dir() + "/policy.toml " + paths::data_dir() +
                  "/audit.log; cat ~/.ssh/id_ed25519; ls -a ~; echo done");
  expect_no_secret(r);
  EXPECT_NE(r.out.find("done"), std::string::npos);
  EXPECT_NE(r.err.find("No such file"), std::string::npos);
}

TEST_F(JailAttack, HomeAsReadOnlyWorkspaceHasSecretsMasked) {
  auto r = sh(test_profile("readonly", paths::home()),
              "ls -la /workspace/.ssh; cat /workspace/.ssh/id_ed25519 /workspace/.config/warden/policy.toml "
              "/workspace/.local/share/warden/audit.log; echo done");
  expect_no_secret(r);
  EXPECT_NE(r.out.find("done"), std::string::npos);
}

TEST_F(JailAttack, DeniedPathsCannotBeGranted) {
  Profile ro = test_profile("default", ws_);
  ro.readonly_binds = {paths::home() + "/.ssh"};
  EXPECT_THROW(sh(ro, "true"), Error);
  // Also not through a symlink to it.
  fs::create_symlink(paths::home() + "/.ssh", ws_ + "/../ssh-link");
  ro.readonly_binds = {ws_ + "/../ssh-link"};
  EXPECT_THROW(sh(ro, "true"), Error);
  // A writable workspace may not contain a denied path.
  EXPECT_THROW(sh(test_profile("default", paths::home()), "true"), Error);
  EXPECT_THROW(sh(test_profile("default", paths::config_dir()), "true"), Error);
  EXPECT_THROW(sh(test_profile("default", "/"), "true"), Error);
  EXPECT_THROW(sh(test_profile("default", ws_ + "/missing"), "true"), Error);
}

TEST_F(JailAttack, CannotWriteOutsideWorkspace) {
  const std::string outside = warden::test::make_temp_dir("outside");
  auto r = sh(test_profile("default", ws_),
              "echo x > " + outside + "/pwned; echo x > /usr/pwned; echo x > /etc/pwned; echo x > /pwned; "
              "echo x > ~/in-home; echo x > /tmp/in-tmp; echo ok");
  EXPECT_FALSE(fs::exists(outside + "/pwned"));
  EXPECT_NE(r.out.find("ok"), std::string::npos);
  EXPECT_TRUE(fs::is_empty(outside));
  // The private /tmp and $HOME were writable but are gone with the jail.
  EXPECT_TRUE(fs::is_empty(ws_));
}

TEST_F(JailAttack, SymlinkAndHardLinkInWorkspaceDoNotEscape) {
  fs::create_symlink(key_, ws_ + "/key-symlink");
  fs::create_symlink(paths::home(), ws_ + "/home-symlink");
  fs::create_hard_link(key_, ws_ + "/key-hardlink");
  auto r = sh(test_profile("default", ws_),
              "cat key-symlink; cat home-symlink/.ssh/id_ed25519; cat key-hardlink; ls -la; echo x >> key-hardlink; "
              "echo done");
  expect_no_secret(r);
  EXPECT_NE(r.out.find("done"), std::string::npos);
  EXPECT_EQ(warden::test::read_file(key_), kSecret + "\n");  // not modified through the hard link either
}

TEST_F(JailAttack, GitHooksAndConfigInWorkspaceAreMasked) {
  warden::test::write_file(ws_ + "/.git/config", "[core]\n\trepositoryformatversion = 0\n# " + kSecret + "\n");
  warden::test::write_file(ws_ + "/.git/hooks/pre-commit", "#!/bin/sh\necho hook\n");
  auto r = sh(test_profile("default", ws_),
              "cat .git/config; ls .git/hooks; echo evil > .git/hooks/post-checkout; echo x >> .git/config; echo done");
  expect_no_secret(r);
  EXPECT_NE(r.out.find("done"), std::string::npos);
  EXPECT_FALSE(fs::exists(ws_ + "/.git/hooks/post-checkout"));
  EXPECT_EQ(warden::test::read_file(ws_ + "/.git/config").find("x\n"), std::string::npos);
}

TEST_F(JailAttack, ProcShowsOnlyTheJail) {
  const std::string host_pid = std::to_string(::getpid());
  auto r = sh(test_profile("default", ws_),
              "cat /proc/1/root" + key_ + "; ls /proc/" + host_pid + "; cat /proc/" + host_pid +
                  "/environ; ls /proc | grep -c '^[0-9]'; echo done");
  expect_no_secret(r);
  EXPECT_NE(r.out.find("done"), std::string::npos);
  EXPECT_EQ(r.out.find("HOME="), std::string::npos);
  // Only the jail's own few processes are visible.
  std::string count = r.out.substr(0, r.out.find("\ndone"));
  count = count.substr(count.rfind('\n') + 1);
  EXPECT_LT(std::stoi(count), 8) << r.out;
}

// The jail's pid 1 is a copy of bwrap: its command line must not list the
// layout (host paths bound in, the masks, the descriptors).
TEST_F(JailAttack, PidOneDoesNotShowTheLayout) {
  Profile p = test_profile("default", ws_);
  p.readonly_binds.push_back(warden::test::make_temp_dir("extra-ro"));
  auto r = sh(p, "tr '\\0' ' ' < /proc/1/cmdline; echo; ls -l /proc/1/fd/ /proc/self/fd/ | tr '\\n' ' '");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string cmdline = r.out.substr(0, r.out.find('\n'));
  EXPECT_EQ(cmdline.rfind("/usr/bin/bwrap --args ", 0), 0u) << cmdline;
  for (const std::string& hidden : {ws_, p.readonly_binds[0], std::string("--bind"), std::string("--seccomp")})
    EXPECT_EQ(cmdline.find(hidden), std::string::npos) << hidden << " in " << cmdline;
  // The options' descriptor is read and closed by bwrap: only stdio is open
  // in pid 1 (plus bwrap's eventfd) and in the command.
  EXPECT_EQ(r.out.find("memfd"), std::string::npos) << r.out;
}

TEST_F(JailAttack, CapabilitiesDroppedAndNoNewPrivs) {
  auto r = sh(test_profile("default", ws_), "grep -E '^(CapEff|CapPrm|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status");
  EXPECT_NE(r.out.find("CapEff:\t0000000000000000"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("CapPrm:\t0000000000000000"), std::string::npos);
  EXPECT_NE(r.out.find("CapBnd:\t0000000000000000"), std::string::npos);
  EXPECT_NE(r.out.find("NoNewPrivs:\t1"), std::string::npos);
  EXPECT_NE(r.out.find("Seccomp:\t2"), std::string::npos);
}

// Each denied syscall, called directly through ctypes, prints its errno.
TEST_F(JailAttack, DeniedSyscallsFail) {
  const std::string code = R"(
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
def call(name, nr, *args):
    r = libc.syscall(nr, *args)
    print(name, r, ctypes.get_errno())
call("ptrace", 101, 0, 0, 0, 0)
call("mount", 165, b"none", b"/tmp", b"tmpfs", 0, 0)
call("unshare", 272, 0x10000000)
call("setns", 308, 0, 0)
call("clone_newuser", 56, 0x10000000 | 17, 0, 0, 0, 0)
call("clone3", 435, 0, 0)
call("io_uring_setup", 425, 1, 0)
call("bpf", 321, 0, 0, 0)
call("perf_event_open", 298, 0, 0, -1, -1, 0)
call("keyctl", 250, 0, 0)
call("userfaultfd", 323, 0)
call("chroot", 161, b"/tmp")
call("process_vm_readv", 310, 1, 0, 0, 0, 0, 0)
call("init_module", 175, 0, 0, 0)
call("kexec_load", 246, 0, 0, 0, 0)
)";
  auto r = py(test_profile("default", ws_), code);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* name : {"ptrace", "mount", "unshare", "setns", "clone_newuser", "bpf", "perf_event_open",
                           "keyctl", "userfaultfd", "chroot", "process_vm_readv", "init_module", "kexec_load",
                           "io_uring_setup"})
    EXPECT_NE(r.out.find(std::string(name) + " -1 1\n"), std::string::npos) << name << "\n" << r.out;  // EPERM
  EXPECT_NE(r.out.find("clone3 -1 38\n"), std::string::npos) << r.out;  // ENOSYS: libc falls back to clone
}

TEST_F(JailAttack, MountAndUnshareToolsFail) {
  auto r = sh(test_profile("default", ws_),
              "mount -t tmpfs none /tmp && echo MOUNTED; unshare -Ur true && echo UNSHARED; "
              "unshare -n true && echo NETNS; echo done");
  EXPECT_EQ(r.out.find("MOUNTED"), std::string::npos);
  EXPECT_EQ(r.out.find("UNSHARED"), std::string::npos);
  EXPECT_EQ(r.out.find("NETNS"), std::string::npos);
  EXPECT_NE(r.out.find("done"), std::string::npos);
}

TEST_F(JailAttack, TiocstiInjectionRefused) {
  // On a pty of its own, TIOCSTI would work without the filter.
  auto r = py(test_profile("default", ws_), R"(
import os, fcntl, termios
m, s = os.openpty()
try:
    os.setsid()
except OSError:
    pass  # already a session leader (bwrap --new-session)
fcntl.ioctl(s, termios.TIOCSCTTY, 0)  # make it our controlling tty: TIOCSTI's own precondition
try:
    fcntl.ioctl(s, termios.TIOCSTI, b"x")
    print("INJECTED")
except OSError as e:
    print("refused", e.errno)
)");
  EXPECT_NE(r.out.find("refused 1"), std::string::npos) << r.out << r.err;
}

TEST_F(JailAttack, NoSocketsToTheHost) {
  LoopbackServer tcp;
  UdpCounter udp;
  std::unique_ptr<LoopbackServer> abstract(LoopbackServer::abstract_unix("warden-test-" + std::to_string(::getpid())));
  const std::string code = R"(
import socket, sys
port, uport, name = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
for fam, addr in ((socket.AF_INET, ("127.0.0.1", port)), (socket.AF_INET6, ("::1", port))):
    try:
        s = socket.socket(fam); s.settimeout(2); s.connect(addr); print("CONNECTED", addr)
    except OSError as e: print("tcp refused", e.errno)
try:
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.sendto(b"exfil", ("127.0.0.1", uport)); print("udp sent")
except OSError as e: print("udp refused", e.errno)
try:
    a = socket.socket(socket.AF_UNIX); a.connect("\0" + name); print("CONNECTED abstract")
except OSError as e: print("abstract refused", e.errno)
for fam in (socket.AF_NETLINK, socket.AF_PACKET):
    try:
        socket.socket(fam, socket.SOCK_RAW); print("OPENED", fam)
    except OSError as e: print("family refused", e.errno)
try:
    print("RESOLVED", socket.getaddrinfo("example.com", 80))
except OSError as e: print("dns failed")
)";
  for (const char* profile : {"default", "network"}) {
    auto r = run(test_profile(profile, ws_),
                 {"python3", "-c", code, std::to_string(tcp.port()), std::to_string(udp.port()),
                  "warden-test-" + std::to_string(::getpid())},
                 "");
    EXPECT_EQ(r.out.find("CONNECTED"), std::string::npos) << profile << r.out;
    EXPECT_EQ(r.out.find("OPENED"), std::string::npos) << profile << r.out;
    EXPECT_EQ(r.out.find("RESOLVED"), std::string::npos) << profile << r.out;
    EXPECT_NE(r.out.find("abstract refused"), std::string::npos) << profile << r.out << r.err;
    EXPECT_NE(r.out.find("dns failed"), std::string::npos) << profile << r.out << r.err;
  }
  EXPECT_EQ(tcp.connections(), 0);
  EXPECT_EQ(abstract->connections(), 0);
  EXPECT_EQ(udp.datagrams(), 0);
}

class JailNetworkAttack : public JailAttack {
 protected:
  Profile network_profile() {
    Profile p = test_profile("network", ws_);
    p.allowed_domains = {"allowed.test"};
    p.private_destinations = {"allowed.test"};
    return p;
  }
  RunOptions options() {
    RunOptions o;
    o.allowed_ports = {};
    o.resolver = [](const std::string& host) {
      std::vector<IpAddress> out;
      if (host == "allowed.test" || host == "denied.test") out.push_back(*parse_ip_literal("127.0.0.1"));
      return out;
    };
    return o;
  }
};

TEST_F(JailNetworkAttack, UnlistedHostUnreachableThroughOrAroundTheProxy) {
  LoopbackServer denied("DENIED-CONTENT\n");
  const std::string p = std::to_string(denied.port());
  const std::string script =
      "curl -sS -m 5 http://denied.test:" + p + "/; "
      "curl -sS -m 5 -p http://denied.test:" + p + "/; "
      "curl -sS -m 5 http://127.0.0.1:" + p + "/; "
      "curl -sS -m 5 --noproxy '*' http://127.0.0.1:" + p + "/; "
      "wget -q -T 5 -t 1 -O - http://denied.test:" + p + "/; "
      "wget -q -T 5 -t 1 --no-proxy -O - http://127.0.0.1:" + p + "/; "
      "nc -w 3 127.0.0.1 " + p + " </dev/null; "
      "nc -w 3 -X connect -x 127.0.0.1:3128 denied.test " + p + " </dev/null; "
      "bash -c 'echo hi > /dev/tcp/127.0.0.1/" + p + "'; "
      "bash -c 'echo hi > /dev/udp/127.0.0.1/53'; echo done";
  auto r = sh(network_profile(), script, options());
  EXPECT_EQ(r.out.find("DENIED-CONTENT"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("done"), std::string::npos) << r.err;
  EXPECT_EQ(denied.connections(), 0);
  // The proxy logged what it refused, and why.
  ASSERT_FALSE(r.proxy_log.empty());
  for (const auto& e : r.proxy_log) EXPECT_FALSE(e.allowed) << e.to_json();
  bool saw_domain = false, saw_literal = false;
  for (const auto& e : r.proxy_log) {
    saw_domain |= e.host == "denied.test" && e.reason == "domain not in allowlist";
    saw_literal |= e.host == "127.0.0.1" && e.reason.find("IP literal") != std::string::npos;
  }
  EXPECT_TRUE(saw_domain);
  EXPECT_TRUE(saw_literal);
}

TEST_F(JailNetworkAttack, ConnectTunnelCarriesOnlyTlsToTheAllowedName) {
  // A tunnel to an allowed name used for anything else: another CONNECT or
  // plain HTTP for another virtual host, or TLS whose server name is another
  // site (on a shared front end, the SNI picks the site).
  LoopbackServer allowed("allowed\n"), denied("DENIED-CONTENT\n");
  TlsLoopbackServer tls("allowed.test", "TLS-CONTENT\n");
  const std::string code = R"(
import socket, ssl, sys
ap, dp, tp = sys.argv[1], sys.argv[2], sys.argv[3]
def tunnel(port):
    s = socket.create_connection(("127.0.0.1", 3128), timeout=5)
    s.sendall(("CONNECT allowed.test:%s HTTP/1.1\r\n\r\n" % port).encode())
    print(s.recv(1000))
    return s
def drain(s):
    data = b""
    try:
        while True:
            d = s.recv(4096)
            if not d: break
            data += d
    except Exception as e:
        data += repr(e).encode()
    print(data)
s = tunnel(ap)
s.sendall(("CONNECT denied.test:%s HTTP/1.1\r\n\r\nGET http://denied.test:%s/ HTTP/1.1\r\n\r\n" % (dp, dp)).encode())
drain(s)
s = tunnel(ap)
s.sendall(b"GET / HTTP/1.1\r\nHost: denied.test\r\n\r\n")
drain(s)
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
for name in ["evil.test", "allowed.test"]:
    try:
        t = ctx.wrap_socket(tunnel(tp), server_hostname=name)
        t.sendall(b"GET / HTTP/1.0\r\n\r\n")
        print(name, t.recv(1000))
    except Exception as e:
        print(name, "TLS-FAILED", type(e).__name__)
)";
  auto r = run(network_profile(),
               {"python3", "-c", code, std::to_string(allowed.port()), std::to_string(denied.port()),
                std::to_string(tls.port())},
               "", options());
  EXPECT_NE(r.out.find("200 Connection established"), std::string::npos) << r.out << r.err;
  EXPECT_EQ(r.out.find("DENIED-CONTENT"), std::string::npos);
  EXPECT_NE(r.out.find("evil.test TLS-FAILED"), std::string::npos) << r.out << r.err;
  EXPECT_NE(r.out.find("allowed.test b'HTTP/1.0 200 OK"), std::string::npos) << r.out << r.err;
  EXPECT_EQ(denied.connections(), 0);
  // The allowed host was connected to but never sent a byte of either.
  for (const auto& request : allowed.requests()) EXPECT_EQ(request, "");
  size_t refused = 0;
  for (const auto& e : r.proxy_log) refused += !e.allowed;
  EXPECT_EQ(refused, 3u);
}

TEST_F(JailAttack, TlsPrivateKeysAreNotInTheJail) {
  // /etc/ssl comes in for the CA certificates; its private/ folder must not.
  if (::access("/etc/ssl/private", F_OK) != 0) GTEST_SKIP() << "no /etc/ssl/private on this machine";
  // An empty, unreadable folder stands in its place (mode 0, not the host's 710).
  auto r = sh(test_profile("default", ws_), "stat -c 'mode %a' /etc/ssl/private; ls -A /etc/ssl/private; "
                                            "ls /etc/ssl/certs | grep -c . | sed 's/^/certs /'");
  EXPECT_EQ(r.out.rfind("mode 0\n", 0), 0u) << r.out << r.err;
  EXPECT_EQ(r.out.find("certs 0"), std::string::npos) << "the CA certificates are still there: " << r.out;
}

TEST_F(JailAttack, UnixSocketsInTheWorkspaceAreMasked) {
  // A listening socket in the workspace (a database's, an ssh-agent's, or
  // warden's approval socket put there with --socket-dir): a read-only bind
  // would not stop connect(), so the jail sees /dev/null in its place.
  const std::string path = ws_ + "/approve.sock";
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  const std::string code = R"(
import socket
try:
    a = socket.socket(socket.AF_UNIX); a.connect("approve.sock"); print("CONNECTED")
except OSError as e: print("refused", e.errno)
)";
  for (const char* profile : {"default", "readonly"}) {
    auto r = run(test_profile(profile, ws_), {"python3", "-c", code}, "");
    EXPECT_NE(r.out.find("refused"), std::string::npos) << profile << r.out << r.err;
  }
  pollfd p{fd, POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 0), 0);  // nobody knocked
  ::close(fd);
}

TEST_F(JailAttack, ForkBombIsBounded) {
  Profile p = test_profile("default", ws_);
  p.limits.max_processes = 16;
  // Counting children until fork fails shows the bound itself.
  auto count = py(p, R"(
import os, time
n = 0
while n < 1000:
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(3); os._exit(0)
    n += 1
print("forked", n)
)");
  ASSERT_NE(count.out.find("forked "), std::string::npos) << count.out << count.err;
  EXPECT_LT(std::stoi(count.out.substr(count.out.find("forked ") + 7)), 16);
  // The classic bomb: bounded, and gone when the wall clock runs out.
  p.limits.wall_seconds = 2;
  auto bomb = run(p, {"bash", "-c", "b() { b | b & }; b; sleep 10"}, "");
  EXPECT_NE(bomb.killed, KillReason::none);
  EXPECT_LT(bomb.wall_seconds, 10);
}

TEST_F(JailAttack, MemoryBombIsBounded) {
  Profile p = test_profile("default", ws_);
  p.limits.memory_bytes = 128ull << 20;
  auto r = py(p, "x = bytearray(1 << 30)\nx[::4096] = b'\\x01' * len(x[::4096])\nprint('ALLOCATED')");
  EXPECT_EQ(r.out.find("ALLOCATED"), std::string::npos);
  EXPECT_NE(r.exit_code, 0);
  // Killed by the cgroup (memory) or refused by the rlimit (MemoryError).
  EXPECT_TRUE(r.killed == KillReason::memory || r.err.find("MemoryError") != std::string::npos)
      << kill_reason_name(r.killed) << r.err;
}

// Where no memory cgroup can be made, RLIMIT_AS bounds each process, and
// the supervisor's watch bounds them all together.
TEST_F(JailAttack, MemorySpreadOverProcessesIsBoundedWithoutACgroup) {
  RunOptions no_cgroup;
  no_cgroup.memory_cgroup = false;
  Profile p = test_profile("default", ws_);
  p.limits.memory_bytes = 256ull << 20;
  p.limits.wall_seconds = 30;
  // Eight processes of 96 MiB: each under the per-process limit, 768 MiB in
  // all. They make themselves non-dumpable, which must not hide them.
  const std::string hold = R"(import ctypes, os, sys, time
mib = int(sys.argv[1])
for _ in range(int(sys.argv[2])):
    if os.fork() == 0:
        ctypes.CDLL(None).prctl(4, 0)  # PR_SET_DUMPABLE
        block = b'\x01' * (mib << 20)
        time.sleep(float(sys.argv[3]))
        os._exit(0)
for _ in range(int(sys.argv[2])):
    os.wait()
print('ALL HELD')
)";
  auto spread = run(p, {"python3", "-c", hold, "96", "8", "3"}, "", no_cgroup);
  EXPECT_EQ(spread.killed, KillReason::memory) << kill_reason_name(spread.killed) << spread.err;
  EXPECT_EQ(spread.out.find("ALL HELD"), std::string::npos);
  EXPECT_LT(spread.wall_seconds, 3);

  // Under the limit, with the same processes sharing their parent's pages:
  // nothing is killed (shared pages count once, file pages not at all).
  auto under = run(p, {"python3", "-c", hold, "16", "4", "1"}, "", no_cgroup);
  EXPECT_EQ(under.killed, KillReason::none) << kill_reason_name(under.killed) << under.err;
  EXPECT_NE(under.out.find("ALL HELD"), std::string::npos) << under.err;

  // Memory nobody maps would not be counted: it cannot be made. Each line
  // says what became of one attempt.
  const std::string unmapped = R"(import fcntl, os, socket
def attempt(name, call):
    try:
        call()
        print(name, 'ok')
    except OSError as e:
        print(name, e.strerror)
r, w = os.pipe()
a, b = socket.socketpair()
with open('/tmp/page', 'wb+') as f:
    f.write(b'x' * 4096)
    f.flush()
    attempt('memfd', lambda: os.memfd_create('x'))
    attempt('splice', lambda: os.splice(f.fileno(), w, 4096, offset_src=0))
    attempt('sendfile', lambda: os.sendfile(w, f.fileno(), 0, 4096))
    attempt('pipe_size', lambda: fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, 1 << 20))
    attempt('socket_buffer', lambda: a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22))
)";
  const std::string script = "python3 -c \"$0\"; ipcmk -M 1048576 2>&1; ipcmk -Q 2>&1";
  auto refused = run(p, {"sh", "-c", script, unmapped}, "", no_cgroup);
  for (const char* line : {"memfd Function not implemented", "splice Function not implemented",
                           "sendfile Function not implemented",
                           "pipe_size Operation not permitted", "socket_buffer Operation not permitted"})
    EXPECT_NE(refused.out.find(line), std::string::npos) << line << "\n" << refused.out << refused.err;
  EXPECT_EQ(refused.out.find("Shared memory id"), std::string::npos) << refused.out;
  EXPECT_EQ(refused.out.find("Message queue id"), std::string::npos) << refused.out;
  // Where a memory cgroup can be made, it counts all of them, and all are allowed.
  if (JailCgroup(p.limits.memory_bytes, p.limits.max_processes).has_memory()) {
    auto counted = run(p, {"sh", "-c", script, unmapped}, "");
    for (const char* line : {"memfd ok", "splice ok", "sendfile ok", "pipe_size ok", "socket_buffer ok", "Shared memory id",
                             "Message queue id"})
      EXPECT_NE(counted.out.find(line), std::string::npos) << line << "\n" << counted.out << counted.err;
  }
}

// Socket buffers of the default size are kernel memory no process count
// shows: without a cgroup the machine's available memory is the backstop.
TEST_F(JailAttack, SocketBuffersWithoutACgroupMeetTheBackstop) {
  RunOptions no_cgroup;
  no_cgroup.memory_cgroup = false;
  Profile p = test_profile("default", ws_);
  p.limits.memory_bytes = 128ull << 20;
  p.limits.tmpfs_bytes = 16ull << 20;
  p.limits.max_processes = 128;
  p.limits.wall_seconds = 30;
  // 96 processes, each filling both ends of 120 socket pairs: about 4.8 GB
  // of buffers, where the backstop allows 128 + 2 * 16 + 512 MiB. The
  // margin is for memory other programs free meanwhile, which the backstop
  // cannot tell from the jail's.
  const std::string fill = R"(import os, socket, time
for _ in range(96):
    if os.fork() == 0:
        held = []
        for _ in range(120):
            pair = socket.socketpair()
            for end in pair:
                end.setblocking(False)
                try:
                    while True:
                        end.send(b'x' * 65536)
                except BlockingIOError:
                    pass
            held.append(pair)
        time.sleep(20)
        os._exit(0)
for _ in range(96):
    os.wait()
print('ALL HELD')
)";
  // The backstop measures from the start: let memory freed by the tests
  // before (buffers of a jail just killed) come back first.
  for (int i = 0; i < 20; i++) {
    const uint64_t before = available_memory().value_or(0);
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    const uint64_t after = available_memory().value_or(0);
    if (after < before + (16ull << 20) && before < after + (16ull << 20)) break;
  }
  auto r = run(p, {"python3", "-c", fill}, "", no_cgroup);
  EXPECT_EQ(r.killed, KillReason::memory) << kill_reason_name(r.killed) << r.out << r.err;
  EXPECT_EQ(r.out.find("ALL HELD"), std::string::npos);
  EXPECT_LT(r.wall_seconds, 15);
}

TEST_F(JailAttack, EndlessLoopIsKilled) {
  Profile p = test_profile("default", ws_);
  p.limits.cpu_seconds = 1;
  auto busy = sh(p, "while :; do :; done");
  EXPECT_EQ(busy.killed, KillReason::cpu);
  Profile q = test_profile("default", ws_);
  q.limits.wall_seconds = 1;
  auto idle = sh(q, "while :; do sleep 1; done");
  EXPECT_EQ(idle.killed, KillReason::timeout);
  EXPECT_LT(idle.wall_seconds, 5);
}

TEST_F(JailAttack, GigabyteOfOutputIsCapped) {
  Profile p = test_profile("default", ws_);
  p.limits.max_output_bytes = 1 << 20;
  auto r = sh(p, "head -c 1000000000 /dev/zero");
  EXPECT_EQ(r.killed, KillReason::output_limit);
  EXPECT_TRUE(r.out_truncated);
  EXPECT_EQ(r.out.size(), size_t(1) << 20);
}

// A command that prints just over the cap and exits at once races its
// kill: whichever wins, the run never reads as a success (a tool that
// checked only the status would take the cut output for the whole).
TEST_F(JailAttack, AKilledRunNeverReportsSuccess) {
  Profile p = named_profile("readonly");
  p.limits.max_output_bytes = 1 << 20;
  for (int i = 0; i < 8; ++i) {
    auto r = sh(p, "head -c $((1048576 + 4000)) /dev/zero");
    EXPECT_EQ(r.killed, KillReason::output_limit);
    EXPECT_NE(r.exit_code, 0) << "run " << i;
  }
}

// With keep_output_ends a command that prints too much runs to its end, and
// each stream keeps its first and last halves, counting what went between.
TEST_F(JailAttack, KeepingTheOutputsEndsLetsALongOutputRunToItsEnd) {
  Profile p = named_profile("default");
  p.workspace = ws_;
  p.limits.max_output_bytes = 64 << 10;
  p.limits.keep_output_ends = true;
  auto r = sh(p, "seq 1 200000; seq 1 3 >&2; echo done > finished");
  EXPECT_EQ(r.killed, KillReason::none);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(fs::exists(ws_ + "/finished"));
  std::string all;
  for (int i = 1; i <= 200000; ++i) all.append(std::to_string(i)).push_back('\n');
  ASSERT_EQ(r.out.size(), size_t(64) << 10);
  EXPECT_TRUE(r.out_truncated);
  EXPECT_EQ(r.out_dropped, all.size() - r.out.size());
  EXPECT_EQ(r.out.substr(0, 32 << 10), all.substr(0, 32 << 10));
  EXPECT_EQ(r.out.substr(32 << 10), all.substr(all.size() - (32 << 10)));
  EXPECT_EQ(r.err, "1\n2\n3\n");  // under the cap: whole, not marked
  EXPECT_FALSE(r.err_truncated);
  EXPECT_EQ(r.err_dropped, 0u);
}

// Many files, each under the per-file cap, cannot fill the user's disk.
TEST_F(JailAttack, FillingTheDiskIsStopped) {
  auto bytes_in_ws = [&] {
    uint64_t total = 0;
    for (auto& e : fs::directory_iterator(ws_))
      if (e.is_regular_file()) total += e.file_size();
    return total;
  };
  Profile p = test_profile("default", ws_);
  p.limits.max_disk_growth_bytes = 64ull << 20;
  p.limits.wall_seconds = 30;
  auto r = sh(p, "i=0; while :; do head -c 16777216 /dev/zero > f$i || exit 3; i=$((i+1)); done");
  EXPECT_EQ(r.killed, KillReason::disk) << kill_reason_name(r.killed) << r.err;
  EXPECT_LT(r.wall_seconds, 20);
  const uint64_t written = bytes_in_ws();
  EXPECT_GE(written, 32ull << 20);  // it did write: the limit, not an error, stopped it
  EXPECT_LT(written, 1ull << 30) << "the check came too late";
  for (auto& e : fs::directory_iterator(ws_)) fs::remove(e.path());

  // Empty files use inodes, not blocks: they count too.
  Profile q = test_profile("default", ws_);
  q.limits.max_new_inodes = 2000;
  q.limits.wall_seconds = 30;
  auto files = sh(q, "i=0; while :; do : > n$i || exit 3; i=$((i+1)); done");
  EXPECT_EQ(files.killed, KillReason::disk) << kill_reason_name(files.killed) << files.err;
  const auto made = std::distance(fs::directory_iterator(ws_), fs::directory_iterator());
  EXPECT_GE(made, 1000);
  EXPECT_LT(made, 200000);
  for (auto& e : fs::directory_iterator(ws_)) fs::remove(e.path());

  // fallocate() would reserve gigabytes between two looks of the check: it
  // is "not supported" in the jail.
  auto reserve = sh(test_profile("default", ws_), "fallocate -l 200M big; echo rc=$?");
  EXPECT_NE(reserve.out.find("rc=1"), std::string::npos) << reserve.out << reserve.err;
  EXPECT_NE(reserve.err.find("Operation not supported"), std::string::npos) << reserve.err;
  EXPECT_EQ(bytes_in_ws(), 0u);
  for (auto& e : fs::directory_iterator(ws_)) fs::remove(e.path());

  // Within the default limits a command writes what it needs.
  auto fine = sh(test_profile("default", ws_), "head -c 33554432 /dev/zero > big && ls -s big");
  EXPECT_EQ(fine.killed, KillReason::none) << kill_reason_name(fine.killed);
  EXPECT_EQ(fine.exit_code, 0) << fine.err;
  EXPECT_EQ(bytes_in_ws(), 32ull << 20);
}

TEST_F(JailAttack, SetuidBinaryGainsNothing) {
  auto r = sh(test_profile("default", ws_),
              "ls -l /usr/bin/su /usr/bin/passwd; su -c 'id -u' root </dev/null; echo su=$?; "
              "passwd -S root </dev/null; echo done");
  EXPECT_NE(r.out.find("su=1"), std::string::npos) << r.out << r.err;
  EXPECT_NE(r.out.find("done"), std::string::npos);
  EXPECT_EQ(r.out.find("\n0\n"), std::string::npos);
}

TEST_F(JailAttack, EnvironmentOfWardenDoesNotLeak) {
  ::setenv("WARDEN_TEST_TOKEN", kSecret.c_str(), 1);
  auto r = sh(test_profile("default", ws_), "env; echo done");
  ::unsetenv("WARDEN_TEST_TOKEN");
  expect_no_secret(r);
  EXPECT_NE(r.out.find("HOME=/home/user"), std::string::npos);
}

}  // namespace
}  // namespace warden::sandbox
