#include "chat/jinja_interpreter.h"

#include <algorithm>

#include "chat/jinja_parser.h"
#include "chat/jinja_text.h"

namespace warden::chat::jinja {

namespace {

// An error that already names its template line; rethrown unchanged.
class LocatedError : public TemplateError {
 public:
  using TemplateError::TemplateError;
};

[[noreturn]] void relocate(const TemplateError& err, int line) {
  throw LocatedError("line " + std::to_string(line) + ": " + err.what());
}

}  // namespace

const Value* Frame::lookup(const std::string& name) const {
  for (const Frame* f = this; f; f = f->parent.get()) {
    auto it = f->vars.find(name);
    if (it != f->vars.end()) return &it->second;
  }
  return nullptr;
}

Interpreter::Interpreter(const TemplateLimits& limits, const Dict& variables)
    : limits_(limits), variables_(variables), deadline_(std::chrono::steady_clock::now() + limits.max_render_time) {}

Interpreter::~Interpreter() {
  for (auto& ns : namespaces_) ns.namespace_dict().items.clear();
}

std::string Interpreter::render(const ParsedTemplate& t) {
  auto root = std::make_shared<Frame>();
  std::string out;
  exec_body(t.body, root, out);
  return out;
}

Value Interpreter::make_namespace(Dict d) {
  charge(d.items.size() * sizeof(Value));
  Value ns = Value::namespace_(std::move(d));
  namespaces_.push_back(ns);
  return ns;
}

void Interpreter::tick(uint64_t steps) {
  steps_ += steps;
  if (steps_ > limits_.max_steps)
    throw LocatedError("template exceeded its evaluation step limit (" + std::to_string(limits_.max_steps) + ")");
  // The step costs are estimates; the clock bounds whatever they miss
  // (e.g. a pathological substring search). Checked every 256 steps.
  if (steps_ >= next_clock_check_) {
    next_clock_check_ = steps_ + 256;
    if (std::chrono::steady_clock::now() >= deadline_) {
      auto ms = limits_.max_render_time.count();
      throw LocatedError("template exceeded its time limit (rendering took longer than " +
                         (ms % 1000 == 0 ? std::to_string(ms / 1000) + " s" : std::to_string(ms) + " ms") + ")");
    }
  }
}

void Interpreter::charge(size_t bytes) {
  allocated_ += bytes;
  if (allocated_ > limits_.max_allocated_bytes)
    throw LocatedError("template exceeded its memory limit (" + std::to_string(limits_.max_allocated_bytes) +
                       " bytes)");
}

void Interpreter::reserve_string(size_t bytes) {
  if (bytes > limits_.max_output_bytes)
    throw TemplateError("string exceeds the template size limit (" + std::to_string(limits_.max_output_bytes) +
                        " bytes)");
  charge(bytes);
  tick_bytes(bytes);
}

void Interpreter::reserve_list(size_t items) {
  if (items > limits_.max_collection_items)
    throw TemplateError("list exceeds the template size limit (" + std::to_string(limits_.max_collection_items) +
                        " items)");
  charge(items * sizeof(Value));
  tick(items);
}

Value Interpreter::make_string(std::string s) {
  reserve_string(s.size());
  return Value::string(std::move(s));
}

Value Interpreter::make_list(std::vector<Value> items, bool tuple) {
  reserve_list(items.size());
  return Value::list(std::move(items), tuple);
}

bool Interpreter::equals(const Value& a, const Value& b) {
  return jinja::equals(a, b, [this](size_t bytes) { tick_bytes(bytes); });
}

std::string Interpreter::str(const Value& v) {
  if (v.is_string()) tick_bytes(v.as_string().size());  // the copy
  std::string s = to_str(v, limits_.max_output_bytes);
  if (!v.is_string()) {
    charge(s.size());
    tick_bytes(s.size());
  }
  return s;
}

void Interpreter::emit(std::string& out, const std::string& s) {
  if (out.size() + s.size() > limits_.max_output_bytes)
    throw LocatedError("template output exceeds the size limit (" + std::to_string(limits_.max_output_bytes) +
                       " bytes)");
  charge(s.size());
  tick_bytes(s.size());
  out += s;
}

// Every path checks the item count and charges for the new values before
// building them: a long string would otherwise become millions of values
// before any limit looked at it.
std::vector<Value> Interpreter::iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::Undefined: return {};
    case Value::Kind::List:
      tick(v.as_list().size());  // a copy of values already charged for
      return v.as_list();
    case Value::Kind::Dict: {
      reserve_list(v.as_dict().items.size());
      std::vector<Value> keys;
      keys.reserve(v.as_dict().items.size());
      for (const auto& [k, _] : v.as_dict().items) keys.push_back(Value::string(k));
      return keys;
    }
    case Value::Kind::String: {
      const std::string& s = v.as_string();
      tick_bytes(s.size());
      size_t n = text::length(s);
      reserve_list(n);
      // Each character is also a string of its own (control block + std::string).
      charge(n * (sizeof(std::string) + 32));
      std::vector<Value> chars;
      chars.reserve(n);
      for (char32_t c : text::decode(s)) {
        std::u32string one(1, c);
        chars.push_back(Value::string(text::encode(one)));
      }
      return chars;
    }
    default:
      throw TemplateError("'" + v.type_name() + "' object is not iterable");
  }
}

