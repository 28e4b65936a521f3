#pragma once
// Splits template source into tokens the way Jinja2's lexer does with
// trim_blocks=True and lstrip_blocks=True: template text becomes Data tokens
// (whitespace control already applied), tag contents become expression
// tokens between *Begin/*End markers. Comments vanish; raw blocks are Data.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace warden::chat::jinja {

enum class TokenType { Data, VariableBegin, VariableEnd, BlockBegin, BlockEnd, Name, String, Integer, Float, Operator, End };

struct Token {
  TokenType type;
  std::string text;  // data, name, operator, or the unescaped string literal
  int line = 1;
  int64_t integer = 0;
  double floating = 0;
};

struct LexOptions {
  bool trim_blocks = true;
  bool lstrip_blocks = true;
  bool keep_trailing_newline = false;
};

// Throws TemplateSyntaxError ("line N: ...") on malformed input.
std::vector<Token> lex(std::string_view source, const LexOptions& options = {});

}  // namespace warden::chat::jinja
