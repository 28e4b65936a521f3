#include "sandbox/sandbox.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>

#include <nlohmann/json.hpp>

#include "sandbox/cgroup.h"
#include "sandbox/fd.h"
#include "sandbox/memory_watch.h"
#include "sandbox/seccomp_filter.h"
#include "util/error.h"

namespace warden::sandbox {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;
// How often the supervisor looks at the disk and, without a memory cgroup,
// at the jail's memory.
constexpr std::chrono::milliseconds kWatchInterval{100};

struct Pipe {
  Fd read, write;
  Pipe() {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) throw Error("sandbox: cannot create a pipe");
    read.reset(p[0]);
    write.reset(p[1]);
  }
};

// A private directory for this run's proxy socket, removed afterwards.
struct TempDir {
  std::string path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "warden-jail-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw Error("sandbox: cannot create a temporary directory");
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

int memfd_with(const std::string& name, const std::string& content) {
  int fd = ::memfd_create(name.c_str(), MFD_CLOEXEC);
  if (fd < 0 || ::write(fd, content.data(), content.size()) != ssize_t(content.size()))
    throw Error("sandbox: cannot prepare " + name);
  ::lseek(fd, 0, SEEK_SET);
  return fd;
}

bool is_executable(const std::string& p) { return ::access(p.c_str(), X_OK) == 0; }

std::string read_small(const std::string& path) {
  std::ifstream in(path);
  std::string s;
  std::getline(in, s);
  return s;
}

// /etc files a jail sees: what programs need to run, nothing with secrets.
const char* const kEtcFiles[] = {"ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "alternatives",
                                 "ssl", "ca-certificates", "ca-certificates.conf", "mime.types", "os-release",
                                 "debian_version", "protocols", "services", "nsswitch.conf", "magic",
                                 "python3", "perl", "xdg"};

const char kEtcSslPrivate[] = "/etc/ssl/private";

const char kPasswd[] =
    "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
const char kGroup[] = "root:x:0:\nuser:x:1000:\nnogroup:x:65534:\n";
const char kHosts[] = "127.0.0.1 localhost\n::1 localhost\n";

struct JailFds {
  int seccomp = -1, status = -1, passwd = -1, group = -1, hosts = -1;
  int options = -1;  // bwrap's options, read through --args
};

void add(std::vector<std::string>& a, std::initializer_list<std::string> items) { a.insert(a.end(), items); }

// bwrap's options: the jail's whole layout, host paths included.
std::vector<std::string> bwrap_options(const Profile& p, const FsPlan& plan, const JailFds& fds,
                                       const std::string& proxy_dir, const std::string& relay) {
  std::vector<std::string> a;
  add(a, {"--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup",
          "--unshare-net", "--disable-userns", "--uid", "1000", "--gid", "1000", "--hostname", "warden-jail",
          "--die-with-parent", "--new-session", "--cap-drop", "ALL"});
  // Base layout: read-only /usr and the host's links or dirs beside it.
  add(a, {"--ro-bind", "/usr", "/usr"});
  for (const char* top : {"/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"}) {
    struct stat st;
    if (::lstat(top, &st) != 0) continue;
    if (S_ISLNK(st.st_mode)) {
      char target[256] = {};
      if (::readlink(top, target, sizeof target - 1) > 0) add(a, {"--symlink", target, top});
    } else if (S_ISDIR(st.st_mode)) {
      add(a, {"--ro-bind", top, top});
    }
  }
  add(a, {"--proc", "/proc", "--dev", "/dev"});
  const std::string tmpfs_size = std::to_string(p.limits.tmpfs_bytes);
  add(a, {"--size", tmpfs_size, "--tmpfs", "/tmp", "--size", tmpfs_size, "--tmpfs", "/home", "--dir", kJailHome,
          "--dir", "/var", "--symlink", "../tmp", "/var/tmp", "--size", "1048576", "--tmpfs", "/run", "--dir",
          "/run/warden"});
  add(a, {"--dir", "/etc"});
  for (const char* name : kEtcFiles) {
    std::string host = std::string("/etc/") + name;
    if (::access(host.c_str(), F_OK) == 0) add(a, {"--ro-bind", host, host});
  }
  // TLS private keys live beside the CA certificates. The jail's user is the
  // caller's uid, so when warden runs as root the jail would own them too.
  if (::access(kEtcSslPrivate, F_OK) == 0)
    add(a, {"--perms", "0000", "--tmpfs", kEtcSslPrivate, "--remount-ro", kEtcSslPrivate});
  add(a, {"--ro-bind-data", std::to_string(fds.passwd), "/etc/passwd", "--ro-bind-data", std::to_string(fds.group),
          "/etc/group", "--ro-bind-data", std::to_string(fds.hosts), "/etc/hosts"});
  for (const auto& b : plan.binds) add(a, {b.writable ? "--bind" : "--ro-bind", b.host, b.jail});
  // The deny list wins: masks go on top of every bind.
  for (const auto& m : plan.masks) {
    if (m.directory)
      add(a, {"--perms", "0000", "--tmpfs", m.jail, "--remount-ro", m.jail});
    else
      add(a, {"--ro-bind", "/dev/null", m.jail});
  }
  if (p.network) add(a, {"--ro-bind", relay, "/run/warden/netrelay", "--bind", proxy_dir + "/proxy.sock", "/run/warden/proxy.sock"});
  add(a, {"--remount-ro", "/", "--remount-ro", "/dev", "--chdir", p.workspace.empty() ? kJailHome : kJailWorkspace});
  add(a, {"--seccomp", std::to_string(fds.seccomp), "--json-status-fd", std::to_string(fds.status)});
  return a;
}

// The options go through a descriptor (--args), not the command line: the
// jail's pid 1 is a copy of bwrap, and its /proc/1/cmdline would otherwise
// show every host path bound into the jail.
std::vector<std::string> bwrap_command_line(const std::string& bwrap, const Profile& p, const JailFds& fds,
                                            const std::vector<std::string>& argv) {
  std::vector<std::string> a{bwrap, "--args", std::to_string(fds.options), "--"};
  if (p.network)
    add(a, {"/run/warden/netrelay", std::to_string(kJailProxyPort), "/run/warden/proxy.sock", "--"});
  a.insert(a.end(), argv.begin(), argv.end());
  return a;
}

std::string nul_separated(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) {
    if (s.find('\0') != std::string::npos) throw Error("sandbox: a path contains a NUL byte");
    out += s;
    out += '\0';
  }
  return out;
}

