// Fuzzes the streaming tool-call parser: arbitrary text, arbitrary chunking
// (taken from the first bytes), all three formats. It must never crash, and
// the result must not depend on the chunking.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "chunked_text.h"
#include "grammar/toolcall.h"

namespace {
struct Result {
  std::string content;
  size_t calls = 0;
  std::string names;
};

Result run(warden::grammar::ToolCallFormat f, const ChunkedText& in) {
  warden::grammar::ToolCallParser p(f);
  Result r;
  in.for_each_piece(false, [&](std::string_view piece) { r.content += p.feed(piece).content; });
  r.content += p.finish().content;
  if (r.content != p.content()) std::abort();
  r.calls = p.tool_calls().size();
  for (const auto& c : p.tool_calls()) r.names += c.name + "\n" + c.arguments + "\n" + c.id + "\n";
  return r;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using warden::grammar::ToolCallFormat;
  ChunkedText in;
  if (!in.parse(data, size)) return 0;
  for (auto f : {ToolCallFormat::kHermes, ToolCallFormat::kLlama3, ToolCallFormat::kMistral}) {
    Result whole = run(f, in.whole());
    Result chunked = run(f, in);
    if (whole.content != chunked.content || whole.calls != chunked.calls || whole.names != chunked.names)
      std::abort();
  }
  return 0;
}
