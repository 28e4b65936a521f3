// Self-confinement of the engine server: Landlock (landlock.h) and the
// server's seccomp filter (seccomp_filter.h), each applied in a forked child
// that reports what it could still do.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <linux/fs.h>
#include <sys/syscall.h>
#include <sys/inotify.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>

#include "common/test_env.h"
#include "engine_confinement.h"
#include "model/packed_cache.h"
#include "sandbox/landlock.h"
#include "sandbox/seccomp_filter.h"
#include "util/mapped_file.h"

namespace warden::sandbox {
namespace {

namespace fs = std::filesystem;

// Runs `body` in a forked child; each line it writes to the given fd is
// "name=value". Returns those, and the child's exit status as "exit".
template <typename Body>
std::map<std::string, std::string> in_child(Body body) {
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) return {};
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(pipe_fds[0]);
    int code = 0;
    try {
      body(pipe_fds[1]);
    } catch (const std::exception& e) {
      std::string line = std::string("error=") + e.what() + "\n";
      [[maybe_unused]] ssize_t w = ::write(pipe_fds[1], line.data(), line.size());
      code = 1;
    }
    _exit(code);
  }
  ::close(pipe_fds[1]);
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(pipe_fds[0], buf, sizeof buf)) > 0) text.append(buf, size_t(n));
  ::close(pipe_fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  std::map<std::string, std::string> out;
  size_t start = 0;
  for (size_t end; (end = text.find('\n', start)) != std::string::npos; start = end + 1) {
    const std::string line = text.substr(start, end - start);
    const size_t eq = line.find('=');
    if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  out["exit"] = std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
  return out;
}

void report(int fd, const std::string& name, int rc) {
  const std::string line = name + "=" + (rc >= 0 ? std::string("ok") : std::string(std::strerror(errno))) + "\n";
  [[maybe_unused]] ssize_t w = ::write(fd, line.data(), line.size());
}

int open_file(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC, 0600);
  if (fd >= 0) ::close(fd);
  return fd;
}

TEST(Landlock, TheProcessOpensOnlyWhatItWasGiven) {
  const std::string root = warden::test::make_temp_dir("landlock");
  fs::create_directories(root + "/model");
  fs::create_directories(root + "/cache");
  std::ofstream(root + "/model/weights.gguf") << "weights";
  std::ofstream(root + "/secret") << "secret";
  auto seen = in_child([&](int out) {
    const int abi = restrict_files({{root + "/model", root + "/missing"}, {root + "/cache"}});
    report(out, "abi", abi > 0 ? 0 : -1);
    if (abi == 0) return;
    report(out, "read_given", open_file(root + "/model/weights.gguf", O_RDONLY));
    report(out, "write_read_only", open_file(root + "/model/weights.gguf", O_WRONLY));
    report(out, "read_other", open_file(root + "/secret", O_RDONLY));
    report(out, "read_passwd", open_file("/etc/passwd", O_RDONLY));
    report(out, "create_in_cache", open_file(root + "/cache/packed.bin", O_WRONLY | O_CREAT));
    report(out, "remove_in_cache", ::unlink((root + "/cache/packed.bin").c_str()));
    report(out, "create_elsewhere", open_file(root + "/new", O_WRONLY | O_CREAT));
    char* const argv[] = {const_cast<char*>("/bin/true"), nullptr};
    report(out, "exec", ::execv("/bin/true", argv));
  });
  if (seen["abi"] != "ok") GTEST_SKIP() << "this kernel has no Landlock";
  EXPECT_EQ(seen["exit"], "0") << seen["error"];
  EXPECT_EQ(seen["read_given"], "ok");
  EXPECT_EQ(seen["create_in_cache"], "ok");
  EXPECT_EQ(seen["remove_in_cache"], "ok");
  for (const char* refused : {"write_read_only", "read_other", "read_passwd", "create_elsewhere", "exec"})
    EXPECT_EQ(seen[refused], std::strerror(EACCES)) << refused;
  EXPECT_FALSE(fs::exists(root + "/new"));
}