// ---- statements -------------------------------------------------------------

Interpreter::Flow Interpreter::exec_body(const Body& body, const FramePtr& frame, std::string& out) {
  for (const auto& node : body) {
    Flow f = exec(*node, frame, out);
    if (f != Flow::Normal) return f;
  }
  return Flow::Normal;
}

Interpreter::Flow Interpreter::exec(const Node& node, const FramePtr& frame, std::string& out) {
  tick();
  try {
    switch (node.kind) {
      case Node::Kind::Data:
        emit(out, node.text);
        return Flow::Normal;
      case Node::Kind::Print: {
        Value v = eval(*node.expr, *frame);
        emit(out, v.is_string() ? v.as_string() : str(v));
        return Flow::Normal;
      }
      case Node::Kind::If:
        for (const auto& [cond, body] : node.branches)
          if (eval(*cond, *frame).truthy()) return exec_body(body, frame, out);
        return exec_body(node.else_body, frame, out);
      case Node::Kind::For:
        exec_for(node, frame, out);
        return Flow::Normal;
      case Node::Kind::Set:
        assign(node.target, eval(*node.expr, *frame), *frame);
        return Flow::Normal;
      case Node::Kind::SetBlock: {
        Value v = apply_filter_chain(node.filters, render_to_value(node.body, frame), *frame);
        assign(node.target, v, *frame);
        return Flow::Normal;
      }
      case Node::Kind::Macro:
        exec_macro(node, frame);
        return Flow::Normal;
      case Node::Kind::CallBlock:
        exec_call_block(node, frame, out);
        return Flow::Normal;
      case Node::Kind::FilterBlock: {
        Value v = apply_filter_chain(node.filters, render_to_value(node.body, frame), *frame);
        emit(out, str(v));
        return Flow::Normal;
      }
      case Node::Kind::With: {
        auto inner = std::make_shared<Frame>();
        inner->parent = frame;
        for (const auto& [name, expr] : node.assignments) inner->vars[name] = eval(*expr, *frame);
        return exec_body(node.body, inner, out);
      }
      case Node::Kind::Break: return Flow::Break;
      case Node::Kind::Continue: return Flow::Continue;
    }
  } catch (const LocatedError&) {
    throw;
  } catch (const TemplateError& err) {
    if (err.raised_by_template()) throw;
    relocate(err, node.line);
  }
  return Flow::Normal;
}

Value Interpreter::render_to_value(const Body& body, const FramePtr& frame) {
  std::string buffer;
  exec_body(body, frame, buffer);
  return Value::string(std::move(buffer));
}

Value Interpreter::apply_filter_chain(const std::vector<ExprPtr>& filters, Value input, Frame& frame) {
  for (const auto& f : filters) {
    CallArgs args = eval_args(*f, frame);
    input = apply_filter(f->name, input, args);
  }
  return input;
}

