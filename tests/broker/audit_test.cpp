// The hash-chained audit log: every kind of tampering is caught, and kill -9
// in the middle of appends leaves a log that verifies.
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <random>

#include "broker/audit.h"
#include "common/test_env.h"
#include "util/error.h"

namespace wb = warden::broker;

namespace {

std::string fresh_log(int records) {
  std::string path = warden::test::make_temp_dir("audit") + "/audit.db";
  wb::AuditLog log(path);
  for (int i = 1; i <= records; ++i)
    log.append({"agent", "fs.write", "{\"target\":\"/ws/f" + std::to_string(i) + "\"}", "allowed by policy",
                "rule " + std::to_string(i), ""});
  return path;
}

// Tampering the way an attacker with the file would: straight SQL, after
// dropping the append-only triggers.
void tamper(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  std::string all = "DROP TRIGGER IF EXISTS records_no_update; DROP TRIGGER IF EXISTS records_no_delete; " + sql;
  char* err = nullptr;
  int rc = sqlite3_exec(db, all.c_str(), nullptr, nullptr, &err);
  std::string msg = err ? err : "";
  sqlite3_free(err);
  sqlite3_close(db);
  ASSERT_EQ(rc, SQLITE_OK) << msg;
}

std::string problems(const wb::VerifyReport& r) {
  std::string s;
  for (auto& p : r.problems) s += p + "\n";
  return s;
}

}  // namespace

TEST(Audit, FreshLogVerifies) {
  std::string path = fresh_log(5);
  auto rep = wb::verify_audit(path);
  EXPECT_TRUE(rep.ok) << problems(rep);
  EXPECT_EQ(rep.records, 5);
  EXPECT_TRUE(rep.notes.empty());
  auto records = wb::read_audit(path);
  ASSERT_EQ(records.size(), 5u);
  EXPECT_EQ(records[0].prev_hash, wb::kGenesisHash);
  EXPECT_EQ(records[1].prev_hash, records[0].hash);
  EXPECT_EQ(records[4].hash, wb::audit_record_hash(records[4]));
}

TEST(Audit, EmptyLogVerifies) {
  auto rep = wb::verify_audit(warden::test::make_temp_dir("none") + "/audit.db");
  EXPECT_TRUE(rep.ok);
  EXPECT_EQ(rep.records, 0);
}

