#ifndef KONTOR_DAEMON_STORE_SQLITE_H_
#define KONTOR_DAEMON_STORE_SQLITE_H_

// SQLite helpers shared by the store's two files (kontor.db and the content
// key file). Internal to daemon/store.

#include <sqlite3.h>

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kontor {

// "what: database or disk is full", with SQLite's own detail only when it
// says more than the code does; the status code by kind (full ->
// kResourceExhausted, busy/locked/I/O -> kUnavailable, constraint ->
// kAlreadyExists).
absl::Status SqlError(sqlite3* db, int rc, absl::string_view what);
// The same for an error code and the connection's message saved with it.
absl::Status SqlError(int rc, absl::string_view detail, absl::string_view what);

// Runs SQL without results.
absl::Status Exec(sqlite3* db, const char* sql);

// Opens (creating) a database file, no mutex (one thread per connection),
// with a 10 s busy timeout.
absl::StatusOr<sqlite3*> OpenDb(const std::string& path);

// A prepared statement, finalized on scope exit.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
  }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  absl::Status status() const {
    return rc_ == SQLITE_OK ? absl::OkStatus() : SqlError(db_, rc_, "prepare");
  }
  Stmt& Bind(int i, absl::string_view text) {
    sqlite3_bind_text(stmt_, i, text.data(), static_cast<int>(text.size()),
                      SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& BindBlob(int i, absl::string_view blob) {
    sqlite3_bind_blob(stmt_, i, blob.data(), static_cast<int>(blob.size()),
                      SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Bind(int i, int64_t v) {
    sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  Stmt& BindNull(int i) {
    sqlite3_bind_null(stmt_, i);
    return *this;
  }
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int Step() { return sqlite3_step(stmt_); }
  // Ready to run again, bindings cleared.
  void Reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  absl::Status Run(absl::string_view what) {
    if (rc_ != SQLITE_OK) return status();
    int rc = Step();
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) return SqlError(db_, rc, what);
    return absl::OkStatus();
  }
  int64_t Int(int col) { return sqlite3_column_int64(stmt_, col); }
  std::string Text(int col) {
    const void* p = sqlite3_column_blob(stmt_, col);
    int n = sqlite3_column_bytes(stmt_, col);
    return p ? std::string(static_cast<const char*>(p), n) : std::string();
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
};

}  // namespace kontor

#endif  // KONTOR_DAEMON_STORE_SQLITE_H_