void Interpreter::assign(const Target& target, const Value& value, Frame& frame) {
  if (!target.attribute.empty()) {
    const Value* ns = frame.lookup(target.names[0]);
    if (!ns) {
      Value global = lookup(target.names[0], frame);
      if (!global.is_namespace()) throw TemplateError("cannot assign attribute on non-namespace object");
      tick(global.namespace_dict().items.size() / kKeysPerStep);
      global.namespace_dict().set(target.attribute, value);
      return;
    }
    if (!ns->is_namespace()) throw TemplateError("cannot assign attribute on non-namespace object");
    tick(ns->namespace_dict().items.size() / kKeysPerStep);
    ns->namespace_dict().set(target.attribute, value);
    return;
  }
  if (target.names.size() == 1) {
    frame.vars[target.names[0]] = value;
    return;
  }
  std::vector<Value> items = iterate(value);
  if (items.size() != target.names.size())
    throw TemplateError(items.size() > target.names.size()
                            ? "too many values to unpack (expected " + std::to_string(target.names.size()) + ")"
                            : "not enough values to unpack (expected " + std::to_string(target.names.size()) +
                                  ", got " + std::to_string(items.size()) + ")");
  for (size_t i = 0; i < items.size(); ++i) frame.vars[target.names[i]] = items[i];
}

void Interpreter::exec_for(const Node& node, const FramePtr& frame, std::string& out) {
  if (node.recursive) throw TemplateError("recursive for loops are not supported");
  Value iterable = eval(*node.expr, *frame);
  // Lists are immutable: loop over this one in place rather than a copy.
  if (!iterable.is_list()) iterable = Value::list(iterate(iterable));
  auto new_iteration_frame = [&frame] {
    auto f = std::make_shared<Frame>();
    f->parent = frame;
    return f;
  };
  const std::vector<Value>* chosen = &iterable.as_list();
  std::vector<Value> filtered;
  if (node.condition) {
    for (const auto& item : *chosen) {
      tick();
      FramePtr filter_frame = new_iteration_frame();
      assign(node.target, item, *filter_frame);
      if (eval(*node.condition, *filter_frame).truthy()) filtered.push_back(item);
    }
    chosen = &filtered;
  }
  const std::vector<Value>& items = *chosen;
  const size_t n = items.size();
  for (size_t i = 0; i < n; ++i) {
    tick();
    // As in Jinja2, assignments in the body last for one iteration only.
    FramePtr loop_frame = new_iteration_frame();
    assign(node.target, items[i], *loop_frame);
    Dict loop;
    loop.items.reserve(12);
    loop.items.emplace_back("index", Value::integer(static_cast<int64_t>(i + 1)));
    loop.items.emplace_back("index0", Value::integer(static_cast<int64_t>(i)));
    loop.items.emplace_back("revindex", Value::integer(static_cast<int64_t>(n - i)));
    loop.items.emplace_back("revindex0", Value::integer(static_cast<int64_t>(n - i - 1)));
    loop.items.emplace_back("first", Value::boolean(i == 0));
    loop.items.emplace_back("last", Value::boolean(i + 1 == n));
    loop.items.emplace_back("length", Value::integer(static_cast<int64_t>(n)));
    loop.items.emplace_back("depth", Value::integer(1));
    loop.items.emplace_back("depth0", Value::integer(0));
    loop.items.emplace_back("previtem", i > 0 ? items[i - 1] : Value::undefined("there is no previous item"));
    loop.items.emplace_back("nextitem", i + 1 < n ? items[i + 1] : Value::undefined("there is no next item"));
    loop.items.emplace_back("cycle", Value::callable("cycle", [i](CallArgs& args) {
      if (args.positional.empty()) throw TemplateError("no items for cycling given");
      return args.positional[i % args.positional.size()];
    }));
    loop_frame->vars["loop"] = Value::dict(std::move(loop));
    if (exec_body(node.body, loop_frame, out) == Flow::Break) break;
  }
  if (n == 0) exec_body(node.else_body, new_iteration_frame(), out);
}

