// Fuzzes JSON Schema -> grammar -> matcher: any input either fails to
// compile with warden::Error, or compiles into a grammar where a few
// random steps (chosen from the mask, seeded by the input) are always
// accepted and the forced completion always completes. ASan/UBSan catch
// the rest.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "grammar/json_schema.h"
#include "grammar/matcher.h"
#include "util/error.h"

namespace {
std::shared_ptr<const warden::grammar::Vocabulary> small_vocab() {
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) tokens.push_back(std::string(1, char(b)));
  for (const char* p : {"{\"", "\": ", "\"}", "true", "null", "12", ", \"", "ab", "  ", "[{", "}]", "\xc3\xa9"})
    tokens.push_back(p);
  tokens.push_back("</s>");
  std::vector<bool> is_text(tokens.size(), true);
  is_text.back() = false;
  return std::make_shared<warden::grammar::Vocabulary>(tokens, is_text,
                                                        std::vector<int32_t>{int32_t(tokens.size() - 1)});
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace warden::grammar;
  static auto vocab = small_vocab();
  std::shared_ptr<Grammar> g;
  try {
    g = std::make_shared<Grammar>(grammar_from_json_schema(std::string_view(reinterpret_cast<const char*>(data), size)));
  } catch (const warden::Error&) {
    return 0;
  }
  uint64_t seed = size;
  for (size_t i = 0; i < size; ++i) seed = seed * 1099511628211ull ^ data[i];
  try {
    Matcher m(g, vocab);
    TokenMask mask;
    for (int step = 0; step < 24 && !m.is_finished(); ++step) {
      m.fill_mask(mask);
      std::vector<int32_t> allowed;
      for (size_t id = 0; id < mask.size(); ++id)
        if (mask.test(int32_t(id))) allowed.push_back(int32_t(id));
      if (allowed.empty()) std::abort();  // a dead end: the grammar promised none
      seed = seed * 6364136223846793005ull + 1442695040888963407ull;
      if (!m.accept_token(allowed[(seed >> 33) % allowed.size()])) std::abort();
    }
    if (!m.is_finished()) {
      std::string rest = m.shortest_completion(1 << 16);  // throws when longer
      if (!m.accept_bytes(rest) || !m.is_complete()) std::abort();
    }
  } catch (const warden::Error&) {
    // "too ambiguous" is a clean refusal.
  }
  return 0;
}
