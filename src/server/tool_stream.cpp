#include "server/tool_stream.h"

#include <optional>

#include <nlohmann/json.hpp>

#include "util/json_nesting.h"

namespace warden::server {

namespace {

using json = nlohmann::ordered_json;

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

// One past the end of the JSON object or array opening at text[start] (by
// bracket matching outside strings); npos while it is still open.
size_t json_value_end(std::string_view text, size_t start) {
  JsonValueScanner scanner;
  for (size_t i = start; i < text.size(); ++i)
    if (scanner.step(text[i])) return i + 1;
  return std::string_view::npos;
}

// A tiny reader for the head of a call object: {"name": "f", "arguments":
enum class Read { kOk, kMore, kBad };

struct Cursor {
  std::string_view text;
  size_t at;

  void skip_space() {
    while (at < text.size() && is_space(text[at])) ++at;
  }
  Read punct(char c) {
    skip_space();
    if (at >= text.size()) return Read::kMore;
    if (text[at] != c) return Read::kBad;
    ++at;
    return Read::kOk;
  }
  // A JSON string token, decoded.
  Read string(std::string& out) {
    skip_space();
    if (at >= text.size()) return Read::kMore;
    if (text[at] != '"') return Read::kBad;
    bool escaped = false;
    for (size_t i = at + 1; i < text.size(); ++i) {
      if (escaped) {
        escaped = false;
      } else if (text[i] == '\\') {
        escaped = true;
      } else if (text[i] == '"') {
        try {
          out = json::parse(text.substr(at, i + 1 - at)).get<std::string>();
        } catch (const nlohmann::json::exception&) {
          return Read::kBad;
        }
        at = i + 1;
        return Read::kOk;
      }
    }
    return Read::kMore;
  }
};

std::optional<json> parse_json(std::string_view text) {
  if (json_nests_deeper_than(text)) return std::nullopt;
  try {
    return json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

}  // namespace

ToolCallStreamer::ToolCallStreamer(grammar::ToolCallFormat format) : parser_(format) {}

std::vector<ToolCallFragment> ToolCallStreamer::feed(std::string_view text) {
  parser_.feed(text);
  text_.append(text);
  std::vector<ToolCallFragment> out;
  step(out);
  return out;
}

void ToolCallStreamer::step(std::vector<ToolCallFragment>& out) {
  for (;;) {
    const State before = state_;
    switch (state_) {
      case State::kSeekCall: {
        size_t open = text_.find('{', pos_);
        if (open == std::string::npos) {
          pos_ = text_.size();
          return;
        }
        call_start_ = open;
        state_ = State::kHeader;
        break;
      }
      case State::kHeader:
        read_header(out);
        break;
      case State::kArguments:
        stream_arguments(out);
        break;
      case State::kCallEnd: {
        size_t end = json_value_end(text_, call_start_);
        if (end == std::string::npos) return;
        pos_ = end;
        state_ = State::kSeekCall;
        break;
      }
      case State::kWholeCall:
        read_whole_call(out);
        break;
    }
    if (state_ == before) return;  // waiting for more text
  }
}

// {"name": "f", "arguments": <value start>. Anything else in its place (keys
// in another order, a scalar value) is read as a whole call once complete.
void ToolCallStreamer::read_header(std::vector<ToolCallFragment>& out) {
  Cursor c{text_, call_start_ + 1};
  std::string key, name, args_key;
  Read r = c.string(key);
  if (r == Read::kOk && key != "name") r = Read::kBad;
  if (r == Read::kOk) r = c.punct(':');
  if (r == Read::kOk) r = c.string(name);
  if (r == Read::kOk) r = c.punct(',');
  if (r == Read::kOk) r = c.string(args_key);
  if (r == Read::kOk && args_key != "arguments" && args_key != "parameters") r = Read::kBad;
  if (r == Read::kOk) r = c.punct(':');
  if (r == Read::kOk) {
    c.skip_space();
    if (c.at >= text_.size()) r = Read::kMore;
    else if (text_[c.at] != '{' && text_[c.at] != '[') r = Read::kBad;
  }
  if (r == Read::kMore) return;
  if (r == Read::kBad || name.empty()) {
    state_ = State::kWholeCall;
    return;
  }
  out.push_back({names_.size(), true, name, ""});
  names_.push_back(name);
  arguments_.emplace_back();
  args_scanned_ = c.at;
  args_value_ = {};
  state_ = State::kArguments;
}

// Sends the arguments' text as far as it is generated, up to the end of
// the value (tracked by bracket depth outside strings).
void ToolCallStreamer::stream_arguments(std::vector<ToolCallFragment>& out) {
  const size_t from = args_scanned_;
  bool closed = false;
  size_t i = from;
  for (; i < text_.size() && !closed; ++i) closed = args_value_.step(text_[i]);
  args_scanned_ = i;
  if (i > from) {
    std::string piece = text_.substr(from, i - from);
    arguments_.back() += piece;
    out.push_back({names_.size() - 1, false, "", std::move(piece)});
  }
  if (closed) state_ = State::kCallEnd;
}

void ToolCallStreamer::read_whole_call(std::vector<ToolCallFragment>& out) {
  size_t end = json_value_end(text_, call_start_);
  if (end == std::string::npos) return;
  pos_ = end;
  state_ = State::kSeekCall;
  auto j = parse_json(std::string_view(text_).substr(call_start_, end - call_start_));
  if (!j || !j->is_object()) return;
  auto name = j->find("name");
  if (name == j->end() || !name->is_string() || name->get<std::string>().empty()) return;
  auto args = j->find("arguments");
  if (args == j->end()) args = j->find("parameters");
  std::string arguments = args == j->end() ? "{}" : args->is_string() ? args->get<std::string>() : args->dump();
  out.push_back({names_.size(), true, name->get<std::string>(), ""});
  out.push_back({names_.size(), false, "", arguments});
  names_.push_back(name->get<std::string>());
  arguments_.push_back(arguments);
}

ToolCallStreamer::Final ToolCallStreamer::finish() {
  parser_.finish();
  Final final;
  final.content = parser_.content();
  const auto& calls = parser_.tool_calls();
  for (size_t i = 0; i < names_.size(); ++i) {
    const std::string what = "streamed tool call " + std::to_string(i) + " ('" + names_[i] + "')";
    if (i >= calls.size()) {
      final.mismatches.push_back(what + " is not a complete call");
      continue;
    }
    auto streamed = parse_json(arguments_[i]);
    auto parsed = parse_json(calls[i].arguments);
    if (calls[i].name != names_[i] || !streamed || !parsed || *streamed != *parsed)
      final.mismatches.push_back(what + " differs from the parsed call '" + calls[i].name + "' " +
                                 calls[i].arguments);
  }
  for (size_t i = names_.size(); i < calls.size(); ++i) {
    final.fragments.push_back({i, true, calls[i].name, ""});
    final.fragments.push_back({i, false, "", calls[i].arguments});
  }
  return final;
}

}  // namespace warden::server
