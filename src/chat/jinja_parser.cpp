#include "chat/jinja_parser.h"

#include <initializer_list>

#include "chat/jinja_builtins.h"
#include "chat/jinja_error.h"

namespace warden::chat::jinja {

namespace {

const char* token_description(const Token& t) {
  switch (t.type) {
    case TokenType::Data: return "template data";
    case TokenType::VariableBegin: return "'{{'";
    case TokenType::VariableEnd: return "end of print statement";
    case TokenType::BlockBegin: return "'{%'";
    case TokenType::BlockEnd: return "end of statement block";
    case TokenType::Name: return "name";
    case TokenType::String: return "string";
    case TokenType::Integer: return "integer";
    case TokenType::Float: return "float";
    case TokenType::Operator: return "operator";
    case TokenType::End: return "end of template";
  }
  return "token";
}

class Parser {
 public:
  Parser(std::vector<Token> tokens, const ParseOptions& options) : tokens_(std::move(tokens)), opt_(options) {}

  ParsedTemplate run() {
    ParsedTemplate t;
    std::string end_tag;
    t.body = parse_body({}, end_tag);
    return t;
  }

 private:
  // ---- token stream -------------------------------------------------------
  const Token& cur() const { return tokens_[pos_]; }
  const Token& peek(size_t ahead = 1) const {
    size_t i = pos_ + ahead;
    return i < tokens_.size() ? tokens_[i] : tokens_.back();
  }
  void next() {
    if (pos_ + 1 < tokens_.size()) ++pos_;
  }
  bool is_op(const char* op) const { return cur().type == TokenType::Operator && cur().text == op; }
  bool is_name(const char* name) const { return cur().type == TokenType::Name && cur().text == name; }
  bool skip_op(const char* op) {
    if (!is_op(op)) return false;
    next();
    return true;
  }
  bool skip_name(const char* name) {
    if (!is_name(name)) return false;
    next();
    return true;
  }

  [[noreturn]] void fail(const std::string& message) const {
    throw TemplateSyntaxError("line " + std::to_string(cur().line) + ": " + message);
  }
  [[noreturn]] void fail_unexpected(const std::string& expected) const {
    std::string got = cur().type == TokenType::Name || cur().type == TokenType::Operator
                          ? "'" + cur().text + "'"
                          : token_description(cur());
    fail("expected " + expected + ", got " + got);
  }
  void expect_op(const char* op) {
    if (!skip_op(op)) fail_unexpected(std::string("'") + op + "'");
  }
  void expect_name_keyword(const char* name) {
    if (!skip_name(name)) fail_unexpected(std::string("'") + name + "'");
  }
  std::string expect_name() {
    if (cur().type != TokenType::Name) fail_unexpected("a name");
    std::string n = cur().text;
    next();
    return n;
  }
  void expect_block_end() {
    if (cur().type != TokenType::BlockEnd) fail_unexpected("end of statement block");
    next();
  }

  struct DepthGuard {
    Parser& p;
    explicit DepthGuard(Parser& parser) : p(parser) {
      if (++p.depth_ > p.opt_.max_nesting) p.fail("template nesting too deep");
    }
    ~DepthGuard() { --p.depth_; }
  };

  // Left-deep chains (a + b + c, x|f|g, a.b.c) are built in loops, not by
  // recursion; each link still adds a level the evaluator will recurse
  // through, so each link counts against the nesting limit.
  struct ChainGuard {
    Parser& p;
    int links = 0;
    explicit ChainGuard(Parser& parser) : p(parser) {}
    void link() {
      ++links;
      if (++p.depth_ > p.opt_.max_nesting) p.fail("template nesting too deep");
    }
    ~ChainGuard() { p.depth_ -= links; }
  };

  ExprPtr make(Expr::Kind kind, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line;
    return e;
  }
  NodePtr make_node(Node::Kind kind, int line) {
    auto n = std::make_unique<Node>();
    n->kind = kind;
    n->line = line;
    return n;
  }

  // ---- statements ---------------------------------------------------------

