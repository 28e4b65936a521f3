#pragma once
// Evaluates a parsed template. Internal to src/chat: JinjaTemplate is the
// public face. Builtins (filters, tests, methods, globals) live in
// jinja_builtins.cpp and use the helpers declared here.
#include <chrono>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "chat/jinja.h"
#include "chat/jinja_ast.h"

namespace warden::chat::jinja {

// One variable scope. Loops, macros and with-blocks open a child scope;
// reads fall through to the parent, writes stay local (as in Jinja2).
struct Frame {
  std::unordered_map<std::string, Value> vars;
  std::shared_ptr<Frame> parent;
  const Value* lookup(const std::string& name) const;
};
using FramePtr = std::shared_ptr<Frame>;

class Interpreter {
 public:
  Interpreter(const TemplateLimits& limits, const Dict& variables);
  ~Interpreter();
  Interpreter(const Interpreter&) = delete;
  Interpreter& operator=(const Interpreter&) = delete;

  std::string render(const ParsedTemplate& t);

  // ---- helpers for builtins ----
  const TemplateLimits& limits() const { return limits_; }
  // Evaluation steps; also where the wall-clock limit is checked. Work that
  // grows with the data is charged by size, so one step stays a bounded
  // amount of CPU time: tick_bytes() for bytes scanned or copied, one step
  // per item for values built or copied. Charge before doing the work.
  static constexpr size_t kBytesPerStep = 64;
  static constexpr size_t kKeysPerStep = 64;  // Dict lookups compare keys one by one
  void tick(uint64_t steps = 1);
  void tick_bytes(size_t bytes) { tick(bytes / kBytesPerStep); }
  void charge(size_t bytes);        // bytes allocated for a new value
  // Check the size limits and charge memory and steps for a string of
  // `bytes` / a list of `items` about to be built: call before allocating.
  void reserve_string(size_t bytes);
  void reserve_list(size_t items);
  Value make_string(std::string s); // charged string value
  Value make_list(std::vector<Value> items, bool tuple = false);
  bool equals(const Value& a, const Value& b);  // Python ==, charged by the bytes compared
  std::string str(const Value& v);  // Python str(), size-limited
  std::vector<Value> iterate(const Value& v);
  Value get_attr(const Value& obj, const std::string& name);
  Value get_item(const Value& obj, const Value& key);
  Value call(const Value& fn, CallArgs& args);
  Value apply_filter(const std::string& name, const Value& input, CallArgs& args);
  bool apply_test(const std::string& name, const Value& input, CallArgs& args);
  bool has_filter(const std::string& name) const;
  bool has_test(const std::string& name) const;
  int compare(const Value& a, const Value& b, const char* op);  // <0, 0, >0; TypeError if unordered
  // Namespaces are the only mutable values, so the only way to build a
  // reference cycle; they are emptied when the render ends.
  Value make_namespace(Dict d);

 private:
  enum class Flow { Normal, Break, Continue };

  Flow exec_body(const Body& body, const FramePtr& frame, std::string& out);
  Flow exec(const Node& node, const FramePtr& frame, std::string& out);
  void exec_for(const Node& node, const FramePtr& frame, std::string& out);
  void exec_macro(const Node& node, const FramePtr& frame);
  void exec_call_block(const Node& node, const FramePtr& frame, std::string& out);
  void assign(const Target& target, const Value& value, Frame& frame);
  Value render_to_value(const Body& body, const FramePtr& frame);
  Value apply_filter_chain(const std::vector<ExprPtr>& filters, Value input, Frame& frame);

  Value eval(const Expr& e, Frame& frame);
  Value eval_inner(const Expr& e, Frame& frame);
  Value eval_binary(const Expr& e, Frame& frame);
  Value eval_compare(const Expr& e, Frame& frame);
  Value eval_slice(const Expr& e, Frame& frame);
  CallArgs eval_args(const Expr& e, Frame& frame);
  Value lookup(const std::string& name, Frame& frame);
  Value make_macro(const Node& node, const FramePtr& frame, const std::string& name, const Body& body,
                   const std::vector<MacroParam>& params);

  void emit(std::string& out, const std::string& s);

  const TemplateLimits& limits_;
  const Dict& variables_;
  uint64_t steps_ = 0;
  uint64_t next_clock_check_ = 0;  // reading the clock every step would be wasteful
  std::chrono::steady_clock::time_point deadline_;
  size_t allocated_ = 0;
  int call_depth_ = 0;
  std::vector<Value> namespaces_;
};

// Arithmetic and membership, Python semantics (jinja_builtins.cpp).
Value binary_op(Interpreter& in, const std::string& op, const Value& a, const Value& b);
bool contains(Interpreter& in, const Value& container, const Value& item);
// Methods on str/dict values (x.strip, d.items, ...); undefined if none.
Value bound_method(Interpreter& in, const Value& obj, const std::string& name);
// Globals every template sees (range, namespace, dict); undefined if none.
Value builtin_global(Interpreter& in, const std::string& name);
// Throws the error an undefined value stands for.
[[noreturn]] void fail_undefined(const Value& v);

}  // namespace warden::chat::jinja
