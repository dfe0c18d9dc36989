#include "daemon/store/open.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "daemon/common/text.h"

namespace kontor {

const std::vector<std::string>& StoreBackendNames() {
  static const auto* const names = new std::vector<std::string>{"sqlite"};
  return *names;
}

absl::StatusOr<StoreBackend> ParseStoreBackend(absl::string_view name) {
  if (name.empty() || name == "sqlite") return StoreBackend::kSqlite;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown store backend '", Printable(name),
      "' (this kontord has: ", absl::StrJoin(StoreBackendNames(), ", "), ")"));
}

std::string SqliteStorePath(const std::string& data_dir) {
  return data_dir + "/kontor.db";
}

absl::StatusOr<std::unique_ptr<Store>> OpenStore(const StoreOptions& options) {
  if (options.data_dir.empty()) {
    return absl::InvalidArgumentError("store: no data directory");
  }
  switch (options.backend) {
    case StoreBackend::kSqlite:
      return Store::Open(SqliteStorePath(options.data_dir), options.metrics);
  }
  return absl::InvalidArgumentError("store: unknown backend");
}

}  // namespace kontor
