#pragma once
// Taint labels: where a piece of content came from. Labels are attached to
// content and follow it (set union) into anything derived from it: the
// model's context, and the arguments of the tool calls it proposes.
//
// Only text the user typed is trusted. Everything else (workspace files,
// web pages, messages, tool output) may carry planted instructions, so its
// presence makes a leaking sink ask the human.
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace warden::broker {

enum class Source { user, workspace, web, message, tool };

struct Label {
  Source source = Source::user;
  std::string origin;  // workspace: path, web: domain, message: sender, tool: name; empty for user

  auto operator<=>(const Label&) const = default;
  bool trusted() const { return source == Source::user; }
  // "user", "workspace:/w/notes.txt", "web:example.com", ...
  std::string to_string() const;
  // Human-readable origin for the approval prompt: "text from example.com".
  std::string describe() const;
};

// Parses "user", "workspace:PATH", "web:DOMAIN", "message:SENDER",
// "tool:NAME". Throws warden::Error naming the text when malformed.
Label parse_label(std::string_view text);

class LabelSet {
 public:
  LabelSet() = default;
  LabelSet(std::initializer_list<Label> labels) : labels_(labels) {}

  void add(Label l) { labels_.insert(std::move(l)); }
  // Union: derived data carries the labels of everything it came from.
  void merge(const LabelSet& other) { labels_.insert(other.labels_.begin(), other.labels_.end()); }
  bool empty() const { return labels_.empty(); }
  bool has_untrusted() const;
  std::vector<Label> untrusted() const;
  const std::set<Label>& labels() const { return labels_; }
  std::vector<std::string> to_strings() const;
  static LabelSet parse(const std::vector<std::string>& texts);

 private:
  std::set<Label> labels_;
};

}  // namespace warden::broker
