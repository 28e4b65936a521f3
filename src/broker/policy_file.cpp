#include "broker/policy_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "broker/audit.h"
#include "util/error.h"
#include "util/fd_io.h"

namespace warden::broker {
namespace fs = std::filesystem;
namespace {

std::string errno_text() { return std::strerror(errno); }


// One line of a text; the last line of a text without a final newline is
// a different line from the same text with one (diff(1) shows it too).
struct Line {
  std::string text;
  bool newline = true;
  bool operator==(const Line& o) const { return newline == o.newline && text == o.text; }
};

std::vector<Line> split_lines(const std::string& s) {
  std::vector<Line> out;
  size_t start = 0;
  while (start < s.size()) {
    size_t nl = s.find('\n', start);
    if (nl == std::string::npos) {
      out.push_back({s.substr(start), false});
      break;
    }
    out.push_back({s.substr(start, nl - start), true});
    start = nl + 1;
  }
  return out;
}

// One step of the edit script: keep, delete (old line), insert (new line).
struct Op {
  char kind;    // ' ', '-', '+'
  size_t old_i;  // index in old (for ' ' and '-')
  size_t new_i;  // index in new (for ' ' and '+')
};

// Longest-common-subsequence edit script. The common head and tail are cut
// first, so the table covers only the changed middle.
std::vector<Op> edit_script(const std::vector<Line>& a, const std::vector<Line>& b) {
  size_t head = 0;
  while (head < a.size() && head < b.size() && a[head] == b[head]) ++head;
  size_t tail = 0;
  while (tail < a.size() - head && tail < b.size() - head && a[a.size() - 1 - tail] == b[b.size() - 1 - tail]) ++tail;
  const size_t n = a.size() - head - tail, m = b.size() - head - tail;
  // lcs[i][j]: LCS length of a[head+i..] and b[head+j..] (middle parts).
  std::vector<uint16_t> lcs((n + 1) * (m + 1), 0);
  auto at = [&](size_t i, size_t j) -> uint16_t& { return lcs[i * (m + 1) + j]; };
  for (size_t i = n; i-- > 0;)
    for (size_t j = m; j-- > 0;)
      at(i, j) = a[head + i] == b[head + j] ? uint16_t(at(i + 1, j + 1) + 1) : std::max(at(i + 1, j), at(i, j + 1));
  std::vector<Op> ops;
  for (size_t k = 0; k < head; ++k) ops.push_back({' ', k, k});
  size_t i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[head + i] == b[head + j]) {
      ops.push_back({' ', head + i, head + j});
      ++i, ++j;
    } else if (i < n && (j == m || at(i + 1, j) >= at(i, j + 1))) {
      ops.push_back({'-', head + i, head + j});  // deletions first, as diff(1) shows them
      ++i;
    } else {
      ops.push_back({'+', head + i, head + j});
      ++j;
    }
  }
  for (size_t k = 0; k < tail; ++k) ops.push_back({' ', head + n + k, head + m + k});
  return ops;
}

std::string range(size_t start, size_t count) {
  // diff(1): "-5" for one line, "-5,3" for three, "-4,0" (the line before) for none.
  if (count == 1) return std::to_string(start + 1);
  return std::to_string(count == 0 ? start : start + 1) + "," + std::to_string(count);
}

}  // namespace

void require_named_policy(const PolicyFileState& named) {
  if (!named.exists)
    throw Error("--policy " + named.path + ": no such file (the built-in defaults apply only without --policy)");
}

void check_policy_size(const std::string& text, const std::string& name) {
  if (text.size() > kMaxPolicyBytes)
    throw Error(name + ": the policy is larger than " + std::to_string(kMaxPolicyBytes / 1024) + " KiB");
  size_t lines = 0;
  for (char c : text) lines += c == '\n';
  if (lines > kMaxPolicyLines)
    throw Error(name + ": the policy has more than " + std::to_string(kMaxPolicyLines) + " lines");
}

