#include "broker/audit.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "util/error.h"
#include "util/paths.h"

namespace warden::broker {

const std::string kGenesisHash(64, '0');

namespace {

constexpr const char* kSchema = R"sql(
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS records (
  seq INTEGER PRIMARY KEY,
  time TEXT NOT NULL,
  actor TEXT NOT NULL,
  capability TEXT NOT NULL,
  arguments TEXT NOT NULL,
  decision TEXT NOT NULL,
  reason TEXT NOT NULL,
  result_digest TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL
);
-- Append-only: refuse in-place edits through SQLite itself. (Anyone with the
-- file can drop these; the hash chain and the anchor are what detect that.)
CREATE TRIGGER IF NOT EXISTS records_no_update BEFORE UPDATE ON records
  BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS records_no_delete BEFORE DELETE ON records
  BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
COMMIT;
)sql";

std::string now_iso_utc() {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::time_t secs = std::time_t(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, int(ms % 1000));
  return buf;
}

// netstring-style: "<len>:<bytes>," for each field, so no two different
// records encode to the same bytes whatever the fields contain.
void put_field(std::string& out, std::string_view v) {
  out += std::to_string(v.size());
  out += ':';
  out.append(v);
  out += ',';
}

class Statement {
 public:
  Statement(sqlite3* db, const char* sql, const std::string& path) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK)
      throw Error("audit log " + path + ": " + sqlite3_errmsg(db));
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  sqlite3_stmt* get() { return stmt_; }
  void bind(int i, const std::string& s) { sqlite3_bind_text(stmt_, i, s.data(), int(s.size()), SQLITE_TRANSIENT); }
  void bind(int i, int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
  std::string text(int col) {
    auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return p ? std::string(p, size_t(sqlite3_column_bytes(stmt_, col))) : std::string();
  }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

void exec_sql(sqlite3* db, const char* sql, const std::string& path) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    throw Error("audit log " + path + ": " + msg);
  }
}

sqlite3* open_db(const std::string& path, int flags) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, flags, nullptr) != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    throw Error("cannot open audit log " + path + ": " + msg);
  }
  sqlite3_busy_timeout(db, 10000);
  return db;
}

AuditRecord row_to_record(Statement& st) {
  AuditRecord r;
  r.seq = sqlite3_column_int64(st.get(), 0);
  r.time = st.text(1);
  r.entry.actor = st.text(2);
  r.entry.capability = st.text(3);
  r.entry.arguments = st.text(4);
  r.entry.decision = st.text(5);
  r.entry.reason = st.text(6);
  r.entry.result_digest = st.text(7);
  r.prev_hash = st.text(8);
  r.hash = st.text(9);
  return r;
}

constexpr const char* kSelectAll =
    "SELECT seq, time, actor, capability, arguments, decision, reason, result_digest, prev_hash, hash "
    "FROM records ORDER BY seq";

// An exclusive lock on "<db>.lock" around commit + anchor update, so two
// processes appending never leave the anchor behind an older record.
class FileLock {
 public:
  explicit FileLock(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0 || ::flock(fd_, LOCK_EX) != 0) throw Error("cannot lock " + path);
  }
  ~FileLock() {
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  int fd_ = -1;
};

void fsync_dir_of(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

std::string audit_record_hash(const AuditRecord& r) {
  std::string enc = "warden-audit-v1,";
  put_field(enc, std::to_string(r.seq));
  put_field(enc, r.time);
  put_field(enc, r.entry.actor);
  put_field(enc, r.entry.capability);
  put_field(enc, r.entry.arguments);
  put_field(enc, r.entry.decision);
  put_field(enc, r.entry.reason);
  put_field(enc, r.entry.result_digest);
  put_field(enc, r.prev_hash);
  return sha256_hex(enc);
}

std::string default_audit_path() { return paths::data_dir() + "/audit.db"; }
std::string head_path_for(const std::string& db_path) { return db_path + ".head"; }

AuditLog::AuditLog(std::string db_path)
    : db_path_(std::move(db_path)), head_path_(head_path_for(db_path_)), lock_path_(db_path_ + ".lock") {
  auto dir = std::filesystem::path(db_path_).parent_path();
  if (!dir.empty() && !std::filesystem::exists(dir)) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) throw Error("cannot create " + dir.string() + ": " + ec.message());
    ::chmod(dir.c_str(), 0700);
  }
  int old_mask = ::umask(077);  // the db, its WAL and shm files: owner only
  try {
    db_ = open_db(db_path_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX);
    exec_sql(db_, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", db_path_);
    exec_sql(db_, kSchema, db_path_);
  } catch (...) {
    ::umask(old_mask);
    sqlite3_close(db_);
    throw;
  }
  ::umask(old_mask);
}

