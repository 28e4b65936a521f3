#pragma once
// Names of the builtin filters and tests, so the parser can reject unknown
// ones up front, as Jinja2's compiler does ("no filter named 'x'").
#include <string>

namespace warden::chat::jinja {

bool is_builtin_filter(const std::string& name);
bool is_builtin_test(const std::string& name);

}  // namespace warden::chat::jinja