  // Parses nodes until a block tag whose name is in end_tags (left unconsumed
  // except for the name; end_tag receives it). Empty end_tags: until End.
  Body parse_body(std::initializer_list<const char*> end_tags, std::string& end_tag) {
    DepthGuard guard(*this);
    Body body;
    for (;;) {
      const Token& t = cur();
      if (t.type == TokenType::End) {
        if (end_tags.size() == 0) return body;
        std::string names;
        for (const char* n : end_tags) names += (names.empty() ? "'" : " or '") + std::string(n) + "'";
        fail("unexpected end of template, expected " + names);
      }
      if (t.type == TokenType::Data) {
        auto n = make_node(Node::Kind::Data, t.line);
        n->text = t.text;
        body.push_back(std::move(n));
        next();
      } else if (t.type == TokenType::VariableBegin) {
        next();
        auto n = make_node(Node::Kind::Print, cur().line);
        n->expr = parse_tuple(true, {}, false);
        if (cur().type != TokenType::VariableEnd) fail_unexpected("end of print statement");
        next();
        body.push_back(std::move(n));
      } else if (t.type == TokenType::BlockBegin) {
        next();
        if (cur().type != TokenType::Name) fail_unexpected("a statement name");
        for (const char* n : end_tags) {
          if (cur().text == n) {
            end_tag = n;
            next();
            return body;
          }
        }
        body.push_back(parse_statement());
      } else {
        fail(std::string("unexpected ") + token_description(t));
      }
    }
  }

  NodePtr parse_statement() {
    const std::string& tag = cur().text;
    int line = cur().line;
    if (tag == "if") return parse_if(line);
    if (tag == "for") return parse_for(line);
    if (tag == "set") return parse_set(line);
    if (tag == "macro") return parse_macro(line);
    if (tag == "call") return parse_call_block(line);
    if (tag == "filter") return parse_filter_block(line);
    if (tag == "with") return parse_with(line);
    if (tag == "break" || tag == "continue") {
      if (loop_depth_ == 0) fail("'" + tag + "' outside of a loop");
      auto n = make_node(tag == "break" ? Node::Kind::Break : Node::Kind::Continue, line);
      next();
      expect_block_end();
      return n;
    }
    fail("unknown or unexpected tag '" + tag + "'");
  }

  NodePtr parse_if(int line) {
    next();  // if
    auto n = make_node(Node::Kind::If, line);
    for (;;) {
      ExprPtr cond = parse_tuple(false, {}, false);
      expect_block_end();
      std::string end;
      Body body = parse_body({"elif", "else", "endif"}, end);
      n->branches.emplace_back(std::move(cond), std::move(body));
      if (end == "elif") continue;
      if (end == "else") {
        expect_block_end();
        n->else_body = parse_body({"endif"}, end);
      }
      expect_block_end();
      return n;
    }
  }

  Target parse_assign_names(bool allow_attribute) {
    Target t;
    bool parens = skip_op("(");
    t.names.push_back(expect_name());
    if (allow_attribute && !parens && is_op(".")) {
      next();
      t.attribute = expect_name();
      return t;
    }
    while (skip_op(",")) {
      if (cur().type != TokenType::Name || is_name("in")) break;
      t.names.push_back(expect_name());
    }
    if (parens) expect_op(")");
    return t;
  }

  NodePtr parse_for(int line) {
    next();  // for
    auto n = make_node(Node::Kind::For, line);
    n->target = parse_assign_names(false);
    expect_name_keyword("in");
    n->expr = parse_tuple(false, {"recursive"}, false);
    if (skip_name("if")) n->condition = parse_expression(true);
    if (skip_name("recursive")) n->recursive = true;
    expect_block_end();
    std::string end;
    ++loop_depth_;
    n->body = parse_body({"endfor", "else"}, end);
    --loop_depth_;
    if (end == "else") {
      expect_block_end();
      n->else_body = parse_body({"endfor"}, end);
    }
    expect_block_end();
    return n;
  }

