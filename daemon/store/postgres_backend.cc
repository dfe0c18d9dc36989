#include "daemon/store/postgres_backend.h"

#include <libpq-fe.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "daemon/store/content_keys.h"
#include "daemon/store/key_binding.h"
#include "daemon/store/sql_store.h"

namespace kontor {
namespace {

constexpr Oid kInt8Oid = 20;
constexpr Oid kByteaOid = 17;

// "what: reason", with the status code by the SQLSTATE class.
absl::Status PgError(const PGresult* res, PGconn* conn,
                     absl::string_view what) {
  const char* primary =
      res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
  std::string msg = primary ? primary : PQerrorMessage(conn);
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) {
    msg.pop_back();
  }
  if (msg.empty()) msg = "PostgreSQL error";
  const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  const std::string s = state ? state : "";
  const std::string text = absl::StrCat(what, ": ", msg);
  if (PQstatus(conn) != CONNECTION_OK) return absl::UnavailableError(text);
  if (s.rfind("23", 0) == 0) return absl::AlreadyExistsError(text);
  if (s == "53100" || s == "53200") return absl::ResourceExhaustedError(text);
  if (s.rfind("08", 0) == 0 || s.rfind("40", 0) == 0 || s.rfind("57", 0) == 0 ||
      s == "53300") {
    return absl::UnavailableError(text);
  }
  return absl::InternalError(text);
}

// The store writes parameters `?` (sql.h); PostgreSQL numbers them `$1`.
std::string Numbered(absl::string_view sql, int* count) {
  std::string out;
  bool quoted = false;
  int n = 0;
  for (char c : sql) {
    if (c == '\'') quoted = !quoted;
    if (c == '?' && !quoted) {
      absl::StrAppend(&out, "$", ++n);
    } else {
      out.push_back(c);
    }
  }
  *count = n;
  return out;
}

class PgConn;

class PgStatement : public sql::Statement {
 public:
  PgStatement(PgConn* conn, absl::string_view sql);
  ~PgStatement() override {
    if (res_) PQclear(res_);
  }

  // Text goes as text, which cannot hold a NUL byte (libpq would cut the
  // value there): refused, never stored cut.
  void BindText(int i, absl::string_view v) override {
    if (v.find('\0') != absl::string_view::npos) {
      error_ = absl::InvalidArgumentError(
          absl::StrCat(": parameter ", i, " holds a NUL byte"));
    }
    Set(i, std::string(v), 0, 0);
  }
  void BindBlob(int i, absl::string_view v) override {
    Set(i, std::string(v), 1, kByteaOid);
  }
  void BindInt(int i, int64_t v) override {
    Set(i, std::to_string(v), 0, kInt8Oid);
  }
  void BindNull(int i) override { Set(i, std::nullopt, 0, 0); }

  bool Step() override;
  void Reset() override {
    if (res_) PQclear(res_);
    res_ = nullptr;
    row_ = -1;
    for (auto& v : values_) v.reset();
    std::fill(formats_.begin(), formats_.end(), 0);
    std::fill(types_.begin(), types_.end(), 0);
    error_ = absl::OkStatus();
  }

  int64_t Int(int col) override {
    if (Null(col)) return 0;
    const char* v = PQgetvalue(res_, row_, col);
    if (v[0] == 't' && v[1] == '\0') return 1;  // boolean
    if (v[0] == 'f' && v[1] == '\0') return 0;
    return std::strtoll(v, nullptr, 10);
  }
  std::string Text(int col) override {
    if (Null(col)) return std::string();
    const char* v = PQgetvalue(res_, row_, col);
    if (PQftype(res_, col) != kByteaOid) {
      return std::string(v, PQgetlength(res_, row_, col));
    }
    size_t n = 0;
    unsigned char* raw =
        PQunescapeBytea(reinterpret_cast<const unsigned char*>(v), &n);
    std::string out(reinterpret_cast<char*>(raw), n);
    PQfreemem(raw);
    return out;
  }

  absl::Status Error(absl::string_view what) const override {
    if (error_.ok()) return error_;
    return absl::Status(error_.code(), absl::StrCat(what, error_.message()));
  }

 private:
  bool Null(int col) const {
    return res_ == nullptr || row_ < 0 || row_ >= PQntuples(res_) ||
           col >= PQnfields(res_) || PQgetisnull(res_, row_, col);
  }
  void Set(int i, std::optional<std::string> v, int format, Oid type) {
    if (i < 1 || i > count_) return;
    values_[i - 1] = std::move(v);
    formats_[i - 1] = format;
    types_[i - 1] = type;
  }

