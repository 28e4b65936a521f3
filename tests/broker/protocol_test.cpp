// Strict parsing of the agent protocol.
#include <gtest/gtest.h>

#include "broker/protocol.h"
#include "util/error.h"

namespace wb = warden::broker;

namespace {
std::string parse_error(const std::string& line) {
  try {
    wb::effect_request_from_json(wb::parse_line(line));
  } catch (const warden::Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(Protocol, RoundTrip) {
  wb::EffectRequest r;
  r.capability = wb::Capability::exec;
  r.target = "curl https://x";
  r.network = true;
  r.detail = "full command";
  r.context_labels = wb::LabelSet::parse({"user", "web:x"});
  auto back = wb::effect_request_from_json(wb::parse_line(wb::dump_line(wb::effect_request_to_json(r))));
  EXPECT_EQ(back.capability, r.capability);
  EXPECT_EQ(back.target, r.target);
  EXPECT_TRUE(back.network);
  EXPECT_EQ(back.detail, r.detail);
  EXPECT_EQ(back.context_labels.to_strings(), r.context_labels.to_strings());
  EXPECT_FALSE(back.whole_tree);
  wb::EffectRequest search;
  search.target = "/w";
  search.whole_tree = true;
  EXPECT_TRUE(
      wb::effect_request_from_json(wb::parse_line(wb::dump_line(wb::effect_request_to_json(search)))).whole_tree);
}

TEST(Protocol, RejectsMalformedRequests) {
  EXPECT_EQ(parse_error("not json"), "request is not valid JSON");
  EXPECT_EQ(parse_error("[1]"), "request must be a JSON object");
  EXPECT_EQ(parse_error(R"({"op":"request","capability":"exec","target":"x","detail":)" + std::string(100000, '[') +
                        std::string(100000, ']') + "}"),
            "request nests arrays and objects more than 256 levels deep");
  EXPECT_EQ(parse_error(R"({"op":"request","capability":"net"})"), "missing field 'target'");
  EXPECT_EQ(parse_error(R"({"op":"request","capability":"root","target":"x"})"), "unknown capability 'root'");
  EXPECT_EQ(parse_error(R"({"op":"request","capability":"net","target":"x","approved":true})"),
            "unknown field 'approved' in request");
  EXPECT_EQ(parse_error(R"({"op":"request","capability":"net","target":"x","network":true})"),
            "field 'network' applies only to exec");
  EXPECT_EQ(parse_error(R"({"op":"request","capability":"exec","target":"x","whole_tree":true})"),
            "field 'whole_tree' applies only to fs.read");
  EXPECT_EQ(parse_error(R"({"op":"request","capability":"fs.read","target":"x","whole_tree":1})"),
            "field 'whole_tree' must be true or false");
  EXPECT_EQ(parse_error(R"({"op":"request","capability":"net","target":"x","context_labels":["trusted"]})"),
            "unknown taint label 'trusted' (expected user, workspace:PATH, web:DOMAIN, message:SENDER or tool:NAME)");
  EXPECT_EQ(parse_error(R"({"op":"request","capability":"net","target":7})"), "field 'target' must be a string");
}
