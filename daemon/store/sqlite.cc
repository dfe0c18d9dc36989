#include "daemon/store/sqlite.h"

#include "absl/strings/str_cat.h"

namespace kontor {

absl::Status SqlError(sqlite3* db, int rc, absl::string_view what) {
  return SqlError(rc, db ? sqlite3_errmsg(db) : "", what);
}

absl::Status SqlError(int rc, absl::string_view detail,
                      absl::string_view what) {
  // "what: database or disk is full", with SQLite's own detail only when it
  // says more than the code does.
  const std::string code = sqlite3_errstr(rc);
  const std::string msg = absl::StrCat(
      what, ": ", code,
      detail.empty() || detail == code ? "" : absl::StrCat(" (", detail, ")"));
  switch (rc & 0xff) {
    case SQLITE_FULL:
    case SQLITE_NOMEM:
      return absl::ResourceExhaustedError(msg);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
      return absl::UnavailableError(msg);
    case SQLITE_CONSTRAINT:
      return absl::AlreadyExistsError(msg);
    default:
      return absl::InternalError(msg);
  }
}

absl::Status Exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    sqlite3_free(err);
    return SqlError(db, rc, "store");
  }
  return absl::OkStatus();
}

absl::StatusOr<sqlite3*> OpenDb(const std::string& path) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &db,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
      nullptr);
  if (rc != SQLITE_OK) {
    absl::Status s = SqlError(db, rc, absl::StrCat("open ", path));
    sqlite3_close(db);
    return s;
  }
  sqlite3_busy_timeout(db, 10000);
  return db;
}

}  // namespace kontor
