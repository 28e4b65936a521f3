#include "sandbox/seccomp_filter.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/sched.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <initializer_list>
#include <memory>
#include <mutex>
#include <utility>

#include "util/error.h"

namespace warden::sandbox {
namespace {

// Denied outright with EPERM: debugging other processes, changing mounts or
// namespaces, kernel-wide state, and kernel interfaces with a history of
// exploitable bugs that no tool needs.
const char* const kDeniedSyscalls[] = {
    "ptrace", "process_vm_readv", "process_vm_writev", "mount", "umount", "umount2",
    "pivot_root", "chroot", "unshare", "setns", "fsopen", "fsconfig", "fsmount", "fspick",
    "move_mount", "open_tree", "mount_setattr", "kexec_load", "kexec_file_load",
    "init_module", "finit_module", "delete_module", "bpf", "perf_event_open", "keyctl",
    "add_key", "request_key", "userfaultfd", "io_uring_setup", "io_uring_enter",
    "io_uring_register", "open_by_handle_at", "name_to_handle_at", "acct", "swapon",
    "swapoff", "reboot", "syslog", "quotactl", "iopl", "ioperm", "personality",
    "lookup_dcookie", "vhangup", "uselib", "settimeofday", "clock_settime", "adjtimex",
    "clock_adjtime", "sethostname", "setdomainname"};

// Namespace flags a plain clone() may not carry (clone3 is refused with
// ENOSYS so that libc falls back to clone, whose flags are visible here).
const unsigned long kNamespaceFlags[] = {CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET,
                                         CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWCGROUP};

// Address families are small integers; everything up to this bound is
// enumerated, anything above is refused by one range rule.
constexpr int kFamilyBound = 64;

struct CtxDeleter {
  void operator()(scmp_filter_ctx c) const { seccomp_release(c); }
};
using Ctx = std::unique_ptr<void, CtxDeleter>;

// One argument comparison, spelled out (the SCMP_Ax macros leave datum_b
// to the compiler, which clang warns about).
scmp_arg_cmp arg(unsigned index, scmp_compare op, scmp_datum_t a, scmp_datum_t b = 0) { return {index, op, a, b}; }

void check(int rc, const std::string& what) {
  if (rc < 0) throw Error("seccomp: cannot add rule for " + what + " (libseccomp error " + std::to_string(-rc) + ")");
}

void deny_socket_families(scmp_filter_ctx ctx, const SeccompOptions& o, const char* call) {
  const int nr = seccomp_syscall_resolve_name(call);
  for (int family = 0; family < kFamilyBound; family++) {
    bool allowed = family == AF_UNIX || (o.allow_inet && (family == AF_INET || family == AF_INET6));
    if (allowed) continue;
    check(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), nr, 1, arg(0, SCMP_CMP_EQ, scmp_datum_t(family))), call);
  }
  check(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), nr, 1, arg(0, SCMP_CMP_GE, kFamilyBound)), call);
}

// Rules every confined process gets: no debugging of other processes, no
// mounts or namespaces, no kernel-wide state, no typing into the terminal.
Ctx common_rules() {
  Ctx ctx(seccomp_init(SCMP_ACT_ALLOW));
  if (!ctx) throw Error("seccomp: libseccomp could not create a filter");
  // Syscalls of another architecture (int 0x80, x32) are killed: the rules
  // below are written for the native numbers only.
  check(seccomp_attr_set(ctx.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS), "bad arch");
  for (const char* name : kDeniedSyscalls) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) continue;  // not on this architecture
    check(seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(EPERM), nr, 0), name);
  }
  check(seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0), "clone3");
  for (unsigned long flag : kNamespaceFlags)
    check(seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                           arg(0, SCMP_CMP_MASKED_EQ, flag, flag)),
          "clone");
  // The request argument is an int: compare its low 32 bits only, so a value
  // with garbage in the upper half cannot slip past.
  for (unsigned long request : {(unsigned long)TIOCSTI, (unsigned long)TIOCLINUX})
    check(seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
                           arg(1, SCMP_CMP_MASKED_EQ, 0xffffffffUL, request)),
          "ioctl");
  return ctx;
}

void deny_all(scmp_filter_ctx ctx, std::initializer_list<const char*> names, int error) {
  for (const char* name : names) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr != __NR_SCMP_ERROR) check(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(error), nr, 0), name);
  }
}

// Fails `name` with `error` when one argument meets `when`.
void deny_when(scmp_filter_ctx ctx, const char* name, int error, scmp_arg_cmp when) {
  check(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(error), seccomp_syscall_resolve_name(name), 1, when), name);
}