Value Interpreter::make_macro(const Node& node, const FramePtr& frame, const std::string& name, const Body& body,
                              const std::vector<MacroParam>& params) {
  std::weak_ptr<Frame> defining = frame;
  const Body* body_ptr = &body;
  const std::vector<MacroParam>* params_ptr = &params;
  return Value::callable(name, [this, defining, body_ptr, params_ptr, name](CallArgs& args) -> Value {
    FramePtr parent = defining.lock();
    if (!parent) throw TemplateError("macro '" + name + "' called after its scope ended");
    if (call_depth_ >= limits_.max_call_depth)
      throw TemplateError("macro calls nested too deeply (limit " + std::to_string(limits_.max_call_depth) + ")");
    auto frame = std::make_shared<Frame>();
    frame->parent = parent;
    const auto& ps = *params_ptr;
    std::vector<bool> bound(ps.size(), false);
    std::vector<Value> extra_positional;
    for (size_t i = 0; i < args.positional.size(); ++i) {
      if (i < ps.size()) {
        frame->vars[ps[i].name] = args.positional[i];
        bound[i] = true;
      } else {
        extra_positional.push_back(args.positional[i]);
      }
    }
    Dict extra_keywords;
    for (auto& [key, value] : args.keyword) {
      bool matched = false;
      for (size_t i = 0; i < ps.size(); ++i) {
        if (ps[i].name == key) {
          if (bound[i]) throw TemplateError("macro '" + name + "' got multiple values for argument '" + key + "'");
          frame->vars[key] = value;
          bound[i] = true;
          matched = true;
        }
      }
      if (!matched) {
        if (key == "caller") frame->vars["caller"] = value;
        else extra_keywords.set(key, value);
      }
    }
    for (size_t i = 0; i < ps.size(); ++i) {
      if (bound[i]) continue;
      frame->vars[ps[i].name] = ps[i].default_value
                                    ? eval(*ps[i].default_value, *frame)
                                    : Value::undefined("parameter '" + ps[i].name + "' was not provided");
    }
    frame->vars["varargs"] = Value::list(std::move(extra_positional), true);
    frame->vars["kwargs"] = Value::dict(std::move(extra_keywords));
    ++call_depth_;
    struct DepthRestore {
      int& depth;
      ~DepthRestore() { --depth; }
    } restore{call_depth_};
    std::string out;
    exec_body(*body_ptr, frame, out);
    return Value::string(std::move(out));
  });
}

void Interpreter::exec_macro(const Node& node, const FramePtr& frame) {
  frame->vars[node.text] = make_macro(node, frame, node.text, node.body, node.params);
}

void Interpreter::exec_call_block(const Node& node, const FramePtr& frame, std::string& out) {
  Value caller = make_macro(node, frame, "caller", node.body, node.params);
  const Expr& call_expr = *node.expr;
  Value fn = eval(*call_expr.a, *frame);
  CallArgs args = eval_args(call_expr, *frame);
  args.keyword.emplace_back("caller", caller);
  emit(out, str(call(fn, args)));
}

// ---- expressions ------------------------------------------------------------

Value Interpreter::eval(const Expr& e, Frame& frame) {
  tick();
  try {
    return eval_inner(e, frame);
  } catch (const LocatedError&) {
    throw;
  } catch (const TemplateError& err) {
    if (err.raised_by_template()) throw;
    relocate(err, e.line);
  }
}

Value Interpreter::lookup(const std::string& name, Frame& frame) {
  if (const Value* v = frame.lookup(name)) return *v;
  if (const Value* v = variables_.find(name)) return *v;
  Value builtin = builtin_global(*this, name);
  if (!builtin.is_undefined()) return builtin;
  return Value::undefined("'" + name + "' is undefined");
}

CallArgs Interpreter::eval_args(const Expr& e, Frame& frame) {
  CallArgs args;
  for (const auto& item : e.items) args.positional.push_back(eval(*item, frame));
  if (e.star_args)
    for (auto& v : iterate(eval(*e.star_args, frame))) args.positional.push_back(v);
  for (const auto& [key, expr] : e.kwargs) args.keyword.emplace_back(key, eval(*expr, frame));
  if (e.star_kwargs) {
    Value kw = eval(*e.star_kwargs, frame);
    if (!kw.is_dict()) throw TemplateError("argument after ** must be a mapping");
    for (const auto& [k, v] : kw.as_dict().items) args.keyword.emplace_back(k, v);
  }
  return args;
}

