#include "daemon/store/content_keys.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "daemon/common/ids.h"
#include "daemon/crypto/primitives.h"

namespace kontor {
namespace {

constexpr size_t kKeyBytes = 32;

absl::Status KeyStoreError(sqlite3* db, int rc, absl::string_view what) {
  const std::string msg =
      absl::StrCat("content keys: ", what, ": ", sqlite3_errstr(rc), " (",
                   db ? sqlite3_errmsg(db) : "", ")");
  switch (rc & 0xff) {
    case SQLITE_FULL:
    case SQLITE_NOMEM:
      return absl::ResourceExhaustedError(msg);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
      return absl::UnavailableError(msg);
    default:
      return absl::InternalError(msg);
  }
}

absl::Status Exec(sqlite3* db, const char* sql) {
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return KeyStoreError(db, rc, sql);
  return absl::OkStatus();
}

// A prepared statement, finalized on scope exit.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  absl::Status status() const {
    return rc_ == SQLITE_OK ? absl::OkStatus()
                            : KeyStoreError(db_, rc_, "prepare");
  }
  void Bind(int i, absl::string_view v, bool blob = false) {
    if (blob) {
      sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size()),
                        SQLITE_TRANSIENT);
    } else {
      sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()),
                        SQLITE_TRANSIENT);
    }
  }
  int Step() { return sqlite3_step(stmt_); }
  void Reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  std::string Blob(int col) {
    const void* p = sqlite3_column_blob(stmt_, col);
    int n = sqlite3_column_bytes(stmt_, col);
    return p ? std::string(static_cast<const char*>(p), n) : std::string();
  }
  int64_t Int(int col) { return sqlite3_column_int64(stmt_, col); }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
};

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
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &db,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
      nullptr);
  if (rc != SQLITE_OK) {
    absl::Status s = KeyStoreError(db, rc, absl::StrCat("open ", path));
    sqlite3_close(db);
    return s;
  }
  sqlite3_busy_timeout(db, 10000);
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
    Statement ins(db,
                  "INSERT INTO meta(name, value) VALUES('file_id', ?) ON "
                  "CONFLICT(name) DO NOTHING");
    ins.Bind(1, HexEncode(RandomBytes(16)));
    Statement get(db, "SELECT value FROM meta WHERE name = 'file_id'");
    if (ins.Step() != SQLITE_DONE || get.Step() != SQLITE_ROW) {
      absl::Status s = KeyStoreError(db, sqlite3_errcode(db), "file id");
      sqlite3_close(db);
      return s;
    }
    file_id = get.Blob(0);
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
    Statement ins(db_,
                  "INSERT INTO content_keys(id, key) VALUES(?, ?) "
                  "ON CONFLICT(id) DO NOTHING");
    Statement get(db_, "SELECT key FROM content_keys WHERE id = ?");
    if (auto st = ins.status(); !st.ok()) return st;
    if (auto st = get.status(); !st.ok()) return st;
    for (const std::string& id : ids) {
      if (out.count(id)) continue;
      ins.Bind(1, id);
      ins.Bind(2, RandomBytes(kKeyBytes), true);
      int rc = ins.Step();
      ins.Reset();
      if (rc != SQLITE_DONE) return KeyStoreError(db_, rc, "insert key");
      get.Bind(1, id);
      rc = get.Step();
      if (rc != SQLITE_ROW) return KeyStoreError(db_, rc, "read key");
      out[id] = get.Blob(0);
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
  Statement get(db_, "SELECT key FROM content_keys WHERE id = ?");
  if (auto st = get.status(); !st.ok()) return st;
  get.Bind(1, id);
  int rc = get.Step();
  if (rc == SQLITE_DONE) return std::optional<std::string>();
  if (rc != SQLITE_ROW) return KeyStoreError(db_, rc, "read key");
  return std::optional<std::string>(get.Blob(0));
}

absl::Status ContentKeys::Destroy(const std::vector<std::string>& ids) {
  if (ids.empty()) return absl::OkStatus();
  absl::MutexLock l(&mu_);
  if (auto s = Exec(db_, "BEGIN IMMEDIATE"); !s.ok()) return s;
  absl::Status s = [&]() -> absl::Status {
    Statement del(db_, "DELETE FROM content_keys WHERE id = ?");
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

absl::StatusOr<std::vector<std::string>> ContentKeys::ListIds() {
  absl::MutexLock l(&mu_);
  Statement q(db_, "SELECT id FROM content_keys");
  if (auto st = q.status(); !st.ok()) return st;
  std::vector<std::string> out;
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW) out.push_back(q.Blob(0));
  if (rc != SQLITE_DONE) return KeyStoreError(db_, rc, "list keys");
  return out;
}

absl::StatusOr<uint64_t> ContentKeys::Count() {
  absl::MutexLock l(&mu_);
  Statement q(db_, "SELECT COUNT(*) FROM content_keys");
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
