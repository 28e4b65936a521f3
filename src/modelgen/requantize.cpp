#include "modelgen/requantize.h"

#include <cstdio>
#include <cstring>
#include <functional>

#include "gguf/gguf.h"
#include "modelgen/progress.h"
#include "modelgen/weights.h"
#include "tensor/quant.h"
#include "util/error.h"
#include "util/log.h"

namespace warden::modelgen {
namespace {

// block_count from the metadata, or one past the highest "blk.N." seen.
int64_t layer_count(const gguf::File& f) {
  const std::string arch = f.get_string("general.architecture");
  if (!arch.empty()) {
    const uint64_t n = f.get_uint(arch + ".block_count", 0);
    if (n > 0) return int64_t(n);
  }
  int64_t highest = -1;
  for (const auto& t : f.tensors()) {
    int layer = -1;
    if (std::sscanf(t.name.c_str(), "blk.%d.", &layer) == 1 && layer > highest) highest = layer;
  }
  return highest + 1;
}

int64_t expert_count(const gguf::File& f) {
  const std::string arch = f.get_string("general.architecture");
  return arch.empty() ? 0 : int64_t(f.get_uint(arch + ".expert_count", 0));
}

std::vector<uint8_t> convert_tensor(const gguf::File& f, const gguf::TensorInfo& info, TensorType to, int threads,
                                    Progress& progress) {
  if (!tensor::can_convert(info.type))
    throw Error(f.path() + ": tensor " + info.name + " has type " + std::string(gguf::type_name(info.type)) +
                ", which warden cannot convert");
  const uint8_t* src = f.view(info).data;
  const int64_t n = info.dims[0];
  const size_t src_row = gguf::row_bytes(info.type, n);
  return encode_tensor(
      to, n, info.rows(), threads,
      [&](int64_t row, float* out) {
        tensor::dequantize_row(info.type, src + size_t(row) * src_row, out, n);
        const int64_t bad = tensor::first_non_finite(out, n);
        if (bad >= 0)
          throw Error(f.path() + ": tensor " + info.name + " has a non-finite value (row " + std::to_string(row) +
                      ", column " + std::to_string(bad) + ")");
      },
      &progress);
}

// Converts `in`, then hands the converted file to `write` ("writing
// OUT_NAME" on the progress line) and says what was done.
QuantizeResult convert_file(const std::string& in, const Scheme& scheme, int threads, const std::string& out_name,
                            const std::function<void(const gguf::Writer&)>& write) {
  const gguf::File f(in);
  std::vector<std::string> names;
  uint64_t total_elements = 0;
  for (const auto& t : f.tensors()) {
    names.push_back(t.name);
    total_elements += uint64_t(t.elements());
  }
  TypeChooser chooser(scheme, names, layer_count(f), expert_count(f));

  gguf::Writer writer;
  if (const auto* alignment = f.find("general.alignment")) writer.set_alignment(uint32_t(alignment->as_uint()));
  for (const auto& [key, value] : f.metadata()) writer.set(key, value);
  writer.set("general.file_type", gguf::Value::u32(scheme.file_type));
  writer.set("general.quantization_version", gguf::Value::u32(2));

  Progress progress("quantize " + scheme.name, total_elements);
  QuantizeResult result;
  bool warned_requantize = false;
  for (const auto& info : f.tensors()) {
    progress.set_detail(info.name);
    const auto choice = chooser.choose(info.name, info.dims, info.type);
    if (!choice.fallback_note.empty()) {
      log::warn(choice.fallback_note);
      result.fallbacks++;
    }
    std::vector<uint8_t> data;
    if (choice.type == info.type) {
      const uint8_t* src = f.view(info).data;
      data.assign(src, src + info.size);
      progress.advance(uint64_t(info.elements()));
    } else {
      const bool lossy_source = tensor::can_convert(info.type) && info.type != TensorType::F32 &&
                                info.type != TensorType::F16 && info.type != TensorType::BF16;
      if (lossy_source && !warned_requantize) {
        log::warn(in + ": requantizing already quantized tensors (first: " + info.name +
                  "); quality is lower than quantizing from F32/F16");
        warned_requantize = true;
      }
      data = convert_tensor(f, info, choice.type, threads, progress);
      result.converted++;
    }
    result.bytes_in += info.size;
    result.bytes_out += data.size();
    writer.add_tensor(info.name, info.dims, choice.type, std::move(data));
    result.tensors++;
  }
  progress.set_detail("writing " + out_name);
  write(writer);
  progress.finish();
  return result;
}

}  // namespace

QuantizeResult quantize_file(const std::string& in, const std::string& out, const Scheme& scheme, int threads) {
  return convert_file(in, scheme, threads, out, [&](const gguf::Writer& writer) { writer.write(out); });
}

QuantizeResult quantize_to(const std::string& in, int out_fd, const std::string& out_name, const Scheme& scheme,
                           int threads) {
  return convert_file(in, scheme, threads, out_name,
                      [&](const gguf::Writer& writer) { writer.write_to(out_fd, out_name); });
}

}  // namespace warden::modelgen
