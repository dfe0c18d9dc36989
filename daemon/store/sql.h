#ifndef KONTOR_DAEMON_STORE_SQL_H_
#define KONTOR_DAEMON_STORE_SQL_H_

// The small SQL interface the store's operations (sql_store.cc) are written
// against, and all a store backend implements (SQLite: sqlite_backend.cc;
// PostgreSQL: postgres_backend.cc).
// The operations, the rules (rules.h), the audit chain (audit.h) and the
// sealing (content_keys.h) know nothing of the database behind it.
//
// The SQL the store speaks is the common part of SQLite and PostgreSQL:
// parameters are written `?` and numbered from 1 in order (a backend that
// numbers them otherwise, as PostgreSQL's `$1`, rewrites them), integers are
// 64-bit, text and blobs are bound as what they are, conflicts are handled
// with `ON CONFLICT`, new keys come back with `RETURNING`, truth is written
// `TRUE`/`FALSE` or as a comparison (never as a bare integer, nor counted:
// `CASE WHEN ... THEN 1 ELSE 0 END`), and bytes (sealed content, digests,
// signatures) are bound as blobs into columns of a bytes type. Two things
// beyond that a backend provides in its schema: `x = ? COLLATE NOCASE`
// (case-insensitive equality) and SQLite's `group_concat(x)` aggregate
// (PostgreSQL: postgres_backend.cc).
//
// The write contract (what Connection offers the store's one writer): one
// transaction commits a batch of writes (group commit); each write runs in
// its own savepoint, so a failed write is undone alone and the others still
// commit; a write and its audit record are in the same transaction. If the
// database gives up the whole transaction (disk full, I/O error, lost
// connection), InTransaction() says so and no write of the batch counts.

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace kontor::sql {

// A prepared statement: bind, step through the rows, read columns.
class Statement {
 public:
  virtual ~Statement() = default;

  virtual void BindText(int i, absl::string_view v) = 0;
  virtual void BindBlob(int i, absl::string_view v) = 0;
  virtual void BindInt(int i, int64_t v) = 0;
  virtual void BindNull(int i) = 0;

  // Runs to the next row: true if there is one; false when the statement is
  // done or failed (Error says which). A statement with rows left unread
  // may hold its work uncommitted (SQLite does): Reset or destroy it before
  // Commit, and outside a transaction before anyone else is to see it.
  virtual bool Step() = 0;
  // Ready to run again, bindings cleared.
  virtual void Reset() = 0;

  // Columns of the current row, from 0. NULL reads as 0 and "".
  virtual int64_t Int(int col) = 0;
  virtual std::string Text(int col) = 0;

  // OK, or why preparing or the last step failed, as "what: reason", with
  // the status code by kind: full -> kResourceExhausted; busy, locked, I/O
  // or connection -> kUnavailable; constraint -> kAlreadyExists.
  virtual absl::Status Error(absl::string_view what) const = 0;
};

// Where statements run: inside the writer's transaction, or on a reader.
class Tx {
 public:
  virtual ~Tx() = default;
  virtual std::unique_ptr<Statement> Prepare(absl::string_view sql) = 0;
  // Runs SQL without results (one or more statements, no parameters).
  virtual absl::Status Exec(absl::string_view sql) = 0;
  // Rows the last INSERT, UPDATE or DELETE run here changed.
  virtual int64_t Changes() = 0;
};

// One connection to the database. The store has two: its writer (one
// thread) and a reader (under a lock).
class Connection : public Tx {
 public:
  // A write transaction, holding the database's write lock from the start.
  virtual absl::Status BeginWrite() = 0;
  // A read transaction: one consistent snapshot until Commit.
  virtual absl::Status BeginRead() = 0;
  virtual absl::Status Commit() = 0;
  virtual void Rollback() = 0;

  // The savepoint of one write within the transaction.
  virtual absl::Status Savepoint() = 0;
  virtual absl::Status ReleaseSavepoint() = 0;
  // Undoes the write since Savepoint and ends the savepoint.
  virtual void RollbackSavepoint() = 0;

  // False once a transaction begun here has ended, whether by Commit,
  // Rollback or because the database gave it up.
  virtual bool InTransaction() = 0;
};

// A statement on the stack: what the store's operations use.
//
//   Stmt s(tx, "SELECT a, b FROM t WHERE c = ?");
//   s.Bind(1, c);
//   while (s.Next()) Use(s.Int(0), s.Text(1));
//   if (auto e = s.Done("t"); !e.ok()) return e;
class Stmt {
 public:
  Stmt(Tx* tx, absl::string_view sql) : s_(tx->Prepare(sql)) {}

  // OK, or why preparing failed. A backend that prepares with the first run
  // (PostgreSQL) says so only then: Run and Done always tell.
  absl::Status status() const { return s_->Error("prepare"); }
  Stmt& Bind(int i, absl::string_view text) {
    s_->BindText(i, text);
    return *this;
  }
  Stmt& BindBlob(int i, absl::string_view blob) {
    s_->BindBlob(i, blob);
    return *this;
  }
  Stmt& Bind(int i, int64_t v) {
    s_->BindInt(i, v);
    return *this;
  }
  Stmt& BindNull(int i) {
    s_->BindNull(i);
    return *this;
  }
  // The next row, if there is one.
  bool Next() { return s_->Step(); }
  void Reset() { s_->Reset(); }
  // OK once the rows ran out; the failure otherwise, described as `what`.
  absl::Status Done(absl::string_view what) const { return s_->Error(what); }
  // Runs a statement that returns no rows (or whose rows do not matter).
  absl::Status Run(absl::string_view what) {
    if (absl::Status s = status(); !s.ok()) return s;
    s_->Step();
    return s_->Error(what);
  }
  int64_t Int(int col) { return s_->Int(col); }
  std::string Text(int col) { return s_->Text(col); }

 private:
  std::unique_ptr<Statement> s_;
};

}  // namespace kontor::sql

#endif  // KONTOR_DAEMON_STORE_SQL_H_