TEST(Audit, SqliteRefusesEditsThroughTriggers) {
  std::string path = fresh_log(2);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  EXPECT_NE(sqlite3_exec(db, "UPDATE records SET reason='x' WHERE seq=1", nullptr, nullptr, nullptr), SQLITE_OK);
  EXPECT_NE(sqlite3_exec(db, "DELETE FROM records WHERE seq=1", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  EXPECT_TRUE(wb::verify_audit(path).ok);
}

TEST(AuditTamper, EditedFieldIsDetected) {
  for (const char* column : {"time", "actor", "capability", "arguments", "decision", "reason", "result_digest"}) {
    std::string path = fresh_log(5);
    tamper(path, std::string("UPDATE records SET ") + column + " = 'forged' WHERE seq = 3;");
    auto rep = wb::verify_audit(path);
    EXPECT_FALSE(rep.ok) << column;
    EXPECT_NE(problems(rep).find("record 3: contents do not match its hash (edited)"), std::string::npos)
        << column << ": " << problems(rep);
  }
}

TEST(AuditTamper, EditWithRecomputedHashBreaksTheChain) {
  std::string path = fresh_log(5);
  auto r = wb::read_audit(path)[2];
  r.entry.decision = "approved by human";
  std::string forged = wb::audit_record_hash(r);
  tamper(path, "UPDATE records SET decision = 'approved by human', hash = '" + forged + "' WHERE seq = 3;");
  auto rep = wb::verify_audit(path);
  EXPECT_FALSE(rep.ok);
  EXPECT_NE(problems(rep).find("record 4: does not chain to the record before it"), std::string::npos)
      << problems(rep);
}

TEST(AuditTamper, DeletedRowIsDetected) {
  std::string path = fresh_log(5);
  tamper(path, "DELETE FROM records WHERE seq = 2;");
  auto rep = wb::verify_audit(path);
  EXPECT_FALSE(rep.ok);
  EXPECT_NE(problems(rep).find("records 2..2 are missing (deleted)"), std::string::npos) << problems(rep);
}

TEST(AuditTamper, SwappedRowsAreDetected) {
  std::string path = fresh_log(5);
  // Exchange the contents of records 2 and 3, seq numbers staying in place.
  tamper(path,
         "CREATE TEMP TABLE t AS SELECT * FROM records WHERE seq IN (2,3);"
         "DELETE FROM records WHERE seq IN (2,3);"
         "INSERT INTO records SELECT 5 - seq, time, actor, capability, arguments, decision, reason, result_digest,"
         " prev_hash, hash FROM t;");
  auto rep = wb::verify_audit(path);
  EXPECT_FALSE(rep.ok);
  EXPECT_NE(problems(rep).find("record 2: contents do not match its hash"), std::string::npos) << problems(rep);
}

TEST(AuditTamper, RenumberedReorderIsDetected) {
  std::string path = fresh_log(5);
  // Reorder whole rows (seq included): 4 becomes 2's place and vice versa.
  tamper(path, "UPDATE records SET seq = -seq WHERE seq IN (2,4); UPDATE records SET seq = 6 + seq WHERE seq IN (-2,-4);");
  auto rep = wb::verify_audit(path);
  EXPECT_FALSE(rep.ok) << problems(rep);
}

TEST(AuditTamper, TruncatedTailIsDetected) {
  std::string path = fresh_log(5);
  tamper(path, "DELETE FROM records WHERE seq >= 4;");
  auto rep = wb::verify_audit(path);
  EXPECT_FALSE(rep.ok);
  EXPECT_NE(problems(rep).find("log truncated: the head anchor is at record 5 but the log ends at record 3"),
            std::string::npos)
      << problems(rep);
}

TEST(AuditTamper, EverythingDeletedIsDetected) {
  std::string path = fresh_log(3);
  tamper(path, "DELETE FROM records;");
  EXPECT_FALSE(wb::verify_audit(path).ok);
}

TEST(AuditTamper, EditedHeadAnchorIsDetected) {
  std::string path = fresh_log(5);
  auto head = wb::read_head(wb::head_path_for(path)).value();
  head.hash[0] = head.hash[0] == 'a' ? 'b' : 'a';
  wb::write_head(wb::head_path_for(path), head);
  auto rep = wb::verify_audit(path);
  EXPECT_FALSE(rep.ok);
  EXPECT_NE(problems(rep).find("head anchor does not match record 5"), std::string::npos) << problems(rep);

  warden::test::write_file(wb::head_path_for(path), "garbage\n");
  EXPECT_FALSE(wb::verify_audit(path).ok);
  std::remove(wb::head_path_for(path).c_str());
  rep = wb::verify_audit(path);
  EXPECT_FALSE(rep.ok);
  EXPECT_NE(problems(rep).find("is missing"), std::string::npos);
}

TEST(AuditTamper, HeadPointingPastTheEndIsDetected) {
  std::string path = fresh_log(3);
  auto head = wb::read_head(wb::head_path_for(path)).value();
  head.seq = 9;
  wb::write_head(wb::head_path_for(path), head);
  EXPECT_FALSE(wb::verify_audit(path).ok);
}

TEST(AuditTamper, ForeignAppendsAfterTheAnchorAreDetected) {
  std::string path = fresh_log(3);
  auto head = wb::read_head(wb::head_path_for(path)).value();
  {
    wb::AuditLog log(path);
    log.append({"x", "y", "", "event", "", ""});
    log.append({"x", "y", "", "event", "", ""});
  }
  wb::write_head(wb::head_path_for(path), head);  // as if appended behind warden's back
  auto rep = wb::verify_audit(path);
  EXPECT_FALSE(rep.ok);
  EXPECT_NE(problems(rep).find("2 records after the head anchor"), std::string::npos) << problems(rep);
}

TEST(Audit, AnchorOneBehindIsACrashNotTampering) {
  std::string path = fresh_log(3);
  auto head = wb::read_head(wb::head_path_for(path)).value();
  {
    wb::AuditLog log(path);
    log.append({"x", "y", "", "event", "", ""});
  }
  wb::write_head(wb::head_path_for(path), head);  // the anchor update was lost
  auto rep = wb::verify_audit(path);
  EXPECT_TRUE(rep.ok) << problems(rep);
  ASSERT_EQ(rep.notes.size(), 1u);
}

TEST(Audit, Kill9DuringAppendsLeavesAVerifiableLog) {
  std::string path = warden::test::make_temp_dir("kill9") + "/audit.db";
  std::mt19937 rng(12345);
  for (int round = 0; round < 25; ++round) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      try {
        wb::AuditLog log(path);
        for (int i = 0;; ++i)
          log.append({"agent", "net", std::string(size_t(100 + i % 4000), 'x'), "allowed by policy", "loop", ""});
      } catch (...) {
        _exit(3);
      }
    }
    usleep(useconds_t(2000 + rng() % 40000));
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "child exited on its own with " << WEXITSTATUS(status);
    auto rep = wb::verify_audit(path);
    ASSERT_TRUE(rep.ok) << "round " << round << ": " << problems(rep);
  }
  auto rep = wb::verify_audit(path);
  EXPECT_GT(rep.records, 0);
  // The log stays appendable after all the crashes.
  wb::AuditLog log(path);
  log.append({"test", "event", "", "event", "after crashes", ""});
  EXPECT_TRUE(wb::verify_audit(path).ok);
}

TEST(Audit, RefusesToAppendToATamperedLog) {
  std::string path = fresh_log(4);
  tamper(path, "DELETE FROM records WHERE seq = 4;");
  wb::AuditLog log(path);
  EXPECT_THROW(log.append({"agent", "net", "", "denied", "", ""}), warden::Error);
  EXPECT_EQ(wb::read_audit(path).size(), 3u);  // nothing was added
}
