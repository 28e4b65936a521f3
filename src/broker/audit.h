#pragma once
// The tamper-evident audit log: an append-only SQLite table (WAL) where every
// record carries the SHA-256 of a canonical encoding of all its fields and of
// the previous record's hash, so editing, deleting or reordering a record
// breaks the chain.
//
// Truncation (dropping the newest records) cannot be seen from the chain
// alone, so after every commit the log also writes a head anchor, a small
// file beside the database ("<db>.head", written atomically by rename) that
// holds the last seq and hash. `verify` checks that the anchored record is
// still there with that hash.
//
// Limits, stated plainly: the chain has no secret key. Someone who can write
// both files (the user's own uid outside every sandbox) can rebuild a
// consistent chain and anchor; the sandboxes never see either file, which is
// what keeps the model out. To pin history against that too, copy the
// output of `warden audit verify` (the head hash) somewhere else: any later
// rewrite of older records changes it.
//
// Crash safety: each append is one SQLite transaction (synchronous=FULL), and
// the anchor is renamed into place only after the commit. A kill -9 leaves
// either the old state or the new record; in the second case the anchor may
// lag by exactly one record, which verify accepts (and reports) and the next
// append re-anchors before adding its own record.
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "util/sha256.h"

struct sqlite3;

namespace warden::broker {

// What a caller appends; seq, time and hashes are the log's job.
struct AuditEntry {
  std::string actor;          // "agent", "human", "broker", ...
  std::string capability;     // "fs.write", "net", "model.call", ...
  std::string arguments;      // target and details (JSON text)
  std::string decision;       // "allowed by policy", "approved by human", "denied", "result", "event"
  std::string reason;         // why: the rule, the approval channel, the denial cause
  std::string result_digest;  // SHA-256 hex of the effect's result, when known
};

struct AuditRecord {
  int64_t seq = 0;
  std::string time;  // UTC, ISO 8601 with milliseconds
  AuditEntry entry;
  std::string prev_hash;
  std::string hash;
};

struct AuditHead {
  int64_t seq = 0;
  std::string hash;
};

// The first record's prev_hash: 64 zeros.
extern const std::string kGenesisHash;

using ::warden::sha256_hex;  // util/sha256.h
// SHA-256 over the canonical encoding (length-prefixed fields, fixed order).
std::string audit_record_hash(const AuditRecord& r);

std::string default_audit_path();  // $XDG_DATA_HOME/warden/audit.db
std::string head_path_for(const std::string& db_path);  // <db>.head

class AuditLog {
 public:
  // Opens (creating when missing, with its folder at mode 0700) the log.
  // Throws warden::Error naming the file on failure.
  explicit AuditLog(std::string db_path);
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Appends one record and moves the head anchor to it. Thread-safe, and
  // safe against other processes appending to the same log (file lock).
  // Throws warden::Error, appending nothing, when the log's end does not
  // match its anchor (tampered): a log is never extended past a break.
  AuditRecord append(const AuditEntry& e);

  const std::string& path() const { return db_path_; }

 private:
  void check_and_repair_anchor(int64_t last_seq, const std::string& last_hash, const std::string& last_prev_hash);
  std::string db_path_;
  std::string head_path_;
  std::string lock_path_;
  sqlite3* db_ = nullptr;
  std::mutex mutex_;
};

// Reads the records, oldest first; `since` (an ISO time prefix like
// "2026-11-25T20:00") keeps those at or after it. Never writes a record
// (query_only), though SQLite may recover its WAL after a crash.
std::vector<AuditRecord> read_audit(const std::string& db_path, const std::string& since = "");

std::optional<AuditHead> read_head(const std::string& head_path);
void write_head(const std::string& head_path, const AuditHead& head);

struct VerifyReport {
  bool ok = true;
  int64_t records = 0;
  std::string last_hash;
  std::vector<std::string> problems;  // one line each: what is wrong, which record
  std::vector<std::string> notes;     // benign findings (anchor one behind after a crash)
};

VerifyReport verify_audit(const std::string& db_path);

}  // namespace warden::broker
