// gtest main for every warden test binary: before any test runs, HOME and the
// XDG folders point into a fresh per-process temporary directory, so no test
// can touch the real home directory or real credentials, and the locale is
// C.UTF-8.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "common/test_env.h"

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  const std::string root = warden::test::temp_root();
  const char* dirs[][2] = {{"HOME", "/home"},
                           {"XDG_CONFIG_HOME", "/home/.config"},
                           {"XDG_DATA_HOME", "/home/.local/share"},
                           {"XDG_CACHE_HOME", "/home/.cache"},
                           {"XDG_STATE_HOME", "/home/.local/state"},
                           {"XDG_RUNTIME_DIR", "/run"}};
  for (auto& d : dirs) {
    std::string path = root + d[1];
    fs::create_directories(path);
    fs::permissions(path, fs::perms::owner_all, fs::perm_options::replace);
    setenv(d[0], path.c_str(), 1);
  }
  // One locale everywhere, since what warden shows depends on whether it
  // names UTF-8 (util/display.h); the tests of other terminals set their own.
  setenv("LC_ALL", "C.UTF-8", 1);
  ::testing::InitGoogleTest(&argc, argv);
  int rc = RUN_ALL_TESTS();
  std::error_code ec;
  if (!std::getenv("WARDEN_KEEP_TEST_TMP")) fs::remove_all(root, ec);
  return rc;
}
