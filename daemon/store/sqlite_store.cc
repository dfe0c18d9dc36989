// The SQLite backend of the store: its files (kontor.db and the content key
// file beside it), checked before use, its schema and migrations, and the
// two connections the store's operations (sql_store.cc) run on.

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "daemon/common/log.h"
#include "daemon/store/check.h"
#include "daemon/store/content_keys.h"
#include "daemon/store/key_binding.h"
#include "daemon/store/sql_store.h"
#include "daemon/store/sqlite.h"
#include "daemon/store/sqlite_backend.h"
#include "daemon/store/sqlite_schema.h"
#include "daemon/store/store.h"

namespace kontor {

using sqlite_store::kSchema;
using sqlite_store::kSchemaVersion;
using sqlite_store::Migrate;
using sqlite_store::SchemaVersion;
using sqlite_store::SealLegacyContent;

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& path,
                                                   Metrics* metrics) {
  // Never start on damaged files (nor "repair" them by starting afresh).
  const StoreFilesCheck check =
      CheckStoreFiles(path, /*full=*/false, /*require_pair=*/false);
  for (const std::string& note : check.notes) {
    KLOG(Warning, "store") << note;
  }
  if (auto s = DamageStatus(path, check); !s.ok()) {
    KLOG(Error, "store") << s.message();
    return s;
  }
  // A store file gone while its key file is there would start empty: a
  // silent reset. A key file gone is told by the binding (below), and the
  // one made for it then is removed again.
  struct stat st;
  const bool db_there = stat(path.c_str(), &st) == 0 && st.st_size > 0;
  const std::string keys_path = ContentKeysPath(path);
  const bool keys_there = stat(keys_path.c_str(), &st) == 0 && st.st_size > 0;
  if (!db_there && keys_there) {
    return absl::DataLossError(absl::StrCat(
        path, " is missing but its key file ", keys_path,
        " is there: restore the store from a backup (see OPERATIONS.md, "
        "Store and backups), or move the key file away to start a new, "
        "empty store on purpose"));
  }
  std::vector<std::string> made;  // key files this open may make
  for (const char* suffix : {"", "-wal", "-shm"}) {
    if (stat((keys_path + suffix).c_str(), &st) != 0) {
      made.push_back(keys_path + suffix);
    }
  }
  auto drop_made_keys = [&] {
    if (keys_there) return;
    for (const std::string& f : made) unlink(f.c_str());
  };
  auto writer = OpenDb(path);
  if (!writer.ok()) return writer.status();
  // Until the store is ready, closing leaves its log as it was.
  sqlite3_db_config(*writer, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
  for (const char* pragma :
       {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL",
        "PRAGMA foreign_keys=ON", "PRAGMA secure_delete=ON"}) {
    if (auto s = Exec(*writer, pragma); !s.ok()) {
      sqlite3_close(*writer);
      return s;
    }
  }
  if (auto s = Exec(*writer, kSchema); !s.ok()) {
    sqlite3_close(*writer);
    return s;
  }
  const int version = SchemaVersion(*writer);
  if (auto s = Migrate(*writer); !s.ok()) {
    sqlite3_close(*writer);
    return s;
  }
  auto keys = ContentKeys::Open(ContentKeysPath(path));
  if (!keys.ok()) {
    sqlite3_close(*writer);
    return keys.status();
  }
  // The checks every backend makes, over the SQL interface.
  const std::unique_ptr<sql::Connection> view = SqliteConnectionView(*writer);
  absl::Status ready =
      BindKeyFile(view.get(), keys->get(), path, ContentKeysPath(path));
  if (!ready.ok()) {
    keys->reset();
    sqlite3_close(*writer);
    drop_made_keys();
    return ready;
  }
  if (ready.ok() && version < 8) {
    ready = SealLegacyContent(*writer, keys->get());
  }
  if (ready.ok()) {
    ready = DestroyErasedKeys(view.get(), keys->get());
    if (ready.code() == absl::StatusCode::kAborted) ready = absl::OkStatus();
  }
  if (ready.ok() && version < 9) {
    // Erase orders kept their reason text before schema 9: it is content.
    ready = Exec(*writer, "UPDATE erase_orders SET reason = ''");
  }
  if (ready.ok() && version < kSchemaVersion) {
    ready =
        Exec(*writer,
             absl::StrCat("PRAGMA user_version = ", kSchemaVersion).c_str());
  }
  if (!ready.ok()) {
    sqlite3_close(*writer);
    return ready;
  }
  auto reader = OpenDb(path);
  if (!reader.ok()) {
    sqlite3_close(*writer);
    return reader.status();
  }
  // Ready: a clean close checkpoints and empties the log again.
  sqlite3_db_config(*writer, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 0, nullptr);
  return NewSqlStore(SqliteConnection(*writer), SqliteConnection(*reader),
                     std::move(*keys), metrics);
}

}  // namespace kontor
