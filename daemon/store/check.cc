#include "daemon/store/check.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "daemon/common/ids.h"
#include "daemon/store/content_keys.h"

namespace kontor {
namespace {

constexpr char kSqliteMagic[] = "SQLite format 3";  // and a NUL: 16 bytes
constexpr uint32_t kWalMagicLe = 0x377f0682;
constexpr uint32_t kWalMagicBe = 0x377f0683;

bool FileSize(const std::string& path, uint64_t* size) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return false;
  *size = static_cast<uint64_t>(st.st_size);
  return true;
}

std::string ReadHead(const std::string& path, size_t n) {
  std::ifstream in(path, std::ios::binary);
  std::string out(n, '\0');
  in.read(&out[0], static_cast<std::streamsize>(n));
  out.resize(static_cast<size_t>(in.gcount()));
  return out;
}

uint32_t Be32(const std::string& b, size_t at) {
  return (uint32_t{static_cast<unsigned char>(b[at])} << 24) |
         (uint32_t{static_cast<unsigned char>(b[at + 1])} << 16) |
         (uint32_t{static_cast<unsigned char>(b[at + 2])} << 8) |
         uint32_t{static_cast<unsigned char>(b[at + 3])};
}

// One database file and its write-ahead log, by their bytes.
void CheckShape(const std::string& path, StoreFilesCheck* out) {
  const std::string head = ReadHead(path, 100);
  if (head.size() < 100 || std::memcmp(head.data(), kSqliteMagic, 16) != 0) {
    out->problems.push_back(absl::StrCat(
        path, ": not an SQLite database (its first page is damaged)"));
    return;
  }
  uint32_t page = (uint32_t{static_cast<unsigned char>(head[16])} << 8) |
                  static_cast<unsigned char>(head[17]);
  if (page == 1) page = 65536;
  uint64_t wal_size = 0;
  const std::string wal = path + "-wal";
  if (!FileSize(wal, &wal_size) || wal_size == 0) return;
  const std::string wal_head = ReadHead(wal, 32);
  const uint32_t magic = wal_head.size() == 32 ? Be32(wal_head, 0) : 0;
  if (wal_head.size() < 32 || (magic != kWalMagicLe && magic != kWalMagicBe) ||
      Be32(wal_head, 8) != page) {
    out->problems.push_back(
        absl::StrCat(wal, ": its header is damaged (", wal_size,
                     " bytes): the transactions it held cannot be read"));
    return;
  }
  const uint64_t frame = 24 + uint64_t{page};
  if ((wal_size - 32) % frame != 0) {
    out->notes.push_back(absl::StrCat(
        wal, " ends in a partial frame (", (wal_size - 32) % frame,
        " bytes): what a crash during a write leaves; that write was not "
        "committed"));
  }
}

// SQLite's own check of the file, read only.
void CheckContent(const std::string& path, bool full, StoreFilesCheck* out) {
  sqlite3* db = nullptr;
  // Read-write (SQLite reads a write-ahead log only so), but nothing is
  // written: the checks only read, and the log is not checkpointed at close
  // (the -shm index may be made: it is derived from the log).
  struct stat st;
  const bool wal = stat((path + "-wal").c_str(), &st) == 0 && st.st_size > 0;
  int rc = sqlite3_open_v2(path.c_str(), &db,
                           wal ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY,
                           nullptr);
  if (rc != SQLITE_OK) {
    out->problems.push_back(
        absl::StrCat(path, ": cannot be opened: ", sqlite3_errstr(rc)));
    sqlite3_close(db);
    return;
  }
  sqlite3_busy_timeout(db, 10000);
  // Leave the log as it is: no checkpoint when this connection closes.
  sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
  sqlite3_stmt* s = nullptr;
  rc = sqlite3_prepare_v2(
      db, full ? "PRAGMA integrity_check(20)" : "PRAGMA quick_check(20)", -1,
      &s, nullptr);
  std::vector<std::string> found;
  if (rc == SQLITE_OK) {
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      const char* t = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
      if (t != nullptr && std::strcmp(t, "ok") != 0) {
        found.push_back(Printable(t, 200));
      }
    }
  }
  if (rc != SQLITE_DONE && rc != SQLITE_OK) {
    found.push_back(sqlite3_errmsg(db));
  }
  sqlite3_finalize(s);
  sqlite3_close(db);
  if (!found.empty()) {
    out->problems.push_back(absl::StrCat(
        path, ": damaged (", full ? "integrity_check" : "quick_check", ": ",
        absl::StrJoin(found, "; "), ")"));
  }
}

}  // namespace

StoreFilesCheck CheckStoreFiles(const std::string& db_path, bool full,
                                bool require_pair) {
  StoreFilesCheck out;
  const std::string keys_path = ContentKeysPath(db_path);
  uint64_t size = 0;
  const bool db_there = FileSize(db_path, &size) && size > 0;
  const bool keys_there = FileSize(keys_path, &size) && size > 0;
  if (!db_there && !keys_there) {
    if (require_pair) {  // --check-store; at start this is no news
      out.notes.push_back(
          absl::StrCat(db_path, ": no store yet (a new one is made at start)"));
    }
    return out;
  }
  if (!db_there && require_pair) {
    out.problems.push_back(absl::StrCat(
        db_path, " is missing but its key file ", keys_path, " is there"));
  }
  if (!keys_there && require_pair) {
    out.problems.push_back(absl::StrCat(keys_path,
                                        " (the content keys) is missing or "
                                        "empty but the store is there"));
  }
  for (const std::string& path : {db_path, keys_path}) {
    if (!FileSize(path, &size) || size == 0) continue;
    const size_t before = out.problems.size();
    CheckShape(path, &out);
    if (out.problems.size() == before) CheckContent(path, full, &out);
  }
  return out;
}

absl::Status DamageStatus(const std::string& db_path,
                          const StoreFilesCheck& check) {
  if (check.ok()) return absl::OkStatus();
  return absl::DataLossError(absl::StrCat(
      "the store is damaged: ", absl::StrJoin(check.problems, "; "),
      ". kontord does not start on a damaged store (nothing was changed): "
      "restore kontor.db and kontor.keys together from a backup (see "
      "OPERATIONS.md, Store and backups); `kontord --check-store --config F` "
      "checks them"));
}

}  // namespace kontor
