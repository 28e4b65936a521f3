#pragma once
// Which host paths a jail gets, and which paths inside those binds are masked.
//
// The deny list wins over every bind: it is checked on real paths (symlinks
// resolved), a bind that is inside a denied path is refused, a writable bind
// that contains a denied path is refused (a hidden path inside a writable tree
// could otherwise be created or replaced), and a read-only bind that contains
// denied paths gets each of them masked (empty tmpfs for a directory, empty
// file for a file). Hard links to denied files and .git hooks/config found in
// a bind are masked too.
#include <string>
#include <vector>

#include "sandbox/profile.h"

namespace warden::sandbox {

struct Bind {
  std::string host;    // real path on the host
  std::string jail;    // path inside the jail
  bool writable = false;
};

struct Mask {
  std::string jail;    // path inside the jail to hide
  bool directory = false;
};

// A host path bwrap creates as a mount point for a missing protected
// workspace entry; removed after the run when it is still empty.
struct Placeholder {
  std::string host;
  bool directory = true;
};

struct FsPlan {
  std::vector<Bind> binds;   // applied in order, after the base layout
  std::vector<Mask> masks;   // applied after every bind
  std::vector<Placeholder> placeholders;
};

// Removes the placeholders a run left on the host (empty folders and empty
// files only; anything else is left alone). Never throws.
void remove_placeholders(const std::vector<Placeholder>& placeholders);

// The user's denied paths (absolute, lexically normal; real paths when they
// exist): secrets under $HOME, shell rc files, warden's own config and data,
// and a few system secrets.
std::vector<std::string> denied_paths();

// Builds the plan for `profile`; throws warden::Error naming the path and the
// rule when a bind is not allowed or does not exist.
FsPlan plan_filesystem(const Profile& profile);

// True when `path` equals `root` or lies below it (both absolute, normal).
bool path_within(const std::string& path, const std::string& root);

}  // namespace warden::sandbox
