#include "chat/jinja_lexer.h"

#include <cctype>
#include <cerrno>
#include <cstdlib>

#include "chat/jinja_error.h"
#include "chat/jinja_text.h"

namespace warden::chat::jinja {

namespace {

[[noreturn]] void syntax_error(int line, const std::string& message) {
  throw TemplateSyntaxError("line " + std::to_string(line) + ": " + message);
}

bool is_ascii_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || (c >= '0' && c <= '9'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

int count_newlines(std::string_view s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

// Jinja2 turns \r\n and \r into \n and, by default, drops one trailing newline.
std::string normalize_source(std::string_view source, bool keep_trailing_newline) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out.push_back(source[i]);
    }
  }
  if (!keep_trailing_newline && !out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// Python's "whitespace only" test on the text between the last newline and a tag.
bool all_python_space(std::string_view s) {
  if (s.empty()) return false;
  for (char32_t c : text::decode(s))
    if (!text::is_space(c)) return false;
  return true;
}

// Python str.rstrip() on the text before a "-" tag.
std::string_view rstrip_python(std::string_view s) {
  std::string stripped = text::strip(s, false, true);
  return s.substr(0, stripped.size());
}

// Skips Python whitespace forward (after a "-" tag end).
size_t skip_python_space(std::string_view s, size_t pos) {
  while (pos < s.size()) {
    if (is_ascii_space(s[pos])) { ++pos; continue; }
    // Multi-byte Unicode whitespace, decoded one code point at a time.
    size_t n = 1;
    unsigned char c = static_cast<unsigned char>(s[pos]);
    if (c < 0x80) break;
    if ((c & 0xE0) == 0xC0) n = 2;
    else if ((c & 0xF0) == 0xE0) n = 3;
    else if ((c & 0xF8) == 0xF0) n = 4;
    if (pos + n > s.size()) break;
    std::u32string u = text::decode(s.substr(pos, n));
    if (u.size() != 1 || !text::is_space(u[0])) break;
    pos += n;
  }
  return pos;
}

// Unescapes a Python string literal body (Jinja2 uses "unicode-escape").
std::string unescape(std::string_view body, int line) {
  std::string out;
  out.reserve(body.size());
  for (size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (c != '\\' || i + 1 >= body.size()) { out.push_back(c); continue; }
    char e = body[++i];
    auto hex_escape = [&](size_t digits) {
      std::string hex(body.substr(i + 1, digits));
      if (hex.size() != digits) syntax_error(line, "truncated \\" + std::string(1, e) + " escape in string literal");
      for (char h : hex)
        if (!std::isxdigit(static_cast<unsigned char>(h)))
          syntax_error(line, "truncated \\" + std::string(1, e) + " escape in string literal");
      unsigned long cp = std::strtoul(hex.c_str(), nullptr, 16);
      if (cp > 0x10FFFF) syntax_error(line, "illegal Unicode character in string literal");
      std::u32string one(1, static_cast<char32_t>(cp));
      out += text::encode(one);
      i += digits;
    };
    switch (e) {
      case '\n': break;
      case '\\': out.push_back('\\'); break;
      case '\'': out.push_back('\''); break;
      case '"': out.push_back('"'); break;
      case 'a': out.push_back('\a'); break;
      case 'b': out.push_back('\b'); break;
      case 'f': out.push_back('\f'); break;
      case 'n': out.push_back('\n'); break;
      case 'r': out.push_back('\r'); break;
      case 't': out.push_back('\t'); break;
      case 'v': out.push_back('\v'); break;
      case 'x': hex_escape(2); break;
      case 'u': hex_escape(4); break;
      case 'U': hex_escape(8); break;
      case 'N': syntax_error(line, "\\N{...} escapes are not supported in string literals");
      default:
        if (e >= '0' && e <= '7') {
          unsigned cp = 0;
          size_t n = 0;
          while (n < 3 && i < body.size() && body[i] >= '0' && body[i] <= '7') {
            cp = cp * 8 + static_cast<unsigned>(body[i] - '0');
            ++i;
            ++n;
          }
          --i;
          std::u32string one(1, static_cast<char32_t>(cp));
          out += text::encode(one);
        } else {
          out.push_back('\\');
          out.push_back(e);
        }
    }
  }
  return out;
}

class Lexer {
 public:
  Lexer(std::string_view source, const LexOptions& options)
      : src_(normalize_source(source, options.keep_trailing_newline)), opt_(options) {}

  std::vector<Token> run() {
    while (pos_ < src_.size()) {
      size_t start = find_tag_start(pos_);
      if (start == std::string::npos) {
        emit_data(std::string_view(src_).substr(pos_), count_newlines(std::string_view(src_).substr(pos_)));
        pos_ = src_.size();
        break;
      }
      lex_tag(start);
    }
    tokens_.push_back({TokenType::End, "", line_});
    return std::move(tokens_);
  }

 private:
  size_t find_tag_start(size_t from) const {
    for (size_t i = src_.find('{', from); i != std::string::npos; i = src_.find('{', i + 1))
      if (i + 1 < src_.size() && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
    return std::string::npos;
  }

  void emit_data(std::string_view data, int newlines_in_original) {
    if (!data.empty()) tokens_.push_back({TokenType::Data, std::string(data), line_});
    line_ += newlines_in_original;
  }

  // Applies "-" stripping or lstrip_blocks to the text before a tag.
  std::string_view adjust_text_before_tag(std::string_view text, char sign, bool is_variable, bool line_starting) const {
    if (sign == '-') return rstrip_python(text);
    if (sign != '+' && opt_.lstrip_blocks && !is_variable) {
      size_t last_newline = text.rfind('\n');
      size_t l_pos = last_newline == std::string_view::npos ? 0 : last_newline + 1;
      if ((l_pos > 0 || line_starting) && all_python_space(text.substr(l_pos))) return text.substr(0, l_pos);
    }
    return text;
  }

  // After "%}" (or "#}"): "-" eats all whitespace, else trim_blocks eats one newline.
  size_t after_block_end(size_t pos, char sign) const {
    if (sign == '-') return skip_python_space(src_, pos);
    if (sign != '+' && opt_.trim_blocks && pos < src_.size() && src_[pos] == '\n') return pos + 1;
    return pos;
  }

  // Matches {%[-+]?\s*raw\s*-?%} at `start`; returns the end or npos.
  size_t match_raw_begin(size_t start, char& end_sign) const {
    size_t p = start + 2;
    if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) ++p;
    while (p < src_.size() && is_ascii_space(src_[p])) ++p;
    if (src_.compare(p, 3, "raw") != 0) return std::string::npos;
    p += 3;
    while (p < src_.size() && is_ascii_space(src_[p])) ++p;
    end_sign = 0;
    if (src_.compare(p, 3, "-%}") == 0) { end_sign = '-'; return p + 3; }
    if (src_.compare(p, 2, "%}") == 0) return p + 2;
    return std::string::npos;
  }

  void lex_tag(size_t start) {
    char kind = src_[start + 1];
    char sign = (start + 2 < src_.size() && (src_[start + 2] == '-' || src_[start + 2] == '+')) ? src_[start + 2] : 0;
    bool line_starting = pos_ == 0 || src_[pos_ - 1] == '\n';
    std::string_view text = std::string_view(src_).substr(pos_, start - pos_);
    emit_data(adjust_text_before_tag(text, sign, kind == '{', line_starting), count_newlines(text));
    if (kind == '#') return lex_comment(start, sign);
    char raw_end_sign = 0;
    size_t raw_end = kind == '%' ? match_raw_begin(start, raw_end_sign) : std::string::npos;
    if (raw_end != std::string::npos) return lex_raw(start, raw_end, raw_end_sign);
    lex_expression_tag(start, kind, sign);
  }

  void lex_comment(size_t start, char sign) {
    size_t body = start + 2 + (sign ? 1 : 0);
    size_t close = src_.find("#}", body);
    if (close == std::string::npos) syntax_error(line_, "missing end of comment tag");
    char end_sign = (close > body && (src_[close - 1] == '-' || src_[close - 1] == '+')) ? src_[close - 1] : 0;
    line_ += count_newlines(std::string_view(src_).substr(start, close - start));
    size_t after = after_block_end(close + 2, end_sign);
    line_ += count_newlines(std::string_view(src_).substr(close + 2, after - close - 2));
    pos_ = after;
  }

  void lex_raw(size_t start, size_t body, char begin_end_sign) {
    line_ += count_newlines(std::string_view(src_).substr(start, body - start));
    if (begin_end_sign == '-') {
      size_t skipped = skip_python_space(src_, body);
      line_ += count_newlines(std::string_view(src_).substr(body, skipped - body));
      body = skipped;
    }
    // Find {%[-+]?\s*endraw\s*(+%}|-%}|%})
    for (size_t at = src_.find("{%", body); at != std::string::npos; at = src_.find("{%", at + 1)) {
      size_t p = at + 2;
      char sign = 0;
      if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) sign = src_[p++];
      while (p < src_.size() && is_ascii_space(src_[p])) ++p;
      if (src_.compare(p, 6, "endraw") != 0) continue;
      p += 6;
      while (p < src_.size() && is_ascii_space(src_[p])) ++p;
      char end_sign = 0;
      if (src_.compare(p, 3, "-%}") == 0 || src_.compare(p, 3, "+%}") == 0) { end_sign = src_[p]; p += 3; }
      else if (src_.compare(p, 2, "%}") == 0) p += 2;
      else continue;
      std::string_view content = std::string_view(src_).substr(body, at - body);
      bool line_starting = body == 0 || src_[body - 1] == '\n';
      emit_data(adjust_text_before_tag(content, sign, false, line_starting), count_newlines(content));
      line_ += count_newlines(std::string_view(src_).substr(at, p - at));
      size_t after = after_block_end(p, end_sign);
      line_ += count_newlines(std::string_view(src_).substr(p, after - p));
      pos_ = after;
      return;
    }
    syntax_error(line_, "missing end of raw directive");
  }

  void lex_expression_tag(size_t start, char kind, char sign) {
    bool is_block = kind == '%';
    tokens_.push_back({is_block ? TokenType::BlockBegin : TokenType::VariableBegin, "", line_});
    size_t p = start + 2 + (sign ? 1 : 0);
    std::vector<char> brackets;
    for (;;) {
      while (p < src_.size() && is_ascii_space(src_[p])) {
        if (src_[p] == '\n') ++line_;
        ++p;
      }
      if (p >= src_.size())
        syntax_error(line_, std::string("unexpected end of template, expected '") + (is_block ? "%}" : "}}") + "'");
      if (brackets.empty()) {
        size_t end = match_tag_end(p, is_block);
        if (end != std::string::npos) {
          tokens_.push_back({is_block ? TokenType::BlockEnd : TokenType::VariableEnd, "", line_});
          char end_sign = (src_[p] == '-' || src_[p] == '+') ? src_[p] : 0;
          size_t after = is_block ? after_block_end(end, end_sign)
                                  : (end_sign == '-' ? skip_python_space(src_, end) : end);
          line_ += count_newlines(std::string_view(src_).substr(end, after - end));
          pos_ = after;
          return;
        }
      }
      p = lex_one_token(p, brackets);
    }
  }

  size_t match_tag_end(size_t p, bool is_block) const {
    const char* close = is_block ? "%}" : "}}";
    if (src_.compare(p, 2, close) == 0) return p + 2;
    if (src_[p] == '-' && src_.compare(p + 1, 2, close) == 0) return p + 3;
    if (is_block && src_[p] == '+' && src_.compare(p + 1, 2, close) == 0) return p + 3;
    return std::string::npos;
  }

  size_t lex_one_token(size_t p, std::vector<char>& brackets) {
    char c = src_[p];
    if (is_name_start(c)) {
      size_t e = p;
      while (e < src_.size() && is_name_char(src_[e])) ++e;
      tokens_.push_back({TokenType::Name, src_.substr(p, e - p), line_});
      return e;
    }
    if (is_digit(c)) return lex_number(p);
    if (c == '\'' || c == '"') return lex_string(p);
    static const char* two_char_ops[] = {"//", "**", "==", "!=", "<=", ">="};
    for (const char* op : two_char_ops) {
      if (src_.compare(p, 2, op) == 0) {
        tokens_.push_back({TokenType::Operator, op, line_});
        return p + 2;
      }
    }
    static const std::string one_char_ops = "+-*/%~<>=.,:|()[]{};";
    if (one_char_ops.find(c) == std::string::npos)
      syntax_error(line_, std::string("unexpected character '") + c + "'");
    if (c == '(' || c == '[' || c == '{') brackets.push_back(c);
    if (c == ')' || c == ']' || c == '}') {
      char open = c == ')' ? '(' : c == ']' ? '[' : '{';
      if (brackets.empty()) syntax_error(line_, std::string("unexpected '") + c + "'");
      if (brackets.back() != open)
        syntax_error(line_, std::string("unexpected '") + c + "', expected closing for '" + brackets.back() + "'");
      brackets.pop_back();
    }
    tokens_.push_back({TokenType::Operator, std::string(1, c), line_});
    return p + 1;
  }

  size_t scan_digits(size_t p) const {
    // \d+(_\d+)*
    while (p < src_.size() && is_digit(src_[p])) {
      ++p;
      if (p + 1 < src_.size() && src_[p] == '_' && is_digit(src_[p + 1])) ++p;
    }
    return p;
  }

  size_t lex_number(size_t p) {
    size_t e = scan_digits(p);
    bool after_dot = p > 0 && src_[p - 1] == '.';  // "x.0.1" keeps integers
    bool is_float = false;
    if (!after_dot) {
      size_t q = e;
      if (q + 1 < src_.size() && src_[q] == '.' && is_digit(src_[q + 1])) {
        q = scan_digits(q + 1);
        is_float = true;
      }
      if (q < src_.size() && (src_[q] == 'e' || src_[q] == 'E')) {
        size_t r = q + 1;
        if (r < src_.size() && (src_[r] == '+' || src_[r] == '-')) ++r;
        if (r < src_.size() && is_digit(src_[r])) {
          q = scan_digits(r);
          is_float = true;
        }
      }
      if (is_float) e = q;
    }
    std::string literal;
    for (size_t i = p; i < e; ++i)
      if (src_[i] != '_') literal.push_back(src_[i]);
    Token t{is_float ? TokenType::Float : TokenType::Integer, literal, line_};
    errno = 0;
    if (is_float) {
      t.floating = std::strtod(literal.c_str(), nullptr);
    } else {
      t.integer = std::strtoll(literal.c_str(), nullptr, 10);
      if (errno == ERANGE) syntax_error(line_, "integer literal too large: " + literal);
    }
    tokens_.push_back(std::move(t));
    return e;
  }

  size_t lex_string(size_t p) {
    char quote = src_[p];
    size_t i = p + 1;
    while (i < src_.size() && src_[i] != quote) {
      if (src_[i] == '\\') ++i;
      ++i;
    }
    if (i >= src_.size()) syntax_error(line_, "unterminated string literal");
    std::string_view body = std::string_view(src_).substr(p + 1, i - p - 1);
    tokens_.push_back({TokenType::String, unescape(body, line_), line_});
    line_ += count_newlines(body);
    return i + 1;
  }

  std::string src_;
  LexOptions opt_;
  size_t pos_ = 0;
  int line_ = 1;
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> lex(std::string_view source, const LexOptions& options) { return Lexer(source, options).run(); }

}  // namespace warden::chat::jinja
