#include "sandbox/fs_plan.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "common/test_env.h"
#include "util/error.h"
#include "util/paths.h"

namespace warden::sandbox {
namespace {

namespace fs = std::filesystem;

bool has_mask(const FsPlan& plan, const std::string& jail) {
  return std::any_of(plan.masks.begin(), plan.masks.end(), [&](const Mask& m) { return m.jail == jail; });
}

TEST(FsPlan, DeniedPathsCoverSecretsAndWardenState) {
  auto denied = denied_paths();
  for (const std::string& p : std::vector<std::string>{paths::home() + "/.ssh", paths::home() + "/.gnupg", paths::home() + "/.aws",
                              paths::home() + "/.config/gcloud", paths::home() + "/.kube", paths::home() + "/.docker",
                              paths::home() + "/.bashrc", paths::home() + "/.mozilla", paths::home() + "/.password-store",
                              paths::config_dir(), paths::data_dir()})
    EXPECT_NE(std::find(denied.begin(), denied.end(), p), denied.end()) << p;
}

TEST(FsPlan, ReadOnlyHomeMasksExistingSecrets) {
  warden::test::write_file(paths::home() + "/.ssh/id_ed25519", "k");
  warden::test::write_file(paths::home() + "/.bashrc", "rc");
  warden::test::write_file(paths::config_dir() + "/policy.toml", "p");
  Profile p = named_profile("readonly");
  p.workspace = paths::home();
  FsPlan plan = plan_filesystem(p);
  ASSERT_EQ(plan.binds.size(), 1u);
  EXPECT_EQ(plan.binds[0].jail, "/workspace");
  EXPECT_FALSE(plan.binds[0].writable);
  EXPECT_TRUE(has_mask(plan, "/workspace/.ssh"));
  EXPECT_TRUE(has_mask(plan, "/workspace/.bashrc"));
  // config_dir may live outside $HOME; when inside, it is masked.
  if (path_within(paths::config_dir(), paths::home())) {
    EXPECT_TRUE(has_mask(plan, "/workspace" + paths::config_dir().substr(paths::home().size())));
  }
}

TEST(FsPlan, HardLinkToSecretIsMasked) {
  warden::test::write_file(paths::home() + "/.ssh/id_rsa", "k");
  std::string ws = warden::test::make_temp_dir("ws");
  fs::create_hard_link(paths::home() + "/.ssh/id_rsa", ws + "/innocent");
  Profile p = named_profile("default");
  p.workspace = ws;
  EXPECT_TRUE(has_mask(plan_filesystem(p), "/workspace/innocent"));
}

TEST(FsPlan, RefusesBindsThatExposeTooMuch) {
  Profile p = named_profile("default");
  for (std::string bad : {std::string("/"), paths::home(), std::string("/proc"), std::string("/nonexistent-path")}) {
    p.workspace = bad;
    EXPECT_THROW(plan_filesystem(p), Error) << bad;
  }
  p.workspace = "";
  p.readonly_binds = {"/usr"};
  EXPECT_THROW(plan_filesystem(p), Error);
  // Nor anything inside the host's /proc, /sys or /dev, nor the per-user
  // runtime folder (session bus, agents, warden's own sockets).
  for (std::string bad : {std::string("/dev/shm"), std::string("/proc/sys"), std::string("/sys/kernel"),
                          std::string(std::getenv("XDG_RUNTIME_DIR"))}) {
    p.readonly_binds = {bad};
    EXPECT_THROW(plan_filesystem(p), Error) << bad;
  }
}

TEST(FsPlan, SocketsInsideBindsAreMasked) {
  // A read-only bind does not stop connect(): a socket in a granted tree
  // (an ssh-agent, a database, warden's approval socket) must not be there.
  std::string ws = warden::test::make_temp_dir("ws");
  fs::create_directories(ws + "/run");
  for (const std::string& path : {ws + "/agent.sock", ws + "/run/approve.sock"}) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << path;
    ::close(fd);
  }
  Profile p = named_profile("default");
  p.workspace = ws;
  FsPlan plan = plan_filesystem(p);
  EXPECT_TRUE(has_mask(plan, "/workspace/agent.sock"));
  EXPECT_TRUE(has_mask(plan, "/workspace/run/approve.sock"));
  p.workspace = "";
  p.readonly_binds = {ws};
  EXPECT_TRUE(has_mask(plan_filesystem(p), ws + "/run/approve.sock"));
}

TEST(FsPlan, PathWithin) {
  EXPECT_TRUE(path_within("/a/b", "/a"));
  EXPECT_TRUE(path_within("/a", "/a"));
  EXPECT_FALSE(path_within("/ab", "/a"));
  EXPECT_TRUE(path_within("/x", "/"));
}

}  // namespace
}  // namespace warden::sandbox
