#pragma once
// Errors a template can produce. A template's own raise_exception(msg)
// yields a TemplateError whose what() is exactly msg; every other error
// names the template line it comes from.
#include <string>

#include "util/error.h"

namespace warden::chat {

class TemplateError : public warden::Error {
 public:
  explicit TemplateError(const std::string& message, bool raised_by_template = false)
      : warden::Error(message), raised_by_template_(raised_by_template) {}
  // True when the template itself called raise_exception().
  bool raised_by_template() const { return raised_by_template_; }

 private:
  bool raised_by_template_;
};

// The template text does not parse.
class TemplateSyntaxError : public TemplateError {
 public:
  using TemplateError::TemplateError;
};

}  // namespace warden::chat
