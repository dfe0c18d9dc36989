// The audit chain of the SQLite store edited behind its back, with SQL on
// its file: VerifyAuditChain names the first record that does not fit. The
// contract every backend meets is in conformance_audit_test.cc.

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "daemon/store/audit.h"
#include "daemon/store/store.h"
#include "gtest/gtest.h"
#include "tests/testing/sql.h"
#include "tests/testing/test_pki.h"

namespace kontor {
namespace {

class SqliteAuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = testing::TempDir("audit") + "/kontor.db";
    auto s = Store::Open(path_);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
  }

  AuditCheck Verify() {
    auto c = store_->VerifyAuditChain();
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *c : AuditCheck();
  }

  // SQL behind the store's back (tests/testing/sql.h).
  void Sql(const std::string& sql) { testing::RunSql(path_, sql); }

  void Consult(int n, int64_t time_ms = 5000) {
    std::vector<AuditEntry> entries;
    for (int i = 0; i < n; ++i) {
      entries.push_back(AuditEntry{std::string(kAuditConsult), "user:anna",
                                   "m" + std::to_string(i), "ee", "", "note",
                                   "", "shown"});
    }
    ASSERT_TRUE(store_->AppendAudit(entries, time_ms).ok());
  }

  std::string path_;
  std::unique_ptr<Store> store_;
};

TEST_F(SqliteAuditTest, EditedColumnIsFoundAtItsRecord) {
  Consult(5);
  for (const char* column : {"action", "actor", "message_id", "origin", "peer",
                             "kind", "purpose", "detail"}) {
    SCOPED_TRACE(column);
    Sql(std::string("UPDATE audit SET ") + column + " = " + column +
        " || 'x' WHERE seq = 3");
    AuditCheck c = Verify();
    EXPECT_EQ(c.first_bad_seq, 3u);
    EXPECT_NE(c.problem.find("altered"), std::string::npos) << c.problem;
    EXPECT_EQ(c.head.seq, 2u);  // the last good record
    Sql(std::string("UPDATE audit SET ") + column + " = substr(" + column +
        ", 1, length(" + column + ") - 1) WHERE seq = 3");
    EXPECT_EQ(Verify().first_bad_seq, 0u);
  }
  Sql("UPDATE audit SET time_ms = time_ms + 1 WHERE seq = 5");
  AuditCheck c = Verify();
  EXPECT_EQ(c.first_bad_seq, 5u);
  EXPECT_NE(c.problem.find("altered"), std::string::npos) << c.problem;
  Sql("UPDATE audit SET time_ms = time_ms - 1 WHERE seq = 5");
  // The stored hash itself replaced.
  Sql("UPDATE audit SET hash = zeroblob(32) WHERE seq = 1");
  c = Verify();
  EXPECT_EQ(c.first_bad_seq, 1u);
}

TEST_F(SqliteAuditTest, DeletedMiddleRecordIsNamed) {
  Consult(5);
  Sql("DELETE FROM audit WHERE seq = 3");
  AuditCheck c = Verify();
  EXPECT_EQ(c.first_bad_seq, 3u);
  EXPECT_NE(c.problem.find("missing"), std::string::npos) << c.problem;
  EXPECT_EQ(c.head.seq, 2u);
  // The first one deleted.
  Sql("DELETE FROM audit WHERE seq = 1");
  EXPECT_EQ(Verify().first_bad_seq, 1u);
}

TEST_F(SqliteAuditTest, ChangedLinkIsNamed) {
  Consult(4);
  Sql("UPDATE audit SET prev = zeroblob(32) WHERE seq = 3");
  AuditCheck c = Verify();
  EXPECT_EQ(c.first_bad_seq, 3u);
  EXPECT_FALSE(c.problem.empty());
  EXPECT_NE(c.problem.find("link"), std::string::npos) << c.problem;
}

TEST_F(SqliteAuditTest, RewrittenRecordWithItsOwnHashRecomputedBreaksTheNext) {
  // Someone who edits a record and recomputes its hash still breaks the
  // link of the record after it.
  Consult(4);
  AuditRecord r = **store_->GetAuditRecord(2);
  r.entry.detail = "forged";
  const std::string forged = AuditRecordHash(r);
  Sql("UPDATE audit SET detail = 'forged', hash = x'" +
      absl::BytesToHexString(forged) + "' WHERE seq = 2");
  AuditCheck c = Verify();
  EXPECT_EQ(c.first_bad_seq, 3u);
  EXPECT_EQ(c.head.seq, 2u);
  EXPECT_EQ(c.head.hash, forged);
}

}  // namespace
}  // namespace kontor