Value Interpreter::eval_inner(const Expr& e, Frame& frame) {
  switch (e.kind) {
    case Expr::Kind::Literal: return e.literal;
    case Expr::Kind::Name: return lookup(e.name, frame);
    case Expr::Kind::List:
    case Expr::Kind::Tuple: {
      std::vector<Value> items;
      items.reserve(e.items.size());
      for (const auto& item : e.items) items.push_back(eval(*item, frame));
      return make_list(std::move(items), e.kind == Expr::Kind::Tuple);
    }
    case Expr::Kind::Dict: {
      Dict d;
      for (size_t i = 0; i + 1 < e.items.size(); i += 2) {
        Value key = eval(*e.items[i], frame);
        if (!key.is_string()) throw TemplateError("dict keys must be strings, got " + key.type_name());
        d.set(key.as_string(), eval(*e.items[i + 1], frame));
      }
      charge(d.items.size() * sizeof(Value));
      return Value::dict(std::move(d));
    }
    case Expr::Kind::GetAttr: return get_attr(eval(*e.a, frame), e.name);
    case Expr::Kind::GetItem: return get_item(eval(*e.a, frame), eval(*e.b, frame));
    case Expr::Kind::Slice: return eval_slice(e, frame);
    case Expr::Kind::Call: {
      Value fn = eval(*e.a, frame);
      CallArgs args = eval_args(e, frame);
      return call(fn, args);
    }
    case Expr::Kind::Filter: {
      Value input = eval(*e.a, frame);
      CallArgs args = eval_args(e, frame);
      return apply_filter(e.name, input, args);
    }
    case Expr::Kind::Test: {
      Value input = eval(*e.a, frame);
      CallArgs args = eval_args(e, frame);
      return Value::boolean(apply_test(e.name, input, args) != e.negated);
    }
    case Expr::Kind::Unary: {
      Value v = eval(*e.a, frame);
      if (e.name == "not") return Value::boolean(!v.truthy());
      if (v.is_undefined()) fail_undefined(v);
      if (!v.is_number()) throw TemplateError("bad operand type for unary " + e.name + ": '" + v.type_name() + "'");
      if (e.name == "+") return v.is_float() ? v : Value::integer(v.as_int());
      if (v.is_float()) return Value::floating(-v.as_double());
      if (v.as_int() == INT64_MIN) throw TemplateError("integer overflow");
      return Value::integer(-v.as_int());
    }
    case Expr::Kind::Binary: return eval_binary(e, frame);
    case Expr::Kind::Compare: return eval_compare(e, frame);
    case Expr::Kind::Condition:
      if (eval(*e.a, frame).truthy()) return eval(*e.b, frame);
      if (e.c) return eval(*e.c, frame);
      return Value::undefined("the inline if-expression on line " + std::to_string(e.line) +
                              " evaluated to false and no else section was defined");
  }
  return Value::undefined();
}

Value Interpreter::eval_binary(const Expr& e, Frame& frame) {
  if (e.name == "and") {
    Value left = eval(*e.a, frame);
    return left.truthy() ? eval(*e.b, frame) : left;
  }
  if (e.name == "or") {
    Value left = eval(*e.a, frame);
    return left.truthy() ? left : eval(*e.b, frame);
  }
  Value left = eval(*e.a, frame);
  Value right = eval(*e.b, frame);
  if (e.name == "~") {
    std::string l = str(left), r = str(right);
    reserve_string(l.size() + r.size());
    return Value::string(std::move(l) + r);
  }
  return binary_op(*this, e.name, left, right);
}

int Interpreter::compare(const Value& a, const Value& b, const char* op) {
  if (a.is_undefined()) fail_undefined(a);
  if (b.is_undefined()) fail_undefined(b);
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) {
      double x = a.as_double(), y = b.as_double();
      return x < y ? -1 : (x > y ? 1 : 0);
    }
    int64_t x = a.as_int(), y = b.as_int();
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  if (a.is_string() && b.is_string()) {
    tick_bytes(std::min(a.as_string().size(), b.as_string().size()));
    int c = a.as_string().compare(b.as_string());
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
    const auto& x = a.as_list();
    const auto& y = b.as_list();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      tick();
      if (equals(x[i], y[i])) continue;
      return compare(x[i], y[i], op);
    }
    return x.size() < y.size() ? -1 : (x.size() > y.size() ? 1 : 0);
  }
  throw TemplateError(std::string("'") + op + "' not supported between instances of '" + a.type_name() + "' and '" +
                      b.type_name() + "'");
}

