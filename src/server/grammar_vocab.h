#pragma once
// Adapter from the engine's tokenizer to the grammar module's view of a
// vocabulary (the raw bytes of every token, which tokens may appear in
// constrained text, which end generation). Built once per server.
#include <memory>

#include "grammar/vocab.h"
#include "tokenizer/tokenizer.h"

namespace warden::server {

// Control and unknown tokens are never text; normal, byte and user-defined
// tokens are (a user-defined token such as <tool_call> is ordinary text that
// the tool-call grammar may need to emit). End-of-generation ids end a value.
std::shared_ptr<const grammar::Vocabulary> grammar_vocabulary(const tokenizer::Tokenizer& tok);

}  // namespace warden::server
