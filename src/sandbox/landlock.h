#pragma once
// Landlock for a warden process that parses untrusted input and needs few
// files: the engine server (`warden serve`), whose chat templates and
// tokenizer read hostile text (web pages and files the agent passes on).
// Should a parser bug ever give an attacker code in that process, it still
// cannot open the user's files. The matching seccomp half (no network, no
// programs) is confine_engine_process() in seccomp_filter.h.
#include <string>
#include <vector>

namespace warden::sandbox {

struct FileAccess {
  std::vector<std::string> read;        // files, or folders with everything beneath
  std::vector<std::string> read_write;  // files that may also be written; folders whose files may also be
                                        // created, written and removed
};

// From now on this process, and the threads and children it starts, opens
// only what `access` names (paths that do not exist are left out). With a
// Landlock ABI of 6 or more it can also no longer signal processes outside
// or reach abstract unix sockets. Landlock binds the calling thread and what
// it starts, so this must run before the process starts a thread; it throws
// warden::Error otherwise, or when the kernel refuses. Returns the Landlock
// ABI in force, or 0 when the kernel has no Landlock (nothing changed).
int restrict_files(const FileAccess& access);

}  // namespace warden::sandbox
