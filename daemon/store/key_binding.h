#ifndef KONTOR_DAEMON_STORE_KEY_BINDING_H_
#define KONTOR_DAEMON_STORE_KEY_BINDING_H_

// A store's database and its content key file (content_keys.h) belong
// together: what every backend checks when it opens, over the SQL interface.
// Internal to daemon/store.

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "daemon/store/content_keys.h"
#include "daemon/store/sql.h"

namespace kontor {

// Records the key file's id in the database (table meta) at the first open
// and refuses, with FailedPrecondition, a key file that is not that one
// (missing and made anew, or another store's), or an empty key file where
// rows already name keys. `database` and `key_file` name the two in the
// error (paths, or the database's name).
absl::Status BindKeyFile(sql::Tx* db, ContentKeys* keys,
                         absl::string_view database,
                         absl::string_view key_file);

// Destroys the keys of content the store records as erased (a crash between
// an erase's commit and its key destruction). kAborted: destroyed, the key
// file's WAL not yet truncated.
absl::Status DestroyErasedKeys(sql::Tx* db, ContentKeys* keys);

}  // namespace kontor

#endif  // KONTOR_DAEMON_STORE_KEY_BINDING_H_
