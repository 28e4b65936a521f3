#pragma once
// Helpers every test can use: a private temporary directory per process
// (also HOME and the XDG folders), paths to shared data and the warden binary,
// and running the binary as a child process.
#include <string>
#include <vector>

namespace warden::test {

// The per-process temporary root; HOME and XDG_* point inside it.
const std::string& temp_root();
// A fresh, empty directory under temp_root().
std::string make_temp_dir(const std::string& hint = "t");
// ../shared/<relative>, skipping the test (GTEST_SKIP in caller) is not done
// here: shared data is required.
std::string shared_path(const std::string& relative);
std::string source_path(const std::string& relative);
std::string warden_binary();

std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& content);

struct RunResult {
  int exit_code = -1;  // -1 when killed by a signal
  std::string out;
  std::string err;
};
// Runs argv (argv[0] is a path) with stdin from `input`; waits for it.
RunResult run(const std::vector<std::string>& argv, const std::string& input = "");
// Convenience: runs the warden binary with these arguments.
RunResult run_warden(const std::vector<std::string>& args, const std::string& input = "");

// The warden binary as a child whose stdin is a pipe the caller keeps
// (closing stdin_fd ends the child's input); stdout and stderr are
// inherited. Throws std::runtime_error when it cannot start.
struct WardenChild {
  int pid = -1;
  int stdin_fd = -1;
};
WardenChild start_warden(const std::vector<std::string>& args);

// One field of a /proc status file ("Seccomp" of /proc/PID/status), its
// value without the leading blanks; "" when absent.
std::string status_field(const std::string& status_file, const std::string& key);

// Whether this is a sanitizer build (ASan or TSan, e.g. -DCMAKE_CXX_FLAGS=
// -fsanitize=thread): their allocators and shadow memory change what malloc's
// statistics and the RSS say, so tests that measure memory use skip that part.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kSanitizedBuild = true;
#elif defined(__has_feature)
inline constexpr bool kSanitizedBuild = __has_feature(address_sanitizer) || __has_feature(thread_sanitizer);
#else
inline constexpr bool kSanitizedBuild = false;
#endif

}  // namespace warden::test
