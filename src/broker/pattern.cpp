#include "broker/pattern.h"

#include <deque>
#include <filesystem>
#include <vector>

#include "util/ascii.h"
#include "util/error.h"

namespace warden::broker {
namespace {

// Backtracking glob matcher over indices; patterns are short and written by
// the user, texts are bounded by the protocol, and the memo table keeps the
// worst case polynomial.
class Matcher {
 public:
  Matcher(std::string_view p, std::string_view t, bool path_mode)
      : p_(p), t_(t), path_(path_mode), memo_((p.size() + 1) * (t.size() + 1), -1) {}
  bool run() { return match(0, 0); }

 private:
  bool match(size_t pi, size_t ti) {
    signed char& m = memo_[pi * (t_.size() + 1) + ti];
    if (m >= 0) return m;
    m = compute(pi, ti);
    return m;
  }
  bool compute(size_t pi, size_t ti) {
    if (pi == p_.size()) return ti == t_.size();
    char pc = p_[pi];
    if (pc == '*') {
      bool double_star = path_ && pi + 1 < p_.size() && p_[pi + 1] == '*';
      if (double_star) {
        size_t next = pi + 2;
        for (size_t k = ti; k <= t_.size(); ++k)
          if (match(next, k)) return true;
        return false;
      }
      for (size_t k = ti; k <= t_.size(); ++k) {
        if (match(pi + 1, k)) return true;
        if (k < t_.size() && path_ && t_[k] == '/') return false;
      }
      return false;
    }
    if (ti == t_.size()) return false;
    if (pc == '?') return !(path_ && t_[ti] == '/') && match(pi + 1, ti + 1);
    return pc == t_[ti] && match(pi + 1, ti + 1);
  }
  std::string_view p_, t_;
  bool path_;
  std::vector<signed char> memo_;
};

bool dir_itself_matches(std::string_view pattern, std::string_view text) {
  // "/w/**" covers "/w": the workspace root is inside the workspace.
  if (pattern.size() < 3 || pattern.substr(pattern.size() - 3) != "/**") return false;
  return glob_match(pattern.substr(0, pattern.size() - 3), text, true);
}

}  // namespace

bool glob_match(std::string_view pattern, std::string_view text, bool path_mode) {
  if (path_mode && dir_itself_matches(pattern, text)) return true;
  return Matcher(pattern, text, path_mode).run();
}

std::string normalize_path_lexically(std::string_view path) {
  if (path.find('\0') != std::string_view::npos) throw Error("path contains a NUL byte");
  if (path.empty() || path[0] != '/') throw Error("path '" + std::string(path) + "' is not absolute");
  std::vector<std::string_view> parts;
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    std::string_view part = path.substr(i, j - i);
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();  // "/.." is "/"
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    i = j + 1;
  }
  std::string out;
  for (auto part : parts) {
    out += '/';
    out += part;
  }
  return out.empty() ? "/" : out;
}

std::string resolve_path(std::string_view path) {
  // Walks the path one component at a time, as the kernel does: every
  // symlink met is replaced by its target, also one whose target does not
  // exist (a dangling "ws/notes -> .envrc" is judged as ws/.envrc, since a
  // write through it creates that), and also one in the middle of the path.
  std::deque<std::string> todo;
  auto push_front_components = [&todo](std::string_view p) {
    std::vector<std::string> parts;
    size_t i = 0;
    while (i <= p.size()) {
      size_t j = p.find('/', i);
      if (j == std::string_view::npos) j = p.size();
      if (j > i) parts.emplace_back(p.substr(i, j - i));
      i = j + 1;
    }
    todo.insert(todo.begin(), parts.begin(), parts.end());
  };
  // ".." is taken after the links before it are followed, as the kernel
  // does: "ws/cfg/../x" with ws/cfg -> ~/.config is ~/x, not ws/x. The
  // lexical pass only checks that the path is absolute and has no NUL.
  normalize_path_lexically(path);
  push_front_components(path);
  std::string out;  // resolved so far; "" means "/"
  int links = 0;
  while (!todo.empty()) {
    std::string part = std::move(todo.front());
    todo.pop_front();
    if (part == ".") continue;
    if (part == "..") {
      out.erase(out.empty() ? 0 : out.rfind('/'));
      continue;
    }
    std::string next = out + "/" + part;
    std::error_code ec;
    if (!std::filesystem::is_symlink(std::filesystem::symlink_status(next, ec))) {
      out = std::move(next);
      continue;
    }
    if (++links > 40) throw Error("cannot resolve path '" + std::string(path) + "': too many levels of symbolic links");
    auto target = std::filesystem::read_symlink(next, ec);
    if (ec) throw Error("cannot resolve path '" + next + "': " + ec.message());
    if (target.is_absolute()) out.clear();
    push_front_components(target.string());
  }
  return out.empty() ? "/" : out;
}

std::string normalize_domain(std::string_view domain) {
  std::string out = ascii_lower(domain);
  if (!out.empty() && out.back() == '.') out.pop_back();
  return out;
}

}  // namespace warden::broker
