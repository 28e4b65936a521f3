#include "sandbox/fs_plan.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include <filesystem>
#include <set>
#include <utility>

#include "util/error.h"
#include "util/paths.h"

namespace warden::sandbox {
namespace fs = std::filesystem;
namespace {

// Relative to $HOME. Directories and files alike; missing ones cost nothing.
const char* const kHomeDenied[] = {
    ".ssh", ".gnupg", ".aws", ".azure", ".config/gcloud", ".kube", ".docker",
    ".netrc", ".git-credentials", ".gitconfig", ".config/git", ".config/gh",
    ".pypirc", ".npmrc", ".cargo/credentials", ".cargo/credentials.toml",
    ".password-store", ".local/share/keyrings", ".pki", ".mozilla",
    ".thunderbird", ".config/google-chrome", ".config/chromium",
    ".config/BraveSoftware", ".config/microsoft-edge", ".config/vivaldi",
    ".config/opera", ".var/app", ".config/keepassxc", ".bashrc",
    ".bash_profile", ".bash_login", ".bash_logout", ".profile", ".bash_history",
    ".zshrc", ".zshenv", ".zprofile", ".zlogin", ".zsh_history",
    ".config/fish", ".inputrc", ".python_history", ".lesshst", ".viminfo"};

const char* const kSystemDenied[] = {"/etc/shadow", "/etc/shadow-", "/etc/gshadow",
                                     "/etc/gshadow-", "/etc/ssh", "/etc/sudoers",
                                     "/etc/sudoers.d"};

// Host trees a bind may never contain: they would carry the host's /proc,
// /sys or devices into the jail.
const char* const kNeverBound[] = {"/proc", "/sys", "/dev"};

// A workspace walk stops here and refuses, rather than leave a tree unchecked.
constexpr size_t kMaxWalkEntries = 500000;

std::string normal(const std::string& p) {
  std::string s = fs::path(p).lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

// Real path when it exists (so a denied path reached through a symlink is
// still recognised), the lexical path otherwise.
std::string resolved(const std::string& p) {
  std::error_code ec;
  fs::path real = fs::canonical(p, ec);
  return ec ? normal(p) : real.string();
}

struct Inode {
  dev_t dev;
  ino_t ino;
  bool operator<(const Inode& o) const { return std::tie(dev, ino) < std::tie(o.dev, o.ino); }
};

// Inodes of denied regular files that have other hard links: a hard link to
// one of them placed in a bind would show the secret under another name.
std::set<Inode> hard_linked_denied_inodes(const std::vector<std::string>& denied) {
  std::set<Inode> inodes;
  size_t seen = 0;
  auto consider = [&](const fs::path& p) {
    struct stat st;
    if (::lstat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink > 1)
      inodes.insert({st.st_dev, st.st_ino});
  };
  for (const auto& d : denied) {
    std::error_code ec;
    if (!fs::is_directory(fs::symlink_status(d, ec))) {
      consider(d);
      continue;
    }
    for (fs::recursive_directory_iterator it(d, fs::directory_options::skip_permission_denied, ec), end;
         !ec && it != end; it.increment(ec)) {
      if (++seen > kMaxWalkEntries) throw Error("denied path " + d + " has too many entries to check");
      consider(it->path());
    }
  }
  return inodes;
}

std::string jail_path_of(const Bind& b, const std::string& host_path) {
  if (host_path == b.host) return b.jail;
  return b.jail + host_path.substr(b.host == "/" ? 0 : b.host.size());
}

// Walks one bind: masks hard links to denied files, each .git's hooks and
// config (git would run those hooks outside the jail later), and every unix
// socket: a read-only bind does not stop connect(), and a socket is a door to
// a process outside (warden's own approval socket if the user put it here, a
// database, an ssh-agent, a session bus).
void mask_inside_bind(const Bind& b, const std::set<Inode>& denied_inodes, std::vector<Mask>& masks) {
  std::error_code ec;
  if (!fs::is_directory(fs::symlink_status(b.host, ec))) return;
  size_t seen = 0;
  for (fs::recursive_directory_iterator it(b.host, fs::directory_options::skip_permission_denied, ec), end;
       !ec && it != end; it.increment(ec)) {
    if (++seen > kMaxWalkEntries)
      throw Error("'" + b.host + "' has more than " + std::to_string(kMaxWalkEntries) +
                  " entries; refusing to bind a tree that cannot be checked");
    const fs::path& p = it->path();
    struct stat st;
    if (::lstat(p.c_str(), &st) != 0) continue;
    if ((S_ISREG(st.st_mode) && st.st_nlink > 1 && denied_inodes.count({st.st_dev, st.st_ino})) ||
        S_ISSOCK(st.st_mode)) {
      masks.push_back({jail_path_of(b, p.string()), false});
    } else if (S_ISDIR(st.st_mode) && p.filename() == ".git") {
      struct stat sub;
      if (::lstat((p / "hooks").c_str(), &sub) == 0)
        masks.push_back({jail_path_of(b, (p / "hooks").string()), S_ISDIR(sub.st_mode)});
      if (::lstat((p / "config").c_str(), &sub) == 0)
        masks.push_back({jail_path_of(b, (p / "config").string()), S_ISDIR(sub.st_mode)});
    }
  }
  if (ec) throw Error("cannot walk '" + b.host + "': " + ec.message());
}

Bind checked_bind(const std::string& requested, const std::string& jail, bool writable,
                  const std::vector<std::string>& denied) {
  std::error_code ec;
  fs::path real = fs::canonical(requested, ec);
  if (ec) throw Error("sandbox path '" + requested + "' does not exist or cannot be resolved");
  const std::string host = real.string();
  for (const auto& d : denied)
    if (path_within(host, d))
      throw Error("sandbox path '" + requested + "' is denied: it is inside " + d);
  for (const char* never : kNeverBound)
    if (path_within(never, host) || path_within(host, never))
      throw Error("sandbox path '" + requested + "' would expose the host's " + never);
  if (writable)
    for (const auto& d : denied)
      if (path_within(d, host))
        throw Error("sandbox path '" + requested + "' contains the denied path " + d +
                    "; it can only be granted read-only");
  return {host, jail.empty() ? host : jail, writable};
}

// Profile::readonly_in_workspace: existing entries are bound read-only over
// themselves, missing ones are masked by an empty read-only placeholder.
void protect_workspace_entries(const Profile& profile, const std::string& workspace_host, FsPlan& plan) {
  for (const auto& entry : profile.readonly_in_workspace) {
    const std::string& name = entry.name;
    bool well_formed = !name.empty() && name.find('\0') == std::string::npos && name[0] != '/';
    for (const auto& part : fs::path(name)) well_formed = well_formed && part != "." && part != ".." && part != "";
    if (!well_formed) throw Error("protected workspace entry '" + name + "' must be a path relative to the workspace");
    const std::string host = workspace_host + "/" + name;
    const std::string jail = std::string(kJailWorkspace) + "/" + name;
    // A link (the entry, or a folder on the way to it) would make the
    // read-only bind land somewhere else.
    std::string prefix = workspace_host;
    for (const auto& part : fs::path(name)) {
      prefix.append("/").append(part.string());
      struct stat link;
      if (::lstat(prefix.c_str(), &link) == 0 && S_ISLNK(link.st_mode))
        throw Error("workspace entry '" + name + "' is reached through a symbolic link; it cannot be kept read-only, "
                    "so nothing runs");
    }
    struct stat st;
    if (::lstat(host.c_str(), &st) == 0) {
      plan.binds.push_back({host, jail, false});
    } else if (errno == ENOENT) {
      plan.masks.push_back({jail, entry.directory});
      plan.placeholders.push_back({host, entry.directory});
    } else {
      throw Error("cannot check workspace entry '" + host + "'");
    }
  }
}

}  // namespace

void remove_placeholders(const std::vector<Placeholder>& placeholders) {
  for (const auto& p : placeholders) {
    struct stat st;
    if (::lstat(p.host.c_str(), &st) != 0) continue;
    if (p.directory && S_ISDIR(st.st_mode)) ::rmdir(p.host.c_str());  // fails, harmlessly, unless empty
    if (!p.directory && S_ISREG(st.st_mode) && st.st_size == 0) ::unlink(p.host.c_str());
  }
}

bool path_within(const std::string& path, const std::string& root) {
  if (root == "/") return !path.empty() && path[0] == '/';
  return path == root || (path.size() > root.size() && path.compare(0, root.size(), root) == 0 &&
                          path[root.size()] == '/');
}

std::vector<std::string> denied_paths() {
  std::vector<std::string> out;
  const std::string home = paths::home();
  auto add = [&](const std::string& p) {
    // Both spellings: the lexical one catches a path that does not exist yet,
    // the real one a path reached through a symlink.
    out.push_back(normal(p));
    std::string r = resolved(p);
    if (r != out.back()) out.push_back(r);
  };
  for (const char* rel : kHomeDenied) add(home + "/" + rel);
  add(paths::config_dir());
  add(paths::data_dir());
  add(paths::cache_dir());
  add(paths::runtime_dir());  // the broker's agent and approval sockets live here
  // The whole per-user runtime folder: the session bus (systemd-run --user is
  // a way out), gpg-agent, a rootless docker, the display server.
  if (const char* xdg_runtime = std::getenv("XDG_RUNTIME_DIR"); xdg_runtime && *xdg_runtime) add(xdg_runtime);
  for (const char* p : kSystemDenied) add(p);
  return out;
}

FsPlan plan_filesystem(const Profile& profile) {
  const std::vector<std::string> denied = denied_paths();
  FsPlan plan;
  if (!profile.workspace.empty()) {
    plan.binds.push_back(checked_bind(profile.workspace, kJailWorkspace, profile.workspace_writable, denied));
    const std::string workspace_host = plan.binds.back().host;  // a copy: the binds grow below
    if (profile.workspace_writable) protect_workspace_entries(profile, workspace_host, plan);
  }
  for (const auto& ro : profile.readonly_binds) {
    Bind b = checked_bind(ro, "", false, denied);
    for (const char* reserved : {"/usr", "/etc", "/home", "/tmp", "/run", "/workspace", "/bin", "/lib"})
      if (path_within(reserved, b.jail))
        throw Error("read-only path '" + ro + "' would cover the jail's own " + reserved);
    plan.binds.push_back(b);
  }
  // Denied paths inside a (read-only) bind are masked in the jail.
  for (const auto& b : plan.binds)
    for (const auto& d : denied) {
      if (d == b.host || !path_within(d, b.host)) continue;
      struct stat st;
      if (::lstat(d.c_str(), &st) != 0) continue;
      plan.masks.push_back({jail_path_of(b, d), S_ISDIR(st.st_mode)});
    }
  const std::set<Inode> inodes = hard_linked_denied_inodes(denied);
  for (const auto& b : plan.binds) mask_inside_bind(b, inodes, plan.masks);
  return plan;
}

}  // namespace warden::sandbox
