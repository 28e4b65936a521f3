// Start-to-exit latency of `true`: in warden's full "default" profile (with a
// workspace), in the "network" profile (proxy + relay), and in a bare bwrap
// with every namespace unshared, for comparison. Prints p50/p99 in ms.
//
// usage: sandbox_startup_bench [ITERATIONS]   (default 200)
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "sandbox/sandbox.h"

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

void report(const char* name, std::vector<double> samples) {
  std::sort(samples.begin(), samples.end());
  auto pct = [&](double p) { return samples[std::min(samples.size() - 1, size_t(p * double(samples.size())))]; };
  std::printf("%-28s n=%zu  p50 %7.2f ms  p99 %7.2f ms  min %7.2f ms\n", name, samples.size(), pct(0.50), pct(0.99),
              samples.front());
}

std::vector<double> measure(int n, const std::function<void()>& once) {
  once();  // warm-up
  std::vector<double> out;
  for (int i = 0; i < n; i++) {
    auto t = Clock::now();
    once();
    out.push_back(ms_since(t));
  }
  return out;
}

void bare_bwrap() {
  pid_t pid = ::fork();
  if (pid == 0) {
    const char* argv[] = {"/usr/bin/bwrap", "--unshare-all", "--unshare-user", "--die-with-parent",
                          "--ro-bind", "/usr", "/usr", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64",
                          "/lib64", "--symlink", "usr/bin", "/bin", "--proc", "/proc", "--dev", "/dev",
                          "--", "/usr/bin/true", nullptr};
    ::execv(argv[0], const_cast<char**>(argv));
    _exit(127);
  }
  int status;
  ::waitpid(pid, &status, 0);
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 200;
  std::string tmpl = (std::filesystem::temp_directory_path() / "warden-bench-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) return 1;
  using namespace warden::sandbox;
  Profile full = named_profile("default");
  full.workspace = tmpl;
  Profile net = named_profile("network");
  net.workspace = tmpl;
  net.allowed_domains = {"example.com"};
  report("bare bwrap (all unshared)", measure(n, bare_bwrap));
  report("warden default profile", measure(n, [&] { run(full, {"true"}, ""); }));
  report("warden network profile", measure(n, [&] { run(net, {"true"}, ""); }));
  std::filesystem::remove_all(tmpl);
}
