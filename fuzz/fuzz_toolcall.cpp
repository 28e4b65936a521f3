// Fuzzes the streaming tool-call parser: arbitrary text, arbitrary chunking
// (taken from the first bytes), all three formats. It must never crash, and
// the result must not depend on the chunking.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "grammar/toolcall.h"

namespace {
struct Result {
  std::string content;
  size_t calls = 0;
  std::string names;
};

Result run(warden::grammar::ToolCallFormat f, std::string_view text, const uint8_t* chunks, size_t n_chunks) {
  warden::grammar::ToolCallParser p(f);
  Result r;
  size_t i = 0, k = 0;
  while (i < text.size()) {
    size_t len = n_chunks ? 1 + chunks[k++ % n_chunks] % 16 : text.size();
    auto d = p.feed(text.substr(i, len));
    r.content += d.content;
    i += len;
  }
  r.content += p.finish().content;
  if (r.content != p.content()) std::abort();
  r.calls = p.tool_calls().size();
  for (const auto& c : p.tool_calls()) r.names += c.name + "\n" + c.arguments + "\n" + c.id + "\n";
  return r;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using warden::grammar::ToolCallFormat;
  size_t n_chunks = size ? data[0] % 8 : 0;
  if (size < 1 + n_chunks) return 0;
  const uint8_t* chunks = data + 1;
  std::string_view text(reinterpret_cast<const char*>(data + 1 + n_chunks), size - 1 - n_chunks);
  for (auto f : {ToolCallFormat::kHermes, ToolCallFormat::kLlama3, ToolCallFormat::kMistral}) {
    Result whole = run(f, text, nullptr, 0);
    Result chunked = run(f, text, chunks, n_chunks);
    if (whole.content != chunked.content || whole.calls != chunked.calls || whole.names != chunked.names)
      std::abort();
  }
  return 0;
}