PolicyFileState read_policy_file(const std::string& path) {
  PolicyFileState st;
  st.path = path;
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    if (ec) throw Error("cannot check policy file " + path + ": " + ec.message());
    st.sha256 = sha256_hex("");
    return st;
  }
  if (!fs::is_regular_file(path, ec)) throw Error("policy file " + path + " is not a regular file");
  auto size = fs::file_size(path, ec);
  if (ec) throw Error("cannot read policy file " + path + ": " + ec.message());
  if (size > kMaxPolicyBytes)
    throw Error("policy file " + path + " is larger than " + std::to_string(kMaxPolicyBytes / 1024) + " KiB");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read policy file " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw Error("cannot read policy file " + path);
  st.exists = true;
  st.text = ss.str();
  st.sha256 = sha256_hex(st.text);
  return st;
}

void write_file_atomically(const std::string& path, const std::string& text) {
  fs::path target(path);
  std::error_code ec;
  if (fs::is_symlink(fs::symlink_status(target, ec))) {
    // A linked file (dotfiles kept elsewhere) is replaced where it really
    // lives; the link stays a link.
    target = fs::canonical(target, ec);
    if (ec) throw Error("cannot write " + path + ": it is a symbolic link that does not resolve (" + ec.message() + ")");
  }
  const fs::path dir = target.parent_path().empty() ? fs::path(".") : target.parent_path();
  if (!fs::exists(dir, ec)) {
    fs::create_directories(dir, ec);
    if (ec) throw Error("cannot create " + dir.string() + ": " + ec.message());
    ::chmod(dir.c_str(), 0700);
  }
  std::string tmp_name = ".";
  tmp_name.append(target.filename().string());
  tmp_name.append(".XXXXXX");
  std::string tmp = (dir / tmp_name).string();
  int fd = ::mkostemp(tmp.data(), O_CLOEXEC);  // mode 0600
  if (fd < 0) throw Error("cannot create a temporary file in " + dir.string() + ": " + errno_text());
  auto fail = [&](const std::string& what) {
    std::string why = errno_text();
    ::close(fd);
    ::unlink(tmp.c_str());
    throw Error("cannot write " + path + ": " + what + ": " + why);
  };
  if (!write_all(fd, text)) fail("write");
  if (::fsync(fd) != 0) fail("fsync");
  if (::close(fd) != 0) {
    ::unlink(tmp.c_str());
    throw Error("cannot write " + path + ": close: " + errno_text());
  }
  if (::rename(tmp.c_str(), target.c_str()) != 0) {
    std::string why = errno_text();
    ::unlink(tmp.c_str());
    throw Error("cannot replace " + path + ": " + why);
  }
  // The rename is durable only once the folder is on disk too.
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

std::string unified_diff(const std::string& old_text, const std::string& new_text, const std::string& old_label,
                         const std::string& new_label) {
  if (old_text == new_text) return "";
  const std::vector<Line> a = split_lines(old_text), b = split_lines(new_text);
  const std::vector<Op> ops = edit_script(a, b);
  constexpr size_t kContext = 3;

  std::string out = "--- ";
  out.append(old_label).append("\n+++ ").append(new_label).append("\n");
  auto line_of = [&](const Op& op) {
    const Line& l = op.kind == '+' ? b[op.new_i] : a[op.old_i];
    std::string s;
    s.reserve(l.text.size() + 2);
    s.push_back(op.kind);
    s.append(l.text);
    s.push_back('\n');
    if (!l.newline) s.append("\\ No newline at end of file\n");
    return s;
  };
  size_t k = 0;
  while (k < ops.size()) {
    // Next change; a hunk is that change with its context, merged with every
    // later change whose context touches it.
    while (k < ops.size() && ops[k].kind == ' ') ++k;
    if (k == ops.size()) break;
    size_t begin = k >= kContext ? k - kContext : 0;
    size_t end = k;  // one past the last change of the hunk
    for (size_t q = k; q < ops.size(); ++q) {
      if (ops[q].kind == ' ') {
        if (q - end >= 2 * kContext) break;
        continue;
      }
      end = q + 1;
    }
    size_t stop = std::min(ops.size(), end + kContext);
    size_t old_start = ops[begin].old_i, new_start = ops[begin].new_i, old_count = 0, new_count = 0;
    std::string body;
    for (size_t q = begin; q < stop; ++q) {
      old_count += ops[q].kind != '+';
      new_count += ops[q].kind != '-';
      body += line_of(ops[q]);
    }
    out += "@@ -" + range(old_start, old_count) + " +" + range(new_start, new_count) + " @@\n" + body;
    k = stop;
  }
  return out;
}

}  // namespace warden::broker