std::vector<std::string> jail_environment(const Profile& p) {
  std::vector<std::string> env{"PATH=/usr/local/bin:/usr/bin:/bin", std::string("HOME=") + kJailHome, "USER=user",
                               "LOGNAME=user", "LANG=C.UTF-8", "TMPDIR=/tmp", "TERM=dumb"};
  if (p.network) {
    const std::string proxy = "http://127.0.0.1:" + std::to_string(kJailProxyPort);
    for (const char* var : {"http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"})
      env.push_back(std::string(var) + "=" + proxy);
    env.push_back("no_proxy=");
  }
  return env;
}

// Tasks (threads included) the real uid owns now: RLIMIT_NPROC counts them
// all, so the jail's allowance is added on top.
uint64_t tasks_of_uid(uid_t uid) {
  uint64_t count = 0;
  DIR* d = ::opendir("/proc");
  if (!d) return 0;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::ifstream in(std::string("/proc/") + e->d_name + "/status");
    std::string line;
    bool mine = false;
    while (std::getline(in, line)) {
      if (line.rfind("Uid:", 0) == 0) mine = std::stoul(line.substr(4)) == uid;
      if (mine && line.rfind("Threads:", 0) == 0) count += std::stoul(line.substr(8));
    }
  }
  ::closedir(d);
  return count;
}

struct ChildSetup {
  std::vector<rlimit> values;
  std::vector<int> resources;
};

