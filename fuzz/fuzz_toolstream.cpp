// Fuzzes the streamed tool-call emitter of `warden serve` (model output is
// untrusted): arbitrary text cut at arbitrary UTF-8 character boundaries
// (chunk lengths from the first bytes), all three formats. It must never
// crash, and what it streams -- each call's name and the concatenation of
// its argument fragments -- and what finish() reports must not depend on the
// chunking.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "chunked_text.h"
#include "server/tool_stream.h"

namespace {

std::string run(warden::grammar::ToolCallFormat f, const ChunkedText& in) {
  warden::server::ToolCallStreamer streamer(f);
  std::vector<std::string> names, arguments;
  auto take = [&](const std::vector<warden::server::ToolCallFragment>& fragments) {
    for (const auto& fr : fragments) {
      if (fr.index >= names.size()) {
        names.resize(fr.index + 1);
        arguments.resize(fr.index + 1);
      }
      if (fr.opens) names[fr.index] = fr.name;
      arguments[fr.index] += fr.arguments;
    }
  };
  // feed() takes whole characters.
  in.for_each_piece(true, [&](std::string_view piece) { take(streamer.feed(piece)); });
  const auto final = streamer.finish();
  take(final.fragments);
  std::string out = final.content + "\n";
  for (size_t c = 0; c < names.size(); c++) out += names[c] + "\n" + arguments[c] + "\n";
  for (const auto& m : final.mismatches) out += m + "\n";
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using warden::grammar::ToolCallFormat;
  ChunkedText in;
  if (!in.parse(data, size)) return 0;
  for (ToolCallFormat f : {ToolCallFormat::kHermes, ToolCallFormat::kLlama3, ToolCallFormat::kMistral})
    if (run(f, in) != run(f, in.whole())) std::abort();
  return 0;
}
