#include "server/reasoning.h"

#include <algorithm>

namespace warden::server {
namespace {

constexpr std::string_view kOpen = "<think>";
constexpr std::string_view kClose = "</think>";

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

size_t leading_space(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && is_space(s[i])) ++i;
  return i;
}

std::string_view without_trailing_space(std::string_view s) {
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// The length of the longest end of `s` that `tag` starts with.
size_t partial_tag_at_end(std::string_view s, std::string_view tag) {
  for (size_t n = std::min(s.size(), tag.size() - 1); n > 0; --n)
    if (s.substr(s.size() - n) == tag.substr(0, n)) return n;
  return 0;
}

}  // namespace

ReasoningSplitter::ReasoningSplitter(bool starts_inside) : state_(starts_inside ? State::kReasoning : State::kStart) {}

ReasoningSplitter::Parts ReasoningSplitter::feed(std::string_view text) {
  Parts out;
  held_.append(text);
  step(out);
  return out;
}

void ReasoningSplitter::step(Parts& out) {
  for (;;) {
    switch (state_) {
      case State::kStart: {
        const std::string_view rest = std::string_view(held_).substr(leading_space(held_));
        if (rest.size() < kOpen.size() && kOpen.substr(0, rest.size()) == rest) return;  // "", "<", "<th", ...
        if (rest.substr(0, kOpen.size()) == kOpen) {
          held_.erase(0, held_.size() - rest.size() + kOpen.size());
          state_ = State::kReasoning;
        } else {
          state_ = State::kContent;
        }
        break;
      }
      case State::kReasoning: {
        if (!reasoning_begun_) held_.erase(0, leading_space(held_));
        const size_t close = held_.find(kClose);
        if (close != std::string::npos) {
          out.reasoning.append(without_trailing_space(std::string_view(held_).substr(0, close)));
          held_.erase(0, close + kClose.size());
          state_ = State::kAfterReasoning;
          break;
        }
        // Send all but a possible start of </think> and the whitespace
        // before it (dropped if the tag follows).
        size_t keep = partial_tag_at_end(held_, kClose);
        while (keep < held_.size() && is_space(held_[held_.size() - keep - 1])) ++keep;
        if (held_.size() > keep) {
          out.reasoning.append(held_, 0, held_.size() - keep);
          held_.erase(0, held_.size() - keep);
          reasoning_begun_ = true;
        }
        return;
      }
      case State::kAfterReasoning:
        held_.erase(0, leading_space(held_));
        if (held_.empty()) return;
        state_ = State::kContent;
        break;
      case State::kContent:
        out.content.append(held_);
        held_.clear();
        return;
    }
  }
}

ReasoningSplitter::Parts ReasoningSplitter::finish() {
  Parts out;
  switch (state_) {
    case State::kStart: out.content = held_; break;  // whitespace, or a start of "<think>" that never came
    case State::kReasoning: out.reasoning = without_trailing_space(held_); break;
    case State::kAfterReasoning:
    case State::kContent: break;
  }
  held_.clear();
  state_ = State::kContent;
  return out;
}

bool prompt_opens_reasoning(std::string_view rendered_prompt) {
  const std::string_view p = without_trailing_space(rendered_prompt);
  return p.size() >= kOpen.size() && p.substr(p.size() - kOpen.size()) == kOpen;
}

}  // namespace warden::server
