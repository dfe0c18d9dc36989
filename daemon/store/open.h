#ifndef KONTOR_DAEMON_STORE_OPEN_H_
#define KONTOR_DAEMON_STORE_OPEN_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "daemon/metrics/metrics.h"
#include "daemon/store/store.h"

namespace kontor {

// Which backend holds a node's state (config: store.backend).
enum class StoreBackend {
  kSqlite,  // "sqlite": data_dir/kontor.db and its key file beside it
};

// The backends this kontord has, by their configuration names.
const std::vector<std::string>& StoreBackendNames();

// "sqlite" (or "", the default) → kSqlite; anything else is
// kInvalidArgument naming the backends there are.
absl::StatusOr<StoreBackend> ParseStoreBackend(absl::string_view name);

struct StoreOptions {
  StoreBackend backend = StoreBackend::kSqlite;
  std::string data_dir;        // required
  Metrics* metrics = nullptr;  // optional: commit sizes
};

// The store file of the SQLite backend in `data_dir`.
std::string SqliteStorePath(const std::string& data_dir);

// Opens (creating if new) the node's store as `options` say. The one place
// that knows which class implements which backend.
absl::StatusOr<std::unique_ptr<Store>> OpenStore(const StoreOptions& options);

}  // namespace kontor

#endif  // KONTOR_DAEMON_STORE_OPEN_H_
