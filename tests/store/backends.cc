#include "tests/store/backends.h"

#include <sqlite3.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "daemon/store/content_keys.h"
#include "daemon/store/open.h"

namespace kontor {
namespace {

// --------------------------------------------------------------- SQLite

// The store file of a SQLite store kept in `dir`; its content keys are in
// ContentKeysPath of it, beside it.
std::string SqlitePath(const std::string& dir) { return SqliteStorePath(dir); }

// The content key id the store gave the row of (origin, message_id): each
// row names its own key; rows sealed at an upgrade from schema 7 name none
// and use the legacy id ("m:<id>" sent, "i:<origin>/<id>" received).
absl::StatusOr<std::string> SqliteKeyId(const std::string& path,
                                        const std::string& origin,
                                        const std::string& message_id) {
  const bool sent = origin.empty();
  const char* sql =
      sent ? "SELECT key_id FROM messages WHERE id = ?1 AND origin = ''"
           : "SELECT key_id FROM inbox WHERE message_id = ?1 AND origin = ?2 "
             "AND accepted = 1";
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) !=
      SQLITE_OK) {
    sqlite3_close(db);
    return absl::UnavailableError(absl::StrCat("cannot open ", path));
  }
  sqlite3_stmt* st = nullptr;
  absl::StatusOr<std::string> found =
      absl::NotFoundError(absl::StrCat("no message ", origin, "/", message_id));
  if (sqlite3_prepare_v2(db, sql, -1, &st, nullptr) != SQLITE_OK) {
    found = absl::InternalError(sqlite3_errmsg(db));
  } else {
    sqlite3_bind_text(st, 1, message_id.c_str(), -1, SQLITE_TRANSIENT);
    if (!sent) sqlite3_bind_text(st, 2, origin.c_str(), -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) == SQLITE_ROW) {
      const unsigned char* text = sqlite3_column_text(st, 0);
      std::string id = text ? reinterpret_cast<const char*>(text) : "";
      if (id.empty()) {
        id = sent ? absl::StrCat("m:", message_id)
                  : absl::StrCat("i:", origin, "/", message_id);
      }
      found = std::move(id);
    }
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return found;
}

BackendUnderTest SqliteBackend() {
  BackendUnderTest b;
  b.name = "sqlite";
  b.open = [](const std::string& dir) {
    StoreOptions options;
    options.backend = StoreBackend::kSqlite;
    options.data_dir = dir;
    return OpenStore(options);
  };
  b.content_key_exists =
      [](const std::string& dir, const std::string& origin,
         const std::string& message_id) -> absl::StatusOr<bool> {
    const std::string path = SqlitePath(dir);
    auto key_id = SqliteKeyId(path, origin, message_id);
    if (!key_id.ok()) return key_id.status();
    auto keys = ContentKeys::Open(ContentKeysPath(path));
    if (!keys.ok()) return keys.status();
    auto key = (*keys)->Get(*key_id);
    if (!key.ok()) return key.status();
    return key->has_value();
  };
  return b;
}

}  // namespace

const std::vector<BackendUnderTest>& StoreBackends() {
  static const auto* backends = new std::vector<BackendUnderTest>{
      SqliteBackend(),
      // PostgreSQL: add PostgresBackend() here, written like SqliteBackend()
      // above (`open` making one database or schema per `dir`, so tests stay
      // independent and a reopen of the same `dir` finds its data).
  };
  return *backends;
}

}  // namespace kontor