  NodePtr parse_set(int line) {
    next();  // set
    Target target = parse_assign_names(true);
    if (skip_op("=")) {
      auto n = make_node(Node::Kind::Set, line);
      n->target = std::move(target);
      n->expr = parse_tuple(true, {}, false);
      expect_block_end();
      return n;
    }
    auto n = make_node(Node::Kind::SetBlock, line);
    if (!target.attribute.empty() || target.names.size() != 1) fail("a block set assigns one plain name");
    n->target = std::move(target);
    while (skip_op("|")) n->filters.push_back(parse_filter(nullptr));
    expect_block_end();
    std::string end;
    int saved_loop_depth = loop_depth_;
    loop_depth_ = 0;
    n->body = parse_body({"endset"}, end);
    loop_depth_ = saved_loop_depth;
    expect_block_end();
    return n;
  }

  std::vector<MacroParam> parse_signature() {
    std::vector<MacroParam> params;
    expect_op("(");
    while (!is_op(")")) {
      if (!params.empty()) expect_op(",");
      if (is_op(")")) break;
      MacroParam p;
      p.name = expect_name();
      if (skip_op("=")) p.default_value = parse_expression(true);
      params.push_back(std::move(p));
    }
    expect_op(")");
    return params;
  }

  NodePtr parse_macro(int line) {
    next();  // macro
    auto n = make_node(Node::Kind::Macro, line);
    n->text = expect_name();
    n->params = parse_signature();
    expect_block_end();
    std::string end;
    int saved_loop_depth = loop_depth_;
    loop_depth_ = 0;
    n->body = parse_body({"endmacro"}, end);
    loop_depth_ = saved_loop_depth;
    if (cur().type == TokenType::Name) next();  // optional "{% endmacro name %}"
    expect_block_end();
    return n;
  }

  NodePtr parse_call_block(int line) {
    next();  // call
    auto n = make_node(Node::Kind::CallBlock, line);
    if (is_op("(")) n->params = parse_signature();
    n->expr = parse_expression(true);
    if (n->expr->kind != Expr::Kind::Call) fail("expected a call after 'call'");
    expect_block_end();
    std::string end;
    int saved_loop_depth = loop_depth_;
    loop_depth_ = 0;
    n->body = parse_body({"endcall"}, end);
    loop_depth_ = saved_loop_depth;
    expect_block_end();
    return n;
  }

  NodePtr parse_filter_block(int line) {
    next();  // filter
    auto n = make_node(Node::Kind::FilterBlock, line);
    n->filters.push_back(parse_filter(nullptr));
    while (skip_op("|")) n->filters.push_back(parse_filter(nullptr));
    expect_block_end();
    std::string end;
    n->body = parse_body({"endfilter"}, end);
    expect_block_end();
    return n;
  }

  NodePtr parse_with(int line) {
    next();  // with
    auto n = make_node(Node::Kind::With, line);
    while (cur().type != TokenType::BlockEnd) {
      if (!n->assignments.empty()) expect_op(",");
      std::string name = expect_name();
      expect_op("=");
      n->assignments.emplace_back(name, parse_expression(true));
    }
    expect_block_end();
    std::string end;
    n->body = parse_body({"endwith"}, end);
    expect_block_end();
    return n;
  }

  // ---- expressions --------------------------------------------------------

  bool is_tuple_end(std::initializer_list<const char*> extra_end) const {
    if (cur().type == TokenType::VariableEnd || cur().type == TokenType::BlockEnd || is_op(")")) return true;
    for (const char* n : extra_end)
      if (is_name(n)) return true;
    return false;
  }

  ExprPtr parse_tuple(bool with_condexpr, std::initializer_list<const char*> extra_end, bool explicit_parens) {
    int line = cur().line;
    std::vector<ExprPtr> args;
    bool is_tuple = false;
    for (;;) {
      if (!args.empty()) expect_op(",");
      if (is_tuple_end(extra_end)) break;
      args.push_back(parse_expression(with_condexpr));
      if (is_op(",")) is_tuple = true;
      else break;
    }
    if (!is_tuple) {
      if (!args.empty()) return std::move(args[0]);
      if (!explicit_parens) fail_unexpected("an expression");
    }
    auto t = make(Expr::Kind::Tuple, line);
    t->items = std::move(args);
    return t;
  }

