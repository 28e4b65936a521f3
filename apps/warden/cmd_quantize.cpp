// warden quantize IN OUT TYPE: rewrite a GGUF file's weights in another type.
#include <cstdio>

#include "command.h"
#include "modelgen/quant_scheme.h"
#include "modelgen/requantize.h"

namespace {

struct QuantizeArgs {
  std::string in, out, type;
  int threads = 2;
};

int quantize(const QuantizeArgs& a) {
  const auto scheme = warden::modelgen::parse_scheme(a.type);  // UsageError before reading anything
  const auto r = warden::modelgen::quantize_file(a.in, a.out, scheme, a.threads);
  std::printf("%s: %zu tensors (%zu converted, %zu fell back to another type), %.1f MiB -> %.1f MiB\n",
              a.out.c_str(), r.tensors, r.converted, r.fallbacks, double(r.bytes_in) / (1024.0 * 1024.0),
              double(r.bytes_out) / (1024.0 * 1024.0));
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