// The engine's own confinement (cli::confine_engine): of the packed-weights
// cache it may write only its own model's folder, so that an engine taken
// over by a hostile model or prompt cannot plant weights for another model
// the user loads later.
TEST(EngineConfinement, TheEngineWritesOnlyItsOwnModelsCacheFolder) {
  const std::string models = warden::test::make_temp_dir("models");
  std::ofstream(models + "/a.gguf") << "weights of a";
  std::ofstream(models + "/b.gguf") << "weights of b";
  const auto cache = model::PackedCacheSettings::from_environment();  // this test's own XDG_CACHE_HOME
  ASSERT_FALSE(cache.root.empty());
  const std::string own = cache.for_model(identity_of_file(models + "/a.gguf")).dir;
  const std::string other = cache.for_model(identity_of_file(models + "/b.gguf")).dir;
  fs::create_directories(other);
  std::ofstream(other + "/copy.bin") << "b's packed weights";
  auto seen = in_child([&](int out) {
    cli::confine_engine(models + "/a.gguf");
    report(out, "landlock", open_file(models + "/b.gguf", O_RDONLY) < 0 ? 0 : -1);
    report(out, "read_model", open_file(models + "/a.gguf", O_RDONLY));
    report(out, "create_own", open_file(own + "/copy.bin", O_WRONLY | O_CREAT));
    report(out, "remove_own", ::unlink((own + "/copy.bin").c_str()));
    report(out, "read_other", open_file(other + "/copy.bin", O_RDONLY));
    report(out, "write_other", open_file(other + "/copy.bin", O_WRONLY));
    report(out, "create_other", open_file(other + "/new.bin", O_WRONLY | O_CREAT));
    report(out, "remove_other", ::unlink((other + "/copy.bin").c_str()));
    report(out, "create_root", open_file(cache.root + "/new.bin", O_WRONLY | O_CREAT));
    report(out, "rename_other", ::rename(other.c_str(), (cache.root + "/moved").c_str()));
    // Landlock leaves metadata alone; the seccomp filter does not.
    report(out, "chmod_other", ::chmod(other.c_str(), 0777));
    report(out, "chmod_model", ::chmod((models + "/b.gguf").c_str(), 0666));
    report(out, "utimes_other", ::utimensat(AT_FDCWD, (other + "/copy.bin").c_str(), nullptr, 0));
    report(out, "truncate_model", ::truncate((models + "/a.gguf").c_str(), 0));
    report(out, "open_trunc_model", open_file(models + "/a.gguf", O_RDONLY | O_TRUNC));
    const int model_fd = ::open((models + "/a.gguf").c_str(), O_RDONLY | O_CLOEXEC);
    report(out, "fchmod_model", ::fchmod(model_fd, 0666));
    report(out, "futimens_model", ::futimens(model_fd, nullptr));  // as a cached copy is marked used
  });
  EXPECT_EQ(seen["exit"], "0") << seen["error"];
  EXPECT_TRUE(fs::is_directory(own));  // made before the confinement, which could not have
  if (seen["landlock"] != "ok") GTEST_SKIP() << "this kernel has no Landlock";
  for (const char* allowed : {"read_model", "create_own", "remove_own", "futimens_model"})
    EXPECT_EQ(seen[allowed], "ok") << allowed;
  for (const char* refused : {"read_other", "write_other", "create_other", "remove_other", "create_root",
                              "rename_other", "chmod_other", "chmod_model", "utimes_other", "truncate_model",
                              "open_trunc_model", "fchmod_model"})
    EXPECT_EQ(seen[refused], std::strerror(EACCES)) << refused;
  EXPECT_EQ(fs::file_size(models + "/a.gguf"), 12u);
  EXPECT_TRUE(fs::exists(other + "/copy.bin"));
  EXPECT_FALSE(fs::exists(cache.root + "/new.bin"));
}