// Memory that no process maps, which a count of the jail's processes would
// miss (memory_watch.h): shared memory and message queues, pages handed to
// pipes (sendfile into a pipe does what splice does), and pipe and socket
// buffers past their default sizes.
void refuse_unmapped_memory(scmp_filter_ctx ctx) {
  deny_all(ctx, {"memfd_create", "memfd_secret", "shmget", "msgget", "mq_open", "vmsplice", "splice", "tee", "sendfile"},
           ENOSYS);
  deny_when(ctx, "fcntl", EPERM, arg(1, SCMP_CMP_MASKED_EQ, 0xffffffffUL, F_SETPIPE_SZ));
  for (int option : {SO_SNDBUF, SO_RCVBUF, SO_SNDBUFFORCE, SO_RCVBUFFORCE})
    check(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(setsockopt), 2,
                           arg(1, SCMP_CMP_MASKED_EQ, 0xffffffffUL, SOL_SOCKET),
                           arg(2, SCMP_CMP_MASKED_EQ, 0xffffffffUL, scmp_datum_t(option))),
          "setsockopt");
}

Ctx build(const SeccompOptions& o) {
  Ctx ctx = common_rules();
  // One fallocate() reserves gigabytes at once, between two looks of the
  // supervisor's disk check; "not supported" makes libc's posix_fallocate
  // write the blocks itself, at a pace the check keeps up with.
  check(seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(EOPNOTSUPP), SCMP_SYS(fallocate), 0), "fallocate");
  if (o.refuse_unmapped_memory) refuse_unmapped_memory(ctx.get());
  deny_socket_families(ctx.get(), o, "socket");
  deny_socket_families(ctx.get(), o, "socketpair");
  return ctx;
}

// Compiles the filter through libseccomp's export into a memfd and reads
// the program back.
std::string compile(const SeccompOptions& options) {
  Ctx ctx = build(options);
  int fd = ::memfd_create("warden-seccomp", MFD_CLOEXEC);
  if (fd < 0) throw Error("seccomp: memfd_create failed");
  std::string out;
  if (seccomp_export_bpf(ctx.get(), fd) == 0 && ::lseek(fd, 0, SEEK_SET) == 0) {
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, size_t(n));
  }
  ::close(fd);
  if (out.empty()) throw Error("seccomp: cannot export the filter");
  return out;
}

}  // namespace

std::string build_seccomp_bpf(const SeccompOptions& options) {
  // The program depends only on the options: compile each variant once.
  static std::mutex mutex;
  static std::string cache[4];
  std::lock_guard lock(mutex);
  std::string& slot = cache[(options.allow_inet ? 1 : 0) + (options.refuse_unmapped_memory ? 2 : 0)];
  if (slot.empty()) slot = compile(options);
  return slot;
}

namespace {

// Calls newer than this libseccomp (2.5.4 on Debian 12) knows by name, in
// the numbering every architecture has shared since 424.
constexpr int kFchmodat2 = 452, kSetxattrat = 463, kRemovexattrat = 466, kFileSetattr = 469;

// No changing a file's mode, owner, times, extended attributes or inode
// flags (immutable, append-only, ...): Landlock does not cover those, and
// the engine changes none of them on any file. utimensat without a path
// (futimens) stays allowed when `futimens` is: marking a cached copy as
// just used is part of loading it. Nor truncating by name or on open
// (Landlock before ABI 3, as in Debian 12's kernel, does not cover that).
void deny_metadata_changes(scmp_filter_ctx ctx, bool futimens) {
  deny_all(ctx,
           {"chmod", "fchmod", "fchmodat", "chown", "fchown", "lchown", "fchownat", "utime", "utimes", "futimesat",
            "setxattr", "lsetxattr", "fsetxattr", "removexattr", "lremovexattr", "fremovexattr", "truncate",
            "creat"},
           EACCES);
  for (int nr : {kFchmodat2, kSetxattrat, kRemovexattrat, kFileSetattr})
    check(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), nr, 0), "a newer call");
  if (futimens)
    deny_when(ctx, "utimensat", EACCES, arg(1, SCMP_CMP_NE, 0));
  else
    deny_all(ctx, {"utimensat"}, EACCES);
  for (unsigned long request : {(unsigned long)FS_IOC_SETFLAGS, (unsigned long)FS_IOC32_SETFLAGS,
                                (unsigned long)FS_IOC_FSSETXATTR})
    deny_when(ctx, "ioctl", EACCES, arg(1, SCMP_CMP_MASKED_EQ, 0xffffffffUL, request));
  // open's flags are its 2nd argument, openat's its 3rd.
  for (const auto& [name, flags] : {std::pair{"open", 1u}, std::pair{"openat", 2u}})
    deny_when(ctx, name, EACCES, arg(flags, SCMP_CMP_MASKED_EQ, O_TRUNC, O_TRUNC));
}

}  // namespace

