#pragma once
// A Jinja2 template engine for chat templates. Parse once, render many
// times. Semantics follow Jinja2 with trim_blocks=True, lstrip_blocks=True,
// autoescape off and the default (non-strict) Undefined. Rendering runs
// under hard limits so a hostile template cannot hang, recurse without
// bound or exhaust memory: exceeding one is a TemplateError.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "chat/jinja_error.h"
#include "chat/jinja_value.h"

namespace warden::chat {

struct TemplateLimits {
  size_t max_output_bytes = 64u << 20;     // rendered text, and any single string
  size_t max_allocated_bytes = 1u << 30;   // strings/lists built during one render, in total
  size_t max_collection_items = 1u << 20;  // elements of one list built while rendering (range(),
                                           // '*', '+', split(), iterating a string or dict)
  uint64_t max_steps = 50'000'000;         // evaluation steps in one render; work on long
                                           // strings and collections costs a step per 64
                                           // bytes or per item, so this bounds CPU time
  std::chrono::milliseconds max_render_time{10'000};  // wall-clock time for one render (backstop)
  int max_call_depth = 64;                 // nested macro calls
  int max_nesting = 256;                   // syntax nesting depth
};

namespace jinja {
struct ParsedTemplate;
}

class JinjaTemplate {
 public:
  // Parses; throws TemplateSyntaxError ("line N: ...") on bad syntax.
  explicit JinjaTemplate(std::string_view source, TemplateLimits limits = {});
  ~JinjaTemplate();
  JinjaTemplate(JinjaTemplate&&) noexcept;
  JinjaTemplate& operator=(JinjaTemplate&&) noexcept;

  // Renders with these top-level variables (callables included). Throws
  // TemplateError; what() is exactly the message for raise_exception().
  std::string render(const jinja::Dict& variables) const;

  const TemplateLimits& limits() const { return limits_; }

 private:
  std::shared_ptr<const jinja::ParsedTemplate> parsed_;
  TemplateLimits limits_;
};

}  // namespace warden::chat
