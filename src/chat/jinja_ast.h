#pragma once
// Syntax tree of a parsed template: expressions (Expr) and statements (Node).
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "chat/jinja_value.h"

namespace warden::chat::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    Literal,   // literal
    Name,      // name
    List,      // items
    Tuple,     // items
    Dict,      // items: key, value, key, value...
    GetAttr,   // a.name
    GetItem,   // a[b]
    Slice,     // a[items[0]:items[1]:items[2]] (null parts omitted)
    Call,      // a(items..., kwargs...)
    Filter,    // a|name(items..., kwargs...); a is null inside {% filter %}
    Test,      // a is [not] name(items..., kwargs...)
    Unary,     // name in {"-", "+", "not"} applied to a
    Binary,    // a name b; name is an arithmetic operator, "~", "and" or "or"
    Compare,   // a ops[0] items[0] ops[1] items[1] ...
    Condition  // b if a else c (c may be null)
  };
  Kind kind;
  int line = 0;
  Value literal;
  std::string name;
  ExprPtr a, b, c;
  std::vector<ExprPtr> items;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<std::string> ops;  // Compare
  bool negated = false;          // Test
  // Call only: *args / **kwargs expressions.
  ExprPtr star_args, star_kwargs;
};

struct Node;
using NodePtr = std::unique_ptr<Node>;
using Body = std::vector<NodePtr>;

// Where a set/for assigns: plain names (several = tuple unpacking), or one
// namespace attribute (names[0].attribute).
struct Target {
  std::vector<std::string> names;
  std::string attribute;
};

struct MacroParam {
  std::string name;
  ExprPtr default_value;  // may be null
};

struct Node {
  enum class Kind { Data, Print, If, For, Set, SetBlock, Macro, CallBlock, FilterBlock, Break, Continue, With };
  Kind kind;
  int line = 0;
  std::string text;                            // Data; Macro name
  ExprPtr expr;                                // Print, Set value, For iterable, CallBlock call
  ExprPtr condition;                           // For filter (may be null)
  std::vector<std::pair<ExprPtr, Body>> branches;  // If: condition and body per if/elif
  Body body;                                   // For, SetBlock, Macro, CallBlock, FilterBlock, With
  Body else_body;                              // If, For
  Target target;                               // For, Set, SetBlock
  std::vector<MacroParam> params;              // Macro, CallBlock (caller's params)
  std::vector<ExprPtr> filters;                // FilterBlock, SetBlock: Filter exprs with a == null
  std::vector<std::pair<std::string, ExprPtr>> assignments;  // With
  bool recursive = false;                      // For
};

struct ParsedTemplate {
  Body body;
};

}  // namespace warden::chat::jinja
