#ifndef KONTOR_DAEMON_STORE_POSTGRES_BACKEND_H_
#define KONTOR_DAEMON_STORE_POSTGRES_BACKEND_H_

// PostgreSQL behind the store's SQL interface (sql.h), over libpq.
// Internal to daemon/store.

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "daemon/metrics/metrics.h"
#include "daemon/store/sql.h"
#include "daemon/store/store.h"

namespace kontor {

// Connects with a libpq connection string ("host=/run/postgresql
// dbname=kontor"); kUnavailable with libpq's reason if it cannot.
absl::StatusOr<std::unique_ptr<sql::Connection>> PostgresConnection(
    const std::string& conninfo);

// The store's schema in PostgreSQL's types (the same tables as SQLite's).
extern const char* const kPostgresSchema;

// The store in the PostgreSQL database `conninfo` names (its schema made if
// missing), with content keys in the key file `keys_path` (kept apart from
// the database, so erasure reaches its backups too), bound to each other at
// the first open (key_binding.h: another key file is refused) and erased
// keys swept, as SQLite's Open does. `metrics` may be null. Not selectable
// in node.textproto yet (no reconnect, no replicas: issue 14).
absl::StatusOr<std::unique_ptr<Store>> OpenPostgresStore(
    const std::string& conninfo, const std::string& keys_path,
    Metrics* metrics);

}  // namespace kontor

#endif  // KONTOR_DAEMON_STORE_POSTGRES_BACKEND_H_
