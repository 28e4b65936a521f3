#include "grammar/toolcall.h"

#include <algorithm>
#include <utility>
#include <variant>

#include "util/error.h"
#include "util/json_nesting.h"
#include "util/ordered_json.h"

namespace warden::grammar {

using nlohmann::ordered_json;

namespace {

constexpr std::string_view kHermesOpen = "<tool_call>";
constexpr std::string_view kHermesClose = "</tool_call>";
constexpr std::string_view kPythonTag = "<|python_tag|>";
constexpr std::string_view kMistralMarker = "[TOOL_CALLS]";
constexpr std::string_view kMistralArgs = "[ARGS]";
constexpr std::string_view kMistralCallId = "[CALL_ID]";

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.substr(0, prefix.size()) == prefix;
}

// Length of the longest suffix of `text` that is a proper prefix of `marker`:
// those bytes might still become the marker and must be held back.
size_t partial_marker_suffix(std::string_view text, std::string_view marker) {
  size_t longest = std::min(text.size(), marker.size() - 1);
  for (size_t n = longest; n > 0; --n)
    if (text.substr(text.size() - n) == marker.substr(0, n)) return n;
  return 0;
}

// End (one past) of the JSON object or array starting at text[start], by
// bracket matching that respects strings; npos when it does not close.
size_t json_value_end(std::string_view text, size_t start) {
  JsonBrackets brackets;
  for (size_t i = start; i < text.size(); ++i) {
    if (brackets.step(text[i]) >= 0) continue;
    if (brackets.depth == 0) return i + 1;
    if (brackets.depth < 0) return std::string_view::npos;
  }
  return std::string_view::npos;
}

std::optional<ordered_json> parse_json(std::string_view text) {
  try {
    return parse_ordered_json(text);
  } catch (const Error&) {
    return std::nullopt;
  }
}

// {"name": ..., "arguments"|"parameters": ..., "id"?: ...} -> ToolCall.
// Returns an error message instead when the object is not a call.
std::variant<ToolCall, std::string> call_from_json(const ordered_json& j) {
  if (!j.is_object()) return std::string("tool call is not a JSON object");
  auto name = j.find("name");
  if (name == j.end() || !name->is_string() || name->get<std::string>().empty())
    return std::string("tool call has no \"name\" string");
  ToolCall call;
  call.name = name->get<std::string>();
  auto args = j.find("arguments");
  if (args == j.end()) args = j.find("parameters");
  if (args == j.end()) {
    call.arguments = "{}";
  } else if (args->is_string()) {
    // Some models write the arguments as a JSON string; it must hold JSON.
    std::string text = args->get<std::string>();
    if (!parse_json(text)) return "arguments of tool call '" + call.name + "' are not JSON";
    call.arguments = std::string(trim(text));
  } else {
    call.arguments = args->dump();
  }
  if (auto id = j.find("id"); id != j.end() && id->is_string()) call.id = id->get<std::string>();
  return call;
}

}  // namespace

std::optional<ToolCallFormat> tool_call_format_from_name(std::string_view name) {
  if (name == "hermes" || name == "qwen") return ToolCallFormat::kHermes;
  if (name == "llama3") return ToolCallFormat::kLlama3;
  if (name == "mistral") return ToolCallFormat::kMistral;
  return std::nullopt;
}

ToolCallFormat detect_tool_call_format(std::string_view tmpl) {
  if (tmpl.find(kHermesOpen) != std::string_view::npos) return ToolCallFormat::kHermes;
  if (tmpl.find(kMistralMarker) != std::string_view::npos) return ToolCallFormat::kMistral;
  if (tmpl.find(kPythonTag) != std::string_view::npos || tmpl.find("<|eom_id|>") != std::string_view::npos ||
      tmpl.find("\"parameters\"") != std::string_view::npos)
    return ToolCallFormat::kLlama3;
  return ToolCallFormat::kHermes;
}

// ---------------------------------------------------------------- parser

ToolCallParser::ToolCallParser(ToolCallFormat format)
    : format_(format), state_(format == ToolCallFormat::kLlama3 ? State::kStart : State::kContent) {}

void ToolCallParser::emit_content(ToolCallDelta& d, std::string_view text) {
  d.content.append(text);
  content_.append(text);
}

