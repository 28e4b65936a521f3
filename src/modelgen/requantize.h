#pragma once
// quantize: rewrite a GGUF file (warden's or llama.cpp's) with its weight
// matrices in another type. 1-D tensors, norms and the MoE router are copied
// unchanged; metadata is copied with general.file_type updated.
#include <string>

#include "modelgen/quant_scheme.h"

namespace warden::modelgen {

struct QuantizeResult {
  size_t tensors = 0;
  size_t converted = 0;   // tensors whose type changed
  size_t fallbacks = 0;   // tensors that got another type because of their row length
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
};

// Throws warden::Error naming the file and tensor for any input it cannot
// convert (unknown or non-numeric tensor types, non-finite weights); the
// output is written atomically, so a failure leaves no file at `out`.
QuantizeResult quantize_file(const std::string& in, const std::string& out, const Scheme& scheme, int threads);

// The same, written to `out_fd` instead (and synced); `out_name` is what
// errors and the progress line call it. For a caller that names the file
// itself (warden quantize converts in a confined child).
QuantizeResult quantize_to(const std::string& in, int out_fd, const std::string& out_name, const Scheme& scheme,
                           int threads);

}  // namespace warden::modelgen