Value Interpreter::eval_compare(const Expr& e, Frame& frame) {
  Value left = eval(*e.a, frame);
  for (size_t i = 0; i < e.ops.size(); ++i) {
    Value right = eval(*e.items[i], frame);
    const std::string& op = e.ops[i];
    bool ok;
    if (op == "==") ok = equals(left, right);
    else if (op == "!=") ok = !equals(left, right);
    else if (op == "in") ok = contains(*this, right, left);
    else if (op == "notin") ok = !contains(*this, right, left);
    else {
      int c = compare(left, right, op.c_str());
      ok = op == "<" ? c < 0 : op == ">" ? c > 0 : op == "<=" ? c <= 0 : c >= 0;
    }
    if (!ok) return Value::boolean(false);
    left = std::move(right);
  }
  return Value::boolean(true);
}

namespace {

// Python's slice.indices(): clamps start/stop for this length and step.
void slice_indices(int64_t length, const Value& start_v, const Value& stop_v, const Value& step_v, int64_t& start,
                   int64_t& stop, int64_t& step) {
  auto as_index = [](const Value& v) {
    if (!v.is_int() && !v.is_bool())
      throw TemplateError("slice indices must be integers or None, not " + v.type_name());
    return v.as_int();
  };
  step = (step_v.is_none() || step_v.is_undefined()) ? 1 : as_index(step_v);
  if (step == 0) throw TemplateError("slice step cannot be zero");
  auto clamp = [&](const Value& v, int64_t fallback) {
    if (v.is_none() || v.is_undefined()) return fallback;
    int64_t i = as_index(v);
    if (i < 0) {
      i += length;
      if (i < 0) i = step < 0 ? -1 : 0;
    } else if (i >= length) {
      i = step < 0 ? length - 1 : length;
    }
    return i;
  };
  start = clamp(start_v, step < 0 ? length - 1 : 0);
  stop = clamp(stop_v, step < 0 ? -1 : length);
}

template <typename Seq>
Seq take_slice(const Seq& seq, int64_t start, int64_t stop, int64_t step) {
  Seq out;
  if (step > 0) {
    for (int64_t i = start; i < stop; i += step) out.push_back(seq[static_cast<size_t>(i)]);
  } else {
    for (int64_t i = start; i > stop; i += step) out.push_back(seq[static_cast<size_t>(i)]);
  }
  return out;
}

}  // namespace

Value Interpreter::eval_slice(const Expr& e, Frame& frame) {
  Value obj = eval(*e.a, frame);
  Value parts[3];
  for (int i = 0; i < 3; ++i)
    parts[i] = e.items[static_cast<size_t>(i)] ? eval(*e.items[static_cast<size_t>(i)], frame) : Value::none();
  if (obj.is_undefined()) fail_undefined(obj);
  int64_t start, stop, step;
  if (obj.is_list()) {
    const auto& items = obj.as_list();
    slice_indices(static_cast<int64_t>(items.size()), parts[0], parts[1], parts[2], start, stop, step);
    return make_list(take_slice(items, start, stop, step), obj.is_tuple());
  }
  if (obj.is_string()) {
    tick_bytes(obj.as_string().size());
    std::u32string u = text::decode(obj.as_string());
    slice_indices(static_cast<int64_t>(u.size()), parts[0], parts[1], parts[2], start, stop, step);
    return make_string(text::encode(take_slice(u, start, stop, step)));
  }
  return Value::undefined("'" + obj.type_name() + "' object is not subscriptable");
}

Value Interpreter::call(const Value& fn, CallArgs& args) {
  if (fn.is_undefined()) fail_undefined(fn);
  if (!fn.is_callable()) throw TemplateError("'" + fn.type_name() + "' object is not callable");
  return fn.as_callable().call(args);
}

