#include "server/request_extent.h"

#include <cstdint>
#include <optional>

#include "util/ascii.h"

namespace warden::server {
namespace {

std::string_view trimmed(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// What the head says of the body to come.
struct BodyHeaders {
  std::optional<uint64_t> length;
  bool length_malformed = false;  // not a number, or two that differ
  bool chunked = false;           // any Transfer-Encoding
  bool expects_continue = false;
};

void read_header(std::string_view line, BodyHeaders& body) {
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) return;
  // cpp-httplib takes the name as it stands, blanks included.
  const std::string name = ascii_lower(line.substr(0, colon));
  const std::string_view value = trimmed(line.substr(colon + 1));
  if (name == "content-length") {
    const std::optional<uint64_t> n = content_length_value(value);
    if (!n || (body.length && *body.length != *n)) body.length_malformed = true;
    else body.length = n;
  } else if (name == "transfer-encoding") {
    body.chunked = true;
  } else if (name == "expect") {
    body.expects_continue = ascii_lower(value) == "100-continue";
  }
}

}  // namespace

std::optional<uint64_t> content_length_value(std::string_view value) {
  if (value.empty() || value.size() > 18) return std::nullopt;
  uint64_t n = 0;
  for (char c : value) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + uint64_t(c - '0');
  }
  return n;
}

RequestExtent measure_request(std::string_view bytes, size_t max_body) {
  RequestExtent extent;
  size_t line_start = bytes.find('\n');  // past the request line
  if (line_start == std::string_view::npos) return extent;
  line_start++;
  BodyHeaders body;
  for (;;) {
    const size_t end = bytes.find('\n', line_start);
    if (end == std::string_view::npos) return extent;
    const std::string_view line = bytes.substr(line_start, end + 1 - line_start);
    line_start = end + 1;
    if (line.size() < 2 || line[line.size() - 2] != '\r') continue;  // skipped by cpp-httplib too
    if (line.size() == 2) break;                                      // the blank line: the head's end
    read_header(line.substr(0, line.size() - 2), body);
  }
  extent.head_complete = true;
  extent.head_bytes = line_start;
  const bool takes_body = body.length && !body.length_malformed && !body.chunked && *body.length <= max_body;
  extent.bytes = extent.head_bytes + (takes_body ? size_t(*body.length) : 0);
  extent.expects_continue = body.expects_continue;
  return extent;
}

size_t find_head_end(std::string_view bytes, size_t from) {
  constexpr std::string_view kBlankLine = "\n\r\n";
  const size_t start = from < kBlankLine.size() ? 0 : from - (kBlankLine.size() - 1);
  if (bytes.find(kBlankLine, start) != std::string_view::npos) return std::string_view::npos;
  return bytes.size();
}

}  // namespace warden::server
