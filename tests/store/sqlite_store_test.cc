// What only the SQLite store can show: its file, migrated from older
// schemas, and where it can be made. The contract every backend meets is
// the conformance suite (conformance.h).

#include <sqlite3.h>

#include <memory>
#include <string>
#include <vector>

#include "daemon/store/open.h"
#include "daemon/store/store.h"
#include "gtest/gtest.h"
#include "tests/testing/test_pki.h"

namespace kontor {
namespace {

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = testing::TempDir("store") + "/kontor.db";
    Reopen();
  }
  void Reopen() {
    store_.reset();
    auto s = Store::Open(path_);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
  }
  OutgoingMessage Message(const std::string& id, int priority = 1,
                          int64_t created = 1000,
                          std::vector<std::string> to = {"fi"}) {
    OutgoingMessage m;
    m.id = id;
    m.recipients = to;
    m.priority = priority;
    m.created_ms = created;
    m.expires_ms = created + 100000;
    m.kind = "note";
    m.envelope = "envelope-" + id;
    m.outer_digest = "digest-" + id;
    m.submitter = "alice";
    m.request_hash = "hash-" + id;
    return m;
  }
  std::string path_;
  std::unique_ptr<Store> store_;
};

TEST_F(SqliteStoreTest, FileOfTheFirstSchemaIsMigrated) {
  store_.reset();
  const std::string old = path_ + ".v0";
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(old.c_str(), &db), SQLITE_OK);
  // deliveries as the first release made it (no not_before_ms, deferrals).
  ASSERT_EQ(sqlite3_exec(db,
                         "CREATE TABLE deliveries(message_id TEXT NOT NULL, "
                         "peer TEXT NOT NULL, state TEXT NOT NULL, priority "
                         "INTEGER NOT NULL, created_ms INTEGER NOT NULL, "
                         "expires_ms INTEGER NOT NULL, attempts INTEGER NOT "
                         "NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '', "
                         "reason TEXT NOT NULL DEFAULT '', receipt BLOB, "
                         "updated_ms INTEGER NOT NULL, PRIMARY "
                         "KEY(message_id, peer))",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto migrated = Store::Open(old);
  ASSERT_TRUE(migrated.ok()) << migrated.status();
  ASSERT_TRUE((*migrated)->InsertOutgoing(Message("m1")).ok());
  ASSERT_TRUE((*migrated)->MarkAttempted("fi", {"m1"}, "x", 1, 5).ok());
  EXPECT_EQ((*migrated)->NextDeliveries("fi", 10, 5)->at(0).deferrals, 1u);
}

TEST_F(SqliteStoreTest, UnwritableLocationIsAClearError) {
  auto s = Store::Open("/proc/kontor-cannot-be-here/kontor.db");
  EXPECT_FALSE(s.ok());
}

// The node opens its store through OpenStore by configuration: "sqlite" (or
// nothing) is this backend, in data_dir/kontor.db; anything else is refused.
TEST(OpenStoreTest, SqliteIsTheDefaultBackendAndLivesInDataDir) {
  const std::string dir = testing::TempDir("open-store");
  auto backend = ParseStoreBackend("");
  ASSERT_TRUE(backend.ok()) << backend.status();
  EXPECT_EQ(*backend, StoreBackend::kSqlite);
  StoreOptions options;
  options.backend = *backend;
  options.data_dir = dir;
  {
    auto store = OpenStore(options);
    ASSERT_TRUE(store.ok()) << store.status();
  }
  EXPECT_EQ(SqliteStorePath(dir), dir + "/kontor.db");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(SqliteStorePath(dir).c_str(), &db,
                            SQLITE_OPEN_READONLY, nullptr),
            SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  EXPECT_EQ(
      sqlite3_prepare_v2(db, "SELECT count(*) FROM messages", -1, &st, nullptr),
      SQLITE_OK);
  sqlite3_finalize(st);
  sqlite3_close(db);
}

TEST(OpenStoreTest, UnknownBackendAndMissingDirAreClearErrors) {
  auto backend = ParseStoreBackend("postgresql\x1b[31m");
  ASSERT_FALSE(backend.ok());
  EXPECT_EQ(backend.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string message(backend.status().message());
  EXPECT_NE(message.find("this kontord has: sqlite"), std::string::npos)
      << message;
  EXPECT_EQ(message.find('\x1b'), std::string::npos) << message;
  EXPECT_FALSE(OpenStore(StoreOptions{}).ok());
}

}  // namespace
}  // namespace kontor
