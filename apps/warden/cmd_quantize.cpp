// warden quantize IN OUT TYPE: rewrite a GGUF file's weights in another type.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include "command.h"
#include "engine_confinement.h"
#include "modelgen/quant_scheme.h"
#include "modelgen/requantize.h"
#include "util/error.h"
#include "util/output_file.h"

namespace {

using warden::Error;

struct QuantizeArgs {
  std::string in, out, type;
  int threads = 2;
};

// The conversion, in the child: it dies with its parent, reads IN confined
// as `warden inspect` does, writes to the descriptor it was given, and
// sends its summary line up the pipe; its errors end it as any command's
// do (one line, exit 1).
int convert(const QuantizeArgs& a, const warden::modelgen::Scheme& scheme, int out_fd, int summary_fd,
            pid_t parent) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) return 1;  // the parent is gone already
  warden::cli::confine_model_reader(a.in);
  const auto r = warden::modelgen::quantize_to(a.in, out_fd, a.out, scheme, a.threads);  // errors name OUT
  char line[512];
  const int n = std::snprintf(line, sizeof line,
                              "%zu tensors (%zu converted, %zu fell back to another type), %.1f MiB -> %.1f MiB\n",
                              r.tensors, r.converted, r.fallbacks, double(r.bytes_in) / (1024.0 * 1024.0),
                              double(r.bytes_out) / (1024.0 * 1024.0));
  const size_t length = std::min(size_t(std::max(0, n)), sizeof line - 1);  // snprintf counts what did not fit too
  [[maybe_unused]] const ssize_t written = ::write(summary_fd, line, length);
  return 0;
}

// Waits for the child; a SIGINT, SIGTERM or SIGHUP meanwhile (blocked in
// this process since before the fork) kills it first. Returns whether it
// exited 0, its wait status (-1: lost), and the signal that came (0: none).
bool wait_for(pid_t child, const sigset_t& stop_signals, int& status, int& stopped_by) {
  stopped_by = 0;
  for (;;) {
    status = 0;
    const pid_t done = ::waitpid(child, &status, WNOHANG);
    if (done == child) return WIFEXITED(status) && WEXITSTATUS(status) == 0 && !stopped_by;
    if (done < 0 && errno != EINTR) {  // its status is lost: nothing says it finished
      status = -1;
      return false;
    }
    const timespec tick{0, 100 * 1000 * 1000};
    if (const int sig = ::sigtimedwait(&stop_signals, nullptr, &tick); sig > 0 && !stopped_by) {
      stopped_by = sig;
      ::kill(child, SIGKILL);
    }
  }
}

// IN may be a file just downloaded, so a child process parses and converts
// it, confined to reading that file; this process, which parses nothing,
// creates the output beside OUT first and names it OUT only once the child
// succeeded (nothing half-written at OUT, and the child has no way to the
// folder OUT is in).
int quantize(const QuantizeArgs& a) {
  const auto scheme = warden::modelgen::parse_scheme(a.type);  // UsageError before reading anything
  // What is wrong with OUT would only be found by the last step, after the work.
  warden::output_file::check_target(a.out);
  std::error_code same_error;
  if (std::filesystem::equivalent(a.in, a.out, same_error))
    throw Error(a.out + " is the input file; write to another name (the input is still read while the output is "
                "written)");
  std::string tmp;
  const int fd = warden::output_file::create_beside(a.out, tmp);
  int summary[2];
  if (::pipe2(summary, O_CLOEXEC) != 0) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw Error(std::string("cannot start the conversion: ") + std::strerror(errno));
  }
  sigset_t stop_signals, previous;
  sigemptyset(&stop_signals);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&stop_signals, sig);
  ::sigprocmask(SIG_BLOCK, &stop_signals, &previous);
  std::fflush(nullptr);
  ::signal(SIGCHLD, SIG_DFL);  // an ignored SIGCHLD (inherited) would reap the child before waitpid
  const pid_t parent = ::getpid();
  const pid_t child = ::fork();
  if (child == 0) {
    ::sigprocmask(SIG_SETMASK, &previous, nullptr);
    ::close(summary[0]);
    return convert(a, scheme, fd, summary[1], parent);
  }
  const int fork_error = errno;
  ::close(fd);
  ::close(summary[1]);
  int status = 0, stopped_by = 0;
  const bool converted = child > 0 && wait_for(child, stop_signals, status, stopped_by);
  std::string line(512, '\0');
  const ssize_t got = child < 0 ? 0 : ::read(summary[0], line.data(), line.size());
  line.resize(size_t(std::max<ssize_t>(0, got)));
  ::close(summary[0]);
  if (!converted) ::unlink(tmp.c_str());
  ::sigprocmask(SIG_SETMASK, &previous, nullptr);
  if (child < 0) throw Error(std::string("cannot start the conversion: ") + std::strerror(fork_error));
  if (stopped_by) {
    ::signal(stopped_by, SIG_DFL);
    ::raise(stopped_by);  // ended as the signal would have ended it
  }
  if (!converted) {
    if (status == -1) throw Error("lost track of the conversion (" + std::string(std::strerror(ECHILD)) + ")");
    if (WIFSIGNALED(status)) throw Error("the conversion ended by signal " + std::to_string(WTERMSIG(status)));
    return WEXITSTATUS(status);  // the child said why
  }
  if (std::rename(tmp.c_str(), a.out.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    throw Error(a.out + ": cannot move the written file into place: " + std::strerror(e));
  }
  std::printf("%s: %s", a.out.c_str(), line.c_str());
  return 0;
}

WARDEN_COMMAND("quantize", "Convert a GGUF model's weights to another type", [](CLI::App& app) {
  auto args = std::make_shared<QuantizeArgs>();
  app.add_option("in", args->in, "Input GGUF file")->required();
  app.add_option("out", args->out, "Output GGUF file")->required();
  app.add_option("type", args->type, "Target type: " + warden::modelgen::scheme_names())->required();
  app.add_option("-t,--threads", args->threads, "Threads")->capture_default_str()->check(CLI::Range(1, 256));
  return [args] { return quantize(*args); };
});

}  // namespace
