// Tool-call parsing (Hermes/Qwen, Llama 3, Mistral), streamed in every
// chunking, malformed calls kept as content; and tool-call grammars whose
// random-walk outputs always parse back into calls with valid arguments.
#include <gtest/gtest.h>

#include <random>

#include "byte_vocab.h"
#include "common/test_env.h"
#include "grammar/matcher.h"
#include "grammar/toolcall.h"
#include "schema_validator.h"
#include "util/error.h"

namespace warden::grammar {
namespace {

using nlohmann::ordered_json;

std::string trim_copy(const std::string& s) {
  size_t a = s.find_first_not_of(" \n\t"), b = s.find_last_not_of(" \n\t");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

struct Streamed {
  std::string content;  // concatenated deltas
  std::vector<ToolCall> calls;
  std::vector<std::string> errors;
};

Streamed stream(ToolCallFormat f, const std::string& text, size_t chunk) {
  ToolCallParser p(f);
  Streamed s;
  for (size_t i = 0; i < text.size(); i += chunk) {
    ToolCallDelta d = p.feed(std::string_view(text).substr(i, chunk));
    s.content += d.content;
    for (auto& c : d.tool_calls) s.calls.push_back(c);
  }
  ToolCallDelta d = p.finish();
  s.content += d.content;
  for (auto& c : d.tool_calls) s.calls.push_back(c);
  s.errors = p.errors();
  EXPECT_EQ(s.content, p.content());
  EXPECT_EQ(s.calls.size(), p.tool_calls().size());
  return s;
}

// The same result whatever the chunking.
Streamed parse_all_chunkings(ToolCallFormat f, const std::string& text) {
  Streamed whole = stream(f, text, text.size() + 1);
  for (size_t chunk : {1, 2, 3, 5, 7, 11}) {
    Streamed s = stream(f, text, chunk);
    EXPECT_EQ(s.content, whole.content) << "chunk " << chunk;
    EXPECT_EQ(s.calls.size(), whole.calls.size()) << "chunk " << chunk;
    for (size_t i = 0; i < std::min(s.calls.size(), whole.calls.size()); ++i) {
      EXPECT_EQ(s.calls[i].name, whole.calls[i].name);
      EXPECT_EQ(s.calls[i].arguments, whole.calls[i].arguments);
      EXPECT_EQ(s.calls[i].id, whole.calls[i].id);
    }
  }
  return whole;
}

TEST(ToolCallParser, HermesSeveralCallsWithContent) {
  std::string text =
      "Let me check. <tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>"
      "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call> Done <b>";
  Streamed s = parse_all_chunkings(ToolCallFormat::kHermes, text);
  EXPECT_EQ(s.content, "Let me check.  Done <b>");
  ASSERT_EQ(s.calls.size(), 2u);
  EXPECT_EQ(s.calls[0].name, "get_weather");
  EXPECT_EQ(s.calls[0].arguments, R"({"city":"Paris"})");
  EXPECT_EQ(s.calls[1].name, "get_time");
  EXPECT_EQ(s.calls[1].arguments, "{}");
  EXPECT_TRUE(s.errors.empty());
}

TEST(ToolCallParser, HoldsBackOnlyPossibleMarkers) {
  ToolCallParser p(ToolCallFormat::kHermes);
  EXPECT_EQ(p.feed("a < b, <tool").content, "a < b, ");  // "<tool" might be a marker
  EXPECT_EQ(p.feed("box>").content, "<toolbox>");        // it was not
  EXPECT_EQ(p.feed("x <").content, "x ");
  EXPECT_EQ(p.finish().content, "<");                     // end: flushed
  EXPECT_TRUE(p.tool_calls().empty());
}

TEST(ToolCallParser, HermesMalformedCallsStayContent) {
  std::string bad = "<tool_call>{\"name\": oops}</tool_call>";
  Streamed s = parse_all_chunkings(ToolCallFormat::kHermes, "x" + bad + "y");
  EXPECT_EQ(s.content, "x" + bad + "y");
  EXPECT_TRUE(s.calls.empty());
  EXPECT_FALSE(s.errors.empty());
  Streamed noname = parse_all_chunkings(ToolCallFormat::kHermes, "<tool_call>{\"arguments\": {}}</tool_call>");
  EXPECT_TRUE(noname.calls.empty());
  EXPECT_NE(noname.errors.at(0).find("name"), std::string::npos);
  Streamed badargs =
      parse_all_chunkings(ToolCallFormat::kHermes, "<tool_call>{\"name\":\"f\",\"arguments\":\"{x\"}</tool_call>");
  EXPECT_TRUE(badargs.calls.empty());
}

// Arguments nested 200000 levels deep (the parsed value's copies and dumps
// recurse once per level) are not a call: they stay content.
TEST(ToolCallParser, CallsNestedTooDeepStayContent) {
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  const std::string text = "<tool_call>{\"name\":\"f\",\"arguments\":{\"a\":" + deep + "}}</tool_call>";
  ParsedToolCalls parsed = parse_tool_calls(ToolCallFormat::kHermes, text);
  EXPECT_TRUE(parsed.tool_calls.empty());
  EXPECT_EQ(parsed.content, text);
  EXPECT_FALSE(parsed.errors.empty());
}

TEST(ToolCallParser, HermesUnclosedBlockAtEnd) {
  Streamed ok = parse_all_chunkings(ToolCallFormat::kHermes, "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1}}\n");
  ASSERT_EQ(ok.calls.size(), 1u);
  EXPECT_EQ(ok.calls[0].arguments, R"({"a":1})");
  Streamed cut = parse_all_chunkings(ToolCallFormat::kHermes, "hi <tool_call>\n{\"name\": \"f\", \"argu");
  EXPECT_TRUE(cut.calls.empty());
  EXPECT_EQ(cut.content, "hi <tool_call>\n{\"name\": \"f\", \"argu");
}

TEST(ToolCallParser, ArgumentsGivenAsJsonString) {
  Streamed s = parse_all_chunkings(ToolCallFormat::kHermes,
                                   R"(<tool_call>{"name":"f","arguments":"{\"q\": 2}"}</tool_call>)");
  ASSERT_EQ(s.calls.size(), 1u);
  EXPECT_EQ(s.calls[0].arguments, R"({"q": 2})");
}

TEST(ToolCallParser, Llama3Json) {
  Streamed s = parse_all_chunkings(ToolCallFormat::kLlama3,
                                   "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Oslo\"}}");
  ASSERT_EQ(s.calls.size(), 1u);
  EXPECT_EQ(s.calls[0].name, "get_weather");
  EXPECT_EQ(s.calls[0].arguments, R"({"city":"Oslo"})");
  EXPECT_EQ(s.content, "");
  Streamed tagged = parse_all_chunkings(
      ToolCallFormat::kLlama3,
      "<|python_tag|>{\"name\": \"a\", \"parameters\": {}}; {\"name\": \"b\", \"parameters\": {\"x\": [1]}}");
  ASSERT_EQ(tagged.calls.size(), 2u);
  EXPECT_EQ(tagged.calls[1].name, "b");
  EXPECT_EQ(tagged.calls[1].arguments, R"({"x":[1]})");
}

TEST(ToolCallParser, Llama3PlainTextStreamsAndJsonAnswersStayContent) {
  ToolCallParser p(ToolCallFormat::kLlama3);
  EXPECT_EQ(p.feed("  Hello").content, "  Hello");  // decided at once: not a call
  EXPECT_EQ(p.feed(" {there}").content, " {there}");
  p.finish();
  EXPECT_TRUE(p.tool_calls().empty());
  Streamed json = parse_all_chunkings(ToolCallFormat::kLlama3, R"({"answer": 42})");
  EXPECT_TRUE(json.calls.empty());
  EXPECT_EQ(json.content, R"({"answer": 42})");
  EXPECT_TRUE(json.errors.empty());
  Streamed broken = parse_all_chunkings(ToolCallFormat::kLlama3, R"({"name": "f", "parameters": {)");
  EXPECT_TRUE(broken.calls.empty());
  EXPECT_EQ(broken.content, R"({"name": "f", "parameters": {)");
  EXPECT_FALSE(broken.errors.empty());
}

TEST(ToolCallParser, MistralArrayWithIds) {
  Streamed s = parse_all_chunkings(
      ToolCallFormat::kMistral,
      R"(Sure.[TOOL_CALLS][{"name": "a", "arguments": {"x": 1}, "id": "abc123def"}, {"name": "b", "arguments": {}}])");
  EXPECT_EQ(s.content, "Sure.");
  ASSERT_EQ(s.calls.size(), 2u);
  EXPECT_EQ(s.calls[0].id, "abc123def");
  EXPECT_EQ(s.calls[0].arguments, R"({"x":1})");
  EXPECT_EQ(s.calls[1].name, "b");
}

TEST(ToolCallParser, MistralNamedArgsForm) {
  Streamed s = parse_all_chunkings(ToolCallFormat::kMistral,
                                   R"([TOOL_CALLS]get_weather[CALL_ID]k9Z2[ARGS]{"city": "Rome"}[TOOL_CALLS]noop[ARGS]{})");
  ASSERT_EQ(s.calls.size(), 2u);
  EXPECT_EQ(s.calls[0].name, "get_weather");
  EXPECT_EQ(s.calls[0].id, "k9Z2");
  EXPECT_EQ(s.calls[0].arguments, R"({"city": "Rome"})");
  EXPECT_EQ(s.calls[1].name, "noop");
}

TEST(ToolCallParser, MistralMalformedStaysContent) {
  std::string text = R"(x[TOOL_CALLS][{"name": "a", "arguments": )";
  Streamed s = parse_all_chunkings(ToolCallFormat::kMistral, text);
  EXPECT_TRUE(s.calls.empty());
  EXPECT_EQ(s.content, text);
  EXPECT_FALSE(s.errors.empty());
}

TEST(ToolCallParser, ArbitraryBytesNeverCrash) {
  std::mt19937_64 rng(7);
  const std::string alphabet = "<>/{}[]\":,; \n\\tool_call|python_tagTOOLCALLSARGSnamearguments";
  for (int i = 0; i < 300; ++i) {
    std::string text;
    size_t n = rng() % 80;
    for (size_t k = 0; k < n; ++k) text += alphabet[rng() % alphabet.size()];
    for (auto f : {ToolCallFormat::kHermes, ToolCallFormat::kLlama3, ToolCallFormat::kMistral}) {
      Streamed s = stream(f, text, 1 + rng() % 5);
      // Nothing is lost: calls are taken out, the rest is content.
      if (s.calls.empty()) {
        EXPECT_EQ(s.content, text) << text;
      }
    }
  }
}

TEST(ToolCallFormatNames, FromNameAndTemplate) {
  EXPECT_EQ(tool_call_format_from_name("qwen"), ToolCallFormat::kHermes);
  EXPECT_EQ(tool_call_format_from_name("mistral"), ToolCallFormat::kMistral);
  EXPECT_FALSE(tool_call_format_from_name("nope").has_value());
  EXPECT_EQ(detect_tool_call_format("{{- '<tool_call>\\n' }}"), ToolCallFormat::kHermes);
  EXPECT_EQ(detect_tool_call_format("{{ '[TOOL_CALLS]' }}"), ToolCallFormat::kMistral);
  EXPECT_EQ(detect_tool_call_format("<|python_tag|>"), ToolCallFormat::kLlama3);
}

// ---------------------------------------------------------------- grammars

const char* kTools = R"([
  {"type": "function", "function": {"name": "get_weather", "description": "Weather",
    "parameters": {"type": "object", "properties": {
      "city": {"type": "string", "maxLength": 10},
      "unit": {"enum": ["c", "f"]},
      "days": {"type": "integer", "minimum": 1, "maximum": 7}},
      "required": ["city"], "additionalProperties": false}}},
  {"type": "function", "function": {"name": "send_mail",
    "parameters": {"type": "object", "properties": {
      "to": {"type": "array", "items": {"type": "string", "maxLength": 8}, "minItems": 1, "maxItems": 2},
      "urgent": {"type": "boolean"}},
      "required": ["to", "urgent"]}}},
  {"name": "no_params"}
])";

std::shared_ptr<const Vocabulary> gpt2() {
  static auto v = test::load_byte_level_vocab(warden::test::shared_path("vocab/ggml-vocab-gpt-2.gguf"));
  return v;
}

// Random walk to completion (forced after 200 tokens).
std::string walk(Matcher& m, std::mt19937_64& rng) {
  m.reset();
  TokenMask mask;
  for (int step = 0; step < 200 && !m.is_finished(); ++step) {
    m.fill_mask(mask);
    std::vector<int32_t> allowed;
    for (size_t w = 0; w < mask.words().size(); ++w)
      for (uint64_t bits = mask.words()[w]; bits; bits &= bits - 1)
        allowed.push_back(int32_t(w * 64 + size_t(__builtin_ctzll(bits))));
    EXPECT_FALSE(allowed.empty());
    if (allowed.empty()) break;
    EXPECT_TRUE(m.accept_token(allowed[rng() % allowed.size()]));
  }
  if (!m.is_finished()) {
    EXPECT_TRUE(m.accept_bytes(m.shortest_completion()));
  }
  return m.text();
}

const ordered_json* parameters_of(const ordered_json& tools, const std::string& name) {
  for (const auto& t : tools) {
    const auto& fn = t.contains("function") ? t["function"] : t;
    if (fn["name"] == name) return fn.contains("parameters") ? &fn["parameters"] : nullptr;
  }
  return nullptr;
}

void check_grammar_round_trip(ToolCallFormat format, const ToolGrammarOptions& opt, size_t min_calls) {
  ordered_json tools = ordered_json::parse(kTools);
  auto g = std::make_shared<Grammar>(tool_call_grammar(format, tools, opt));
  Matcher m(g, gpt2());
  std::mt19937_64 rng(11);
  for (int i = 0; i < 25; ++i) {
    std::string text = walk(m, rng);
    ParsedToolCalls parsed = parse_tool_calls(format, text);
    ASSERT_GE(parsed.tool_calls.size(), min_calls) << text;
    if (!opt.parallel) {
      ASSERT_EQ(parsed.tool_calls.size(), 1u) << text;
    }
    EXPECT_EQ(trim_copy(parsed.content), "") << text;
    for (const auto& call : parsed.tool_calls) {
      if (!opt.only_tool.empty()) {
        EXPECT_EQ(call.name, opt.only_tool);
      }
      auto args = nlohmann::json::parse(call.arguments);
      const ordered_json* params = parameters_of(tools, call.name);
      if (params) {
        EXPECT_EQ(test::validate(args, *params), "") << text;
      } else {
        EXPECT_TRUE(args.is_object()) << text;
      }
    }
  }
}

TEST(ToolCallGrammar, HermesRoundTrip) { check_grammar_round_trip(ToolCallFormat::kHermes, {}, 1); }
TEST(ToolCallGrammar, Llama3RoundTrip) { check_grammar_round_trip(ToolCallFormat::kLlama3, {}, 1); }
TEST(ToolCallGrammar, MistralRoundTrip) { check_grammar_round_trip(ToolCallFormat::kMistral, {}, 1); }

TEST(ToolCallGrammar, ParallelCallsRoundTrip) {
  ToolGrammarOptions opt;
  opt.parallel = true;
  for (auto f : {ToolCallFormat::kHermes, ToolCallFormat::kLlama3, ToolCallFormat::kMistral})
    check_grammar_round_trip(f, opt, 1);
}

TEST(ToolCallGrammar, NamedFunctionOnly) {
  ToolGrammarOptions opt;
  opt.only_tool = "send_mail";
  check_grammar_round_trip(ToolCallFormat::kHermes, opt, 1);
}

TEST(ToolCallGrammar, BadToolsAreClearErrors) {
  auto err = [](const std::string& tools, const std::string& only = "") {
    ToolGrammarOptions opt;
    opt.only_tool = only;
    try {
      tool_call_grammar(ToolCallFormat::kHermes, ordered_json::parse(tools), opt);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(err(kTools, "nope").find("no tool named 'nope'"), std::string::npos);
  EXPECT_NE(err("[]").find("non-empty"), std::string::npos);
  EXPECT_NE(err(R"([{"type":"function","function":{}}])").find("tools[0]"), std::string::npos);
  EXPECT_NE(err(R"([{"name":"f","parameters":{"type":"string","pattern":"x"}}])").find("tool 'f' parameters"),
            std::string::npos);
}

}  // namespace
}  // namespace warden::grammar
