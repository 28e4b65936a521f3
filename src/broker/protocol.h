#pragma once
// The wire protocol on the broker's two unix sockets: one JSON object per
// line, one response line per request line.
//
// Agent socket (agent.sock) — the only verbs an agent has:
//   {"op":"request","capability":"net","target":"example.com","network":false,
//    "detail":"GET https://example.com/x","context_labels":["user","web:example.com"],
//    "argument_labels":[]}
//     -> {"ok":true,"allowed":false,"decision":"denied","reason":"...","audit_seq":7}
//   {"op":"result","audit_seq":7,"digest":"<sha256 hex>"}   -> {"ok":true}
//   {"op":"event","kind":"model.call","detail":"..."}       -> {"ok":true}
//   {"op":"about"} -> {"ok":true,"workspace":"...","policy":"<file>","audit":"<db>"}
//
// Approval socket (approve.sock) — humans, through `warden approve`:
//   {"op":"list"}            -> {"ok":true,"pending":[{...}, ...]}
//   {"op":"show","id":"k7qm2-3"}     -> {"ok":true,"approval":{...}}
//   {"op":"approve","id":"k7qm2-3"}  -> {"ok":true}
//   {"op":"deny","id":"k7qm2-3"}     -> {"ok":true}
//   {"op":"policy.status"}   -> {"ok":true,"path":"...","sha256":"...","drift":null|{...}}
//   {"op":"policy.apply","text":"<new policy.toml>","path":"<optional: the file meant>"}
//     -> {"ok":true,"applied":true|false,"message":"...","old_sha256":"...",
//         "new_sha256":"...","diff":"...","audit_seq":N}
//     validates, asks a human with the diff (blocks meanwhile), then writes
//     and pins the file (Broker::change_policy).
//
// Each socket refuses the other's verbs, so a connection to the agent
// socket can never approve anything. Errors: {"ok":false,"error":"..."}.
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "broker/approvals.h"
#include "broker/request.h"

namespace warden::broker {

constexpr size_t kMaxLineBytes = 4 * 1024 * 1024;
constexpr size_t kMaxDetailBytes = 2 * 1024 * 1024;
constexpr size_t kMaxLabels = 256;

// Serializes without ever throwing: invalid UTF-8 becomes U+FFFD.
std::string dump_line(const nlohmann::json& j);

// Parses one protocol line into a JSON object. Throws warden::Error for
// invalid JSON, a non-object, or an over-long line.
nlohmann::json parse_line(std::string_view line);

// Strict: unknown keys, wrong types, unknown capability or label -> Error.
EffectRequest effect_request_from_json(const nlohmann::json& j);
nlohmann::json effect_request_to_json(const EffectRequest& r);

nlohmann::json approval_to_json(const PendingApproval& p);
// Inverse of approval_to_json (for `warden approve show`); throws Error.
PendingApproval approval_from_json(const nlohmann::json& j);
nlohmann::json decision_to_json(const Decision& d);
Decision decision_from_json(const nlohmann::json& j);

// Reads the "id" field of an approval verb: a request id, "<tag>-<n>" (the
// broker's tag in lowercase letters and digits, a count in digits).
std::string approval_id_from_json(const nlohmann::json& j);
bool is_approval_id(std::string_view id);

// Newline-delimited lines over a socket fd.
class LineSocket {
 public:
  explicit LineSocket(int fd) : fd_(fd) {}
  // Reads one line (without '\n'). Returns false on EOF/error, or when
  // `keep_waiting` turns false; throws Error for an over-long line.
  bool read_line(std::string& line, const std::function<bool()>& keep_waiting = [] { return true; });
  bool write_line(const std::string& line);
  int fd() const { return fd_; }

 private:
  int fd_;
  std::string buffer_;
};

}  // namespace warden::broker
