#ifndef KONTOR_DAEMON_STORE_SQLITE_SCHEMA_H_
#define KONTOR_DAEMON_STORE_SQLITE_SCHEMA_H_

// The SQLite backend's file, apart from the operations (sql_store.cc): the
// schema, migrations from older versions, and sealing content stored before
// content keys existed. (Binding it to its key file: key_binding.h.)

#include <sqlite3.h>

#include <string>

#include "absl/status/status.h"
#include "daemon/store/content_keys.h"

namespace kontor {
namespace sqlite_store {

// Creates every table and index in its newest form (idempotent).
extern const char* const kSchema;
// The schema version this code writes (PRAGMA user_version).
extern const int kSchemaVersion;

// Brings an older file up to kSchema's form.
absl::Status Migrate(sqlite3* db);
// PRAGMA user_version (0 for a new file).
int SchemaVersion(sqlite3* db);
// Content stored before schema 8 was plaintext: seals each value under a
// key of its message (upload), in one transaction. Idempotent.
absl::Status SealLegacyContent(sqlite3* db, ContentKeys* keys);

}  // namespace sqlite_store
}  // namespace kontor

#endif  // KONTOR_DAEMON_STORE_SQLITE_SCHEMA_H_
