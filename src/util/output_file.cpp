#include "util/output_file.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include "util/error.h"

namespace warden::output_file {

void check_target(const std::string& out) {
  if (out.empty()) throw Error("the output file name is empty");
  struct stat st {};
  if (::stat(out.c_str(), &st) != 0) {
    if (errno == ENOENT) return;
    throw Error(out + ": " + std::strerror(errno));
  }
  if (S_ISDIR(st.st_mode)) throw Error(out + " is a folder; name the file to write");
  if (!S_ISREG(st.st_mode))
    throw Error(out + " is not a regular file (a device, a FIFO or a socket); name a file to write");
}

int create_beside(const std::string& out, std::string& name) {
  name = out + ".tmp.XXXXXX";
  const int fd = ::mkostemp(name.data(), O_CLOEXEC);
  if (fd < 0) throw Error(out + ": cannot create a file beside it: " + std::strerror(errno));
  const mode_t mask = ::umask(0);
  ::umask(mask);
  ::fchmod(fd, 0666 & ~mask);
  return fd;
}

namespace {

char g_path[PATH_MAX];  // the file a stop signal removes ("" for none)
struct sigaction g_previous[3];
constexpr int kStopSignals[3] = {SIGINT, SIGTERM, SIGHUP};

void remove_and_stop(int sig) {
  if (g_path[0] != '\0') ::unlink(g_path);  // async-signal-safe, as are the calls below
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

}  // namespace

RemovedOnSignal::RemovedOnSignal(const std::string& path) {
  if (path.size() >= sizeof g_path) throw Error(path + ": the path is too long");
  std::memcpy(g_path, path.c_str(), path.size() + 1);
  struct sigaction action {};
  action.sa_handler = remove_and_stop;
  sigemptyset(&action.sa_mask);
  for (int k = 0; k < 3; ++k) ::sigaction(kStopSignals[k], &action, &g_previous[k]);
}

RemovedOnSignal::~RemovedOnSignal() {
  for (int k = 0; k < 3; ++k) ::sigaction(kStopSignals[k], &g_previous[k], nullptr);
  g_path[0] = '\0';
}

}  // namespace warden::output_file
