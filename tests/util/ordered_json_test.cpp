#include "util/ordered_json.h"

#include <gtest/gtest.h>

#include <string>

#include "util/error.h"

namespace warden {
namespace {

using nlohmann::ordered_json;

std::string error_of(std::string_view text) {
  try {
    parse_ordered_json(text);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(OrderedJson, TheSameValueAsNlohmannsParser) {
  for (const char* text :
       {"null", "true", " 12 ", "-3", "18446744073709551615", "1.5e3", R"("a\u00e9\n")", "[]", "{}",
        R"({"b":1,"a":[1,{"z":null,"y":[]}],"c":{"k":"v"}})",
        R"({"a":1,"b":2,"a":3})",  // a repeated key keeps its first place and takes its last value
        R"([{"x":{"x":{"x":1},"x":2}},[[],[[]]]])"}) {
    const ordered_json ours = parse_ordered_json(text), theirs = ordered_json::parse(text);
    EXPECT_EQ(ours, theirs) << text;
    EXPECT_EQ(ours.dump(), theirs.dump()) << text;  // the same member order
  }
  EXPECT_EQ(parse_ordered_json(R"({"a":1,"b":2,"a":3})").dump(), R"({"a":3,"b":2})");
}

TEST(OrderedJson, ManyMembersInTheirOrder) {
  std::string text = "{";
  for (int i = 0; i < 200000; i++) text += (i ? ",\"k" : "\"k") + std::to_string(199999 - i) + "\":" + std::to_string(i);
  text += "}";
  const ordered_json j = parse_ordered_json(text);
  ASSERT_EQ(j.size(), 200000u);
  EXPECT_EQ(j.begin().key(), "k199999");
  EXPECT_EQ(j["k0"], 199999);
}

TEST(OrderedJson, OneErrorNamingWhatIsWrong) {
  for (const char* bad : {"", "{", "[1,]", R"({"a" 1})", "tru", R"({"a":1}x)", "[6666666666666666666e66666666666666666666]"})
    EXPECT_EQ(error_of(bad).rfind("is not valid JSON: ", 0), 0u) << bad << ": " << error_of(bad);
  EXPECT_EQ(error_of(std::string(256, '[') + std::string(256, ']')), "");
  std::string objects;
  for (int i = 0; i < 257; i++) objects += R"({"a":)";
  for (const std::string& deep : {std::string(257, '['), objects})
    EXPECT_EQ(error_of(deep), "nests arrays and objects more than 256 levels deep");
}

// The error names what the parser read last, which may be the whole input
// and any bytes: the message stays short and printable ASCII (an answer
// that echoed a 1.5 MB string escaped to 3 MB, and one with a byte that is
// no UTF-8 could not be written as JSON at all).
TEST(OrderedJson, AnErrorNeverEchoesTheWholeInput) {
  const std::string unterminated = R"({"prompt":")" + std::string(1 << 20, '\\') + "\xff";
  const std::string message = error_of(unterminated);
  EXPECT_EQ(message.rfind("is not valid JSON: ", 0), 0u) << message.substr(0, 200);
  EXPECT_LT(message.size(), 2000u);
  for (char c : message) EXPECT_TRUE(c >= 0x20 && c < 0x7f) << int(c);
  const std::string bad_byte = error_of("{\"a\":\"\xff\"}");
  EXPECT_NE(bad_byte.find("\\xff"), std::string::npos) << bad_byte;  // the project's escape (display.h)
  EXPECT_NO_THROW(ordered_json(bad_byte).dump());
}

}  // namespace
}  // namespace warden
