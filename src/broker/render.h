#pragma once
// Making model-made text safe to show on the human's terminal.
//
// The approval prompt must show the exact effect, but the text comes from
// the model: it may carry ANSI escapes that move the cursor, erase lines or
// recolour the screen, carriage returns that overwrite a line, bidi
// overrides that reorder it, invisible characters (tags, variation
// selectors, fillers) that hide inside a word, or a line that looks like
// warden's own prompt. neutralize() renders every such character visibly
// (ESC -> "\x1b") so what the human reads is exactly what the bytes are.
//
// Escapes, and why each is unambiguous: a literal backslash is shown as
// "\\", so every single backslash in the output starts one of
//   \xNN        a C0/C1-range byte, DEL, or a byte that is not valid UTF-8
//   \r \n       carriage return; newline when it is not kept
//   \t          tab, in neutralize_ascii only (elsewhere a tab stays a tab)
//   \uXXXX      a code point up to U+FFFF (4 lowercase hex digits)
//   \UXXXXXXXX  a code point above U+FFFF (8 lowercase hex digits)
// and the text "\x1b" typed by the model reads "\\x1b", never like an ESC.
#include <cstddef>
#include <string>
#include <string_view>

namespace warden::broker {

// Renders control characters (C0 except tab and, when keep_newlines, '\n';
// DEL; C1), invalid UTF-8 bytes, backslash, and invisible or
// display-changing code points (bidi controls, zero-width characters,
// tags, variation selectors, fillers, private use...) as the visible
// escapes above. The output contains no byte below 0x20 other than '\t'
// and (optionally) '\n'.
std::string neutralize(std::string_view text, bool keep_newlines);

// neutralize(text, false) with every non-ASCII code point escaped as well,
// and tab as "\t": the output is printable ASCII only, so a look-alike letter (Cyrillic "о"
// in "bоb.txt") reads "b\u043eb.txt" and cannot pass for ASCII.
std::string neutralize_ascii(std::string_view text);

// Whether `text` has any byte outside 7-bit ASCII.
bool has_non_ascii(std::string_view text);

// One line of model-made text (newlines escaped), neutralized and kept to
// about head_bytes + tail_bytes of output: a longer one shows its first
// head_bytes and last tail_bytes (tail_bytes may be 0) around
// " ...(N more bytes)... ", N counting the hidden input bytes. Cuts fall
// between whole escapes and characters, never inside one.
struct CappedText {
  std::string text;
  size_t hidden_bytes = 0;  // input bytes not shown; 0 when nothing was cut
};
CappedText neutralize_capped(std::string_view text, size_t head_bytes, size_t tail_bytes, bool ascii_only);

// Neutralized multi-line text, every line prefixed by `gutter`, so no line of
// model-made text can pass for a line warden itself printed.
std::string quote_block(std::string_view text, std::string_view gutter = "  | ");

// quote_block for a prompt that must stay on one screen: at most head_lines
// + tail_lines lines, each capped at line_bytes (neutralize_capped). The
// lines in between become one unquoted line
// "... N lines not shown; <where_to_see_all> ...". An unquoted line cannot
// come from the model: every model-made line starts with the gutter.
struct ExcerptLimits {
  size_t head_lines = 40;
  size_t tail_lines = 10;
  size_t line_bytes = 240;
};
std::string quote_excerpt(std::string_view text, const ExcerptLimits& limits, std::string_view where_to_see_all,
                          std::string_view gutter = "  | ");

}  // namespace warden::broker
