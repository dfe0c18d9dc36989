#include "daemon/store/sqlite_backend.h"

#include <string>

#include "daemon/store/sqlite.h"

namespace kontor {
namespace {

class SqliteStatement : public sql::Statement {
 public:
  SqliteStatement(sqlite3* db, absl::string_view sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()),
                             &stmt_, nullptr);
    if (rc_ != SQLITE_OK) Failed();
  }
  ~SqliteStatement() override { sqlite3_finalize(stmt_); }

  void BindText(int i, absl::string_view v) override {
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()),
                      SQLITE_TRANSIENT);
  }
  void BindBlob(int i, absl::string_view v) override {
    sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size()),
                      SQLITE_TRANSIENT);
  }
  void BindInt(int i, int64_t v) override { sqlite3_bind_int64(stmt_, i, v); }
  void BindNull(int i) override { sqlite3_bind_null(stmt_, i); }

  bool Step() override {
    if (stmt_ == nullptr) return false;
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc != SQLITE_DONE) {
      rc_ = rc;
      Failed();
    }
    return false;
  }
  void Reset() override {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    if (stmt_ != nullptr) rc_ = SQLITE_OK;
  }

  int64_t Int(int col) override { return sqlite3_column_int64(stmt_, col); }
  std::string Text(int col) override {
    const void* p = sqlite3_column_blob(stmt_, col);
    int n = sqlite3_column_bytes(stmt_, col);
    return p ? std::string(static_cast<const char*>(p), n) : std::string();
  }

  absl::Status Error(absl::string_view what) const override {
    if (rc_ == SQLITE_OK) return absl::OkStatus();
    return SqlError(rc_, detail_, what);
  }

 private:
  // The connection's message now: later statements overwrite it.
  void Failed() { detail_ = sqlite3_errmsg(db_); }

  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
  std::string detail_;
};

class SqliteConn : public sql::Connection {
 public:
  SqliteConn(sqlite3* db, bool owned) : db_(db), owned_(owned) {}
  ~SqliteConn() override {
    if (owned_) sqlite3_close(db_);
  }

  std::unique_ptr<sql::Statement> Prepare(absl::string_view sql) override {
    return std::make_unique<SqliteStatement>(db_, sql);
  }
  absl::Status Exec(absl::string_view sql) override {
    return kontor::Exec(db_, std::string(sql).c_str());
  }
  int64_t Changes() override { return sqlite3_changes(db_); }

  absl::Status BeginWrite() override {
    Rollback();  // whatever a failure left open
    return Exec("BEGIN IMMEDIATE");
  }
  absl::Status BeginRead() override { return Exec("BEGIN"); }
  absl::Status Commit() override { return Exec("COMMIT"); }
  void Rollback() override {
    if (InTransaction()) Exec("ROLLBACK").IgnoreError();
  }
  absl::Status Savepoint() override { return Exec("SAVEPOINT job"); }
  absl::Status ReleaseSavepoint() override { return Exec("RELEASE job"); }
  void RollbackSavepoint() override {
    Exec("ROLLBACK TO job").IgnoreError();
    Exec("RELEASE job").IgnoreError();
  }
  bool InTransaction() override { return sqlite3_get_autocommit(db_) == 0; }

 private:
  sqlite3* db_;
  const bool owned_;
};

}  // namespace

std::unique_ptr<sql::Connection> SqliteConnection(sqlite3* db) {
  return std::make_unique<SqliteConn>(db, /*owned=*/true);
}

std::unique_ptr<sql::Connection> SqliteConnectionView(sqlite3* db) {
  return std::make_unique<SqliteConn>(db, /*owned=*/false);
}

}  // namespace kontor
