// SubmitStore: submissions (sealed under a fresh content key, idempotent by
// client key), uploads, cancel and retry.

#include "daemon/store/sql_store_internal.h"

namespace kontor {
namespace sql_store {

absl::StatusOr<SubmitOutcome> SqlStore::InsertOutgoing(
    const OutgoingMessage& m) {
  // Stored as 1 (routine) .. 3 (flash): one value per scheduling class.
  const int priority = std::clamp(m.priority, 1, 3);
  SubmitOutcome outcome;
  absl::Status s = Write(
      [&](sql::Tx* db) -> absl::Status {
        if (!m.client_key.empty()) {
          auto found =
              FindClientKey(db, m.submitter, m.client_key, m.request_hash);
          if (!found.ok()) return found.status();
          if (found->has_value()) {
            outcome = **found;
            return absl::OkStatus();
          }
        }
        auto key = TakeKey();
        if (!key.ok()) return key.status();
        auto payload = Seal(*key, "payload", m.payload);
        if (!payload.ok()) return payload.status();
        auto subject = Seal(*key, "subject", m.subject);
        if (!subject.ok()) return subject.status();
        auto inner = Seal(*key, "inner_signed", m.inner_signed);
        if (!inner.ok()) return inner.status();
        Stmt ins(db,
                 "INSERT INTO messages(id, priority, created_ms, expires_ms, "
                 "kind, envelope, outer_digest, submitter, client_key, "
                 "request_hash, uploads, chunks, payload, subject, case_ref, "
                 "in_reply_to, inner_signed, key_id, inner_digest) "
                 "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
        ins.Bind(1, m.id).Bind(2, priority).Bind(3, m.created_ms);
        ins.Bind(4, m.expires_ms).Bind(5, m.kind).BindBlob(6, m.envelope);
        ins.BindBlob(7, m.outer_digest).Bind(8, m.submitter);
        if (m.client_key.empty()) {
          ins.BindNull(9);
        } else {
          ins.Bind(9, m.client_key);
        }
        ins.BindBlob(10, m.request_hash);
        ins.Bind(11, absl::StrJoin(m.uploads, ","));
        ins.Bind(12, static_cast<int64_t>(m.chunk_count));
        if (m.payload.empty()) {
          ins.BindNull(13);
        } else {
          ins.BindBlob(13, *payload);
        }
        ins.BindBlob(14, *subject).Bind(15, m.case_ref);
        ins.Bind(16, m.in_reply_to);
        if (m.inner_signed.empty()) {
          ins.BindNull(17);
        } else {
          ins.BindBlob(17, *inner);
        }
        ins.Bind(18, key->id);
        // What receipts must name (ReceiptBody.inner_digest): not secret.
        if (m.inner_signed.empty()) {
          ins.BindNull(19);
        } else {
          ins.BindBlob(19, Sha256(m.inner_signed));
        }
        if (auto st = ins.Run("insert message"); !st.ok()) return st;
        for (const std::string& u : m.uploads) {
          Stmt take(db,
                    "UPDATE uploads SET message_id = ? WHERE id = ? AND "
                    "submitter = ? AND message_id = ''");
          take.Bind(1, m.id).Bind(2, u).Bind(3, m.submitter);
          if (auto st = take.Run("take upload"); !st.ok()) return st;
          if (db->Changes() != 1) {
            return absl::FailedPreconditionError(
                absl::StrCat("attachment ", u, " is unknown or already sent"));
          }
        }
        std::vector<AuditEntry> disclosed;
        for (const std::string& peer : m.recipients) {
          Stmt d(db,
                 "INSERT INTO deliveries(message_id, peer, state, priority, "
                 "created_ms, expires_ms, updated_ms) VALUES(?,?,?,?,?,?,?)");
          d.Bind(1, m.id).Bind(2, peer).Bind(3, kStateQueued).Bind(4, priority);
          d.Bind(5, m.created_ms).Bind(6, m.expires_ms).Bind(7, m.created_ms);
          if (auto st = d.Run("insert delivery"); !st.ok()) return st;
          disclosed.push_back(AuditEntry{std::string(kAuditDisclose),
                                         m.submitter, m.id, "", peer, m.kind,
                                         m.purpose, "submitted"});
        }
        if (auto st = AppendAuditOn(db, disclosed, m.created_ms); !st.ok()) {
          return st;
        }
        // An erase order (erase.notice, a withdrawn consent) erases this
        // node's own copies of the messages it names, with the order.
        for (const std::string& target : m.erase_targets) {
          if (auto st = EraseOn(
                  db,
                  PurgeCandidate{target, "", true, "", 0, 0,
                                 absl::StrCat("erased by ", m.kind, " ", m.id)},
                  m.submitter, m.created_ms, nullptr);
              !st.ok()) {
            return st;
          }
        }
        outcome.message_id = m.id;
        outcome.duplicate = false;
        return absl::OkStatus();
      },
      1);
  if (!s.ok()) return s;
  return outcome;
}

absl::StatusOr<uint32_t> SqlStore::Cancel(const std::string& message_id,
                                          int64_t now_ms,
                                          const std::string& actor) {
  uint32_t changed = 0;
  absl::Status s = Write([&](sql::Tx* db) -> absl::Status {
    const std::string cancellable =
        StateIn(DeliveryMove::kCancel, kStateCancelled);
    Stmt ev(db, absl::StrCat("INSERT INTO events(message_id, peer, state, "
                             "reason, time_ms) SELECT message_id, peer, "
                             "'cancelled', 'cancelled by an operator', ? "
                             "FROM deliveries WHERE message_id = ? AND ",
                             cancellable, " AND message_id NOT LIKE '%/%'")
                    .c_str());
    ev.Bind(1, now_ms).Bind(2, message_id);
    if (auto st = ev.Run("cancel events"); !st.ok()) return st;
    Stmt u(db, absl::StrCat("UPDATE deliveries SET state = 'cancelled', "
                            "updated_ms = ? WHERE message_id = ? AND ",
                            cancellable)
                   .c_str());
    u.Bind(1, now_ms).Bind(2, message_id);
    if (auto st = u.Run("cancel"); !st.ok()) return st;
    changed = static_cast<uint32_t>(db->Changes());
    return AuditAlter(db, actor, message_id, "cancelled", changed, now_ms);
  });
  if (!s.ok()) return s;
  return changed;
}

absl::StatusOr<uint32_t> SqlStore::Retry(const std::string& message_id,
                                         int64_t now_ms,
                                         const std::string& actor) {
  uint32_t changed = 0;
  absl::Status s = Write([&](sql::Tx* db) -> absl::Status {
    Stmt u(db, absl::StrCat("UPDATE deliveries SET state = 'queued', "
                            "not_before_ms = 0, deferrals = 0, reason = '', "
                            "updated_ms = ? WHERE message_id = ? AND ",
                            StateIn(DeliveryMove::kRetry, kStateQueued))
                   .c_str());
    u.Bind(1, now_ms).Bind(2, message_id);
    if (auto st = u.Run("retry"); !st.ok()) return st;
    changed = static_cast<uint32_t>(db->Changes());
    return AuditAlter(db, actor, message_id, "retried", changed, now_ms);
  });
  if (!s.ok()) return s;
  return changed;
}

absl::StatusOr<std::optional<SubmitOutcome>> SqlStore::FindByClientKey(
    const std::string& submitter, const std::string& client_key,
    const std::string& request_hash) {
  absl::MutexLock l(&read_mu_);
  return FindClientKey(reader_, submitter, client_key, request_hash);
}

absl::Status SqlStore::InsertUpload(const UploadRecord& u) {
  return Write(
      [&](sql::Tx* db) -> absl::Status {
        auto content_key = TakeKey();
        if (!content_key.ok()) return content_key.status();
        auto key = Seal(*content_key, "key", u.key);
        if (!key.ok()) return key.status();
        Stmt ins(db,
                 "INSERT INTO uploads(id, submitter, name, content_type, "
                 "size, sha256, key, chunk_refs, created_ms, key_id) "
                 "VALUES(?,?,?,?,?,?,?,?,?,?)");
        ins.Bind(1, u.id).Bind(2, u.submitter).Bind(3, u.name);
        ins.Bind(4, u.content_type).Bind(5, static_cast<int64_t>(u.size));
        ins.BindBlob(6, u.sha256).BindBlob(7, *key).BindBlob(8, u.chunk_refs);
        ins.Bind(9, u.created_ms).Bind(10, content_key->id);
        return ins.Run("insert upload");
      },
      1);
}

absl::StatusOr<std::optional<UploadRecord>> SqlStore::GetUpload(
    const std::string& id) {
  absl::MutexLock l(&read_mu_);
  Stmt q(reader_,
         "SELECT id, submitter, name, content_type, size, sha256, key, "
         "chunk_refs, created_ms, message_id, key_id FROM uploads WHERE "
         "id = ?");
  q.Bind(1, id);
  if (!q.Next()) return std::optional<UploadRecord>();
  UploadRecord u;
  u.id = q.Text(0);
  u.submitter = q.Text(1);
  u.name = q.Text(2);
  u.content_type = q.Text(3);
  u.size = static_cast<uint64_t>(q.Int(4));
  u.sha256 = q.Text(5);
  auto key = Unseal(KeyIdOr(q.Text(10), UploadKeyId(u.id)), "key", q.Text(6));
  if (!key.ok()) return key.status();
  u.key = std::move(*key);
  u.chunk_refs = q.Text(7);
  u.created_ms = q.Int(8);
  u.message_id = q.Text(9);
  return std::optional<UploadRecord>(std::move(u));
}

absl::StatusOr<std::vector<std::string>> SqlStore::DropStaleUploads(
    int64_t before_ms) {
  std::vector<std::string> ids;
  absl::Status s = Write([&](sql::Tx* db) -> absl::Status {
    ids.clear();
    Stmt q(db,
           "SELECT id, key_id FROM uploads WHERE message_id = '' AND "
           "created_ms < ?");
    q.Bind(1, before_ms);
    while (q.Next()) {
      ids.push_back(q.Text(0));
      DestroyAfterCommit(KeyIdOr(q.Text(1), UploadKeyId(ids.back())));
    }
    Stmt d(db, "DELETE FROM uploads WHERE message_id = '' AND created_ms < ?");
    d.Bind(1, before_ms);
    return d.Run("drop stale uploads");
  });
  if (!s.ok()) return s;
  return ids;
}

absl::StatusOr<std::optional<SubmitOutcome>> SqlStore::FindClientKey(
    sql::Tx* db, const std::string& submitter, const std::string& client_key,
    const std::string& request_hash) {
  Stmt s(db,
         "SELECT id, request_hash FROM messages WHERE submitter = ? AND "
         "client_key = ?");
  if (auto st = s.status(); !st.ok()) return st;
  s.Bind(1, submitter).Bind(2, client_key);
  if (!s.Next()) return std::optional<SubmitOutcome>();
  if (s.Text(1) != request_hash) {
    return absl::AlreadyExistsError(absl::StrCat(
        "client key '", client_key,
        "' was already used for different content (message ", s.Text(0), ")"));
  }
  return std::optional<SubmitOutcome>(SubmitOutcome{s.Text(0), true});
}

}  // namespace sql_store
}  // namespace kontor