ChildSetup rlimits_for(const Limits& l, const JailCgroup& cg) {
  ChildSetup s;
  auto set = [&](int res, uint64_t soft, uint64_t hard) {
    s.resources.push_back(res);
    s.values.push_back({rlim_t(soft), rlim_t(hard)});
  };
  // SIGXCPU at the limit, SIGKILL one second later if it is ignored.
  set(RLIMIT_CPU, l.cpu_seconds, l.cpu_seconds + 1);
  set(RLIMIT_FSIZE, l.max_file_bytes, l.max_file_bytes);
  set(RLIMIT_NOFILE, l.max_open_files, l.max_open_files);
  set(RLIMIT_CORE, 0, 0);
  if (!cg.has_memory()) set(RLIMIT_AS, l.memory_bytes, l.memory_bytes);
  if (!cg.has_pids()) {
    uint64_t n = tasks_of_uid(::getuid()) + l.max_processes;
    set(RLIMIT_NPROC, n, n);
  }
  return s;
}

[[noreturn]] void die(const char* what) {
  [[maybe_unused]] ssize_t w = ::write(2, what, std::strlen(what));
  _exit(126);
}

// In the forked child: only async-signal-safe calls until execve.
[[noreturn]] void exec_bwrap(const std::vector<char*>& args, const std::vector<char*>& env, const ChildSetup& limits,
                             const JailCgroup& cg, int in_fd, int out_fd, int err_fd, const JailFds& fds) {
  if (::dup2(in_fd, 0) < 0 || ::dup2(out_fd, 1) < 0 || ::dup2(err_fd, 2) < 0) die("warden sandbox: dup2 failed\n");
  // No descriptor of the warden process leaks into the jail except the ones
  // bwrap is told about.
  if (::syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC) != 0) die("warden sandbox: close_range failed\n");
  for (int fd : {fds.seccomp, fds.status, fds.passwd, fds.group, fds.hosts, fds.options})
    if (::fcntl(fd, F_SETFD, 0) != 0) die("warden sandbox: fcntl failed\n");
  if (!cg.enter_self()) die("warden sandbox: cannot enter the jail's cgroup\n");
  for (size_t i = 0; i < limits.resources.size(); i++)
    if (::setrlimit(limits.resources[i], &limits.values[i]) != 0) die("warden sandbox: setrlimit failed\n");
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  ::execve(args[0], args.data(), env.data());
  die("warden sandbox: cannot execute bwrap\n");
}

// Reads bwrap's JSON status lines: {"child-pid": N} once the jail is up,
// {"exit-code": N} when its command has ended.
struct BwrapStatus {
  std::string buffer;
  std::optional<pid_t> child_pid;
  std::optional<int> exit_code;
  void parse() {
    size_t start = 0;
    while (true) {
      size_t end = buffer.find('}', start);
      if (end == std::string::npos) break;
      auto j = nlohmann::json::parse(buffer.substr(start, end + 1 - start), nullptr, false);
      if (j.is_object()) {
        if (j.contains("child-pid")) child_pid = j["child-pid"].get<pid_t>();
        if (j.contains("exit-code")) exit_code = j["exit-code"].get<int>();
      }
      start = end + 1;
    }
    buffer.erase(0, start);
  }
};

class Collector {
 public:
  explicit Collector(const Limits& limits) : cap_(limits.max_output_bytes), keep_ends_(limits.keep_output_ends) {}
  struct Stream {
    std::string& sink;
    bool& truncated;
    uint64_t& dropped;
    std::string tail;  // keep_ends: the newest bytes after the first half (up to twice the half, trimmed)
  };
  // Appends; false once the stream went past the cap and the jail must go.
  bool add(Stream& s, const char* data, size_t n) {
    if (s.sink.size() + n <= (keep_ends_ ? cap_ / 2 : cap_) && s.tail.empty()) {
      s.sink.append(data, n);
      return true;
    }
    if (!keep_ends_) {
      s.truncated = true;
      s.sink.append(data, cap_ - s.sink.size());
      return false;
    }
    const size_t head_room = cap_ / 2 - std::min<size_t>(s.sink.size(), cap_ / 2);
    s.sink.append(data, std::min(n, head_room));
    s.tail.append(data + std::min(n, head_room), n - std::min(n, head_room));
    const size_t tail_cap = cap_ - cap_ / 2;
    if (s.tail.size() > 2 * tail_cap) trim(s, tail_cap);
    return true;
  }
  // Joins a kept-ends stream's halves once it is closed.
  void finish(Stream& s) {
    trim(s, cap_ - cap_ / 2);
    s.sink += s.tail;
    s.tail.clear();
  }

