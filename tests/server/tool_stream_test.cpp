// Forced tool calls streamed OpenAI-style: the name first, then the
// arguments' JSON text in pieces, for every tool-call format.
#include <gtest/gtest.h>

#include <random>

#include <nlohmann/json.hpp>

#include "server/tool_stream.h"

namespace warden::server {
namespace {

using grammar::ToolCallFormat;
using json = nlohmann::json;

struct Streamed {
  std::vector<std::string> names;       // by call index
  std::vector<std::string> arguments;   // concatenated pieces, by call index
  std::vector<size_t> argument_pieces;  // non-empty pieces, by call index
  ToolCallStreamer::Final final;
};

// Feeds `text` in pieces of `piece` bytes (0: all at once) and checks the
// shape every client relies on: a call opens exactly once, with its name,
// before any of its arguments, and indexes count up from 0.
Streamed stream(ToolCallFormat format, const std::string& text, size_t piece) {
  ToolCallStreamer streamer(format);
  Streamed s;
  auto take = [&](const std::vector<ToolCallFragment>& fragments) {
    for (const auto& f : fragments) {
      if (f.opens) {
        EXPECT_EQ(f.index, s.names.size());
        EXPECT_TRUE(f.arguments.empty());
        s.names.push_back(f.name);
        s.arguments.emplace_back();
        s.argument_pieces.push_back(0);
      } else {
        EXPECT_LT(f.index, s.names.size()) << "arguments before their call opened";
        if (f.index >= s.names.size()) continue;
        EXPECT_TRUE(f.name.empty());
        s.arguments[f.index] += f.arguments;
        if (!f.arguments.empty()) s.argument_pieces[f.index]++;
      }
    }
  };
  if (piece == 0) piece = text.size();
  for (size_t at = 0; at < text.size(); at += piece) take(streamer.feed(text.substr(at, piece)));
  s.final = streamer.finish();
  take(s.final.fragments);
  return s;
}

TEST(ToolStream, HermesCallArrivesInPieces) {
  const std::string text =
      "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": 3}}\n</tool_call>";
  Streamed s = stream(ToolCallFormat::kHermes, text, 1);
  ASSERT_EQ(s.names, std::vector<std::string>{"get_weather"});
  EXPECT_EQ(s.arguments[0], "{\"city\": \"Paris\", \"days\": 3}");
  EXPECT_EQ(s.argument_pieces[0], s.arguments[0].size());  // one piece per byte fed
  EXPECT_TRUE(s.final.mismatches.empty());
  EXPECT_TRUE(s.final.fragments.empty());  // nothing was left for the end

  Streamed whole = stream(ToolCallFormat::kHermes, text, 0);
  EXPECT_EQ(whole.arguments, s.arguments);
  EXPECT_EQ(whole.argument_pieces[0], 1u);
}

TEST(ToolStream, ParallelHermesCallsGetTheirOwnIndex) {
  const std::string text =
      "<tool_call>\n{\"name\": \"a\", \"arguments\": {\"x\": [1, 2]}}\n</tool_call>\n"
      "<tool_call>\n{\"name\": \"b\", \"arguments\": {}}\n</tool_call>";
  for (size_t piece : {1, 3, 7, 0}) {
    Streamed s = stream(ToolCallFormat::kHermes, text, piece);
    ASSERT_EQ(s.names, (std::vector<std::string>{"a", "b"})) << piece;
    EXPECT_EQ(s.arguments[0], "{\"x\": [1, 2]}");
    EXPECT_EQ(s.arguments[1], "{}");
    EXPECT_TRUE(s.final.mismatches.empty());
  }
}

