#include "broker/taint.h"

#include "util/error.h"

namespace warden::broker {
namespace {
struct SourceName {
  Source source;
  std::string_view name;
};
constexpr SourceName kSources[] = {{Source::user, "user"},
                                   {Source::workspace, "workspace"},
                                   {Source::web, "web"},
                                   {Source::message, "message"},
                                   {Source::tool, "tool"}};

std::string_view source_name(Source s) {
  for (auto& sn : kSources)
    if (sn.source == s) return sn.name;
  return "?";
}
}  // namespace

std::string Label::to_string() const {
  std::string s(source_name(source));
  if (source != Source::user) s += ":" + origin;
  return s;
}

std::string Label::describe() const {
  switch (source) {
    case Source::user: return "text the user typed";
    case Source::workspace: return "content of workspace file " + origin;
    case Source::web: return "text from " + origin;
    case Source::message: return "a message from " + origin;
    case Source::tool: return "output of tool " + origin;
  }
  return "?";
}

Label parse_label(std::string_view text) {
  std::string_view kind = text, origin;
  bool has_colon = false;
  if (auto colon = text.find(':'); colon != std::string_view::npos) {
    kind = text.substr(0, colon);
    origin = text.substr(colon + 1);
    has_colon = true;
  }
  for (auto& sn : kSources) {
    if (sn.name != kind) continue;
    if (sn.source == Source::user) {
      if (has_colon) throw Error("taint label 'user' takes no origin: '" + std::string(text) + "'");
      return Label{Source::user, ""};
    }
    if (origin.empty())
      throw Error("taint label '" + std::string(text) + "' needs an origin (" + std::string(kind) + ":...)");
    return Label{sn.source, std::string(origin)};
  }
  throw Error("unknown taint label '" + std::string(text) +
              "' (expected user, workspace:PATH, web:DOMAIN, message:SENDER or tool:NAME)");
}

bool LabelSet::has_untrusted() const {
  for (auto& l : labels_)
    if (!l.trusted()) return true;
  return false;
}

std::vector<Label> LabelSet::untrusted() const {
  std::vector<Label> out;
  for (auto& l : labels_)
    if (!l.trusted()) out.push_back(l);
  return out;
}

std::vector<std::string> LabelSet::to_strings() const {
  std::vector<std::string> out;
  for (auto& l : labels_) out.push_back(l.to_string());
  return out;
}

LabelSet LabelSet::parse(const std::vector<std::string>& texts) {
  LabelSet set;
  for (auto& t : texts) set.add(parse_label(t));
  return set;
}

}  // namespace warden::broker
