// warden make-model --preset NAME [--type T] [--layers N] [--seed S] [--peaked] OUT
// A GGUF with random weights in the exact shapes of a real model.
#include <cstdio>

#include "command.h"
#include "modelgen/make_model.h"
#include "modelgen/preset.h"
#include "modelgen/quant_scheme.h"

namespace {

int run_make_model(const warden::modelgen::MakeModelOptions& options) {
  const auto result = warden::modelgen::make_model(options);
  std::printf("%s: %zu tensors, %.1f M parameters, %.1f MiB of tensor data\n", options.out.c_str(),
              result.tensor_count, double(result.parameters) / 1e6, double(result.tensor_bytes) / (1024.0 * 1024.0));
  return 0;
}

WARDEN_COMMAND("make-model", "Write a GGUF model with random weights in a real model's shapes", [](CLI::App& app) {
  auto options = std::make_shared<warden::modelgen::MakeModelOptions>();
  app.add_option("--preset", options->preset, "Model shape: " + warden::modelgen::preset_names())->required();
  app.add_option("--type", options->type, "Weight type: " + warden::modelgen::scheme_names())
      ->capture_default_str();
  app.add_option("--layers", options->layers, "Number of layers (default: the preset's)")
      ->check(CLI::Range(int64_t(1), int64_t(1024)));
  app.add_option("--seed", options->seed, "Random seed")
      ->capture_default_str()
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            // Digits only: CLI11 would wrap -1 to 2^64-1 without a word.
            return !text.empty() && text.size() <= 19 && text.find_first_not_of("0123456789") == std::string::npos
                       ? ""
                       : "must be a whole number from 0 to 9999999999999999999";
          },
          "SEED"));
  app.add_flag("--peaked", options->peaked, "Peaked output distribution (greedy decoding robust to quantization)");
  app.add_option("-t,--threads", options->threads, "Threads for quantization")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  app.add_option("out", options->out, "Output GGUF file")->required();
  return [options] { return run_make_model(*options); };
});

}  // namespace