// Once the engine is loaded no thread of it changes a file again: not
// through a name, nor through a descriptor held from before; reading, and
// writing to descriptors already open, go on.
TEST(EngineConfinement, ALoadedEngineChangesNoFile) {
  const std::string dir = warden::test::make_temp_dir("files");
  std::ofstream(dir + "/kept") << "kept";
  fs::create_directories(dir + "/folder");
  const fs::perms perms = fs::status(dir + "/kept").permissions();
  auto seen = in_child([&](int out) {
    const int held = ::open((dir + "/kept").c_str(), O_RDWR | O_CLOEXEC);
    std::thread other_thread([&] {  // the filter reaches threads already running
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      report(out, "thread_create", open_file(dir + "/from-thread", O_WRONLY | O_CREAT));
    });
    forbid_file_changes();
    other_thread.join();
    const std::string f = dir + "/kept", n = dir + "/new";
    report(out, "read", open_file(f, O_RDONLY));
    report(out, "write_out", int(::write(out, "", 0)));
    for (const auto& [name, flags] : {std::pair{"open_write", O_WRONLY}, {"open_rdwr", O_RDWR},
                                       {"open_append", O_WRONLY | O_APPEND}, {"open_trunc", O_RDONLY | O_TRUNC},
                                       {"create", O_WRONLY | O_CREAT}, {"create_read", O_RDONLY | O_CREAT},
                                       {"tmpfile", O_TMPFILE | O_RDWR}})
      report(out, name, open_file(name == std::string("tmpfile") ? dir : (flags & O_CREAT ? n : f), flags));
    report(out, "proc_mem", open_file("/proc/self/mem", O_RDWR));
    report(out, "creat", ::creat(n.c_str(), 0600));
    report(out, "truncate", ::truncate(f.c_str(), 0));
    report(out, "ftruncate", ::ftruncate(held, 0));
    report(out, "pwrite", int(::pwrite(held, "x", 1, 0)));
    errno = ::posix_fallocate(held, 0, 1 << 20);  // returns the error
    report(out, "fallocate", errno == 0 ? 0 : -1);
    report(out, "unlink", ::unlink(f.c_str()));
    report(out, "rename", ::rename(f.c_str(), n.c_str()));
    report(out, "link", ::link(f.c_str(), n.c_str()));
    report(out, "symlink", ::symlink(f.c_str(), n.c_str()));
    report(out, "mkdir", ::mkdir(n.c_str(), 0700));
    report(out, "rmdir", ::rmdir((dir + "/folder").c_str()));
    report(out, "chmod", ::chmod(f.c_str(), 0777));
    report(out, "fchmod", ::fchmod(held, 0777));
    report(out, "utimes", ::utimensat(AT_FDCWD, f.c_str(), nullptr, 0));
    report(out, "setxattr", ::setxattr(f.c_str(), "user.x", "1", 1, 0));
    // Calls newer than Debian 12's libseccomp knows by name: fchmodat2,
    // setxattrat, removexattrat, file_setattr; and inode flags by ioctl.
    for (const auto& [name, nr] : {std::pair{"fchmodat2", 452}, {"setxattrat", 463}, {"removexattrat", 466},
                                   {"file_setattr", 469}})
      report(out, name, int(::syscall(nr, AT_FDCWD, f.c_str(), 0, 0, 0, 0)));
    int flags = 0;
    report(out, "setflags", ::ioctl(held, FS_IOC_SETFLAGS, &flags));
  });
  EXPECT_EQ(seen["exit"], "0") << seen["error"];
  EXPECT_EQ(seen["read"], "ok");
  EXPECT_EQ(seen["write_out"], "ok");
  for (const char* refused : {"thread_create", "open_write", "open_rdwr", "open_append", "open_trunc", "create",
                              "create_read", "tmpfile", "proc_mem", "creat", "truncate", "ftruncate", "pwrite",
                              "fallocate", "unlink", "rename", "link", "symlink", "mkdir", "rmdir", "chmod", "fchmod",
                              "utimes", "setxattr", "fchmodat2", "setxattrat", "removexattrat", "file_setattr",
                              "setflags"})
    EXPECT_EQ(seen[refused], std::strerror(EACCES)) << refused;
  std::ifstream kept(dir + "/kept");
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(kept), {}), "kept");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 2);
  EXPECT_EQ(fs::status(dir + "/kept").permissions(), perms);
}

TEST(Landlock, RefusesOnceThreadsRun) {
  auto seen = in_child([&](int out) {
    std::thread sleeper([] { std::this_thread::sleep_for(std::chrono::milliseconds(300)); });
    try {
      restrict_files({{"/usr"}, {}});
      report(out, "restricted", 0);
    } catch (const std::exception& e) {
      report(out, "restricted", -1);
    }
    sleeper.join();
  });
  EXPECT_NE(seen["restricted"], "ok");
}