  PgConn* conn_;
  std::string sql_;
  int count_ = 0;
  std::vector<std::optional<std::string>> values_;
  std::vector<int> formats_;
  std::vector<Oid> types_;
  PGresult* res_ = nullptr;
  int row_ = -1;
  // ": reason" with its code, the `what` added by Error.
  absl::Status error_;
};

class PgConn : public sql::Connection {
 public:
  explicit PgConn(PGconn* conn) : conn_(conn) {}
  ~PgConn() override { PQfinish(conn_); }

  std::unique_ptr<sql::Statement> Prepare(absl::string_view sql) override {
    return std::make_unique<PgStatement>(this, sql);
  }
  absl::Status Exec(absl::string_view sql) override {
    PGresult* res = PQexec(conn_, std::string(sql).c_str());
    const ExecStatusType st = PQresultStatus(res);
    absl::Status s = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK
                         ? absl::OkStatus()
                         : PgError(res, conn_, "store");
    PQclear(res);
    return s;
  }
  int64_t Changes() override { return changes_; }

  absl::Status BeginWrite() override {
    Rollback();  // a transaction left over (aborted) would refuse BEGIN
    return Exec("BEGIN");
  }
  absl::Status BeginRead() override {
    return Exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  }
  absl::Status Commit() override {
    if (PQtransactionStatus(conn_) == PQTRANS_INERROR) {
      Exec("ROLLBACK").IgnoreError();
      return absl::AbortedError("commit: the transaction had failed");
    }
    return Exec("COMMIT");
  }
  void Rollback() override {
    if (PQtransactionStatus(conn_) != PQTRANS_IDLE) {
      Exec("ROLLBACK").IgnoreError();
    }
  }
  absl::Status Savepoint() override { return Exec("SAVEPOINT job"); }
  absl::Status ReleaseSavepoint() override {
    return Exec("RELEASE SAVEPOINT job");
  }
  void RollbackSavepoint() override {
    Exec("ROLLBACK TO SAVEPOINT job").IgnoreError();
    Exec("RELEASE SAVEPOINT job").IgnoreError();
  }
  bool InTransaction() override {
    const PGTransactionStatusType s = PQtransactionStatus(conn_);
    return s == PQTRANS_INTRANS || s == PQTRANS_ACTIVE;
  }

  PGconn* raw() { return conn_; }
  void set_changes(int64_t n) { changes_ = n; }

 private:
  PGconn* conn_;
  int64_t changes_ = 0;
};

PgStatement::PgStatement(PgConn* conn, absl::string_view sql) : conn_(conn) {
  sql_ = Numbered(sql, &count_);
  values_.resize(count_);
  formats_.resize(count_);
  types_.resize(count_);
}

bool PgStatement::Step() {
  if (!error_.ok()) return false;
  if (res_ != nullptr) return ++row_ < PQntuples(res_);
  std::vector<const char*> values(count_);
  std::vector<int> lengths(count_);
  for (int i = 0; i < count_; ++i) {
    values[i] = values_[i] ? values_[i]->data() : nullptr;
    lengths[i] = values_[i] ? static_cast<int>(values_[i]->size()) : 0;
  }
  res_ = PQexecParams(conn_->raw(), sql_.c_str(), count_, types_.data(),
                      values.data(), lengths.data(), formats_.data(), 0);
  const ExecStatusType st = PQresultStatus(res_);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    absl::Status e = PgError(res_, conn_->raw(), "");
    error_ = absl::Status(e.code(), e.message());
    PQclear(res_);
    res_ = nullptr;
    return false;
  }
  const absl::string_view command = PQcmdStatus(res_);
  if (absl::StartsWith(command, "INSERT") ||
      absl::StartsWith(command, "UPDATE") ||
      absl::StartsWith(command, "DELETE")) {
    conn_->set_changes(std::atoll(PQcmdTuples(res_)));
  }
  row_ = 0;
  return PQntuples(res_) > 0;
}

}  // namespace

// The tables of sqlite_schema.cc in PostgreSQL's types (BIGINT, BYTEA, an
// identity for AUTOINCREMENT; the sealed subject is BYTEA; text compared and
// ordered by its bytes, COLLATE "C", as SQLite does), and what the
// store's SQL uses beyond the common dialect (sql.h): a case-insensitive
// collation named nocase and SQLite's group_concat aggregate.
const char* const kPostgresSchema = R"sql(
CREATE TABLE IF NOT EXISTS messages(
  id TEXT COLLATE "C" PRIMARY KEY,
  priority BIGINT NOT NULL,
  created_ms BIGINT NOT NULL,
  expires_ms BIGINT NOT NULL,
  kind TEXT COLLATE "C" NOT NULL,
  envelope BYTEA NOT NULL,
  outer_digest BYTEA NOT NULL,
  submitter TEXT COLLATE "C" NOT NULL,
  client_key TEXT COLLATE "C",
  request_hash BYTEA,
  origin TEXT COLLATE "C" NOT NULL DEFAULT '',
  uploads TEXT COLLATE "C" NOT NULL DEFAULT '',
  chunks_removed_ms BIGINT NOT NULL DEFAULT 0,
  chunks BIGINT NOT NULL DEFAULT 0,
  payload BYTEA,
  subject BYTEA NOT NULL DEFAULT '',
  case_ref TEXT COLLATE "C" NOT NULL DEFAULT '',
  in_reply_to TEXT COLLATE "C" NOT NULL DEFAULT '',
  purged_ms BIGINT NOT NULL DEFAULT 0,
  inner_signed BYTEA,
  key_id TEXT COLLATE "C" NOT NULL DEFAULT '',
  inner_digest BYTEA);