void ToolCallParser::emit_call(ToolCallDelta& d, ToolCall call) {
  d.tool_calls.push_back(call);
  calls_.push_back(std::move(call));
}

ToolCallDelta ToolCallParser::feed(std::string_view text) {
  ToolCallDelta d;
  if (state_ == State::kDone) return d;
  buffer_.append(text);
  scan(d);
  return d;
}

// Emits content up to `marker` (then switches to `next`), or up to a possible
// partial marker at the end of the buffer.
void ToolCallParser::scan_content_for(ToolCallDelta& d, std::string_view marker, State next) {
  size_t pos = buffer_.find(marker);
  if (pos != std::string::npos) {
    emit_content(d, std::string_view(buffer_).substr(0, pos));
    buffer_.erase(0, pos + marker.size());
    state_ = next;
    return;
  }
  size_t keep = partial_marker_suffix(buffer_, marker);
  emit_content(d, std::string_view(buffer_).substr(0, buffer_.size() - keep));
  buffer_.erase(0, buffer_.size() - keep);
}

void ToolCallParser::scan(ToolCallDelta& d) {
  for (;;) {
    State before = state_;
    size_t size_before = buffer_.size();
    switch (state_) {
      case State::kStart: {
        // Llama 3: a reply that opens with '{' or <|python_tag|> is a call
        // candidate and held whole; anything else is content.
        std::string_view t = buffer_;
        while (!t.empty() && is_space(t.front())) t.remove_prefix(1);
        if (t.empty()) return;
        if (t.front() == '{') {
          state_ = State::kHeld;
        } else if (starts_with(t, kPythonTag)) {
          buffer_ = std::string(t.substr(kPythonTag.size()));
          state_ = State::kHeld;
        } else if (starts_with(kPythonTag, t)) {
          return;  // could still become the tag
        } else {
          state_ = State::kContent;
        }
        break;
      }
      case State::kContent:
        if (format_ == ToolCallFormat::kHermes)
          scan_content_for(d, kHermesOpen, State::kInCall);
        else if (format_ == ToolCallFormat::kLlama3)
          scan_content_for(d, kPythonTag, State::kHeld);
        else
          scan_content_for(d, kMistralMarker, State::kHeld);
        break;
      case State::kInCall: {
        size_t pos = buffer_.find(kHermesClose);
        if (pos == std::string::npos) return;
        std::string body = buffer_.substr(0, pos);
        buffer_.erase(0, pos + kHermesClose.size());
        state_ = State::kContent;
        parse_hermes_block(d, body, true);
        break;
      }
      case State::kHeld:
      case State::kDone:
        return;
    }
    if (state_ == before && buffer_.size() == size_before) return;
    if (state_ == before && state_ == State::kContent) return;
  }
}

void ToolCallParser::parse_hermes_block(ToolCallDelta& d, const std::string& body, bool closed) {
  std::string raw = std::string(kHermesOpen) + body + (closed ? std::string(kHermesClose) : "");
  auto j = parse_json(trim(body));
  if (!j) {
    errors_.push_back("tool call block is not valid JSON; kept as content");
    emit_content(d, raw);
    return;
  }
  auto call = call_from_json(*j);
  if (auto* err = std::get_if<std::string>(&call)) {
    errors_.push_back(*err + "; kept as content");
    emit_content(d, raw);
    return;
  }
  emit_call(d, std::get<ToolCall>(std::move(call)));
}

