#include "broker/autorun.h"

namespace warden::broker {
namespace {

// Case-insensitive filesystems (vfat, exfat, ext4 with casefold) open .git
// for .GIT: the names compare ignoring ASCII case.
bool same_name_ignoring_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

}  // namespace

std::string autorun_reason(std::string_view path, std::string_view workspace) {
  std::string_view rel = path;
  bool inside = !workspace.empty() && workspace != "/" && path.size() > workspace.size() &&
                path.compare(0, workspace.size(), workspace) == 0 && path[workspace.size()] == '/';
  if (inside) rel = path.substr(workspace.size());
  // Walk the components; a directory entry matches anywhere, a file entry
  // only as the last component.
  size_t i = 0;
  while (i < rel.size()) {
    while (i < rel.size() && rel[i] == '/') ++i;
    size_t end = rel.find('/', i);
    if (end == std::string_view::npos) end = rel.size();
    std::string_view component = rel.substr(i, end - i);
    bool last = end == rel.size();
    for (const auto& a : kAutorunNames)
      if (same_name_ignoring_case(component, a.name) && (a.directory || last)) return a.why;
    i = end;
  }
  return "";
}

}  // namespace warden::broker
