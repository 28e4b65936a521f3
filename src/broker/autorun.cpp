#include "broker/autorun.h"

#include "util/ascii.h"

namespace warden::broker {

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
    // ASCII case is ignored: a case-insensitive filesystem (vfat, exfat,
    // ext4 with casefold) opens .git for .GIT.
    const std::string name = ascii_lower(component);
    for (const auto& a : kAutorunNames)
      if (name == a.name && (a.directory || last)) return a.why;
    i = end;
  }
  return "";
}

}  // namespace warden::broker
