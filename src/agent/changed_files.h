#pragma once
// The workspace files that changed while the agent ran, for the approval of
// a command that gets network.
//
// Commands without network need no approval, so the model can write a
// script (`build.sh`) through one and later ask to run it with network: the
// human then sees `$ sh build.sh`, not what build.sh does. The prompt for a
// networked command therefore lists the files changed since the session
// began, the ones its command line names first. A file's change time
// (ctime) is the kernel's: a command can set a file's mtime back with
// `touch -d`, never its ctime.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace warden::agent {

struct ChangedFiles {
  struct File {
    std::string path;  // relative to the workspace
    int64_t ctime_ns = 0;
    bool unreadable = false;  // a folder the walk could not enter, an entry it could not look at
    bool executable = false;         // any execute bit
  };
  std::vector<File> files;  // newest first
  bool walk_cut = false;    // the workspace has more entries than were looked at
};

// The clock file change times are taken from (coarser than CLOCK_REALTIME,
// so a file changed right after this reads no earlier).
int64_t change_clock_now_ns();

// Every entry but folders whose ctime is at or after `since_ns`, and every
// folder that cannot be read; a .git's object store left out (it changes
// with every commit, and a command cannot run what is in it). Looks at no
// more than `max_entries` entries.
ChangedFiles changed_since(const std::string& workspace, int64_t since_ns, size_t max_entries = 200000);

// The lines for the prompt ("" when nothing changed): files the command
// line names first, then programs, scripts and build files (at most
// 4 x `max_shown` of these), then the rest while fewer than `max_shown`
// lines are shown; newest first in each.
std::string describe_changed_files(const ChangedFiles& changed, std::string_view command, size_t max_shown = 15);

}  // namespace warden::agent