TEST(ServerConfinement, AListeningServerKeepsAcceptingAndCanDoNothingElse) {
  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener, 4), 0);
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  std::thread client([&] {
    int c = ::socket(AF_INET, SOCK_STREAM, 0);
    ::connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    ::close(c);
  });
  auto seen = in_child([&](int out) {
    // A second listening socket of the child's own, for TCP Fast Open.
    int own = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in any{};
    any.sin_family = AF_INET;
    any.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (own < 0 || ::bind(own, reinterpret_cast<sockaddr*>(&any), sizeof any) != 0 || ::listen(own, 1) != 0)
      throw std::runtime_error("no listening socket");
    // A thread started before the filter gets it too.
    int from_thread = 0;
    bool go = false;
    std::thread earlier([&] {
      while (!__atomic_load_n(&go, __ATOMIC_ACQUIRE)) std::this_thread::yield();
      from_thread = ::socket(AF_INET, SOCK_STREAM, 0);
      if (from_thread < 0) from_thread = -errno;
    });
    confine_engine_process();
    __atomic_store_n(&go, true, __ATOMIC_RELEASE);
    earlier.join();
    errno = -from_thread;
    report(out, "socket_from_earlier_thread", from_thread);
    report(out, "accept", ::accept(listener, nullptr, nullptr));
    report(out, "socket", ::socket(AF_UNIX, SOCK_STREAM, 0));
    int pair[2];
    report(out, "socketpair", ::socketpair(AF_UNIX, SOCK_DGRAM, 0, pair));
    report(out, "connect", ::connect(own, reinterpret_cast<sockaddr*>(&addr), sizeof addr));
    report(out, "ptrace", int(::ptrace(PTRACE_ATTACH, ::getppid(), nullptr, nullptr)));
    char* const argv[] = {const_cast<char*>("/bin/true"), nullptr};
    report(out, "exec", ::execv("/bin/true", argv));
    // Shut down for reading, a listening socket is closed again; Fast Open
    // would then connect it to the test's listener.
    ::shutdown(own, SHUT_RD);
    report(out, "fast_open",
           int(::sendto(own, "x", 1, MSG_FASTOPEN, reinterpret_cast<sockaddr*>(&addr), sizeof addr)));
    pid_t child = ::fork();
    if (child == 0) _exit(0);
    report(out, "fork", child);
    // Other processes: no limits, priorities or file-system watches.
    rlimit cpu{1, 1};
    report(out, "prlimit_other", ::prlimit(::getppid(), RLIMIT_CPU, &cpu, nullptr));
    rlimit own_files{};
    report(out, "prlimit_self", ::prlimit(0, RLIMIT_NOFILE, nullptr, &own_files));
    report(out, "setpriority_other", ::setpriority(PRIO_PROCESS, ::getppid(), 10));
    // "who" 0 names the caller only for a process, else its group or user:
    // any other "which" is refused. (An unknown one, 7, which the kernel
    // would answer with EINVAL, so that a regression renices nothing.)
    report(out, "setpriority_self", ::setpriority(PRIO_PROCESS, 0, 1));
    report(out, "setpriority_other_kind", ::setpriority(__priority_which_t(7), 0, 10));
    report(out, "inotify", ::inotify_init1(IN_CLOEXEC));
    std::thread still([] {});
    still.join();
    report(out, "thread", 0);
  });
  client.join();
  // Nothing but the test's own client reached the listener.
  ::fcntl(listener, F_SETFL, O_NONBLOCK);
  EXPECT_LT(::accept(listener, nullptr, nullptr), 0);
  ::close(listener);
  EXPECT_EQ(seen["exit"], "0") << seen["error"];
  EXPECT_EQ(seen["accept"], "ok");
  EXPECT_EQ(seen["thread"], "ok");
  for (const char* refused : {"socket_from_earlier_thread", "socket", "socketpair", "connect", "exec", "fast_open"})
    EXPECT_EQ(seen[refused], std::strerror(EACCES)) << refused;
  EXPECT_EQ(seen["ptrace"], std::strerror(EPERM));
  EXPECT_EQ(seen["fork"], std::strerror(EPERM));
  EXPECT_EQ(seen["prlimit_self"], "ok");
  EXPECT_EQ(seen["setpriority_self"], "ok");
  for (const char* refused : {"prlimit_other", "setpriority_other", "setpriority_other_kind", "inotify"})
    EXPECT_EQ(seen[refused], std::strerror(EPERM)) << refused;
}

}  // namespace
}  // namespace warden::sandbox