// Llama 3 / Mistral: the text after the marker (or the '{'-led reply), parsed
// once generation ends. Anything that does not parse whole goes back to content.
void ToolCallParser::parse_held(ToolCallDelta& d) {
  std::string held = std::move(buffer_);
  buffer_.clear();
  std::vector<ToolCall> parsed;
  std::string error;
  bool is_plain_json = false;  // Llama 3: a JSON reply that is not a call

  auto parse_sequence = [&](std::string_view text) -> bool {
    // One or more JSON objects/arrays of calls, separated by ';' / ',' / space.
    size_t i = 0;
    bool any = false;
    while (true) {
      while (i < text.size() && (is_space(text[i]) || text[i] == ';' || text[i] == ',')) ++i;
      if (i >= text.size()) return any;
      if (text[i] != '{' && text[i] != '[') {
        error = "unexpected text after tool call";
        return false;
      }
      size_t end = json_value_end(text, i);
      if (end == std::string_view::npos) {
        error = "tool call JSON is incomplete";
        return false;
      }
      auto j = parse_json(text.substr(i, end - i));
      if (!j) {
        error = "tool call is not valid JSON";
        return false;
      }
      std::vector<ordered_json> items;
      if (j->is_array()) {
        for (auto& v : *j) items.push_back(v);
      } else {
        items.push_back(*j);
      }
      for (auto& item : items) {
        auto call = call_from_json(item);
        if (auto* err = std::get_if<std::string>(&call)) {
          error = *err;
          if (format_ == ToolCallFormat::kLlama3 && !any && items.size() == 1) is_plain_json = true;
          return false;
        }
        parsed.push_back(std::get<ToolCall>(std::move(call)));
      }
      any = true;
      i = end;
    }
  };

  // Mistral v11+: name[ARGS]{...} or name[CALL_ID]id[ARGS]{...}
  auto parse_mistral_segment = [&](std::string_view seg) -> bool {
    seg = trim(seg);
    if (seg.empty()) return true;
    if (seg.front() == '[' || seg.front() == '{') return parse_sequence(seg);
    size_t args = seg.find(kMistralArgs);
    if (args == std::string_view::npos) {
      error = "[TOOL_CALLS] is followed by neither JSON nor name[ARGS]";
      return false;
    }
    std::string_view head = seg.substr(0, args);
    std::string_view body = trim(seg.substr(args + kMistralArgs.size()));
    ToolCall call;
    size_t id_pos = head.find(kMistralCallId);
    call.name = std::string(trim(head.substr(0, id_pos)));
    if (id_pos != std::string_view::npos) call.id = std::string(trim(head.substr(id_pos + kMistralCallId.size())));
    if (call.name.empty()) {
      error = "tool call has no name";
      return false;
    }
    if (!parse_json(body)) {
      error = "arguments of tool call '" + call.name + "' are not JSON";
      return false;
    }
    call.arguments = std::string(body);
    parsed.push_back(std::move(call));
    return true;
  };

  bool ok = false;
  std::string raw;
  if (format_ == ToolCallFormat::kMistral) {
    raw = std::string(kMistralMarker) + held;
    ok = true;
    std::string_view rest = held;
    while (ok) {
      size_t next = rest.find(kMistralMarker);
      ok = parse_mistral_segment(rest.substr(0, next));
      if (next == std::string_view::npos) break;
      rest.remove_prefix(next + kMistralMarker.size());
    }
    if (ok && parsed.empty()) {
      ok = false;
      error = "[TOOL_CALLS] without any call";
    }
  } else {
    raw = held;  // kStart stripped nothing but the python tag
    ok = parse_sequence(held);
    if (!ok && error.empty()) error = "no tool call found";
  }
  if (ok) {
    for (auto& c : parsed) emit_call(d, std::move(c));
    return;
  }
  if (!is_plain_json) errors_.push_back(error + "; kept as content");
  emit_content(d, raw);
}

ToolCallDelta ToolCallParser::finish() {
  ToolCallDelta d;
  if (state_ == State::kDone) return d;
  switch (state_) {
    case State::kStart:
    case State::kContent:
      emit_content(d, buffer_);
      buffer_.clear();
      break;
    case State::kInCall:
      // Generation ended inside a block (a missing close tag is common).
      parse_hermes_block(d, std::exchange(buffer_, {}), false);
      break;
    case State::kHeld:
      parse_held(d);
      break;
    case State::kDone:
      break;
  }
  state_ = State::kDone;
  return d;
}

ParsedToolCalls parse_tool_calls(ToolCallFormat format, std::string_view text) {
  ToolCallParser p(format);
  p.feed(text);
  p.finish();
  return ParsedToolCalls{p.content(), p.tool_calls(), p.errors()};
}

// ---------------------------------------------------------------- grammar

