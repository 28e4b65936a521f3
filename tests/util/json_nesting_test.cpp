#include "util/json_nesting.h"

#include <gtest/gtest.h>

#include <string>

namespace warden {
namespace {

std::string nested(size_t levels, char open = '[', char close = ']') {
  return std::string(levels, open) + std::string(levels, close);
}

TEST(JsonNesting, CountsArraysAndObjectsInsideOneAnother) {
  EXPECT_FALSE(json_nests_deeper_than("", 0));
  EXPECT_FALSE(json_nests_deeper_than("12", 0));
  EXPECT_TRUE(json_nests_deeper_than("[]", 0));
  EXPECT_FALSE(json_nests_deeper_than(nested(3), 3));
  EXPECT_TRUE(json_nests_deeper_than(nested(4), 3));
  EXPECT_FALSE(json_nests_deeper_than(R"({"a":[1,{"b":[]}],"c":{}})", 4));
  EXPECT_TRUE(json_nests_deeper_than(R"({"a":[1,{"b":[]}],"c":{}})", 3));
  // Siblings do not add up: only what is open at once counts.
  EXPECT_FALSE(json_nests_deeper_than("[[],[],[[]],[]]", 3));
}

TEST(JsonNesting, BracketsInsideStringsDoNotCount) {
  EXPECT_FALSE(json_nests_deeper_than(R"(["[[[[{{{{"])", 1));
  // An escaped quote does not end the string; an escaped backslash does not
  // escape the quote after it.
  EXPECT_FALSE(json_nests_deeper_than(R"(["\"[[[["])", 1));
  EXPECT_TRUE(json_nests_deeper_than(R"(["\\",[[]]])", 2));
}

TEST(JsonNesting, UnbalancedTextIsScannedAllTheSame) {
  EXPECT_TRUE(json_nests_deeper_than(std::string(300, '['), 256));
  EXPECT_FALSE(json_nests_deeper_than("]]]]", 0));  // closers without openers do not go below zero
  EXPECT_TRUE(json_nests_deeper_than("]][[", 1));
}

TEST(JsonNesting, DefaultLimit) {
  EXPECT_FALSE(json_nests_deeper_than(nested(kMaxJsonNesting)));
  EXPECT_TRUE(json_nests_deeper_than(nested(kMaxJsonNesting + 1, '{', '}')));
}

}  // namespace
}  // namespace warden
