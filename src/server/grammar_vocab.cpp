#include "server/grammar_vocab.h"

namespace warden::server {

std::shared_ptr<const grammar::Vocabulary> grammar_vocabulary(const tokenizer::Tokenizer& tok) {
  using tokenizer::TokenType;
  const size_t n = tok.size();
  std::vector<std::string> bytes(n);
  std::vector<bool> is_text(n, false);
  std::vector<int32_t> end_ids;
  for (size_t i = 0; i < n; ++i) {
    const auto id = int32_t(i);
    if (tok.is_end_of_generation(id)) end_ids.push_back(id);
    const TokenType type = tok.type(id);
    if (type == TokenType::Control || type == TokenType::Unknown || type == TokenType::Unused) continue;
    bytes[i] = tok.token_to_piece(id, /*render_special=*/false);
    is_text[i] = !bytes[i].empty();
  }
  return std::make_shared<const grammar::Vocabulary>(std::move(bytes), std::move(is_text), std::move(end_ids));
}

}  // namespace warden::server