TEST(ToolStream, BracesInsideStringsDoNotEndTheArguments) {
  const std::string text =
      "[TOOL_CALLS][{\"name\": \"a\", \"arguments\": {\"s\": \"}]{\\\"\", \"t\": [{\"u\": \"\\\\\"}]}}, "
      "{\"name\": \"b\", \"arguments\": {\"v\": null}}]";
  for (size_t piece : {1, 2, 5, 0}) {
    Streamed s = stream(ToolCallFormat::kMistral, text, piece);
    ASSERT_EQ(s.names, (std::vector<std::string>{"a", "b"})) << piece;
    EXPECT_EQ(json::parse(s.arguments[0]), json::parse(R"({"s": "}]{\"", "t": [{"u": "\\"}]})"));
    EXPECT_EQ(s.arguments[1], "{\"v\": null}");
    EXPECT_TRUE(s.final.mismatches.empty()) << s.final.mismatches[0];
  }
}

// A call nested 200000 levels deep streams its text as any other, and at the
// end the parser, which refuses such nesting, reports that it disagrees
// (comparing the two parsed values used to recurse once per level).
TEST(ToolStream, CallNestedTooDeepEndsAsAMismatch) {
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  Streamed s = stream(ToolCallFormat::kHermes, "<tool_call>{\"name\": \"f\", \"arguments\": {\"a\": " + deep + "}}</tool_call>", 4096);
  ASSERT_EQ(s.names, (std::vector<std::string>{"f"}));
  EXPECT_EQ(s.arguments[0], "{\"a\": " + deep + "}");
  EXPECT_FALSE(s.final.mismatches.empty());
}

TEST(ToolStream, Llama3ParametersStream) {
  const std::string text = "{\"name\": \"f\", \"parameters\": {\"q\": \"a b\"}}; {\"name\": \"g\", \"parameters\": {}}";
  Streamed s = stream(ToolCallFormat::kLlama3, text, 4);
  ASSERT_EQ(s.names, (std::vector<std::string>{"f", "g"}));
  EXPECT_EQ(s.arguments[0], "{\"q\": \"a b\"}");
  EXPECT_GT(s.argument_pieces[0], 1u);
  EXPECT_TRUE(s.final.mismatches.empty());
}

TEST(ToolStream, MultibyteCharactersStayWhole) {
  // Pieces of whole characters (as the scheduler's decoder hands them out).
  const std::string head = "<tool_call>\n{\"name\": \"say\", \"arguments\": {\"text\": \"";
  const std::vector<std::string> pieces = {head, "h\xC3\xA9", " ", "\xE2\x82\xAC", "\"}}\n</tool_call>"};
  ToolCallStreamer streamer(ToolCallFormat::kHermes);
  std::string arguments;
  for (const auto& piece : pieces) {
    for (const auto& f : streamer.feed(piece)) {
      arguments += f.arguments;
      EXPECT_NO_THROW(json(f.arguments).dump()) << "a piece is not valid UTF-8";
    }
  }
  EXPECT_EQ(json::parse(arguments)["text"], "h\xC3\xA9 \xE2\x82\xAC");
  EXPECT_TRUE(streamer.finish().mismatches.empty());
}

TEST(ToolStream, CutShortInsideTheArgumentsIsReported) {
  Streamed s = stream(ToolCallFormat::kHermes, "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1", 1);
  ASSERT_EQ(s.names, std::vector<std::string>{"f"});
  EXPECT_EQ(s.arguments[0], "{\"a\": 1");  // what was generated, as OpenAI does on finish_reason "length"
  EXPECT_EQ(s.final.mismatches.size(), 1u);
}

TEST(ToolStream, CutShortBeforeTheNameStaysText) {
  Streamed s = stream(ToolCallFormat::kHermes, "<tool_call>\n{\"na", 1);
  EXPECT_TRUE(s.names.empty());
  EXPECT_EQ(s.final.content, "<tool_call>\n{\"na");
  EXPECT_TRUE(s.final.mismatches.empty());
}

TEST(ToolStream, OtherKeyOrderIsSentWholeOnceComplete) {
  const std::string text = "<tool_call>\n{\"arguments\": {\"k\": 1}, \"name\": \"f\"}\n</tool_call>";
  Streamed s = stream(ToolCallFormat::kHermes, text, 1);
  ASSERT_EQ(s.names, std::vector<std::string>{"f"});
  EXPECT_EQ(json::parse(s.arguments[0]), json::parse("{\"k\": 1}"));
  EXPECT_EQ(s.argument_pieces[0], 1u);
  EXPECT_TRUE(s.final.mismatches.empty());
}

