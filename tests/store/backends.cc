#include "tests/store/backends.h"

#include <sqlite3.h>

#include <cstdlib>
#include <functional>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "daemon/store/content_keys.h"
#include "daemon/store/open.h"
#include "daemon/store/postgres_backend.h"
#include "daemon/store/sql.h"

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
  b.key_file = [](const std::string& dir) {
    return ContentKeysPath(SqlitePath(dir));
  };
  return b;
}

// ------------------------------------------------------------- PostgreSQL

// The server the tests use: KONTOR_TEST_POSTGRES, a libpq connection string
// without dbname (tests/postgres.sh starts one and sets it); unset, no
// PostgreSQL backend is tested.
const char* PostgresServer() { return std::getenv("KONTOR_TEST_POSTGRES"); }

// One database per test directory: "kt_" and a hash of `dir`.
std::string PostgresConninfo(const std::string& dir) {
  return absl::StrCat(PostgresServer(), " dbname=kt_",
                      absl::Hex(std::hash<std::string>()(dir)));
}

BackendUnderTest PostgresBackend() {
  BackendUnderTest b;
  b.name = "postgres";
  b.open =
      [](const std::string& dir) -> absl::StatusOr<std::unique_ptr<Store>> {
    auto conninfo = PostgresTestDatabase(dir);
    if (!conninfo.ok()) return conninfo.status();
    return OpenPostgresStore(*conninfo, dir + "/keys.db", nullptr);
  };
  b.content_key_exists =
      [](const std::string& dir, const std::string& origin,
         const std::string& message_id) -> absl::StatusOr<bool> {
    auto db = PostgresConnection(PostgresConninfo(dir));
    if (!db.ok()) return db.status();
    const bool sent = origin.empty();
    sql::Stmt q(db->get(),
                sent ? "SELECT key_id FROM messages WHERE id = ? AND origin = "
                       "'' AND ? = ''"
                     : "SELECT key_id FROM inbox WHERE message_id = ? AND "
                       "origin = ? AND accepted = 1");
    q.Bind(1, message_id).Bind(2, origin);
    if (!q.Next()) {
      return absl::NotFoundError(
          absl::StrCat("no message ", origin, "/", message_id));
    }
    auto keys = ContentKeys::Open(dir + "/keys.db");
    if (!keys.ok()) return keys.status();
    auto key = (*keys)->Get(q.Text(0));
    if (!key.ok()) return key.status();
    return key->has_value();
  };
  b.key_file = [](const std::string& dir) { return dir + "/keys.db"; };
  return b;
}

}  // namespace

absl::StatusOr<std::string> PostgresTestDatabase(const std::string& dir) {
  auto admin =
      PostgresConnection(absl::StrCat(PostgresServer(), " dbname=postgres"));
  if (!admin.ok()) return admin.status();
  const std::string name =
      absl::StrCat("kt_", absl::Hex(std::hash<std::string>()(dir)));
  sql::Stmt q(admin->get(), "SELECT 1 FROM pg_database WHERE datname = ?");
  q.Bind(1, name);
  if (!q.Next()) {
    if (auto s = (*admin)->Exec(absl::StrCat("CREATE DATABASE ", name));
        !s.ok()) {
      return s;
    }
  }
  return PostgresConninfo(dir);
}

const std::vector<BackendUnderTest>& StoreBackends() {
  static const auto* backends = [] {
    auto* all = new std::vector<BackendUnderTest>{SqliteBackend()};
    if (PostgresServer() != nullptr) all->push_back(PostgresBackend());
    return all;
  }();
  return *backends;
}

}  // namespace kontor
