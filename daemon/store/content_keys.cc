#include "daemon/store/content_keys.h"

#include <fcntl.h>
#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "daemon/common/ids.h"
#include "daemon/crypto/primitives.h"
#include "daemon/store/sqlite.h"

namespace kontor {
namespace {

constexpr size_t kKeyBytes = 32;

absl::Status KeyStoreError(sqlite3* db, int rc, absl::string_view what) {
  return SqlError(db, rc, absl::StrCat("content keys: ", what));
}

std::string ColumnAad(absl::string_view key_id, absl::string_view column) {
  return absl::StrCat("kontor-column-v1", absl::string_view("\0", 1), key_id,
                      absl::string_view("\0", 1), column);
}

}  // namespace

std::string ContentKeysPath(absl::string_view store_path) {
  absl::string_view stem = store_path;
  if (absl::EndsWith(stem, ".db")) stem.remove_suffix(3);
  return absl::StrCat(stem, ".keys");
}

absl::StatusOr<std::unique_ptr<ContentKeys>> ContentKeys::Open(
    const std::string& path) {
  // Created 0600 before SQLite opens it: keys are never world-readable,
  // whatever the umask.
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("content keys: cannot open ", path));
  }
  ::close(fd);
  auto opened = OpenDb(path);
  if (!opened.ok()) return opened.status();
  sqlite3* db = *opened;
  for (const char* sql :
       {"PRAGMA secure_delete=ON", "PRAGMA journal_mode=WAL",
        "PRAGMA synchronous=FULL",
        "CREATE TABLE IF NOT EXISTS content_keys(id TEXT PRIMARY KEY, "
        "key BLOB NOT NULL) WITHOUT ROWID",
        "CREATE TABLE IF NOT EXISTS meta(name TEXT PRIMARY KEY, value TEXT "
        "NOT NULL)"}) {
    if (auto s = Exec(db, sql); !s.ok()) {
      sqlite3_close(db);
      return s;
    }
  }
  std::string file_id;
  {
    Stmt ins(db,
             "INSERT INTO meta(name, value) VALUES('file_id', ?) ON "
             "CONFLICT(name) DO NOTHING");
    ins.Bind(1, HexEncode(RandomBytes(16)));
    Stmt get(db, "SELECT value FROM meta WHERE name = 'file_id'");
    if (ins.Step() != SQLITE_DONE || get.Step() != SQLITE_ROW) {
      absl::Status s = KeyStoreError(db, sqlite3_errcode(db), "file id");
      sqlite3_close(db);
      return s;
    }
    file_id = get.Text(0);
  }
  return std::unique_ptr<ContentKeys>(new ContentKeys(db, file_id));
}

ContentKeys::~ContentKeys() {
  absl::MutexLock l(&mu_);
  sqlite3_close(db_);
}

absl::StatusOr<std::map<std::string, std::string>> ContentKeys::Ensure(
    const std::vector<std::string>& ids) {
  std::map<std::string, std::string> out;
  if (ids.empty()) return out;
  absl::MutexLock l(&mu_);
  if (auto s = Exec(db_, "BEGIN IMMEDIATE"); !s.ok()) return s;
  absl::Status s = [&]() -> absl::Status {
    Stmt ins(db_,
             "INSERT INTO content_keys(id, key) VALUES(?, ?) "
             "ON CONFLICT(id) DO NOTHING");
    Stmt get(db_, "SELECT key FROM content_keys WHERE id = ?");
    if (auto st = ins.status(); !st.ok()) return st;
    if (auto st = get.status(); !st.ok()) return st;
    for (const std::string& id : ids) {
      if (out.count(id)) continue;
      ins.Bind(1, id);
      ins.BindBlob(2, RandomBytes(kKeyBytes));
      int rc = ins.Step();
      ins.Reset();
      if (rc != SQLITE_DONE) return KeyStoreError(db_, rc, "insert key");
      get.Bind(1, id);
      rc = get.Step();
      if (rc != SQLITE_ROW) return KeyStoreError(db_, rc, "read key");
      out[id] = get.Text(0);
      get.Reset();
    }
    return absl::OkStatus();
  }();
  if (s.ok()) s = Exec(db_, "COMMIT");
  if (!s.ok()) {
    Exec(db_, "ROLLBACK").IgnoreError();
    return s;
  }
  return out;
}