Value Interpreter::get_attr(const Value& obj, const std::string& name) {
  switch (obj.kind()) {
    case Value::Kind::Undefined: fail_undefined(obj);
    case Value::Kind::Dict: {
      Value method = bound_method(*this, obj, name);
      if (!method.is_undefined()) return method;
      tick(obj.as_dict().items.size() / kKeysPerStep);
      if (const Value* v = obj.as_dict().find(name)) return *v;
      return Value::undefined("'dict object' has no attribute '" + name + "'");
    }
    case Value::Kind::Namespace:
      tick(obj.namespace_dict().items.size() / kKeysPerStep);
      if (const Value* v = obj.namespace_dict().find(name)) return *v;
      return Value::undefined("'Namespace' object has no attribute '" + name + "'");
    case Value::Kind::String: {
      Value method = bound_method(*this, obj, name);
      if (!method.is_undefined()) return method;
      return Value::undefined("'str object' has no attribute '" + name + "'");
    }
    default:
      return Value::undefined("'" + obj.type_name() + " object' has no attribute '" + name + "'");
  }
}

Value Interpreter::get_item(const Value& obj, const Value& key) {
  switch (obj.kind()) {
    case Value::Kind::Undefined: fail_undefined(obj);
    case Value::Kind::Dict:
    case Value::Kind::Namespace: {
      if (key.is_string()) {
        const Dict& d = obj.is_dict() ? obj.as_dict() : obj.namespace_dict();
        tick(d.items.size() / kKeysPerStep);
        if (const Value* v = d.find(key.as_string())) return *v;
        if (obj.is_dict()) {
          Value method = bound_method(*this, obj, key.as_string());
          if (!method.is_undefined()) return method;
        }
        return Value::undefined("'dict object' has no attribute '" + key.as_string() + "'");
      }
      return Value::undefined("'dict object' has no attribute " + to_repr(key, 256));
    }
    case Value::Kind::List: {
      if (!key.is_int() && !key.is_bool()) {
        if (key.is_string()) return get_attr(obj, key.as_string());
        return Value::undefined("'list object' has no attribute " + to_repr(key, 256));
      }
      const auto& items = obj.as_list();
      int64_t i = key.as_int();
      int64_t n = static_cast<int64_t>(items.size());
      if (i < 0) i += n;
      if (i < 0 || i >= n) return Value::undefined("list object has no element " + std::to_string(key.as_int()));
      return items[static_cast<size_t>(i)];
    }
    case Value::Kind::String: {
      if (!key.is_int() && !key.is_bool()) {
        if (key.is_string()) return get_attr(obj, key.as_string());
        return Value::undefined("'str object' has no attribute " + to_repr(key, 256));
      }
      tick_bytes(obj.as_string().size());
      std::u32string u = text::decode(obj.as_string());
      int64_t i = key.as_int();
      int64_t n = static_cast<int64_t>(u.size());
      if (i < 0) i += n;
      if (i < 0 || i >= n) return Value::undefined("str object has no element " + std::to_string(key.as_int()));
      std::u32string one(1, u[static_cast<size_t>(i)]);
      return Value::string(text::encode(one));
    }
    default:
      return Value::undefined("'" + obj.type_name() + " object' has no attribute " + to_repr(key, 256));
  }
}

[[noreturn]] void fail_undefined(const Value& v) {
  throw TemplateError(v.undefined_hint().empty() ? "value is undefined" : v.undefined_hint());
}

}  // namespace warden::chat::jinja

namespace warden::chat {

JinjaTemplate::JinjaTemplate(std::string_view source, TemplateLimits limits) : limits_(limits) {
  jinja::ParseOptions options;
  options.max_nesting = limits.max_nesting;
  parsed_ = std::make_shared<const jinja::ParsedTemplate>(jinja::parse(source, options));
}

JinjaTemplate::~JinjaTemplate() = default;
JinjaTemplate::JinjaTemplate(JinjaTemplate&&) noexcept = default;
JinjaTemplate& JinjaTemplate::operator=(JinjaTemplate&&) noexcept = default;

std::string JinjaTemplate::render(const jinja::Dict& variables) const {
  jinja::Interpreter interpreter(limits_, variables);
  return interpreter.render(*parsed_);
}

}  // namespace warden::chat
