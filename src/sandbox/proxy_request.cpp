#include "sandbox/proxy_request.h"

#include <cctype>

namespace warden::sandbox {
namespace {

bool is_tchar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!is_tchar(c)) return false;
  return true;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = char(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool parse_port(std::string_view s, uint16_t& port) {
  if (s.empty() || s.size() > 5) return false;
  unsigned v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + unsigned(c - '0');
  }
  if (v == 0 || v > 65535) return false;
  port = uint16_t(v);
  return true;
}

// "host", "host:port", "[v6]" or "[v6]:port" -> host and port (default_port
// when none is given, 0 meaning a port is required).
bool parse_authority(std::string_view a, uint16_t default_port, std::string& host, uint16_t& port) {
  std::string_view h, p;
  if (!a.empty() && a[0] == '[') {
    size_t close = a.find(']');
    if (close == std::string_view::npos) return false;
    h = a.substr(1, close - 1);
    std::string_view rest = a.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return false;
      p = rest.substr(1);
      if (p.empty()) return false;
    }
    for (char c : h)
      if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.') return false;
    if (h.find(':') == std::string_view::npos) return false;
    host = lower(h);
  } else {
    size_t colon = a.rfind(':');
    if (colon != std::string_view::npos) {
      h = a.substr(0, colon);
      p = a.substr(colon + 1);
      if (p.empty()) return false;
    } else {
      h = a;
    }
    host = normalize_host(h);
    if (host.empty()) return false;
  }
  if (p.empty()) {
    if (default_port == 0) return false;
    port = default_port;
    return true;
  }
  return parse_port(p, port);
}

bool fail(std::string& error, const char* why) {
  error = why;
  return false;
}

bool parse_request_line(std::string_view line, ProxyRequest& r, std::string& error) {
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos)
    return fail(error, "malformed request line");
  std::string_view method = line.substr(0, sp1), target = line.substr(sp1 + 1, sp2 - sp1 - 1),
                   version = line.substr(sp2 + 1);
  if (!is_token(method)) return fail(error, "malformed method");
  if (version != "HTTP/1.1" && version != "HTTP/1.0") return fail(error, "unsupported HTTP version");
  if (target.empty()) return fail(error, "empty request target");
  for (char c : target)
    if (c <= ' ' || c == 0x7f) return fail(error, "control character in request target");
  r.method = std::string(method);
  r.version = std::string(version);
  if (method == "CONNECT") {
    r.is_connect = true;
    if (!parse_authority(target, 0, r.host, r.port)) return fail(error, "CONNECT target must be host:port");
    return true;
  }
  constexpr std::string_view scheme = "http://";
  if (target.size() < scheme.size() || lower(target.substr(0, scheme.size())) != scheme)
    return fail(error, "a plain-HTTP proxy request needs an absolute http:// URI");
  std::string_view rest = target.substr(scheme.size());
  size_t end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end);
  if (authority.find('@') != std::string_view::npos) return fail(error, "user information in URI");
  if (!parse_authority(authority, 80, r.host, r.port)) return fail(error, "malformed host in URI");
  std::string_view path = end == std::string_view::npos ? std::string_view() : rest.substr(end);
  size_t hash = path.find('#');
  if (hash != std::string_view::npos) path = path.substr(0, hash);
  r.origin_form = path.empty() ? "/" : (path[0] == '/' ? std::string(path) : "/" + std::string(path));
  return true;
}

bool parse_header_line(std::string_view line, ProxyRequest& r, std::string& error) {
  if (line[0] == ' ' || line[0] == '\t') return fail(error, "folded header line");
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return fail(error, "header line without a colon");
  std::string_view name = line.substr(0, colon), value = line.substr(colon + 1);
  if (!is_token(name)) return fail(error, "malformed header name");
  for (char c : value)
    if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f)
      return fail(error, "control character in header value");
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  r.headers.emplace_back(std::string(name), std::string(value));
  return true;
}

}  // namespace

std::string normalize_host(std::string_view host) {
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  if (host.empty() || host.size() > 253) return {};
  size_t label = 0;
  for (char c : host) {
    if (c == '.') {
      if (label == 0) return {};
      label = 0;
      continue;
    }
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return {};
    if (++label > 63) return {};
  }
  if (label == 0) return {};
  return lower(host);
}

size_t request_head_length(std::string_view buffer) {
  size_t end = buffer.find("\r\n\r\n");
  return end == std::string_view::npos ? 0 : end + 4;
}

std::optional<ProxyRequest> parse_proxy_request(std::string_view head, std::string& error) {
  if (head.size() > kMaxRequestHead) {
    error = "request head too large";
    return std::nullopt;
  }
  if (head.size() < 4 || head.substr(head.size() - 4) != "\r\n\r\n") {
    error = "incomplete request head";
    return std::nullopt;
  }
  head.remove_suffix(2);  // keep one CRLF after the last line
  ProxyRequest r;
  bool first = true;
  while (!head.empty()) {
    size_t eol = head.find("\r\n");
    std::string_view line = head.substr(0, eol);
    head.remove_prefix(eol + 2);
    if (line.find('\r') != std::string_view::npos || line.find('\n') != std::string_view::npos ||
        line.find('\0') != std::string_view::npos) {
      error = "bare CR, LF or NUL in request head";
      return std::nullopt;
    }
    if (line.empty()) {
      error = "empty line inside request head";
      return std::nullopt;
    }
    bool ok = first ? parse_request_line(line, r, error) : parse_header_line(line, r, error);
    if (!ok) return std::nullopt;
    first = false;
  }
  if (first) {
    error = "empty request";
    return std::nullopt;
  }
  return r;
}

}  // namespace warden::sandbox
