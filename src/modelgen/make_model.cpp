#include "modelgen/make_model.h"

#include <unistd.h>

#include "gguf/gguf.h"
#include "modelgen/metadata.h"
#include "modelgen/progress.h"
#include "modelgen/vocab.h"
#include "modelgen/weights.h"
#include "util/output_file.h"
#include "util/error.h"
#include "util/log.h"

namespace warden::modelgen {
namespace {

constexpr int64_t kMaxLayers = 1024;

// The writer keeps every tensor in memory until it writes the file.
void check_fits_in_memory(const ModelPlan& plan, const std::string& out) {
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page_size = ::sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page_size <= 0) return;
  const double physical = double(pages) * double(page_size);
  const double needed = double(plan.total_bytes());
  if (needed > 0.75 * physical)
    throw Error(out + ": the model would be " + std::to_string(uint64_t(needed / (1 << 20))) +
                " MiB, more than this machine's memory allows (" + std::to_string(uint64_t(physical / (1 << 20))) +
                " MiB); use --layers to cut it or a smaller --type");
}

}  // namespace

MakeModelResult make_model(const MakeModelOptions& o) {
  const Preset& preset = find_preset(o.preset);
  const Scheme scheme = parse_scheme(o.type);
  if (o.layers < 0 || o.layers > kMaxLayers)
    throw UsageError("--layers must be between 1 and " + std::to_string(kMaxLayers));
  if (o.threads < 1) throw UsageError("--threads must be at least 1");
  if (o.out.empty()) throw UsageError("no output file given");
  output_file::check_target(o.out);  // before the work, not after it

  const ModelPlan plan = build_plan(preset, scheme, o.layers, o.peaked);
  check_fits_in_memory(plan, o.out);
  for (const auto& t : plan.tensors)
    if (!t.fallback_note.empty()) log::warn(t.fallback_note);

  const Vocab vocab = build_vocab(preset.vocab, preset.n_vocab, preset.n_reserved_special);
  std::vector<bool> normal_token(vocab.types.size());
  for (size_t i = 0; i < vocab.types.size(); i++) normal_token[i] = vocab.types[i] == kNormal;

  gguf::Writer writer;
  for (auto& [key, value] : model_metadata(plan, o.seed)) writer.set(key, std::move(value));
  for (auto& [key, value] : tokenizer_metadata(vocab)) writer.set(key, std::move(value));

  const WeightGenerator generator(plan, o.seed, normal_token);
  Progress progress("make-model " + preset.name + " " + scheme.name, plan.parameter_count());
  MakeModelResult result;
  for (const auto& t : plan.tensors) {
    progress.set_detail(t.name);
    auto data = encode_tensor(t.type, t.dims[0], t.rows(), o.threads,
                              [&](int64_t row, float* out) { generator.row(t, row, out); }, &progress);
    writer.add_tensor(t.name, t.dims, t.type, std::move(data));
    result.tensor_bytes += t.bytes;
    result.tensor_count++;
  }
  progress.set_detail("writing " + o.out);
  writer.write(o.out);
  progress.finish();
  result.parameters = plan.parameter_count();
  return result;
}

}  // namespace warden::modelgen
