// `warden serve --spec-type ngram-simple` (lookup decoding) against a plain
// server on the same random-weight model: the same completions, greedy and
// seeded, one at a time and two at once, under a grammar, a stop string and
// a token limit; and /metrics shows drafts being checked.
#include <gtest/gtest.h>

#include <thread>

#include "server/http_client.h"
#include "server/serve_process.h"

namespace warden::test {
namespace {

using json = nlohmann::json;

class LookupServeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    plain_ = new ServeProcess({"-c", "1024", "--parallel", "2", "-t", "2"});
    lookup_ = new ServeProcess({"-c", "1024", "--parallel", "2", "-t", "2", "--spec-type", "ngram-simple",
                                "--draft-max", "3", "--spec-ngram-size-n", "1"});
  }
  static void TearDownTestSuite() {
    delete plain_;
    delete lookup_;
  }

  static json completion(const std::string& prompt, int max_tokens, json extra = json::object()) {
    json body = {{"prompt", prompt}, {"max_tokens", max_tokens}, {"seed", 5}};
    body.update(extra);
    return body;
  }
  // What the server answers: the text, the finish reason and the token
  // count; `timings` (llama-server's) gets the answer's timings.
  static std::string answer(ServeProcess& server, const std::string& path, const json& body,
                            json* timings = nullptr) {
    auto r = ApiClient(server.port()).post(path, body);
    EXPECT_EQ(r.status, 200) << r.body;
    if (r.status != 200) return "";
    const json j = r.json();
    if (timings) *timings = j["timings"];
    const json& choice = j["choices"][0];
    const std::string text = choice.contains("text") ? choice["text"].get<std::string>()
                                                     : choice["message"]["content"].get<std::string>();
    return text + " | " + choice["finish_reason"].get<std::string>() + " | " +
           std::to_string(j["usage"]["completion_tokens"].get<int>());
  }
  static double metric(ServeProcess& server, const std::string& name) {
    const std::string m = ApiClient(server.port()).get("/metrics").body;
    const auto at = m.find("\n" + name + " ");
    return at == std::string::npos ? -1.0 : std::stod(m.substr(at + name.size() + 2));
  }

  static ServeProcess* plain_;
  static ServeProcess* lookup_;
};
ServeProcess* LookupServeTest::plain_ = nullptr;
ServeProcess* LookupServeTest::lookup_ = nullptr;

TEST_F(LookupServeTest, SameCompletionsOneAtATime) {
  const double drafted = metric(*lookup_, "warden_draft_tokens_total");
  const double confirmed = metric(*lookup_, "warden_draft_accepted_total");
  std::vector<json> bodies;
  for (double temperature : {0.0, 0.3, 0.8})
    for (int seed : {1, 2, 3})
      bodies.push_back(completion("a b a b a b", 60, {{"temperature", temperature}, {"seed", seed}}));
  bodies.push_back(completion("count: 1 2 3", 5, {{"temperature", 0}}));
  // A stop string the plain answer meets, taken from its middle.
  json stopped = completion("a b a b a b", 60, {{"temperature", 0}});
  const std::string text = ApiClient(plain_->port()).post("/v1/completions", stopped).json()["choices"][0]["text"];
  ASSERT_GE(text.size(), 20u);
  stopped["stop"] = json::array({text.substr(12, 3)});
  bodies.push_back(stopped);
  // Each answer's timings count its own drafts; together they are what
  // /metrics counted meanwhile.
  int64_t drafts_in_timings = 0, confirmed_in_timings = 0;
  for (const json& body : bodies) {
    json plain_timings, timings;
    const std::string expected = answer(*plain_, "/v1/completions", body, &plain_timings);
    EXPECT_EQ(answer(*lookup_, "/v1/completions", body, &timings), expected) << body.dump();
    EXPECT_FALSE(plain_timings.contains("draft_n")) << plain_timings.dump();
    ASSERT_TRUE(timings.contains("draft_n")) << timings.dump();
    EXPECT_LE(timings["draft_n_accepted"].get<int64_t>(), timings["draft_n"].get<int64_t>());
    EXPECT_EQ(timings["predicted_n"], plain_timings["predicted_n"]);
    drafts_in_timings += timings["draft_n"].get<int64_t>();
    confirmed_in_timings += timings["draft_n_accepted"].get<int64_t>();
  }

  const double drafted_now = metric(*lookup_, "warden_draft_tokens_total");
  const double confirmed_now = metric(*lookup_, "warden_draft_accepted_total");
  EXPECT_GT(confirmed_now - confirmed, 20);
  EXPECT_GT(drafted_now - drafted, confirmed_now - confirmed);  // some drafts were wrong, and cut
  EXPECT_EQ(drafted_now - drafted, double(drafts_in_timings));
  EXPECT_EQ(confirmed_now - confirmed, double(confirmed_in_timings));

  EXPECT_EQ(metric(*plain_, "warden_draft_tokens_total"), 0);
}

// A prompt that leaves a few positions of the slot's context: the answer
// ends where the context does (the drafts never pass it).
TEST_F(LookupServeTest, SameAnswerAtTheEndOfTheContext) {
  std::string prompt;
  for (int i = 0; i < 60; ++i) prompt += "ab cd ";
  const json body = completion(prompt, -1, {{"temperature", 0}, {"max_tokens", nullptr}});
  const std::string expected = answer(*plain_, "/v1/completions", body);
  EXPECT_NE(expected.find(" | length | "), std::string::npos) << expected;
  EXPECT_EQ(answer(*lookup_, "/v1/completions", body), expected);
}

// Both slots decoding at once share the pass's room for drafts; each
// answer is still the one a plain server gives it alone.
TEST_F(LookupServeTest, SameCompletionsTwoAtOnce) {
  const json a = completion("x y z x y z", 80, {{"temperature", 0.7}, {"seed", 11}});
  const json b = completion("one two one two", 70, {{"temperature", 0}});
  const std::string expected_a = answer(*plain_, "/v1/completions", a);
  const std::string expected_b = answer(*plain_, "/v1/completions", b);
  for (int round = 0; round < 3; ++round) {
    std::string got_a, got_b;
    std::thread ta([&] { got_a = answer(*lookup_, "/v1/completions", a); });
    std::thread tb([&] { got_b = answer(*lookup_, "/v1/completions", b); });
    ta.join();
    tb.join();
    EXPECT_EQ(got_a, expected_a) << round;
    EXPECT_EQ(got_b, expected_b) << round;
  }
}

// Under a grammar, a draft the grammar forbids is simply not what gets
// sampled: the constrained answer is the plain server's.
TEST_F(LookupServeTest, SameConstrainedAnswer) {
  const json schema = {{"type", "array"}, {"items", {{"enum", json::array({"ab", "abab", "b"})}}}};
  json body = {{"messages", json::array({{{"role", "user"}, {"content", "list"}}})},
               {"max_tokens", 60},
               {"temperature", 0}};
  body["response_format"] = {{"type", "json_schema"}, {"json_schema", {{"name", "l"}, {"schema", schema}}}};
  EXPECT_EQ(answer(*lookup_, "/v1/chat/completions", body), answer(*plain_, "/v1/chat/completions", body));
}

}  // namespace
}  // namespace warden::test