  ExprPtr parse_expression(bool with_condexpr) {
    DepthGuard guard(*this);
    return with_condexpr ? parse_condexpr() : parse_or();
  }

  ExprPtr parse_condexpr() {
    ChainGuard chain(*this);
    ExprPtr expr = parse_or();
    while (is_name("if")) {
      chain.link();
      int line = cur().line;
      next();
      auto cond = make(Expr::Kind::Condition, line);
      cond->a = parse_or();
      cond->b = std::move(expr);
      if (skip_name("else")) cond->c = parse_condexpr();
      expr = std::move(cond);
    }
    return expr;
  }

  ExprPtr binary(const std::string& op, ExprPtr left, ExprPtr right, int line) {
    auto e = make(Expr::Kind::Binary, line);
    e->name = op;
    e->a = std::move(left);
    e->b = std::move(right);
    return e;
  }

  ExprPtr parse_or() {
    ChainGuard chain(*this);
    ExprPtr left = parse_and();
    while (is_name("or")) {
      chain.link();
      int line = cur().line;
      next();
      left = binary("or", std::move(left), parse_and(), line);
    }
    return left;
  }

  ExprPtr parse_and() {
    ChainGuard chain(*this);
    ExprPtr left = parse_not();
    while (is_name("and")) {
      chain.link();
      int line = cur().line;
      next();
      left = binary("and", std::move(left), parse_not(), line);
    }
    return left;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      DepthGuard guard(*this);
      auto e = make(Expr::Kind::Unary, cur().line);
      next();
      e->name = "not";
      e->a = parse_not();
      return e;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    int line = cur().line;
    ExprPtr first = parse_math1();
    auto cmp = make(Expr::Kind::Compare, line);
    for (;;) {
      if (cur().type == TokenType::Operator &&
          (is_op("==") || is_op("!=") || is_op("<") || is_op(">") || is_op("<=") || is_op(">="))) {
        cmp->ops.push_back(cur().text);
        next();
      } else if (is_name("in")) {
        cmp->ops.push_back("in");
        next();
      } else if (is_name("not") && peek().type == TokenType::Name && peek().text == "in") {
        cmp->ops.push_back("notin");
        next();
        next();
      } else {
        break;
      }
      cmp->items.push_back(parse_math1());
    }
    if (cmp->ops.empty()) return first;
    cmp->a = std::move(first);
    return cmp;
  }

  ExprPtr parse_math1() {
    ChainGuard chain(*this);
    ExprPtr left = parse_concat();
    while (is_op("+") || is_op("-")) {
      chain.link();
      std::string op = cur().text;
      int line = cur().line;
      next();
      left = binary(op, std::move(left), parse_concat(), line);
    }
    return left;
  }

  ExprPtr parse_concat() {
    ChainGuard chain(*this);
    ExprPtr left = parse_math2();
    while (is_op("~")) {
      chain.link();
      int line = cur().line;
      next();
      left = binary("~", std::move(left), parse_math2(), line);
    }
    return left;
  }

  ExprPtr parse_math2() {
    ChainGuard chain(*this);
    ExprPtr left = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      chain.link();
      std::string op = cur().text;
      int line = cur().line;
      next();
      left = binary(op, std::move(left), parse_pow(), line);
    }
    return left;
  }

