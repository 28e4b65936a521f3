// Conformance: every case in ../shared/templates/cases.json renders byte for
// byte as the reference renderer (Jinja2, trim_blocks + lstrip_blocks) did,
// or raises exactly the template's own error message.
#include <gtest/gtest.h>

#include <ctime>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "chat/chat_template.h"
#include "common/test_env.h"

namespace {

using nlohmann::ordered_json;

struct Case {
  std::string name;  // gtest-safe
  ordered_json data;
};

std::vector<Case> load_cases() {
  std::string path = warden::test::shared_path("templates/cases.json");
  ordered_json all = ordered_json::parse(warden::test::read_file(path));
  std::vector<Case> cases;
  for (const auto& c : all) {
    std::string name = c["template"].get<std::string>() + "_" + c["case"].get<std::string>();
    for (char& ch : name)
      if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
    cases.push_back({name, c});
  }
  return cases;
}

// The cases state what strftime_now() returned ("25 Nov 2026" for "%d %b %Y");
// turn that back into a time so the template's own format call reproduces it.
std::time_t time_from_case(const std::string& day_month_year) {
  std::tm tm{};
  const char* end = strptime(day_month_year.c_str(), "%d %b %Y", &tm);
  if (!end || *end) ADD_FAILURE() << "cannot parse strftime_now value " << day_month_year;
  tm.tm_hour = 12;
  tm.tm_isdst = -1;
  return std::mktime(&tm);
}

class ChatCases : public ::testing::TestWithParam<Case> {};

TEST_P(ChatCases, RendersExactly) {
  const ordered_json& c = GetParam().data;
  std::string source =
      warden::test::read_file(warden::test::shared_path("templates/" + c["template"].get<std::string>()));
  warden::chat::ChatInputs in;
  in.messages = c["messages"];
  in.tools = c.contains("tools") ? c["tools"] : ordered_json(nullptr);
  in.add_generation_prompt = c["add_generation_prompt"].get<bool>();
  in.bos_token = c["bos_token"].get<std::string>();
  in.eos_token = c["eos_token"].get<std::string>();
  in.extra_context = ordered_json::object();
  if (c.contains("date_string")) in.extra_context["date_string"] = c["date_string"];
  in.now = time_from_case(c["strftime_now"].get<std::string>());

  warden::chat::ChatTemplate tmpl(source);
  if (!c["expected_error"].is_null()) {
    try {
      std::string out = tmpl.render(in);
      FAIL() << "expected error '" << c["expected_error"].get<std::string>() << "', got output:\n" << out;
    } catch (const warden::chat::TemplateError& e) {
      EXPECT_TRUE(e.raised_by_template()) << e.what();
      EXPECT_EQ(std::string(e.what()), c["expected_error"].get<std::string>());
    }
    return;
  }
  std::string out = tmpl.render(in);
  EXPECT_EQ(out, c["expected"].get<std::string>());
}

INSTANTIATE_TEST_SUITE_P(SharedTemplates, ChatCases, ::testing::ValuesIn(load_cases()),
                         [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });

TEST(ChatCasesFile, HasAllFiftyCases) { EXPECT_EQ(load_cases().size(), 50u); }

}  // namespace