namespace {
struct ToolSpec {
  std::string name;
  const ordered_json* parameters = nullptr;  // null: any object
};

std::vector<ToolSpec> read_tools(const ordered_json& tools) {
  if (!tools.is_array() || tools.empty()) throw Error("tools: must be a non-empty array");
  std::vector<ToolSpec> out;
  for (size_t i = 0; i < tools.size(); ++i) {
    const ordered_json& t = tools[i];
    std::string where = "tools[" + std::to_string(i) + "]";
    if (!t.is_object()) throw Error(where + ": must be an object");
    const ordered_json* fn = &t;
    if (auto f = t.find("function"); f != t.end()) {
      if (!f->is_object()) throw Error(where + ".function: must be an object");
      fn = &*f;
    }
    auto name = fn->find("name");
    if (name == fn->end() || !name->is_string() || name->get<std::string>().empty())
      throw Error(where + ": missing function name");
    ToolSpec spec{name->get<std::string>(), nullptr};
    if (auto p = fn->find("parameters"); p != fn->end() && !p->is_null()) spec.parameters = &*p;
    out.push_back(spec);
  }
  return out;
}
}  // namespace

Grammar tool_call_grammar(ToolCallFormat format, const ordered_json& tools, const ToolGrammarOptions& options) {
  std::vector<ToolSpec> specs = read_tools(tools);
  if (!options.only_tool.empty()) {
    auto it = std::find_if(specs.begin(), specs.end(), [&](const ToolSpec& s) { return s.name == options.only_tool; });
    if (it == specs.end()) throw Error("tool_choice: no tool named '" + options.only_tool + "'");
    specs = {*it};
  }
  GrammarBuilder b;
  SchemaCompiler compiler(b, options.schema);
  const char* args_key = format == ToolCallFormat::kLlama3 ? "parameters" : "arguments";
  uint32_t call = b.new_rule("call");
  for (const auto& spec : specs) {
    uint32_t args;
    try {
      args = spec.parameters ? compiler.compile(*spec.parameters) : compiler.any_object();
    } catch (const Error& e) {
      throw Error("tool '" + spec.name + "' parameters: " + e.what());
    }
    auto seq = b.literal("{\"name\": " + nlohmann::json(spec.name).dump() + ", \"" + args_key + "\": ");
    seq.push_back(GrammarBuilder::ref(args));
    seq.push_back(b.byte('}'));
    b.add_alternative(call, seq);
  }
  GrammarBuilder::Sequence open, close, between;
  switch (format) {
    case ToolCallFormat::kHermes:
      open = b.literal("<tool_call>\n");
      close = b.literal("\n</tool_call>");
      between = b.literal("\n");
      break;
    case ToolCallFormat::kLlama3:
      between = b.literal("; ");
      break;
    case ToolCallFormat::kMistral:
      open = b.literal("[");
      close = b.literal("]");
      between = b.literal(", ");
      break;
  }
  // For Hermes each call has its own block; for Mistral the calls share one array.
  GrammarBuilder::Sequence unit;
  if (format == ToolCallFormat::kHermes) {
    unit = open;
    unit.push_back(GrammarBuilder::ref(call));
    unit.insert(unit.end(), close.begin(), close.end());
  } else {
    unit = {GrammarBuilder::ref(call)};
  }
  uint32_t one = b.rule("one-call", {unit});
  GrammarBuilder::Sequence body{GrammarBuilder::ref(one)};
  if (options.parallel) {
    GrammarBuilder::Sequence again = between;
    again.push_back(GrammarBuilder::ref(one));
    uint32_t more = b.new_rule("more-calls");
    b.add_alternative(more, {});
    again.push_back(GrammarBuilder::ref(more));
    b.add_alternative(more, again);
    body.push_back(GrammarBuilder::ref(more));
  }
  GrammarBuilder::Sequence root_seq;
  if (format == ToolCallFormat::kMistral) {
    if (options.include_marker) root_seq = b.literal(kMistralMarker);
    root_seq.insert(root_seq.end(), open.begin(), open.end());
    root_seq.insert(root_seq.end(), body.begin(), body.end());
    root_seq.insert(root_seq.end(), close.begin(), close.end());
  } else {
    root_seq = body;
  }
  uint32_t root = b.rule("tool-calls", {root_seq});
  return std::move(b).build(root);
}

}  // namespace warden::grammar
