// The SQL interface of store/sql.h, as every backend must provide it: what
// the store's operations (sql_store.cc) rely on, stated once and run once per
// backend. A new backend (PostgreSQL) adds itself to Backends() and must pass
// these before the store conformance suite can.

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "daemon/store/postgres_backend.h"
#include "daemon/store/sql.h"
#include "daemon/store/sqlite.h"
#include "daemon/store/sqlite_backend.h"
#include "tests/store/backends.h"
#include "tests/testing/test_pki.h"

namespace kontor {
namespace {

using sql::Connection;
using sql::Stmt;

struct SqlBackendUnderTest {
  std::string name;
  // A connection to the database kept in `dir` (empty the first time);
  // every connection opened on the same `dir` sees the same database.
  std::function<absl::StatusOr<std::unique_ptr<Connection>>(
      const std::string& dir)>
      connect;
  // The table the tests use, in this backend's types: k text key, n 64-bit
  // integer, b bytes (nullable).
  std::string table;
};

void PrintTo(const SqlBackendUnderTest& backend, std::ostream* os) {
  *os << backend.name;
}

// The database of `dir` on the test server (backends.h).
absl::StatusOr<std::unique_ptr<Connection>> PostgresFor(
    const std::string& dir) {
  auto conninfo = PostgresTestDatabase(dir);
  if (!conninfo.ok()) return conninfo.status();
  return PostgresConnection(*conninfo);
}

std::vector<SqlBackendUnderTest> Backends() {
  std::vector<SqlBackendUnderTest> all = {
      {"sqlite",
       [](const std::string& dir)
           -> absl::StatusOr<std::unique_ptr<Connection>> {
         auto db = OpenDb(dir + "/t.db");
         if (!db.ok()) return db.status();
         std::unique_ptr<Connection> c = SqliteConnection(*db);
         if (auto s = c->Exec("PRAGMA journal_mode=WAL"); !s.ok()) return s;
         return c;
       },
       "CREATE TABLE IF NOT EXISTS t(k TEXT PRIMARY KEY, n INTEGER NOT "
       "NULL, b BLOB)"}};
  if (std::getenv("KONTOR_TEST_POSTGRES") != nullptr) {
    all.push_back({"postgres", PostgresFor,
                   "CREATE TABLE IF NOT EXISTS t(k TEXT PRIMARY KEY, n BIGINT "
                   "NOT NULL, b BYTEA)"});
  }
  return all;
}

class SqlBackendTest : public ::testing::TestWithParam<SqlBackendUnderTest> {
 protected:
  void SetUp() override {
    dir_ = testing::TempDir("sql-" + GetParam().name);
    writer_ = Connect();
    reader_ = Connect();
    ASSERT_NE(writer_, nullptr);
    ASSERT_NE(reader_, nullptr);
    ASSERT_TRUE(writer_->Exec(GetParam().table).ok());
  }

  std::unique_ptr<Connection> Connect() {
    auto c = GetParam().connect(dir_);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? std::move(*c) : nullptr;
  }

  absl::Status Insert(sql::Tx* tx, const std::string& k, int64_t n) {
    Stmt s(tx, "INSERT INTO t(k, n) VALUES(?, ?)");
    s.Bind(1, k).Bind(2, n);
    return s.Run("insert");
  }

  // The keys in t, in order, as `tx` sees them.
  std::vector<std::string> Keys(sql::Tx* tx) {
    Stmt s(tx, "SELECT k FROM t ORDER BY k");
    std::vector<std::string> out;
    while (s.Next()) out.push_back(s.Text(0));
    EXPECT_TRUE(s.Done("keys").ok());
    return out;
  }

