#ifndef KONTOR_DAEMON_STORE_CONTENT_KEYS_H_
#define KONTOR_DAEMON_STORE_CONTENT_KEYS_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

struct sqlite3;

namespace kontor {

// Erasure is cryptographic (DESIGN.md §7): message content is stored only
// sealed under a key of its own, and erasing it destroys that key. The keys
// live in a small SQLite file apart from the store (secure_delete, its WAL
// checkpointed and truncated after every erasure), so that the store, its
// WAL frames and its backups hold nothing of the content that a destroyed
// key could open.
//
// Key ids: "m:<id>" a message this node sent, "i:<origin>/<id>" a received
// one, "u:<upload id>" an attachment uploaded here. Thread-safe.
class ContentKeys {
 public:
  // Opens (or creates, 0600) the key file. `path` is normally
  // ContentKeysPath(store path).
  static absl::StatusOr<std::unique_ptr<ContentKeys>> Open(
      const std::string& path);
  ~ContentKeys();

  // Makes sure each id has a key, durably (one transaction, fsync'd), and
  // returns them. An existing key is kept (the same id gets the same key).
  absl::StatusOr<std::map<std::string, std::string>> Ensure(
      const std::vector<std::string>& ids);
  // The key of `id`; nullopt if it was destroyed or never made.
  absl::StatusOr<std::optional<std::string>> Get(const std::string& id);
  // Destroys the keys, durably, overwriting their bytes in the file and
  // truncating the WAL. Unknown ids are ignored. kAborted if the keys are
  // deleted but a reader (a backup) kept the WAL from being truncated:
  // Checkpoint() again later. Other errors: nothing was deleted.
  absl::Status Destroy(const std::vector<std::string>& ids);
  // Copies the WAL into the file and truncates it; kAborted while a reader
  // holds it (waits at most a moment).
  absl::Status Checkpoint();
  // How many keys there are (for tests and status).
  absl::StatusOr<uint64_t> Count();
  // A random id made with the file: the store records it, so that a key
  // file that is missing (made anew) or from elsewhere is noticed.
  const std::string& file_id() const { return file_id_; }

 private:
  ContentKeys(sqlite3* db, std::string file_id)
      : db_(db), file_id_(std::move(file_id)) {}
  absl::Status CheckpointLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Mutex mu_;
  sqlite3* db_ ABSL_GUARDED_BY(mu_);
  const std::string file_id_;
};

// "<store path without .db>.keys": beside the store, but not matched by a
// `kontor.db*` backup glob.
std::string ContentKeysPath(absl::string_view store_path);

// Column sealing: AES-256-GCM under the message's key, bound to the key id
// and the column (a sealed value cannot be moved to another row or column).
// Sealed values start with a version tag so legacy plaintext is told apart.
inline constexpr absl::string_view kSealedTag = "\x01kc1";
bool IsSealed(absl::string_view value);
// Empty stays empty (nothing to hide, and "no value" stays visible).
absl::StatusOr<std::string> SealColumn(absl::string_view key,
                                       absl::string_view key_id,
                                       absl::string_view column,
                                       absl::string_view plaintext);
absl::StatusOr<std::string> OpenColumn(absl::string_view key,
                                       absl::string_view key_id,
                                       absl::string_view column,
                                       absl::string_view sealed);

}  // namespace kontor

#endif  // KONTOR_DAEMON_STORE_CONTENT_KEYS_H_