void confine_engine_process() {
  Ctx ctx = common_rules();
  // A listening socket, if any, exists; accepting on it needs none of these.
  // socketpair too: a datagram socket sends to any path.
  deny_all(ctx.get(), {"socket", "socketpair", "connect", "bind", "listen", "execve", "execveat"}, EACCES);
  // Other processes of the user stay out of reach: no watching the file
  // system, no handles on processes.
  deny_all(ctx.get(), {"fanotify_init", "inotify_init", "inotify_init1", "pidfd_open", "kcmp", "migrate_pages"},
           EPERM);
  // No limits, priorities, affinities or page placement set on any process
  // but the caller, which a pid (or "who") of 0 names. For setpriority and
  // ioprio_set, "who" 0 names the caller only with a process as "which"
  // (PRIO_PROCESS, IOPRIO_WHO_PROCESS); with a group or a user it names all
  // of the caller's.
  for (const char* name : {"prlimit64", "sched_setaffinity", "sched_setparam", "sched_setscheduler", "sched_setattr",
                           "move_pages"})
    deny_when(ctx.get(), name, EPERM, arg(0, SCMP_CMP_NE, 0));
  for (const char* name : {"setpriority", "ioprio_set"}) deny_when(ctx.get(), name, EPERM, arg(1, SCMP_CMP_NE, 0));
  deny_when(ctx.get(), "setpriority", EPERM, arg(0, SCMP_CMP_NE, PRIO_PROCESS));
  deny_when(ctx.get(), "ioprio_set", EPERM, arg(0, SCMP_CMP_NE, 1));  // IOPRIO_WHO_PROCESS
  // TCP Fast Open connects without connect(): a listening socket shut down
  // for reading is closed again, and sendto(MSG_FASTOPEN) would open it
  // towards any address. (The flags are the 4th argument of sendto and
  // sendmmsg, the 3rd of sendmsg.)
  for (const auto& [name, flags] : {std::pair{"sendto", 3u}, std::pair{"sendmsg", 2u}, std::pair{"sendmmsg", 3u}})
    deny_when(ctx.get(), name, EACCES, arg(flags, SCMP_CMP_MASKED_EQ, MSG_FASTOPEN, MSG_FASTOPEN));
  // No new processes, threads excepted: a child would outlive the session
  // (PR_SET_PDEATHSIG is not inherited) with whatever this process holds.
  deny_all(ctx.get(), {"fork", "vfork"}, EPERM);
  deny_when(ctx.get(), "clone", EPERM, arg(0, SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0));
  deny_metadata_changes(ctx.get(), /*futimens=*/true);
  // Every thread, those already running included.
  check(seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_TSYNC, 1), "thread sync");
  const int rc = seccomp_load(ctx.get());
  if (rc < 0) throw Error("seccomp: cannot confine this process (libseccomp error " + std::to_string(-rc) + ")");
}

void forbid_file_changes() {
  Ctx ctx(seccomp_init(SCMP_ACT_ALLOW));
  if (!ctx) throw Error("seccomp: libseccomp could not create a filter");
  check(seccomp_attr_set(ctx.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS), "bad arch");
  // No opening for writing or creating (O_TMPFILE needs a write mode too).
  // The flags are open's 2nd argument, openat's 3rd; openat2 keeps them in
  // a struct the filter cannot read, and libc does not use it.
  for (const auto& [name, flags] : {std::pair{"open", 1u}, std::pair{"openat", 2u}})
    for (unsigned long bit : {O_WRONLY, O_RDWR, O_CREAT})
      deny_when(ctx.get(), name, EACCES, arg(flags, SCMP_CMP_MASKED_EQ, bit, bit));
  deny_all(ctx.get(), {"openat2"}, ENOSYS);
  // Nor changing a file through a name or a descriptor held from before;
  // output goes on with write() to descriptors already open.
  deny_all(ctx.get(),
           {"ftruncate", "fallocate", "pwrite64", "pwritev", "pwritev2", "copy_file_range", "unlink", "unlinkat",
            "rename", "renameat", "renameat2", "link", "linkat", "symlink", "symlinkat", "mkdir", "mkdirat", "rmdir",
            "mknod", "mknodat"},
           EACCES);
  deny_metadata_changes(ctx.get(), /*futimens=*/false);
  check(seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_TSYNC, 1), "thread sync");
  const int rc = seccomp_load(ctx.get());
  if (rc < 0) throw Error("seccomp: cannot forbid file changes (libseccomp error " + std::to_string(-rc) + ")");
}

int build_seccomp_fd(const SeccompOptions& options) {
  const std::string program = build_seccomp_bpf(options);
  int fd = ::memfd_create("warden-seccomp", MFD_CLOEXEC);
  if (fd < 0 || ::write(fd, program.data(), program.size()) != ssize_t(program.size()) ||
      ::lseek(fd, 0, SEEK_SET) != 0) {
    if (fd >= 0) ::close(fd);
    throw Error("seccomp: cannot prepare the filter for bwrap");
  }
  return fd;
}

}  // namespace warden::sandbox
