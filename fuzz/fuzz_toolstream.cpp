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

#include "server/tool_stream.h"

namespace {

std::string run(warden::grammar::ToolCallFormat f, std::string_view text, const uint8_t* chunks, size_t n_chunks) {
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
  size_t i = 0, k = 0;
  while (i < text.size()) {
    size_t len = n_chunks ? 1 + chunks[k++ % n_chunks] % 16 : text.size();
    len = std::min(len, text.size() - i);
    // feed() takes whole characters: never end a chunk before a continuation byte.
    while (i + len < text.size() && (static_cast<uint8_t>(text[i + len]) & 0xC0) == 0x80) len++;
    take(streamer.feed(text.substr(i, len)));
    i += len;
  }
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
  size_t n_chunks = size ? data[0] % 8 : 0;
  if (size < 1 + n_chunks) return 0;
  const uint8_t* chunks = data + 1;
  std::string_view text(reinterpret_cast<const char*>(data + 1 + n_chunks), size - 1 - n_chunks);
  for (ToolCallFormat f : {ToolCallFormat::kHermes, ToolCallFormat::kLlama3, ToolCallFormat::kMistral})
    if (run(f, text, chunks, n_chunks) != run(f, text, nullptr, 0)) std::abort();
  return 0;
}