AuditLog::~AuditLog() { sqlite3_close(db_); }

AuditRecord AuditLog::append(const AuditEntry& e) {
  std::lock_guard guard(mutex_);
  FileLock lock(lock_path_);
  exec_sql(db_, "BEGIN IMMEDIATE", db_path_);
  try {
    AuditRecord r;
    r.entry = e;
    r.prev_hash = kGenesisHash;
    std::string last_prev_hash = kGenesisHash;
    {
      Statement last(db_, "SELECT seq, hash, prev_hash FROM records ORDER BY seq DESC LIMIT 1", db_path_);
      if (sqlite3_step(last.get()) == SQLITE_ROW) {
        r.seq = sqlite3_column_int64(last.get(), 0);
        r.prev_hash = last.text(1);
        last_prev_hash = last.text(2);
      }
    }
    check_and_repair_anchor(r.seq, r.prev_hash, last_prev_hash);
    r.seq += 1;
    r.time = now_iso_utc();
    r.hash = audit_record_hash(r);
    Statement ins(db_,
                  "INSERT INTO records (seq, time, actor, capability, arguments, decision, reason, "
                  "result_digest, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?)",
                  db_path_);
    ins.bind(1, r.seq);
    ins.bind(2, r.time);
    ins.bind(3, e.actor);
    ins.bind(4, e.capability);
    ins.bind(5, e.arguments);
    ins.bind(6, e.decision);
    ins.bind(7, e.reason);
    ins.bind(8, e.result_digest);
    ins.bind(9, r.prev_hash);
    ins.bind(10, r.hash);
    if (sqlite3_step(ins.get()) != SQLITE_DONE) throw Error("audit log " + db_path_ + ": " + sqlite3_errmsg(db_));
    exec_sql(db_, "COMMIT", db_path_);
    write_head(head_path_, AuditHead{r.seq, r.hash});
    return r;
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

void AuditLog::check_and_repair_anchor(int64_t last_seq, const std::string& last_hash,
                                       const std::string& last_prev_hash) {
  AuditHead head = read_head(head_path_).value_or(AuditHead{0, kGenesisHash});
  if (head.seq == last_seq && head.hash == last_hash) return;
  // A crash between a commit and its anchor update leaves exactly one
  // record, chained to the anchored one, past the anchor: anchor it now, so
  // repeated crashes never leave the anchor more than one record behind.
  if (last_seq == head.seq + 1 && last_prev_hash == head.hash) {
    write_head(head_path_, AuditHead{last_seq, last_hash});
    return;
  }
  // Anything else is tampering or a foreign writer: never append to it.
  throw Error("audit log " + db_path_ + " does not match its head anchor; run `warden audit verify`");
}

std::vector<AuditRecord> read_audit(const std::string& db_path, const std::string& since) {
  std::vector<AuditRecord> out;
  if (!std::filesystem::exists(db_path)) return out;
  // Declared before the statements, so they are finalized before the close.
  // Read-write without create: after a crash SQLite must be able to recover
  // the WAL (a read-only handle cannot); query_only keeps this reader from
  // changing anything else.
  std::unique_ptr<sqlite3, int (*)(sqlite3*)> db(open_db(db_path, SQLITE_OPEN_READWRITE), sqlite3_close);
  exec_sql(db.get(), "PRAGMA query_only=1", db_path);
  // A crash while the log was first created can leave a database without
  // the table: that is an empty log (the anchor check still catches a table
  // dropped from a log that had records).
  Statement has_table(db.get(), "SELECT 1 FROM sqlite_master WHERE type='table' AND name='records'", db_path);
  if (sqlite3_step(has_table.get()) != SQLITE_ROW) return out;
  Statement st(db.get(), kSelectAll, db_path);
  int rc;
  while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
    AuditRecord r = row_to_record(st);
    if (since.empty() || r.time >= since) out.push_back(std::move(r));
  }
  if (rc != SQLITE_DONE) throw Error("audit log " + db_path + ": " + sqlite3_errmsg(db.get()));
  return out;
}

std::optional<AuditHead> read_head(const std::string& head_path) {
  std::ifstream in(head_path);
  if (!in) return std::nullopt;
  std::string magic, seq_word, hash_word;
  AuditHead h;
  if (!(in >> magic >> seq_word >> h.seq >> hash_word >> h.hash) || magic != "warden-audit-head-v1" ||
      seq_word != "seq" || hash_word != "hash")
    throw Error("audit head anchor " + head_path + " is malformed");
  return h;
}

void write_head(const std::string& head_path, const AuditHead& head) {
  std::string tmp = head_path + ".tmp";
  std::string text = "warden-audit-head-v1\nseq " + std::to_string(head.seq) + "\nhash " + head.hash + "\n";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw Error("cannot write audit head anchor " + tmp);
  bool ok = ::write(fd, text.data(), text.size()) == ssize_t(text.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), head_path.c_str()) != 0)
    throw Error("cannot write audit head anchor " + head_path);
  fsync_dir_of(head_path);
}