 private:
  static void trim(Stream& s, size_t keep) {
    if (s.tail.size() <= keep) return;
    s.truncated = true;
    s.dropped += s.tail.size() - keep;
    s.tail.erase(0, s.tail.size() - keep);
  }
  uint64_t cap_;
  bool keep_ends_;
};

// Free space and free inodes of the filesystem holding a writable
// workspace, against what they were when the command started.
class DiskWatch {
 public:
  DiskWatch(const std::string& workspace, const Limits& limits)
      : path_(workspace), max_bytes_(limits.max_disk_growth_bytes), max_inodes_(limits.max_new_inodes) {
    if (!read(start_)) throw Error("sandbox: cannot read the free space of " + workspace + ": " + std::strerror(errno));
  }
  // True once more than the limits have been used since the start. A
  // filesystem that can no longer be read counts as used up (fail closed).
  bool used_up() const {
    Free now;
    if (!read(now)) return true;
    return start_.bytes > now.bytes + max_bytes_ || start_.inodes > now.inodes + max_inodes_;
  }

 private:
  struct Free {
    uint64_t bytes = 0, inodes = 0;
  };
  bool read(Free& f) const {
    struct statvfs s {};
    if (::statvfs(path_.c_str(), &s) != 0) return false;
    f.bytes = uint64_t(s.f_bavail) * s.f_frsize;
    f.inodes = s.f_favail;
    return true;
  }
  std::string path_;
  uint64_t max_bytes_, max_inodes_;
  Free start_;
};

}  // namespace

const char* kill_reason_name(KillReason r) {
  switch (r) {
    case KillReason::none: return "none";
    case KillReason::timeout: return "timeout";
    case KillReason::memory: return "memory";
    case KillReason::cpu: return "cpu";
    case KillReason::output_limit: return "output_limit";
    case KillReason::disk: return "disk";
  }
  return "unknown";
}