// Random JSON with the characters that matter to a bracket scanner.
json random_value(std::mt19937& rng, int depth) {
  static const std::vector<std::string> strings = {"", "a", "}", "]", "{[", "\"", "\\", "\\\"", "x\ny", "\xC3\xA9"};
  switch (depth > 2 ? rng() % 4 : rng() % 6) {
    case 0: return int(rng() % 1000) - 500;
    case 1: return strings[rng() % strings.size()];
    case 2: return rng() % 2 == 0;
    case 3: return nullptr;
    case 4: {
      json a = json::array();
      for (unsigned i = rng() % 4; i > 0; --i) a.push_back(random_value(rng, depth + 1));
      return a;
    }
    default: {
      json o = json::object();
      for (unsigned i = rng() % 4; i > 0; --i) o[strings[rng() % strings.size()] + std::to_string(i)] = random_value(rng, depth + 1);
      return o;
    }
  }
}

// Whatever calls a grammar lets through, in every format and however the
// text is cut, the streamed names and arguments are exactly the calls.
TEST(ToolStream, RandomCallsInEveryFormatAndCut) {
  std::mt19937 rng(1234);
  for (int round = 0; round < 300; ++round) {
    std::vector<std::pair<std::string, json>> calls;
    for (unsigned i = 1 + rng() % 3; i > 0; --i) {
      json args = random_value(rng, 1);
      if (!args.is_object()) args = json{{"v", args}};
      calls.emplace_back("tool_" + std::to_string(rng() % 5), args);
    }
    const auto format = std::vector<ToolCallFormat>{ToolCallFormat::kHermes, ToolCallFormat::kLlama3,
                                                    ToolCallFormat::kMistral}[rng() % 3];
    const char* key = format == ToolCallFormat::kLlama3 ? "parameters" : "arguments";
    std::string text = format == ToolCallFormat::kMistral ? "[TOOL_CALLS][" : "";
    for (size_t i = 0; i < calls.size(); ++i) {
      std::string call = "{\"name\": " + json(calls[i].first).dump() + ", \"" + key + "\": " +
                         calls[i].second.dump(rng() % 2 ? 1 : -1) + "}";
      if (format == ToolCallFormat::kHermes) text += (i ? "\n" : "") + std::string("<tool_call>\n") + call + "\n</tool_call>";
      else if (format == ToolCallFormat::kLlama3) text += (i ? "; " : "") + call;
      else text += (i ? ", " : "") + call;
    }
    if (format == ToolCallFormat::kMistral) text += "]";
    Streamed s = stream(format, text, 1 + rng() % 9);
    ASSERT_EQ(s.names.size(), calls.size()) << text;
    for (size_t i = 0; i < calls.size(); ++i) {
      EXPECT_EQ(s.names[i], calls[i].first);
      EXPECT_EQ(json::parse(s.arguments[i]), calls[i].second) << text;
    }
    EXPECT_TRUE(s.final.mismatches.empty()) << text;
    EXPECT_TRUE(s.final.fragments.empty()) << text;
  }
}

// Text no grammar would allow: nothing crashes, the shape checks in
// stream() hold, and whatever opened is reported if the parser disagrees.
TEST(ToolStream, GarbageKeepsTheShape) {
  std::mt19937 rng(99);
  const std::string alphabet = "{}[]\"\\:, ntame<>/_lcTOOLS";
  for (int round = 0; round < 500; ++round) {
    std::string text;
    for (unsigned i = rng() % 120; i > 0; --i) text += alphabet[rng() % alphabet.size()];
    if (rng() % 2) text = "<tool_call>{\"name\": \"f\", \"arguments\": " + text;
    for (auto format : {ToolCallFormat::kHermes, ToolCallFormat::kLlama3, ToolCallFormat::kMistral})
      stream(format, text, 1 + rng() % 5);
  }
}

}  // namespace
}  // namespace warden::server