namespace {

void check_chain(const std::vector<AuditRecord>& records, VerifyReport& rep) {
  std::string prev = kGenesisHash;
  int64_t expected_seq = 1;
  for (auto& r : records) {
    if (r.seq != expected_seq) {
      rep.problems.push_back(r.seq > expected_seq
                                 ? "records " + std::to_string(expected_seq) + ".." + std::to_string(r.seq - 1) +
                                       " are missing (deleted)"
                                 : "record " + std::to_string(r.seq) + " is out of order");
      expected_seq = r.seq;
    }
    if (audit_record_hash(r) != r.hash)
      rep.problems.push_back("record " + std::to_string(r.seq) + ": contents do not match its hash (edited)");
    if (r.prev_hash != prev)
      rep.problems.push_back("record " + std::to_string(r.seq) +
                             ": does not chain to the record before it (deleted, inserted or reordered)");
    prev = r.hash;
    ++expected_seq;
  }
}

void check_anchor(const std::vector<AuditRecord>& records, const std::optional<AuditHead>& head,
                  const std::string& head_path, VerifyReport& rep) {
  int64_t last = records.empty() ? 0 : records.back().seq;
  // No anchor file is an anchor at record 0: right for a new log, and for a
  // crash right after the very first commit.
  AuditHead h = head.value_or(AuditHead{0, kGenesisHash});
  if (h.seq > last) {
    rep.problems.push_back("log truncated: the head anchor is at record " + std::to_string(h.seq) +
                           " but the log ends at record " + std::to_string(last));
    return;
  }
  if (h.seq > 0) {
    const AuditRecord* anchored = nullptr;
    for (auto& r : records)
      if (r.seq == h.seq) anchored = &r;
    if (!anchored || anchored->hash != h.hash) {
      rep.problems.push_back("head anchor does not match record " + std::to_string(h.seq) +
                             " (anchor or log edited)");
      return;
    }
  }
  if (last == h.seq + 1)
    rep.notes.push_back("record " + std::to_string(last) +
                        " is newer than the head anchor (a crash between commit and anchor update)");
  else if (last > h.seq + 1 && !head)
    rep.problems.push_back("head anchor " + head_path + " is missing");
  else if (last > h.seq + 1)
    rep.problems.push_back(std::to_string(last - h.seq) + " records after the head anchor (record " +
                           std::to_string(h.seq) + "): appended outside warden");
}

}  // namespace

VerifyReport verify_audit(const std::string& db_path) {
  VerifyReport rep;
  std::string head_path = head_path_for(db_path);
  std::optional<AuditHead> head;
  bool head_malformed = false;
  try {
    head = read_head(head_path);
  } catch (const Error& e) {
    rep.problems.push_back(e.what());
    head_malformed = true;
  }
  std::vector<AuditRecord> records;
  if (!std::filesystem::exists(db_path)) {
    if (head) rep.problems.push_back("audit log " + db_path + " is missing but its head anchor exists");
  } else {
    try {
      records = read_audit(db_path);
    } catch (const Error& e) {
      rep.problems.push_back(e.what());
    }
  }
  check_chain(records, rep);
  if (!head_malformed) check_anchor(records, head, head_path, rep);
  rep.records = int64_t(records.size());
  rep.last_hash = records.empty() ? kGenesisHash : records.back().hash;
  rep.ok = rep.problems.empty();
  return rep;
}

}  // namespace warden::broker