std::string SandboxResult::to_json() const {
  nlohmann::json log = nlohmann::json::array();
  for (const auto& e : proxy_log) log.push_back(nlohmann::json::parse(e.to_json()));
  nlohmann::json j = {{"exit_code", exit_code},       {"killed", kill_reason_name(killed)},
                      {"stdout", out},                {"stderr", err},
                      {"stdout_truncated", out_truncated}, {"stderr_truncated", err_truncated},
                      {"wall_seconds", wall_seconds},
                      {"proxy_log", log}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void check_prerequisites(const std::string& bwrap) {
  if (!is_executable(bwrap)) throw Error("sandbox unavailable: bubblewrap is missing (" + bwrap + ")");
  std::string max_ns = read_small("/proc/sys/user/max_user_namespaces");
  if (max_ns.empty() || max_ns == "0") throw Error("sandbox unavailable: user namespaces are disabled (user.max_user_namespaces)");
  if (::getuid() != 0 && read_small("/proc/sys/kernel/unprivileged_userns_clone") == "0")
    throw Error("sandbox unavailable: unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone)");
  if (::access("/proc/sys/kernel/seccomp/actions_avail", R_OK) != 0)
    throw Error("sandbox unavailable: the kernel has no seccomp filter support");
}

std::string relay_binary_path() {
  char self[4096] = {};
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    std::string beside = fs::path(std::string(self, size_t(n))).parent_path() / "warden-netrelay";
    if (is_executable(beside)) return beside;
  }
#ifdef WARDEN_NETRELAY_BUILD_PATH
  if (is_executable(WARDEN_NETRELAY_BUILD_PATH)) return WARDEN_NETRELAY_BUILD_PATH;
#endif
  throw Error("sandbox unavailable: warden-netrelay (the jail's proxy forwarder) was not found beside the binary");
}

SandboxResult run(const Profile& profile, const std::vector<std::string>& argv, const std::string& stdin_bytes,
                  const RunOptions& options) {
  if (argv.empty()) throw UsageError("sandbox: no command given");
  check_prerequisites(options.bwrap);
  const FsPlan plan = plan_filesystem(profile);
  // bwrap creates mount points for missing protected entries on the host;
  // they go when the run ends, however it ends.
  struct PlaceholderCleanup {
    const std::vector<Placeholder>& placeholders;
    ~PlaceholderCleanup() { remove_placeholders(placeholders); }
  } cleanup{plan.placeholders};
  const Limits& limits = profile.limits;

  // Declared before the proxy: its threads log into them until it stops.
  SandboxResult result;
  std::mutex log_mutex;
  // Egress proxy for this run only, outside the jail.
  std::optional<TempDir> proxy_dir;
  std::unique_ptr<EgressProxy> proxy;
  std::string relay;
  if (profile.network) {
    relay = options.relay_binary.empty() ? relay_binary_path() : options.relay_binary;
    if (!is_executable(relay)) throw Error("sandbox unavailable: relay binary " + relay + " is not executable");
    proxy_dir.emplace();
    ProxyConfig pc;
    pc.rules = {profile.allowed_domains, profile.private_destinations, options.allowed_ports};
    pc.resolver = options.resolver;
    pc.log_path = options.proxy_log_path;
    pc.on_log = [&](const ProxyLogEntry& e) {
      {
        std::lock_guard lock(log_mutex);
        result.proxy_log.push_back(e);
      }
      if (options.on_proxy_log) options.on_proxy_log(e);
    };
    proxy = std::make_unique<EgressProxy>(std::move(pc));
    proxy->start(proxy_dir->path + "/proxy.sock");
  }

  JailCgroup cgroup(limits.memory_bytes, limits.max_processes, options.memory_cgroup);
  std::optional<MemoryWatch> memory_watch;
  if (!cgroup.has_memory()) memory_watch.emplace(limits.memory_bytes, limits.memory_bytes + 2 * limits.tmpfs_bytes);
  if (!cgroup.has_pids() && ::getuid() == 0)
    throw Error("sandbox unavailable: cannot bound the number of processes (running as root, where RLIMIT_NPROC "
                "does not apply, and no pids cgroup is writable)");

  Fd seccomp(build_seccomp_fd({profile.network, memory_watch.has_value()}));
  Fd passwd(memfd_with("passwd", kPasswd)), group(memfd_with("group", kGroup)), hosts(memfd_with("hosts", kHosts));
  Pipe in, out, err, status;
  JailFds fds{seccomp.fd, status.write.fd, passwd.fd, group.fd, hosts.fd};
  Fd bwrap_opts(memfd_with("bwrap-options",
                           nul_separated(bwrap_options(profile, plan, fds, proxy_dir ? proxy_dir->path : "", relay))));
  fds.options = bwrap_opts.fd;
  const std::vector<std::string> args = bwrap_command_line(options.bwrap, profile, fds, argv);
  const std::vector<std::string> env = jail_environment(profile);
  std::vector<char*> cargs, cenv;
  for (const auto& s : args) cargs.push_back(const_cast<char*>(s.c_str()));
  cargs.push_back(nullptr);
  for (const auto& s : env) cenv.push_back(const_cast<char*>(s.c_str()));
  cenv.push_back(nullptr);
  const ChildSetup child_limits = rlimits_for(limits, cgroup);
  std::optional<DiskWatch> disk;
  if (!profile.workspace.empty() && profile.workspace_writable) disk.emplace(profile.workspace, limits);

  const auto started = Clock::now();
  pid_t pid = ::fork();
  if (pid < 0) throw Error("sandbox: fork failed");
  if (pid == 0) exec_bwrap(cargs, cenv, child_limits, cgroup, in.read.fd, out.write.fd, err.write.fd, fds);
  in.read.reset();
  out.write.reset();
  err.write.reset();
  status.write.reset();

  // Feed stdin, collect output and status until every stream is closed, the
  // deadline passes or the output cap is hit.
  const auto deadline = started + std::chrono::milliseconds(int64_t(limits.wall_seconds * 1000));
  Collector collect(limits);
  Collector::Stream streams[2] = {{result.out, result.out_truncated, result.out_dropped, {}},
                                  {result.err, result.err_truncated, result.err_dropped, {}}};
  BwrapStatus bstatus;
  size_t written = 0;
  if (stdin_bytes.empty()) in.write.reset();
  ::fcntl(in.write.fd, F_SETFL, O_NONBLOCK);
  char buf[65536];
  auto next_look = started;
  auto kill_jail = [&](KillReason why) {
    result.killed = why;
    if (bstatus.child_pid) ::kill(*bstatus.child_pid, SIGKILL);  // the pid namespace dies with it
    ::kill(pid, SIGKILL);
    cgroup.kill_all();
  };
  while (result.killed == KillReason::none && (out.read.fd >= 0 || err.read.fd >= 0 || status.read.fd >= 0)) {
    const int64_t left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      kill_jail(KillReason::timeout);
      break;
    }
    pollfd p[4] = {{out.read.fd, POLLIN, 0}, {err.read.fd, POLLIN, 0}, {status.read.fd, POLLIN, 0},
                   {in.write.fd, POLLOUT, 0}};
    const bool watching = disk || memory_watch;
    if (::poll(p, 4, int(std::min<int64_t>(left, watching ? kWatchInterval.count() : 1000))) < 0 && errno != EINTR)
      break;
    // The watches look once an interval, however often output wakes the loop.
    if (watching && Clock::now() >= next_look) {
      next_look = Clock::now() + kWatchInterval;
      if (disk && disk->used_up()) kill_jail(KillReason::disk);
      if (memory_watch && result.killed == KillReason::none && memory_watch->over(pid))
        kill_jail(KillReason::memory);
    }
    if (p[3].revents) {
      ssize_t w = ::write(in.write.fd, stdin_bytes.data() + written, stdin_bytes.size() - written);
      if (w > 0) written += size_t(w);
      if ((w < 0 && errno != EAGAIN) || written == stdin_bytes.size() || (p[3].revents & (POLLERR | POLLHUP)))
        in.write.reset();
    }
    for (int i = 0; i < 3; i++) {
      if (!p[i].revents) continue;
      Fd& fd = i == 0 ? out.read : i == 1 ? err.read : status.read;
      ssize_t got = ::read(fd.fd, buf, sizeof buf);
      if (got <= 0) {
        fd.reset();
        continue;
      }
      if (i == 2) {
        bstatus.buffer.append(buf, size_t(got));
        bstatus.parse();
      } else if (!collect.add(streams[i], buf, size_t(got))) {
        kill_jail(KillReason::output_limit);
      }
    }
  }
  for (auto& stream : streams) collect.finish(stream);
  in.write.reset();
  out.read.reset();
  err.read.reset();
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  if (status.read.fd >= 0) {  // the last status line may still be unread
    ssize_t got;
    while ((got = ::read(status.read.fd, buf, sizeof buf)) > 0) bstatus.buffer.append(buf, size_t(got));
    bstatus.parse();
  }
  result.wall_seconds = std::chrono::duration<double>(Clock::now() - started).count();
  if (proxy) proxy->stop();

  if (!bstatus.child_pid && result.killed == KillReason::none)
    throw Error("sandbox: bubblewrap could not set up the jail: " +
                (result.err.empty() ? std::string("no message") : result.err.substr(0, result.err.find('\n'))));
  if (bstatus.exit_code) {
    result.exit_code = *bstatus.exit_code;
  } else if (WIFEXITED(wstatus)) {
    result.exit_code = WEXITSTATUS(wstatus);
  } else {
    result.exit_code = 128 + WTERMSIG(wstatus);
  }
  // A jail killed just as its command exited may report that command's 0:
  // a killed run never reads as a success (its output may be cut short).
  if (result.killed != KillReason::none && result.exit_code == 0) result.exit_code = 128 + SIGKILL;
  if (result.killed == KillReason::none) {
    // The kernel sends SIGXCPU only for RLIMIT_CPU (a command signalling
    // itself can fake this, which gains it nothing).
    if (cgroup.memory_limit_hit())
      result.killed = KillReason::memory;
    else if (result.exit_code == 128 + SIGXCPU)
      result.killed = KillReason::cpu;
  }
  return result;
}

}  // namespace warden::sandbox
