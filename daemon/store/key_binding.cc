#include "daemon/store/key_binding.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace kontor {

using sql::Stmt;

// The key file belongs to one store: its id is recorded in the store at
// the first open, and a different one (a key file made anew because it was
// lost, or one restored from another backup) is refused rather than
// showing every message empty.
absl::Status BindKeyFile(sql::Tx* db, ContentKeys* keys,
                         absl::string_view database,
                         absl::string_view key_file) {
  if (auto st =
          db->Exec("CREATE TABLE IF NOT EXISTS meta(name TEXT PRIMARY KEY, "
                   "value TEXT NOT NULL)");
      !st.ok()) {
    return st;
  }
  std::string bound;
  {
    Stmt q(db, "SELECT value FROM meta WHERE name = 'keys_file_id'");
    if (q.Next()) bound = q.Text(0);
    if (auto st = q.Done("key file binding"); !st.ok()) return st;
  }
  if (bound.empty()) {
    // First open with content keys. If rows already name keys (a store of
    // schema 8, before the binding) the key file must have keys: an empty
    // one was made anew because the real one is missing.
    Stmt named(db,
               "SELECT 1 FROM messages WHERE key_id != '' UNION ALL SELECT 1 "
               "FROM inbox WHERE key_id != '' LIMIT 1");
    auto count = keys->Count();
    if (!count.ok()) return count.status();
    if (named.Next() && *count == 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          key_file, " is empty but ", database,
          " holds content sealed under its keys: restore the key file that "
          "belongs to this store"));
    }
    if (auto st = named.Done("key file binding"); !st.ok()) return st;
    Stmt ins(db, "INSERT INTO meta(name, value) VALUES('keys_file_id', ?)");
    ins.Bind(1, keys->file_id());
    return ins.Run("bind key file");
  }
  if (bound != keys->file_id()) {
    return absl::FailedPreconditionError(absl::StrCat(
        key_file, " is not the key file of ", database,
        " (missing and made anew, or from another backup): restore the key "
        "file that belongs to this store (without it no stored content can "
        "be read); see OPERATIONS.md, Store and backups"));
  }
  return absl::OkStatus();
}

// Destroys the keys of content the store records as erased: normally
// destroyed right after the erasure, this catches a crash in between or a
// failed attempt. Only keys the store names are touched, so a store file
// older than its key file (a restore gone wrong) never costs newer rows
// their keys. Keys no row names (a pool's unused ones, those of a failed
// write) protect nothing and stay. kAborted: destroyed, the WAL not yet
// truncated (a reader holds it).
absl::Status DestroyErasedKeys(sql::Tx* db, ContentKeys* keys) {
  std::vector<std::string> ids;
  Stmt q(db,
         "SELECT COALESCE(NULLIF(key_id, ''), 'm:' || id) FROM messages WHERE "
         "origin = '' AND purged_ms > 0 UNION ALL SELECT "
         "COALESCE(NULLIF(key_id, ''), 'i:' || origin || '/' || message_id) "
         "FROM inbox WHERE purged_ms > 0 UNION ALL SELECT "
         "COALESCE(NULLIF(u.key_id, ''), 'u:' || u.id) FROM uploads u JOIN "
         "messages m ON u.message_id = m.id WHERE m.purged_ms > 0");
  while (q.Next()) ids.push_back(q.Text(0));
  if (auto st = q.Done("erased keys"); !st.ok()) return st;
  return keys->Destroy(ids);
}

}  // namespace kontor
