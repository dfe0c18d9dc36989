// The SQLite backend's file: its schema, migrations from older versions and
// sealing legacy content (see sqlite_schema.h). Binding it to its key file
// is common to every backend: key_binding.cc.

#include "daemon/store/sqlite_schema.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "daemon/common/log.h"
#include "daemon/store/content_keys.h"
#include "daemon/store/sqlite.h"

namespace kontor {
namespace sqlite_store {

const char* const kSchema = R"sql(
CREATE TABLE IF NOT EXISTS messages(
  id TEXT PRIMARY KEY,
  priority INTEGER NOT NULL,
  created_ms INTEGER NOT NULL,
  expires_ms INTEGER NOT NULL,
  kind TEXT NOT NULL,
  envelope BLOB NOT NULL,
  outer_digest BLOB NOT NULL,
  submitter TEXT NOT NULL,
  client_key TEXT,
  request_hash BLOB,
  origin TEXT NOT NULL DEFAULT '',
  uploads TEXT NOT NULL DEFAULT '',
  chunks_removed_ms INTEGER NOT NULL DEFAULT 0,
  chunks INTEGER NOT NULL DEFAULT 0,
  payload BLOB,
  subject TEXT NOT NULL DEFAULT '',
  case_ref TEXT NOT NULL DEFAULT '',
  in_reply_to TEXT NOT NULL DEFAULT '',
  purged_ms INTEGER NOT NULL DEFAULT 0,
  inner_signed BLOB,
  key_id TEXT NOT NULL DEFAULT '',
  inner_digest BLOB);
CREATE UNIQUE INDEX IF NOT EXISTS messages_client_key
  ON messages(submitter, client_key) WHERE client_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS deliveries(
  message_id TEXT NOT NULL REFERENCES messages(id),
  peer TEXT NOT NULL,
  state TEXT NOT NULL,
  priority INTEGER NOT NULL,
  created_ms INTEGER NOT NULL,
  expires_ms INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '',
  reason TEXT NOT NULL DEFAULT '',
  receipt BLOB,
  updated_ms INTEGER NOT NULL,
  not_before_ms INTEGER NOT NULL DEFAULT 0,
  deferrals INTEGER NOT NULL DEFAULT 0,
  custody BLOB,
  custody_out BLOB,
  PRIMARY KEY(message_id, peer));
CREATE INDEX IF NOT EXISTS deliveries_queue
  ON deliveries(peer, state, priority, created_ms);
CREATE TABLE IF NOT EXISTS peers(
  peer TEXT PRIMARY KEY,
  failures INTEGER NOT NULL,
  next_attempt_ms INTEGER NOT NULL,
  last_error TEXT NOT NULL,
  last_success_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS inbox(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  origin TEXT NOT NULL,
  message_id TEXT NOT NULL,
  outer_digest BLOB NOT NULL,
  accepted INTEGER NOT NULL,
  header BLOB,
  inner_signed BLOB,
  payload BLOB,
  kind TEXT NOT NULL DEFAULT '',
  subject TEXT NOT NULL DEFAULT '',
  case_ref TEXT NOT NULL DEFAULT '',
  priority INTEGER NOT NULL DEFAULT 0,
  created_ms INTEGER NOT NULL DEFAULT 0,
  expires_ms INTEGER NOT NULL DEFAULT 0,
  received_ms INTEGER NOT NULL,
  acked INTEGER NOT NULL DEFAULT 0,
  receipt BLOB NOT NULL,
  chunk_refs BLOB,
  in_reply_to TEXT NOT NULL DEFAULT '',
  purged_ms INTEGER NOT NULL DEFAULT 0,
  key_id TEXT NOT NULL DEFAULT '',
  UNIQUE(origin, message_id));
CREATE INDEX IF NOT EXISTS inbox_id ON inbox(message_id);
CREATE TABLE IF NOT EXISTS returns(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  to_peer TEXT NOT NULL,
  receipt BLOB NOT NULL,
  created_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS returns_peer ON returns(to_peer, id);
CREATE TABLE IF NOT EXISTS events(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  message_id TEXT NOT NULL,
  peer TEXT NOT NULL,
  state TEXT NOT NULL,
  reason TEXT NOT NULL,
  time_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS evidence(
  sha256 BLOB PRIMARY KEY,
  type TEXT NOT NULL,
  der BLOB NOT NULL,
  added_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS erase_orders(
  origin TEXT NOT NULL,
  message_id TEXT NOT NULL,
  order_id TEXT NOT NULL,
  order_kind TEXT NOT NULL,
  reason TEXT NOT NULL,
  received_ms INTEGER NOT NULL,
  applied_ms INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY(origin, message_id, order_id));
CREATE TABLE IF NOT EXISTS uploads(
  id TEXT PRIMARY KEY,
  submitter TEXT NOT NULL,
  name TEXT NOT NULL,
  content_type TEXT NOT NULL,
  size INTEGER NOT NULL,
  sha256 BLOB NOT NULL,
  key BLOB NOT NULL,
  chunk_refs BLOB NOT NULL,
  created_ms INTEGER NOT NULL,
  message_id TEXT NOT NULL DEFAULT '',
  key_id TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS audit(
  seq INTEGER PRIMARY KEY,
  time_ms INTEGER NOT NULL,
  action TEXT NOT NULL,
  actor TEXT NOT NULL,
  message_id TEXT NOT NULL,
  origin TEXT NOT NULL,
  peer TEXT NOT NULL,
  kind TEXT NOT NULL,
  purpose TEXT NOT NULL,
  detail TEXT NOT NULL,
  prev BLOB NOT NULL,
  hash BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS audit_message ON audit(message_id);
CREATE TABLE IF NOT EXISTS audit_heads(
  seq INTEGER PRIMARY KEY,
  hash BLOB NOT NULL,
  time_ms INTEGER NOT NULL,
  signature BLOB NOT NULL);
)sql";

// Schema versions (PRAGMA user_version): 0 = new or first release,
// 2 = deliveries.not_before_ms, 3 = deliveries.deferrals, 4 = priorities
// clamped to 1..3, 5 = relaying (messages.origin, deliveries.custody and
// custody_out, returns), 6 = attachments (messages.uploads and chunks,
// inbox.chunk_refs, uploads), 7 = kinds, threads and audit (messages.payload,
// subject, case_ref, in_reply_to; inbox.in_reply_to; audit, audit_heads),
// 8 = cryptographic erasure (content sealed under per-message keys kept in
// the key file; key_id of messages, inbox and uploads; messages.inner_signed;
// erase_orders; evidence), 9 = messages.inner_digest, 10 =
// messages.chunks_removed_ms, case references indexed ignoring case.
// kSchema creates the newest form; this brings an older file up to it.
const int kSchemaVersion = 10;

static absl::Status AddColumnIfMissing(sqlite3* db, const char* table,
                                       const char* column, const char* type) {
  {
    Stmt cols(db, absl::StrCat("PRAGMA table_info(", table, ")").c_str());
    while (cols.Step() == SQLITE_ROW) {
      if (cols.Text(1) == column) return absl::OkStatus();
    }
  }
  return Exec(
      db, absl::StrCat("ALTER TABLE ", table, " ADD COLUMN ", column, " ", type)
              .c_str());
}

absl::Status Migrate(sqlite3* db) {
  Stmt v(db, "PRAGMA user_version");
  int version = v.Step() == SQLITE_ROW ? static_cast<int>(v.Int(0)) : 0;
  if (version >= kSchemaVersion) return absl::OkStatus();
  // Columns added since the first release, in the order they came.
  static constexpr struct {
    const char* table;
    const char* column;
    const char* type;
  } kAdded[] = {
      {"deliveries", "not_before_ms", "INTEGER NOT NULL DEFAULT 0"},
      {"deliveries", "deferrals", "INTEGER NOT NULL DEFAULT 0"},
      {"messages", "origin", "TEXT NOT NULL DEFAULT ''"},
      {"messages", "uploads", "TEXT NOT NULL DEFAULT ''"},
      {"messages", "chunks", "INTEGER NOT NULL DEFAULT 0"},
      {"inbox", "chunk_refs", "BLOB"},
      {"deliveries", "custody", "BLOB"},
      {"deliveries", "custody_out", "BLOB"},
      {"messages", "payload", "BLOB"},
      {"messages", "subject", "TEXT NOT NULL DEFAULT ''"},
      {"messages", "case_ref", "TEXT NOT NULL DEFAULT ''"},
      {"messages", "in_reply_to", "TEXT NOT NULL DEFAULT ''"},
      {"inbox", "in_reply_to", "TEXT NOT NULL DEFAULT ''"},
      {"inbox", "purged_ms", "INTEGER NOT NULL DEFAULT 0"},
      {"messages", "purged_ms", "INTEGER NOT NULL DEFAULT 0"},
      {"messages", "inner_signed", "BLOB"},
      {"messages", "key_id", "TEXT NOT NULL DEFAULT ''"},
      {"inbox", "key_id", "TEXT NOT NULL DEFAULT ''"},
      {"uploads", "key_id", "TEXT NOT NULL DEFAULT ''"},
      {"messages", "inner_digest", "BLOB"},
      {"messages", "chunks_removed_ms", "INTEGER NOT NULL DEFAULT 0"},
  };
  for (const auto& a : kAdded) {
    if (auto s = AddColumnIfMissing(db, a.table, a.column, a.type); !s.ok()) {
      return s;
    }
  }
  if (auto s = Exec(db,
                    "UPDATE deliveries SET priority = MIN(3, MAX(1, priority)) "
                    "WHERE priority NOT BETWEEN 1 AND 3");
      !s.ok()) {
    return s;
  }
  if (auto s = Exec(db,
                    "DROP INDEX IF EXISTS messages_case;"
                    "DROP INDEX IF EXISTS inbox_case;"
                    "CREATE INDEX IF NOT EXISTS messages_case_nocase ON "
                    "messages(case_ref COLLATE NOCASE) WHERE case_ref != '';"
                    "CREATE INDEX IF NOT EXISTS inbox_case_nocase ON "
                    "inbox(case_ref COLLATE NOCASE) WHERE case_ref != '';"
                    // Messages whose chunk files are still there: what
                    // SettledChunkHolders looks at, not every message.
                    "CREATE INDEX IF NOT EXISTS messages_chunks_kept ON "
                    "messages(id) WHERE chunks > 0 AND chunks_removed_ms = 0");
      !s.ok()) {
    return s;
  }
  return absl::OkStatus();
}

int SchemaVersion(sqlite3* db) {
  Stmt v(db, "PRAGMA user_version");
  return v.Step() == SQLITE_ROW ? static_cast<int>(v.Int(0)) : 0;
}

// Content stored before schema 8 was plaintext: seal each value under a
// key of its message (upload), in one transaction. Idempotent.
absl::Status SealLegacyContent(sqlite3* db, ContentKeys* keys) {
  static constexpr struct {
    const char* select;  // key id, rowid, then the columns below
    const char* table;
    const char* columns[3];
  } kLegacy[] = {
      {"SELECT COALESCE(NULLIF(key_id, ''), 'm:' || id), rowid, payload, "
       "subject, inner_signed FROM messages WHERE origin = '' AND "
       "purged_ms = 0",
       "messages",
       {"payload", "subject", "inner_signed"}},
      {"SELECT COALESCE(NULLIF(key_id, ''), 'i:' || origin || '/' || "
       "message_id), rowid, payload, subject, inner_signed FROM inbox WHERE "
       "accepted = 1 AND purged_ms = 0",
       "inbox",
       {"payload", "subject", "inner_signed"}},
      {"SELECT COALESCE(NULLIF(key_id, ''), 'u:' || id), rowid, key, NULL, "
       "NULL FROM uploads",
       "uploads",
       {"key", nullptr, nullptr}},
  };
  if (auto st = Exec(db, "BEGIN IMMEDIATE"); !st.ok()) return st;
  size_t sealed = 0;
  absl::Status result = [&]() -> absl::Status {
    for (const auto& t : kLegacy) {
      struct Row {
        std::string key_id;
        int64_t rowid;
        std::string values[3];
      };
      std::vector<Row> rows;
      {
        Stmt q(db, t.select);
        if (auto st = q.status(); !st.ok()) return st;
        while (q.Step() == SQLITE_ROW) {
          Row r{q.Text(0), q.Int(1), {q.Text(2), q.Text(3), q.Text(4)}};
          bool legacy = false;
          for (const std::string& v : r.values) {
            legacy |= !v.empty() && !IsSealed(v);
          }
          if (legacy) rows.push_back(std::move(r));
        }
      }
      if (rows.empty()) continue;
      std::vector<std::string> ids;
      for (const Row& r : rows) ids.push_back(r.key_id);
      auto made = keys->Ensure(ids);
      if (!made.ok()) return made.status();
      for (const Row& r : rows) {
        for (int c = 0; c < 3 && t.columns[c] != nullptr; ++c) {
          const std::string& v = r.values[c];
          if (v.empty() || IsSealed(v)) continue;
          auto sealed =
              SealColumn(made->at(r.key_id), r.key_id, t.columns[c], v);
          if (!sealed.ok()) return sealed.status();
          Stmt u(db, absl::StrCat("UPDATE ", t.table, " SET ", t.columns[c],
                                  " = ? WHERE rowid = ?")
                         .c_str());
          u.BindBlob(1, *sealed).Bind(2, r.rowid);
          if (auto st = u.Run("seal legacy content"); !st.ok()) return st;
        }
      }
      KLOG(Info, "store") << "sealed " << rows.size() << " " << t.table
                          << " rows stored before content keys";
      sealed += rows.size();
    }
    return absl::OkStatus();
  }();
  if (result.ok()) result = Exec(db, "COMMIT");
  if (!result.ok()) {
    Exec(db, "ROLLBACK").IgnoreError();
    return result;
  }
  if (sealed > 0) {
    // The plaintext the updates replaced is still in free pages and WAL
    // frames: rewrite the file and truncate the WAL.
    if (auto st = Exec(db, "PRAGMA wal_checkpoint(TRUNCATE)"); !st.ok()) {
      return st;
    }
    if (auto st = Exec(db, "VACUUM"); !st.ok()) return st;
    return Exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
  }
  return absl::OkStatus();
}

}  // namespace sqlite_store
}  // namespace kontor