  std::string dir_;
  std::unique_ptr<Connection> writer_;
  std::unique_ptr<Connection> reader_;
};

TEST_P(SqlBackendTest, ValuesComeBackAsBound) {
  const std::string bytes("\0\x01\xff\x80 tail", 8);
  Stmt ins(writer_.get(), "INSERT INTO t(k, n, b) VALUES(?, ?, ?)");
  ins.Bind(1, "key with 'quote'").Bind(2, INT64_MIN).BindBlob(3, bytes);
  ASSERT_TRUE(ins.Run("insert").ok());
  Stmt nul(writer_.get(), "INSERT INTO t(k, n, b) VALUES(?, ?, ?)");
  nul.Bind(1, "null").Bind(2, INT64_MAX).BindNull(3);
  ASSERT_TRUE(nul.Run("insert").ok());

  Stmt s(reader_.get(), "SELECT k, n, b FROM t ORDER BY k");
  ASSERT_TRUE(s.Next());
  EXPECT_EQ(s.Text(0), "key with 'quote'");
  EXPECT_EQ(s.Int(1), INT64_MIN);
  EXPECT_EQ(s.Text(2), bytes);
  ASSERT_TRUE(s.Next());
  EXPECT_EQ(s.Text(0), "null");
  EXPECT_EQ(s.Int(1), INT64_MAX);
  EXPECT_EQ(s.Text(2), "");  // NULL reads as ""
  EXPECT_FALSE(s.Next());
  EXPECT_TRUE(s.Done("select").ok());
}

TEST_P(SqlBackendTest, ParametersAreNumberedInOrderAndReusable) {
  Stmt ins(writer_.get(), "INSERT INTO t(k, n) VALUES(?, ?)");
  for (int i = 0; i < 3; ++i) {
    ins.Bind(1, "k" + std::to_string(i)).Bind(2, int64_t{i} * 10);
    ASSERT_TRUE(ins.Run("insert").ok());
    ins.Reset();
  }
  Stmt s(reader_.get(), "SELECT n FROM t WHERE n >= ? AND k <> ? ORDER BY n");
  s.Bind(1, 10).Bind(2, "k2");
  ASSERT_TRUE(s.Next());
  EXPECT_EQ(s.Int(0), 10);
  EXPECT_FALSE(s.Next());
}

TEST_P(SqlBackendTest, AQuestionMarkInQuotesIsNoParameter) {
  Stmt s(reader_.get(), "SELECT '?', ?, 'it''s ?'");
  s.Bind(1, 7);
  ASSERT_TRUE(s.Next()) << s.Done("select");
  EXPECT_EQ(s.Text(0), "?");
  EXPECT_EQ(s.Int(1), 7);
  EXPECT_EQ(s.Text(2), "it's ?");
}

// Text the database cannot hold whole is refused, never stored cut.
TEST_P(SqlBackendTest, TextIsStoredWholeOrRefused) {
  const std::string nul("a\0b", 3);
  Stmt ins(writer_.get(), "INSERT INTO t(k, n) VALUES(?, 1)");
  ins.Bind(1, nul);
  absl::Status s = ins.Run("insert");
  if (!s.ok()) {
    EXPECT_EQ(Keys(reader_.get()), std::vector<std::string>{});
    return;
  }
  EXPECT_EQ(Keys(reader_.get()), std::vector<std::string>{nul});
}

TEST_P(SqlBackendTest, ChangesCountsTheLastStatementsRows) {
  for (const char* k : {"a", "b", "c"}) {
    ASSERT_TRUE(Insert(writer_.get(), k, 1).ok());
  }
  Stmt up(writer_.get(), "UPDATE t SET n = 2 WHERE k <> ?");
  up.Bind(1, "a");
  ASSERT_TRUE(up.Run("update").ok());
  EXPECT_EQ(writer_->Changes(), 2);
  Stmt none(writer_.get(), "UPDATE t SET n = 3 WHERE k = ?");
  none.Bind(1, "missing");
  ASSERT_TRUE(none.Run("update").ok());
  EXPECT_EQ(writer_->Changes(), 0);
}

// The dialect the store's SQL uses beyond the plain statements.
TEST_P(SqlBackendTest, SpeaksTheStoresDialect) {
  {
    Stmt ret(writer_.get(), "INSERT INTO t(k, n) VALUES(?, ?) RETURNING n + 1");
    ret.Bind(1, "a").Bind(2, 41);
    ASSERT_TRUE(ret.Run("insert").ok());
    EXPECT_EQ(ret.Int(0), 42);
  }  // done with: its work may not be committed before (SQLite)

  Stmt upsert(writer_.get(),
              "INSERT INTO t(k, n) VALUES(?, ?) ON CONFLICT(k) DO UPDATE SET "
              "n = excluded.n");
  upsert.Bind(1, "a").Bind(2, 7);
  ASSERT_TRUE(upsert.Run("upsert").ok());
  Stmt nothing(writer_.get(),
               "INSERT INTO t(k, n) VALUES(?, ?) ON CONFLICT DO NOTHING");
  nothing.Bind(1, "a").Bind(2, 8);
  ASSERT_TRUE(nothing.Run("insert").ok());
  EXPECT_EQ(writer_->Changes(), 0);
  ASSERT_TRUE(Insert(writer_.get(), "x/y", 1).ok());

  Stmt s(reader_.get(),
         "SELECT k, n FROM t WHERE k NOT LIKE '%/%' AND NOT FALSE AND "
         "COALESCE(NULL, n) = n");
  ASSERT_TRUE(s.Next());
  EXPECT_EQ(s.Text(0), "a");
  EXPECT_EQ(s.Int(1), 7);
  EXPECT_FALSE(s.Next());
}

TEST_P(SqlBackendTest, ErrorsSayWhatAndHaveTheirKind) {
  // Bad SQL fails when prepared (SQLite) or at the latest when run
  // (PostgreSQL, which prepares with the first run).
  Stmt bad(writer_.get(), "SELEC nonsense");
  EXPECT_FALSE(bad.Next());
  EXPECT_FALSE(bad.Done("lookup").ok());
  absl::Status run = bad.Run("lookup");
  EXPECT_FALSE(run.ok());

  ASSERT_TRUE(Insert(writer_.get(), "a", 1).ok());
  absl::Status dup = Insert(writer_.get(), "a", 2);
  EXPECT_EQ(dup.code(), absl::StatusCode::kAlreadyExists) << dup;
  EXPECT_EQ(dup.message().substr(0, 8), "insert: ") << dup;
}

// Group commit: one transaction, a savepoint per write; a failed write is
// undone alone, and the others commit.
TEST_P(SqlBackendTest, AFailedWriteIsUndoneAloneInItsSavepoint) {
  ASSERT_TRUE(writer_->BeginWrite().ok());
  EXPECT_TRUE(writer_->InTransaction());
  auto write = [&](const std::vector<std::string>& keys) {
    EXPECT_TRUE(writer_->Savepoint().ok());
    for (const std::string& k : keys) {
      if (absl::Status s = Insert(writer_.get(), k, 1); !s.ok()) {
        writer_->RollbackSavepoint();
        return s;
      }
    }
    return writer_->ReleaseSavepoint();
  };
  EXPECT_TRUE(write({"a"}).ok());
  EXPECT_EQ(write({"b", "a"}).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(write({"c"}).ok());
  EXPECT_TRUE(writer_->InTransaction());
  EXPECT_EQ(Keys(reader_.get()), std::vector<std::string>{});  // not yet
  ASSERT_TRUE(writer_->Commit().ok());
  EXPECT_FALSE(writer_->InTransaction());
  EXPECT_EQ(Keys(reader_.get()), (std::vector<std::string>{"a", "c"}));
}

// After a failure nobody cleaned up (PostgreSQL: a transaction aborted by a
// failed statement, outside any savepoint), the next write transaction
// starts anyway, without what the abandoned one did.
TEST_P(SqlBackendTest, AnAbandonedTransactionDoesNotBlockTheNext) {
  ASSERT_TRUE(Insert(writer_.get(), "a", 1).ok());
  ASSERT_TRUE(writer_->BeginWrite().ok());
  ASSERT_TRUE(Insert(writer_.get(), "b", 1).ok());
  EXPECT_EQ(Insert(writer_.get(), "a", 2).code(),
            absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(writer_->BeginWrite().ok());
  EXPECT_TRUE(writer_->InTransaction());
  ASSERT_TRUE(Insert(writer_.get(), "c", 1).ok());
  ASSERT_TRUE(writer_->Commit().ok());
  EXPECT_EQ(Keys(reader_.get()), (std::vector<std::string>{"a", "c"}));
}

TEST_P(SqlBackendTest, RollbackUndoesTheWholeTransaction) {
  ASSERT_TRUE(writer_->BeginWrite().ok());
  ASSERT_TRUE(Insert(writer_.get(), "a", 1).ok());
  writer_->Rollback();
  EXPECT_FALSE(writer_->InTransaction());
  EXPECT_EQ(Keys(writer_.get()), std::vector<std::string>{});
  writer_->Rollback();  // harmless outside a transaction
}

TEST_P(SqlBackendTest, AReadTransactionSeesOneSnapshot) {
  ASSERT_TRUE(Insert(writer_.get(), "a", 1).ok());
  ASSERT_TRUE(reader_->BeginRead().ok());
  EXPECT_EQ(Keys(reader_.get()), std::vector<std::string>{"a"});
  ASSERT_TRUE(Insert(writer_.get(), "b", 1).ok());
  EXPECT_EQ(Keys(reader_.get()), std::vector<std::string>{"a"});
  ASSERT_TRUE(reader_->Commit().ok());
  EXPECT_EQ(Keys(reader_.get()), (std::vector<std::string>{"a", "b"}));
}

TEST_P(SqlBackendTest, CommittedWritesOutliveTheConnection) {
  ASSERT_TRUE(writer_->BeginWrite().ok());
  ASSERT_TRUE(Insert(writer_.get(), "kept", 1).ok());
  ASSERT_TRUE(writer_->Commit().ok());
  ASSERT_TRUE(writer_->BeginWrite().ok());
  ASSERT_TRUE(Insert(writer_.get(), "lost", 1).ok());
  writer_.reset();  // closed in the middle of a transaction
  reader_.reset();
  std::unique_ptr<Connection> again = Connect();
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(Keys(again.get()), std::vector<std::string>{"kept"});
}

// Given a server (tests/postgres.sh), PostgreSQL is among the backends both
// suites run: a run filtered to PostgreSQL never passes with no test.
TEST(PostgresBackendTest, IsTestedWhenAServerIsGiven) {
  if (std::getenv("KONTOR_TEST_POSTGRES") == nullptr) {
    GTEST_SKIP() << "KONTOR_TEST_POSTGRES is not set (tests/postgres.sh)";
  }
  bool store = false;
  for (const BackendUnderTest& b : StoreBackends()) {
    store = store || b.name == "postgres";
  }
  bool sql = false;
  for (const SqlBackendUnderTest& b : Backends()) {
    sql = sql || b.name == "postgres";
  }
  EXPECT_TRUE(store);
  EXPECT_TRUE(sql);
}

INSTANTIATE_TEST_SUITE_P(
    Backends, SqlBackendTest, ::testing::ValuesIn(Backends()),
    [](const ::testing::TestParamInfo<SqlBackendUnderTest>& info) {
      return info.param.name;
    });

}  // namespace
}  // namespace kontor