CREATE UNIQUE INDEX IF NOT EXISTS messages_client_key
  ON messages(submitter, client_key) WHERE client_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS deliveries(
  message_id TEXT COLLATE "C" NOT NULL REFERENCES messages(id),
  peer TEXT COLLATE "C" NOT NULL,
  state TEXT COLLATE "C" NOT NULL,
  priority BIGINT NOT NULL,
  created_ms BIGINT NOT NULL,
  expires_ms BIGINT NOT NULL,
  attempts BIGINT NOT NULL DEFAULT 0,
  last_error TEXT COLLATE "C" NOT NULL DEFAULT '',
  reason TEXT COLLATE "C" NOT NULL DEFAULT '',
  receipt BYTEA,
  updated_ms BIGINT NOT NULL,
  not_before_ms BIGINT NOT NULL DEFAULT 0,
  deferrals BIGINT NOT NULL DEFAULT 0,
  custody BYTEA,
  custody_out BYTEA,
  PRIMARY KEY(message_id, peer));
CREATE INDEX IF NOT EXISTS deliveries_queue
  ON deliveries(peer, state, priority, created_ms);
CREATE TABLE IF NOT EXISTS peers(
  peer TEXT COLLATE "C" PRIMARY KEY,
  failures BIGINT NOT NULL,
  next_attempt_ms BIGINT NOT NULL,
  last_error TEXT COLLATE "C" NOT NULL,
  last_success_ms BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS inbox(
  seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  origin TEXT COLLATE "C" NOT NULL,
  message_id TEXT COLLATE "C" NOT NULL,
  outer_digest BYTEA NOT NULL,
  accepted BIGINT NOT NULL,
  header BYTEA,
  inner_signed BYTEA,
  payload BYTEA,
  kind TEXT COLLATE "C" NOT NULL DEFAULT '',
  subject BYTEA NOT NULL DEFAULT '',
  case_ref TEXT COLLATE "C" NOT NULL DEFAULT '',
  priority BIGINT NOT NULL DEFAULT 0,
  created_ms BIGINT NOT NULL DEFAULT 0,
  expires_ms BIGINT NOT NULL DEFAULT 0,
  received_ms BIGINT NOT NULL,
  acked BIGINT NOT NULL DEFAULT 0,
  receipt BYTEA NOT NULL,
  chunk_refs BYTEA,
  in_reply_to TEXT COLLATE "C" NOT NULL DEFAULT '',
  purged_ms BIGINT NOT NULL DEFAULT 0,
  key_id TEXT COLLATE "C" NOT NULL DEFAULT '',
  UNIQUE(origin, message_id));
CREATE INDEX IF NOT EXISTS inbox_id ON inbox(message_id);
CREATE TABLE IF NOT EXISTS returns(
  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  to_peer TEXT COLLATE "C" NOT NULL,
  receipt BYTEA NOT NULL,
  created_ms BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS returns_peer ON returns(to_peer, id);
CREATE TABLE IF NOT EXISTS events(
  seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  message_id TEXT COLLATE "C" NOT NULL,
  peer TEXT COLLATE "C" NOT NULL,
  state TEXT COLLATE "C" NOT NULL,
  reason TEXT COLLATE "C" NOT NULL,
  time_ms BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS evidence(
  sha256 BYTEA PRIMARY KEY,
  type TEXT COLLATE "C" NOT NULL,
  der BYTEA NOT NULL,
  added_ms BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS erase_orders(
  origin TEXT COLLATE "C" NOT NULL,
  message_id TEXT COLLATE "C" NOT NULL,
  order_id TEXT COLLATE "C" NOT NULL,
  order_kind TEXT COLLATE "C" NOT NULL,
  reason TEXT COLLATE "C" NOT NULL,
  received_ms BIGINT NOT NULL,
  applied_ms BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY(origin, message_id, order_id));
CREATE TABLE IF NOT EXISTS uploads(
  id TEXT COLLATE "C" PRIMARY KEY,
  submitter TEXT COLLATE "C" NOT NULL,
  name TEXT COLLATE "C" NOT NULL,
  content_type TEXT COLLATE "C" NOT NULL,
  size BIGINT NOT NULL,
  sha256 BYTEA NOT NULL,
  key BYTEA NOT NULL,
  chunk_refs BYTEA NOT NULL,
  created_ms BIGINT NOT NULL,
  message_id TEXT COLLATE "C" NOT NULL DEFAULT '',
  key_id TEXT COLLATE "C" NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS audit(
  seq BIGINT PRIMARY KEY,
  time_ms BIGINT NOT NULL,
  action TEXT COLLATE "C" NOT NULL,
  actor TEXT COLLATE "C" NOT NULL,
  message_id TEXT COLLATE "C" NOT NULL,
  origin TEXT COLLATE "C" NOT NULL,
  peer TEXT COLLATE "C" NOT NULL,
  kind TEXT COLLATE "C" NOT NULL,
  purpose TEXT COLLATE "C" NOT NULL,
  detail TEXT COLLATE "C" NOT NULL,
  prev BYTEA NOT NULL,
  hash BYTEA NOT NULL);
CREATE INDEX IF NOT EXISTS audit_message ON audit(message_id);
CREATE TABLE IF NOT EXISTS audit_heads(
  seq BIGINT PRIMARY KEY,
  hash BYTEA NOT NULL,
  time_ms BIGINT NOT NULL,
  signature BYTEA NOT NULL);
CREATE INDEX IF NOT EXISTS messages_chunks_kept ON
  messages(id) WHERE chunks > 0 AND chunks_removed_ms = 0;
DO $$ BEGIN
  CREATE COLLATION nocase (provider = icu, locale = 'und-u-ks-level2',
                           deterministic = false);
EXCEPTION WHEN duplicate_object THEN NULL; END $$;
CREATE INDEX IF NOT EXISTS messages_case_nocase ON
  messages(case_ref COLLATE nocase) WHERE case_ref != '';
CREATE INDEX IF NOT EXISTS inbox_case_nocase ON
  inbox(case_ref COLLATE nocase) WHERE case_ref != '';
CREATE OR REPLACE FUNCTION kontor_concat(acc text, v text) RETURNS text
  LANGUAGE sql IMMUTABLE AS
  $f$ SELECT CASE WHEN v IS NULL THEN acc WHEN acc IS NULL THEN v
                  ELSE acc || ',' || v END $f$;
CREATE OR REPLACE AGGREGATE group_concat(text) (SFUNC = kontor_concat,
                                                STYPE = text);
)sql";

absl::StatusOr<std::unique_ptr<sql::Connection>> PostgresConnection(
    const std::string& conninfo) {
  PGconn* conn = PQconnectdb(conninfo.c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string msg = PQerrorMessage(conn);
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    PQfinish(conn);
    return absl::UnavailableError(absl::StrCat("PostgreSQL: ", msg));
  }
  PGresult* res = PQexec(conn, "SET client_min_messages = warning");
  PQclear(res);
  return std::unique_ptr<sql::Connection>(std::make_unique<PgConn>(conn));
}

absl::StatusOr<std::unique_ptr<Store>> OpenPostgresStore(
    const std::string& conninfo, const std::string& keys_path,
    Metrics* metrics) {
  auto writer = PostgresConnection(conninfo);
  if (!writer.ok()) return writer.status();
  if (auto s = (*writer)->Exec(kPostgresSchema); !s.ok()) return s;
  auto reader = PostgresConnection(conninfo);
  if (!reader.ok()) return reader.status();
  // The key file belongs to this database (a key file made anew by this open
  // is removed again when refused, so that a retry refuses it too).
  struct stat st;
  const bool keys_there = stat(keys_path.c_str(), &st) == 0 && st.st_size > 0;
  std::vector<std::string> made;
  for (const char* suffix : {"", "-wal", "-shm"}) {
    if (stat((keys_path + suffix).c_str(), &st) != 0) {
      made.push_back(keys_path + suffix);
    }
  }
  auto keys = ContentKeys::Open(keys_path);
  if (!keys.ok()) return keys.status();
  if (auto s = BindKeyFile(
          writer->get(), keys->get(),
          absl::StrCat("the PostgreSQL database of ", keys_path), keys_path);
      !s.ok()) {
    keys->reset();
    if (!keys_there) {
      for (const std::string& f : made) unlink(f.c_str());
    }
    return s;
  }
  if (auto s = DestroyErasedKeys(writer->get(), keys->get());
      !s.ok() && s.code() != absl::StatusCode::kAborted) {
    return s;
  }
  return NewSqlStore(std::move(*writer), std::move(*reader), std::move(*keys),
                     metrics);
}

}  // namespace kontor
