// Fuzzes the GGUF reader: any input must either parse, with every tensor view
// inside the buffer, or throw warden::Error. ASan/UBSan catch the rest.
#include <cstdint>
#include <cstdlib>

#include "gguf/gguf.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    warden::gguf::File f(data, size, "fuzz.gguf");
    for (const auto& t : f.tensors()) {
      auto v = f.view(t);
      if (v.data < data || v.data + t.size > data + size) std::abort();
      volatile uint8_t sink = t.size ? v.data[t.size - 1] : 0;
      (void)sink;
    }
    for (const auto& kv : f.metadata()) (void)kv.first.size();
  } catch (const warden::Error&) {
  }
  return 0;
}
