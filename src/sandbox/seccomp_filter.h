#pragma once
// The seccomp filter every jailed command runs under, compiled to classic BPF
// with libseccomp. bwrap installs it (--seccomp FD) right before it execs the
// command, after its own setup is done.
#include <string>

namespace warden::sandbox {

struct SeccompOptions {
  bool allow_inet = false;  // AF_INET/AF_INET6 sockets (profiles with network)
  // memfd_create, shmget, msgget, mq_open, vmsplice, splice and tee fail
  // with ENOSYS, larger pipe and socket buffers with EPERM: memory that no
  // process maps escapes the supervisor's memory watch, which stands in for
  // a memory cgroup where none can be made (memory_watch.h).
  bool refuse_unmapped_memory = false;
};

// Returns a file descriptor (memfd, offset 0) holding the BPF program; the
// caller owns it. Throws warden::Error when libseccomp cannot build it.
int build_seccomp_fd(const SeccompOptions& options);

// Confines the calling process, every thread of it, for good: a process
// that runs the engine on hostile text (warden serve, once its socket
// listens; generate; chat) may no longer create, connect or bind sockets
// (nor connect one with TCP Fast Open), start programs or processes (threads
// only), debug other processes, change any file's mode, owner, times (but
// through futimens), extended attributes or inode flags, truncate files, or
// use the jail's other denied calls. Throws warden::Error when it cannot.
void confine_engine_process();

// A further filter for the same process once it has loaded its model (and
// written the packed copy of its weights): no thread of it creates, opens
// for writing, truncates, renames, removes or changes the metadata of any
// file again. Output goes on through the descriptors already open. Throws
// warden::Error when it cannot.
void forbid_file_changes();

// The program itself, for inspection and tests.
std::string build_seccomp_bpf(const SeccompOptions& options);

}  // namespace warden::sandbox
