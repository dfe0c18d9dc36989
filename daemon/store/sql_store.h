#ifndef KONTOR_DAEMON_STORE_SQL_STORE_H_
#define KONTOR_DAEMON_STORE_SQL_STORE_H_

// The store (store.h) over any SQL backend (sql.h): every operation, with
// the rules it applies, written once. A backend brings two connections to a
// database that has the store's schema, and the content keys.

#include <memory>

#include "daemon/metrics/metrics.h"
#include "daemon/store/content_keys.h"
#include "daemon/store/sql.h"
#include "daemon/store/store.h"

namespace kontor {

// `writer` is used by one thread, the store's writer, for every write (group
// commit, a savepoint per write); `reader` serves reads, one at a time.
// `metrics` may be null.
std::unique_ptr<Store> NewSqlStore(std::unique_ptr<sql::Connection> writer,
                                   std::unique_ptr<sql::Connection> reader,
                                   std::unique_ptr<ContentKeys> keys,
                                   Metrics* metrics);

}  // namespace kontor

#endif  // KONTOR_DAEMON_STORE_SQL_STORE_H_
