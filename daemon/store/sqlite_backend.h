#ifndef KONTOR_DAEMON_STORE_SQLITE_BACKEND_H_
#define KONTOR_DAEMON_STORE_SQLITE_BACKEND_H_

// SQLite behind the store's SQL interface (sql.h). Internal to daemon/store.

#include <sqlite3.h>

#include <memory>

#include "daemon/store/sql.h"

namespace kontor {

// Takes an open connection (OpenDb in sqlite.h); closes it when destroyed.
std::unique_ptr<sql::Connection> SqliteConnection(sqlite3* db);
// The same over a connection its caller keeps (and closes).
std::unique_ptr<sql::Connection> SqliteConnectionView(sqlite3* db);

}  // namespace kontor

#endif  // KONTOR_DAEMON_STORE_SQLITE_BACKEND_H_
