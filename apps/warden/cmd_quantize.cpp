// warden quantize IN OUT TYPE: rewrite a GGUF file's weights in another type.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "command.h"
#include "engine_confinement.h"
#include "modelgen/quant_scheme.h"
#include "modelgen/requantize.h"
#include "util/error.h"

namespace {

struct QuantizeArgs {
  std::string in, out, type;
  int threads = 2;
};

// The conversion, in the child: it reads IN confined as `warden inspect`
// does and writes to the descriptor it was given; its errors end it as any
// command's do (one line, exit 1).
int convert(const QuantizeArgs& a, const warden::modelgen::Scheme& scheme, int out_fd, const std::string& tmp) {
  warden::cli::confine_model_reader(a.in);
  const auto r = warden::modelgen::quantize_to(a.in, out_fd, tmp, scheme, a.threads);
  std::printf("%s: %zu tensors (%zu converted, %zu fell back to another type), %.1f MiB -> %.1f MiB\n",
              a.out.c_str(), r.tensors, r.converted, r.fallbacks, double(r.bytes_in) / (1024.0 * 1024.0),
              double(r.bytes_out) / (1024.0 * 1024.0));
  return 0;
}

// IN may be a file just downloaded, so a child process parses and converts
// it, confined to reading that file; this process, which parses nothing,
// opens the output beside OUT first and names it OUT only once the child
// succeeded (nothing half-written at OUT, and the child has no way to the
// folder OUT is in).
int quantize(const QuantizeArgs& a) {
  using warden::Error;
  const auto scheme = warden::modelgen::parse_scheme(a.type);  // UsageError before reading anything
  const std::string tmp = a.out + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) throw Error(tmp + ": cannot create: " + std::strerror(errno));
  std::fflush(nullptr);
  const pid_t child = ::fork();
  if (child < 0) {
    const int e = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    throw Error(std::string("cannot start the conversion: ") + std::strerror(e));
  }
  if (child == 0) return convert(a, scheme, fd, tmp);
  ::close(fd);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    ::unlink(tmp.c_str());
    if (WIFSIGNALED(status)) throw Error("the conversion ended by signal " + std::to_string(WTERMSIG(status)));
    return WEXITSTATUS(status);  // the child said why
  }
  if (std::rename(tmp.c_str(), a.out.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    throw Error(a.out + ": cannot move the written file into place: " + std::strerror(e));
  }
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