  ExprPtr parse_pow() {
    ChainGuard chain(*this);
    ExprPtr left = parse_unary(true);
    while (is_op("**")) {
      chain.link();
      int line = cur().line;
      next();
      left = binary("**", std::move(left), parse_unary(true), line);
    }
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    DepthGuard guard(*this);
    ExprPtr node;
    if (is_op("-") || is_op("+")) {
      node = make(Expr::Kind::Unary, cur().line);
      node->name = cur().text;
      next();
      node->a = parse_unary(false);
    } else {
      node = parse_primary();
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_expr(std::move(node));
    return node;
  }

  ExprPtr literal(Value v, int line) {
    auto e = make(Expr::Kind::Literal, line);
    e->literal = std::move(v);
    return e;
  }

  ExprPtr parse_primary() {
    const Token& t = cur();
    int line = t.line;
    switch (t.type) {
      case TokenType::Name: {
        std::string n = t.text;
        next();
        if (n == "true" || n == "True") return literal(Value::boolean(true), line);
        if (n == "false" || n == "False") return literal(Value::boolean(false), line);
        if (n == "none" || n == "None") return literal(Value::none(), line);
        auto e = make(Expr::Kind::Name, line);
        e->name = n;
        return e;
      }
      case TokenType::String: {
        std::string s;
        while (cur().type == TokenType::String) {
          s += cur().text;
          next();
        }
        return literal(Value::string(std::move(s)), line);
      }
      case TokenType::Integer: {
        int64_t v = t.integer;
        next();
        return literal(Value::integer(v), line);
      }
      case TokenType::Float: {
        double v = t.floating;
        next();
        return literal(Value::floating(v), line);
      }
      case TokenType::Operator:
        if (t.text == "(") {
          next();
          ExprPtr e = parse_tuple(true, {}, true);
          expect_op(")");
          return e;
        }
        if (t.text == "[") return parse_list();
        if (t.text == "{") return parse_dict();
        break;
      default:
        break;
    }
    fail_unexpected("an expression");
  }

  ExprPtr parse_list() {
    auto e = make(Expr::Kind::List, cur().line);
    expect_op("[");
    while (!is_op("]")) {
      if (!e->items.empty()) expect_op(",");
      if (is_op("]")) break;
      e->items.push_back(parse_expression(true));
    }
    expect_op("]");
    return e;
  }

  ExprPtr parse_dict() {
    auto e = make(Expr::Kind::Dict, cur().line);
    expect_op("{");
    while (!is_op("}")) {
      if (!e->items.empty()) expect_op(",");
      if (is_op("}")) break;
      e->items.push_back(parse_expression(true));
      expect_op(":");
      e->items.push_back(parse_expression(true));
    }
    expect_op("}");
    return e;
  }

  ExprPtr parse_postfix(ExprPtr node) {
    ChainGuard chain(*this);
    for (;;) {
      if (is_op(".") || is_op("[")) {
        chain.link();
        node = parse_subscript(std::move(node));
      } else if (is_op("(")) {
        chain.link();
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_filter_expr(ExprPtr node) {
    ChainGuard chain(*this);
    for (;;) {
      if (is_op("|") || is_name("is") || is_op("(")) chain.link();
      if (is_op("|")) {
        next();
        node = parse_filter(std::move(node));
      } else if (is_name("is")) {
        node = parse_test(std::move(node));
      } else if (is_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr node) {
    DepthGuard guard(*this);
    int line = cur().line;
    if (skip_op(".")) {
      if (cur().type == TokenType::Name) {
        auto e = make(Expr::Kind::GetAttr, line);
        e->a = std::move(node);
        e->name = cur().text;
        next();
        return e;
      }
      if (cur().type == TokenType::Integer) {
        auto e = make(Expr::Kind::GetItem, line);
        e->a = std::move(node);
        e->b = literal(Value::integer(cur().integer), line);
        next();
        return e;
      }
      fail_unexpected("a name or number after '.'");
    }
    expect_op("[");
    std::vector<ExprPtr> keys;
    for (;;) {
      if (!keys.empty()) expect_op(",");
      if (is_op("]")) break;
      keys.push_back(parse_subscribed());
      if (!is_op(",")) break;
    }
    expect_op("]");
    if (keys.empty()) fail("empty subscript");
    auto e = make(Expr::Kind::GetItem, line);
    e->a = std::move(node);
    if (keys.size() == 1 && keys[0]->kind == Expr::Kind::Slice) {
      keys[0]->a = std::move(e->a);
      return std::move(keys[0]);
    }
    for (const auto& key : keys)
      if (key->kind == Expr::Kind::Slice) fail("a slice cannot be combined with other subscripts");
    if (keys.size() == 1) {
      e->b = std::move(keys[0]);
    } else {
      auto t = make(Expr::Kind::Tuple, line);
      t->items = std::move(keys);
      e->b = std::move(t);
    }
    return e;
  }

  ExprPtr parse_subscribed() {
    int line = cur().line;
    std::vector<ExprPtr> parts;
    if (skip_op(":")) {
      parts.push_back(nullptr);
    } else {
      ExprPtr node = parse_expression(true);
      if (!skip_op(":")) return node;
      parts.push_back(std::move(node));
    }
    if (is_op(":")) parts.push_back(nullptr);
    else if (!is_op("]") && !is_op(",")) parts.push_back(parse_expression(true));
    else parts.push_back(nullptr);
    if (skip_op(":")) {
      if (!is_op("]") && !is_op(",")) parts.push_back(parse_expression(true));
      else parts.push_back(nullptr);
    } else {
      parts.push_back(nullptr);
    }
    auto s = make(Expr::Kind::Slice, line);
    s->items = std::move(parts);
    return s;
  }

  void parse_call_args(Expr& e) {
    expect_op("(");
    bool first = true;
    while (!is_op(")")) {
      if (!first) {
        expect_op(",");
        if (is_op(")")) break;
      }
      first = false;
      if (skip_op("*")) {
        e.star_args = parse_expression(true);
      } else if (skip_op("**")) {
        e.star_kwargs = parse_expression(true);
      } else if (cur().type == TokenType::Name && peek().type == TokenType::Operator && peek().text == "=") {
        std::string key = cur().text;
        next();
        next();
        e.kwargs.emplace_back(key, parse_expression(true));
      } else {
        if (!e.kwargs.empty() || e.star_kwargs) fail("positional argument after keyword argument");
        e.items.push_back(parse_expression(true));
      }
    }
    expect_op(")");
  }

  ExprPtr parse_call(ExprPtr node) {
    DepthGuard guard(*this);
    auto e = make(Expr::Kind::Call, cur().line);
    e->a = std::move(node);
    parse_call_args(*e);
    return e;
  }

  std::string parse_dotted_name() {
    std::string n = expect_name();
    while (is_op(".") && peek().type == TokenType::Name) {
      next();
      n += "." + cur().text;
      next();
    }
    return n;
  }

  // A filter name and its arguments, after '|' (or after "filter" in a block).
  ExprPtr parse_filter(ExprPtr node) {
    DepthGuard guard(*this);
    auto e = make(Expr::Kind::Filter, cur().line);
    e->a = std::move(node);
    e->name = parse_dotted_name();
    if (!is_builtin_filter(e->name)) fail("no filter named '" + e->name + "'");
    if (is_op("(")) parse_call_args(*e);
    return e;
  }

  ExprPtr parse_test(ExprPtr node) {
    DepthGuard guard(*this);
    auto e = make(Expr::Kind::Test, cur().line);
    next();  // is
    if (skip_name("not")) e->negated = true;
    e->a = std::move(node);
    e->name = parse_dotted_name();
    if (!is_builtin_test(e->name)) fail("no test named '" + e->name + "'");
    if (is_op("(")) {
      parse_call_args(*e);
    } else if ((cur().type == TokenType::Name || cur().type == TokenType::String || cur().type == TokenType::Integer ||
                cur().type == TokenType::Float || is_op("[") || is_op("{")) &&
               !is_name("else") && !is_name("or") && !is_name("and")) {
      if (is_name("is")) fail("you cannot chain multiple tests with 'is'");
      ExprPtr arg = parse_primary();
      e->items.push_back(parse_postfix(std::move(arg)));
    }
    return e;
  }

  std::vector<Token> tokens_;
  ParseOptions opt_;
  size_t pos_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
};

}  // namespace

ParsedTemplate parse(std::string_view source, const ParseOptions& options) {
  return Parser(lex(source, options.lex), options).run();
}

}  // namespace warden::chat::jinja
