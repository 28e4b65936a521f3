#include "sandbox/tls_hello.h"

#include <cstdint>

#include "sandbox/proxy_request.h"

namespace warden::sandbox {
namespace {

constexpr uint8_t kHandshakeRecord = 22;
constexpr uint8_t kClientHelloMessage = 1;
constexpr size_t kRecordHeader = 5;
constexpr size_t kMaxRecordPayload = 16384 + 2048;  // RFC 8446 5.1 (plaintext), with room
constexpr uint16_t kServerNameExtension = 0;
// Encrypted Client Hello: the server name above is then only the outer,
// public one, and the real one is encrypted; the proxy cannot check it.
constexpr uint16_t kEncryptedClientHelloExtension = 0xfe0d;
constexpr uint8_t kHostNameType = 0;

// Reads big-endian fields from a byte range; every read is bounds-checked and
// a short read sets `ok` to false for good.
struct Reader {
  std::string_view data;
  size_t pos = 0;
  bool ok = true;

  size_t left() const { return ok ? data.size() - pos : 0; }
  uint32_t number(size_t bytes) {
    if (left() < bytes) {
      ok = false;
      return 0;
    }
    uint32_t v = 0;
    for (size_t i = 0; i < bytes; i++) v = (v << 8) | static_cast<uint8_t>(data[pos++]);
    return v;
  }
  std::string_view bytes(size_t n) {
    if (left() < n) {
      ok = false;
      return {};
    }
    std::string_view out = data.substr(pos, n);
    pos += n;
    return out;
  }
  // A field preceded by its length in `length_bytes` bytes.
  Reader vector(size_t length_bytes) { return Reader{bytes(number(length_bytes))}; }
};

ClientHelloScan invalid(std::string why) {
  ClientHelloScan s;
  s.status = ClientHelloScan::Status::invalid;
  s.error = "the tunnel does not start with a TLS ClientHello: " + std::move(why);
  return s;
}

// The server_name extension's one host_name (RFC 6066 section 3).
bool read_server_name(Reader ext, std::optional<std::string>& name, std::string& why) {
  Reader list = ext.vector(2);
  if (!ext.ok || ext.left() != 0 || !list.ok || list.left() == 0) {
    why = "malformed server_name extension";
    return false;
  }
  while (list.left() > 0) {
    uint8_t type = uint8_t(list.number(1));
    std::string_view value = list.vector(2).data;
    if (!list.ok) break;
    if (type != kHostNameType) continue;
    if (name) {
      why = "more than one host_name in server_name";
      return false;
    }
    std::string host = normalize_host(value);
    if (host.empty() || host.size() != value.size() - (value.back() == '.' ? 1 : 0)) {
      why = "server_name is not a host name";
      return false;
    }
    name = std::move(host);
  }
  if (!list.ok) {
    why = "malformed server_name extension";
    return false;
  }
  if (!name) {
    why = "server_name without a host_name";
    return false;
  }
  return true;
}

// The ClientHello body (RFC 8446 section 4.1.2; TLS 1.0-1.2 share the shape).
ClientHelloScan parse_hello_body(std::string_view body, size_t record_bytes) {
  Reader r{body};
  uint32_t version = r.number(2);
  r.bytes(32);  // random
  Reader session_id = r.vector(1);
  Reader suites = r.vector(2);
  Reader compression = r.vector(1);
  if (!r.ok || (version >> 8) != 3 || session_id.left() > 32 || suites.left() == 0 || suites.left() % 2 != 0 ||
      compression.left() == 0)
    return invalid("malformed ClientHello");
  ClientHelloScan scan;
  scan.status = ClientHelloScan::Status::complete;
  scan.length = record_bytes;
  if (r.left() == 0) return scan;  // no extensions at all
  Reader extensions = r.vector(2);
  if (!r.ok || r.left() != 0) return invalid("malformed extensions");
  bool seen_server_name = false;
  while (extensions.left() > 0) {
    uint16_t type = uint16_t(extensions.number(2));
    Reader ext = extensions.vector(2);
    if (!extensions.ok) return invalid("malformed extensions");
    if (type == kEncryptedClientHelloExtension) return invalid("Encrypted Client Hello hides the server name");
    if (type != kServerNameExtension) continue;
    if (seen_server_name) return invalid("two server_name extensions");
    seen_server_name = true;
    std::string why;
    if (!read_server_name(ext, scan.server_name, why)) return invalid(why);
  }
  return scan;
}

// Checks the handshake header at the start of `message` (the first bytes of
// the handshake stream seen so far, a record's partial payload included).
ClientHelloScan check_message_header(std::string_view message) {
  ClientHelloScan s;
  if (message.size() < 4) return s;
  if (uint8_t(message[0]) != kClientHelloMessage) return invalid("the first handshake message is not a ClientHello");
  const size_t body = Reader{message.substr(1, 3)}.number(3);
  if (body + 4 > kMaxClientHello)
    return invalid("ClientHello larger than " + std::to_string(kMaxClientHello) + " bytes");
  return s;
}

}  // namespace

ClientHelloScan scan_client_hello(std::string_view bytes) {
  // The handshake message may span several records: gather their payloads.
  std::string message;
  size_t pos = 0;
  while (true) {
    if (message.size() >= 4) {
      const size_t body = Reader{std::string_view(message).substr(1, 3)}.number(3);
      if (message.size() >= body + 4) {
        // Bytes after the hello in the same records would be a second
        // handshake message, which a client never sends before the server
        // has answered.
        if (message.size() != body + 4) return invalid("data after the ClientHello");
        return parse_hello_body(std::string_view(message).substr(4, body), pos);
      }
    }
    if (bytes.size() - pos < kRecordHeader) return {};
    Reader header{bytes.substr(pos, kRecordHeader)};
    const uint8_t type = uint8_t(header.number(1));
    const uint32_t version = header.number(2);
    const size_t length = header.number(2);
    if (type != kHandshakeRecord) return invalid("not a TLS handshake record");
    if ((version >> 8) != 3) return invalid("unknown record version");
    if (length == 0 || length > kMaxRecordPayload) return invalid("bad record length");
    const std::string_view payload = bytes.substr(pos + kRecordHeader, length);
    message.append(payload);
    if (ClientHelloScan s = check_message_header(message); s.status == ClientHelloScan::Status::invalid) return s;
    if (payload.size() < length) return {};
    pos += kRecordHeader + length;
  }
}

}  // namespace warden::sandbox