absl::StatusOr<std::optional<std::string>> ContentKeys::Get(
    const std::string& id) {
  absl::MutexLock l(&mu_);
  Stmt get(db_, "SELECT key FROM content_keys WHERE id = ?");
  if (auto st = get.status(); !st.ok()) return st;
  get.Bind(1, id);
  int rc = get.Step();
  if (rc == SQLITE_DONE) return std::optional<std::string>();
  if (rc != SQLITE_ROW) return KeyStoreError(db_, rc, "read key");
  return std::optional<std::string>(get.Text(0));
}

absl::Status ContentKeys::Destroy(const std::vector<std::string>& ids) {
  if (ids.empty()) return absl::OkStatus();
  absl::MutexLock l(&mu_);
  if (auto s = Exec(db_, "BEGIN IMMEDIATE"); !s.ok()) return s;
  absl::Status s = [&]() -> absl::Status {
    Stmt del(db_, "DELETE FROM content_keys WHERE id = ?");
    if (auto st = del.status(); !st.ok()) return st;
    for (const std::string& id : ids) {
      del.Bind(1, id);
      int rc = del.Step();
      del.Reset();
      if (rc != SQLITE_DONE) return KeyStoreError(db_, rc, "destroy key");
    }
    return absl::OkStatus();
  }();
  if (s.ok()) s = Exec(db_, "COMMIT");
  if (!s.ok()) {
    Exec(db_, "ROLLBACK").IgnoreError();
    return s;
  }
  return CheckpointLocked();
}

absl::Status ContentKeys::Checkpoint() {
  absl::MutexLock l(&mu_);
  return CheckpointLocked();
}

absl::Status ContentKeys::CheckpointLocked() {
  // The WAL still holds the frames that wrote destroyed keys: copy the
  // pages (secure_delete zeroed the deleted cells) back and truncate it.
  // A reader holding the WAL (a backup) blocks that: not done then, and
  // not waited for long (the store's writer thread is calling).
  int log = -1, done = -1;
  sqlite3_busy_timeout(db_, 200);
  const int rc = sqlite3_wal_checkpoint_v2(
      db_, nullptr, SQLITE_CHECKPOINT_TRUNCATE, &log, &done);
  sqlite3_busy_timeout(db_, 10000);
  if (rc == SQLITE_BUSY || (rc == SQLITE_OK && log != done)) {
    return absl::AbortedError(
        "content keys: a reader keeps the key file's WAL from being "
        "truncated; destroyed keys may still be in it");
  }
  if (rc != SQLITE_OK) return KeyStoreError(db_, rc, "checkpoint");
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> ContentKeys::Count() {
  absl::MutexLock l(&mu_);
  Stmt q(db_, "SELECT COUNT(*) FROM content_keys");
  if (auto st = q.status(); !st.ok()) return st;
  if (q.Step() != SQLITE_ROW) return absl::InternalError("count keys");
  return static_cast<uint64_t>(q.Int(0));
}

bool IsSealed(absl::string_view value) {
  return absl::StartsWith(value, kSealedTag);
}

absl::StatusOr<std::string> SealColumn(absl::string_view key,
                                       absl::string_view key_id,
                                       absl::string_view column,
                                       absl::string_view plaintext) {
  if (plaintext.empty()) return std::string();
  auto sealed = Aes256GcmSeal(key, ColumnAad(key_id, column), plaintext);
  if (!sealed.ok()) return sealed.status();
  return absl::StrCat(kSealedTag, *sealed);
}

absl::StatusOr<std::string> OpenColumn(absl::string_view key,
                                       absl::string_view key_id,
                                       absl::string_view column,
                                       absl::string_view sealed) {
  if (sealed.empty()) return std::string();
  if (!IsSealed(sealed)) {
    return absl::DataLossError(
        absl::StrCat(column, " of ", key_id, " is not sealed"));
  }
  sealed.remove_prefix(kSealedTag.size());
  auto plain = Aes256GcmOpen(key, ColumnAad(key_id, column), sealed);
  if (!plain.ok()) {
    return absl::DataLossError(
        absl::StrCat(column, " of ", key_id, ": ", plain.status().message()));
  }
  return plain;
}

}  // namespace kontor
