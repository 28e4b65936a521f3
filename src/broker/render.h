#pragma once
// Making model-made text safe to show on the human's terminal.
//
// The approval prompt must show the exact effect, but the text comes from
// the model: it may carry ANSI escapes that move the cursor, erase lines or
// recolour the screen, carriage returns that overwrite a line, bidi
// overrides that reorder it, or a line that looks like warden's own prompt.
// neutralize() renders every such character visibly (ESC -> "\x1b") so what
// the human reads is exactly what the bytes are.
#include <string>
#include <string_view>

namespace warden::broker {

// Renders control characters (C0 except tab and, when keep_newlines, '\n';
// DEL; C1), invalid UTF-8 bytes, and bidi/zero-width format characters as
// visible escapes: "\x1b", "\r", "\u202e". The output contains no byte below
// 0x20 other than '\t' and (optionally) '\n'.
std::string neutralize(std::string_view text, bool keep_newlines);

// Neutralized multi-line text, every line prefixed by `gutter`, so no line of
// model-made text can pass for a line warden itself printed.
std::string quote_block(std::string_view text, std::string_view gutter = "  | ");

}  // namespace warden::broker
