#ifndef KONTOR_DAEMON_STORE_CHECK_H_
#define KONTOR_DAEMON_STORE_CHECK_H_

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace kontor {

// What a check of the store's files found (`kontord --check-store`, and at
// every start). `problems` are damage: kontord refuses to start on them;
// `notes` are worth knowing but harmless.
struct StoreFilesCheck {
  std::vector<std::string> problems;
  std::vector<std::string> notes;
  bool ok() const { return problems.empty(); }
};

// Checks the store `db_path` (kontor.db) and its key file (kontor.keys)
// without changing them: each is an SQLite database (its header), its
// write-ahead log has a sound header (a log that ends in a partial frame is
// what a crash during a write leaves: a note), and SQLite's own check
// (`full`: PRAGMA integrity_check, else quick_check) finds nothing. With
// `require_pair`, a missing file is a problem when the other one exists
// (at open, the store's binding to its key file says more).
StoreFilesCheck CheckStoreFiles(const std::string& db_path, bool full,
                                bool require_pair = true);

// kDataLoss naming the file(s), what is wrong and what to do, if `check`
// found damage; OK otherwise.
absl::Status DamageStatus(const std::string& db_path,
                          const StoreFilesCheck& check);

}  // namespace kontor

#endif  // KONTOR_DAEMON_STORE_CHECK_H_
