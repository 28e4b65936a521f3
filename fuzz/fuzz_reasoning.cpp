// Fuzzes the reasoning splitter of `warden serve` (model output is
// untrusted): arbitrary text cut into arbitrary pieces. It must never crash;
// the reasoning and content it gives must not depend on the cutting; and
// text that does not start with <think> (whitespace aside) is all content,
// unchanged.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>

#include "chunked_text.h"
#include "server/reasoning.h"

namespace {

std::pair<std::string, std::string> run(bool starts_inside, const ChunkedText& in) {
  warden::server::ReasoningSplitter splitter(starts_inside);
  std::pair<std::string, std::string> out;
  auto take = [&](const warden::server::ReasoningSplitter::Parts& p) {
    out.first += p.reasoning;
    out.second += p.content;
  };
  in.for_each_piece(false, [&](std::string_view piece) { take(splitter.feed(piece)); });
  take(splitter.finish());
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ChunkedText in;
  if (!in.parse(data, size)) return 0;
  for (bool inside : {false, true})
    if (run(inside, in) != run(inside, in.whole())) std::abort();
  const std::string_view text = in.text;
  const size_t start = text.find_first_not_of(" \t\r\n");
  const bool opens = start != std::string_view::npos && text.substr(start, 7) == "<think>";
  if (!opens && run(false, in) != std::make_pair(std::string(), std::string(text))) std::abort();
  return 0;
}
