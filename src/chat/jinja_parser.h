#pragma once
// Builds the syntax tree from tokens, following Jinja2's grammar and
// operator precedence. Nesting depth is bounded so hostile templates cannot
// exhaust the stack.
#include <string_view>

#include "chat/jinja_ast.h"
#include "chat/jinja_lexer.h"

namespace warden::chat::jinja {

struct ParseOptions {
  LexOptions lex;
  int max_nesting = 256;  // expression and statement nesting depth
};

// Throws TemplateSyntaxError ("line N: ...").
ParsedTemplate parse(std::string_view source, const ParseOptions& options = {});

}  // namespace warden::chat::jinja
