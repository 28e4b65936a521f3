#pragma once
// The policy file as bytes: what the broker pinned when it loaded it, the
// unified diff a human approves before it changes, and the atomic write that
// replaces it after the approval.
//
// The broker never re-reads policy.toml on its own. It pins the exact text
// it loaded (and its SHA-256); an edit of the file made any other way than
// `warden policy apply` is noticed (drift), audited and reported, and has no
// effect until it is applied, with a diff, through the approval path.
#include <optional>
#include <string>

namespace warden::broker {

// Policies are small; a bigger file is refused before anything is parsed or
// diffed (keeps the diff's quadratic table bounded).
constexpr size_t kMaxPolicyBytes = 256 * 1024;
constexpr size_t kMaxPolicyLines = 2000;

struct PolicyFileState {
  std::string path;
  bool exists = false;
  std::string text;    // empty when missing
  std::string sha256;  // of text; the SHA-256 of "" when missing
};

// Reads `path`; a missing file gives exists=false and empty text. Throws
// warden::Error naming the file when it cannot be read or is too big.
PolicyFileState read_policy_file(const std::string& path);

// The built-in defaults stand in for a missing file only at the default
// path: a policy file named on the command line (--policy) must exist, or a
// typo would run the agent under the defaults instead of the policy meant.
// Throws warden::Error naming it.
void require_named_policy(const PolicyFileState& named);

// Checks the size and line limits above; throws warden::Error naming `name`.
void check_policy_size(const std::string& text, const std::string& name);

// Replaces `path` with `text` atomically: a temporary file in the same
// folder (mode 0600), fsync, rename over the old file, fsync of the folder.
// Creates the folder (0700) when missing. A symlink at `path` is kept: the
// file it points to is the one replaced. On any failure nothing is replaced
// and warden::Error says why.
void write_file_atomically(const std::string& path, const std::string& text);

// A unified diff (3 lines of context) from `old_text` to `new_text`, with
// "--- old_label" / "+++ new_label" headers; "" when they are equal. Texts
// are compared line by line; a missing final newline is marked the way
// diff(1) marks it.
std::string unified_diff(const std::string& old_text, const std::string& new_text, const std::string& old_label,
                         const std::string& new_label);

}  // namespace warden::broker
