#pragma once
// Pattern matching for policy rules, and path normalization.
#include <string>
#include <string_view>

namespace warden::broker {

// Glob match over the whole text. In path mode '*' matches within one path
// component (no '/') and '**' matches across components ("/w/**" matches
// everything under /w, and /w itself is matched by "/w/**" too). In plain
// mode '*' matches any run of characters. '?' matches one character (not '/'
// in path mode). There are no character classes or escapes: policy patterns
// stay readable.
bool glob_match(std::string_view pattern, std::string_view text, bool path_mode);

// Lexical normalization of an absolute path: collapses "//", "." and "..",
// drops a trailing '/'. Throws warden::Error when the path is not absolute
// or contains a NUL byte.
std::string normalize_path_lexically(std::string_view path);

// Resolution of every symlink on the path, the way the kernel follows them
// ("." and ".." taken in order, a ".." after a link going up from the link's
// target; the file itself need not exist yet, and a dangling link is
// followed to where a write through it would land). The
// broker does this itself rather than trusting the caller, so
// "ws/link -> ~/.ssh" is judged as ~/.ssh and "ws/notes -> .envrc" as
// ws/.envrc.
std::string resolve_path(std::string_view path);

// Lower-cases ASCII and drops one trailing '.' (domains compare this way).
std::string normalize_domain(std::string_view domain);

}  // namespace warden::broker
