// ReceiveStore: inbox and relay dedup, storing what arrives (with its audit
// record and the erase orders it carries).

#include "daemon/store/sql_store_internal.h"

namespace kontor {
namespace sql_store {

absl::Status SqlStore::InsertInbox(
    const std::vector<InboxRecord>& records,
    std::vector<std::optional<DedupEntry>>* existing) {
  existing->assign(records.size(), std::nullopt);
  uint64_t new_max = 0;
  size_t keys = 0;
  for (const InboxRecord& r : records) keys += r.accepted ? 1 : 0;
  absl::Status s = Write(
      [&](sql::Tx* db) -> absl::Status {
        std::vector<std::pair<AuditEntry, int64_t>> audited;
        for (size_t i = 0; i < records.size(); ++i) {
          const InboxRecord& r = records[i];
          auto found = FindInboxOn(db, r.origin, r.message_id);
          if (!found.ok()) return found.status();
          if (found->has_value()) {
            (*existing)[i] = **found;
            continue;
          }
          std::string inner, payload, subject, key_id;
          if (r.accepted) {
            auto key = TakeKey();
            if (!key.ok()) return key.status();
            key_id = key->id;
            for (auto [column, plain, out] :
                 {std::tuple<const char*, const std::string*, std::string*>{
                      "inner_signed", &r.inner_signed, &inner},
                  {"payload", &r.payload, &payload},
                  {"subject", &r.subject, &subject}}) {
              auto sealed = Seal(*key, column, *plain);
              if (!sealed.ok()) return sealed.status();
              *out = std::move(*sealed);
            }
          }
          Stmt ins(db,
                   "INSERT INTO inbox(origin, message_id, outer_digest, "
                   "accepted, header, inner_signed, payload, kind, subject, "
                   "case_ref, priority, created_ms, expires_ms, received_ms, "
                   "receipt, chunk_refs, in_reply_to, key_id) "
                   "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
                   "RETURNING seq");
          ins.Bind(1, r.origin)
              .Bind(2, r.message_id)
              .BindBlob(3, r.outer_digest);
          ins.Bind(4, r.accepted ? 1 : 0).BindBlob(5, r.header);
          ins.BindBlob(6, inner).BindBlob(7, payload);
          ins.Bind(8, r.kind).BindBlob(9, subject).Bind(10, r.case_ref);
          ins.Bind(11, r.priority)
              .Bind(12, r.created_ms)
              .Bind(13, r.expires_ms);
          ins.Bind(14, r.received_ms).BindBlob(15, r.receipt);
          if (r.chunk_refs.empty()) {
            ins.BindNull(16);
          } else {
            ins.BindBlob(16, r.chunk_refs);
          }
          ins.Bind(17, r.in_reply_to).Bind(18, key_id);
          if (auto st = ins.Run("insert inbox"); !st.ok()) return st;
          const uint64_t seq = static_cast<uint64_t>(ins.Int(0));
          ins.Reset();  // its row read: done with (sql.h)
          audited.emplace_back(
              AuditEntry{std::string(r.accepted ? kAuditCollect : kAuditRefuse),
                         std::string(kAuditNodeActor), r.message_id, r.origin,
                         r.origin, r.kind, r.purpose,
                         r.accepted ? "stored" : r.refusal},
              r.received_ms);
          if (r.accepted) {
            new_max = seq;
          }
          if (!r.accepted) continue;
          if (auto st = AppendAuditOn(db, audited); !st.ok()) return st;
          audited.clear();
          if (auto st = ApplyEraseOrders(db, r); !st.ok()) return st;
        }
        return AppendAuditOn(db, audited);
      },
      keys);
  if (s.ok() && new_max > 0) {
    {
      absl::MutexLock l(&seq_mu_);
      if (new_max > max_seq_) max_seq_ = new_max;
    }
  }
  return s;
}

absl::StatusOr<std::optional<DedupEntry>> SqlStore::FindRelayed(
    const std::string& origin, const std::string& message_id,
    const std::string& deliver_to) {
  absl::MutexLock l(&read_mu_);
  return FindRelayedOn(reader_, RelayKey(origin, message_id), deliver_to);
}

absl::Status SqlStore::InsertRelayed(
    const std::vector<RelayedMessage>& messages,
    std::vector<std::optional<DedupEntry>>* existing) {
  existing->assign(messages.size(), std::nullopt);
  return Write([&](sql::Tx* db) -> absl::Status {
    for (size_t i = 0; i < messages.size(); ++i) {
      const RelayedMessage& m = messages[i];
      const std::string key = RelayKey(m.origin, m.message_id);
      const int priority = std::clamp(m.priority, 1, 3);
      std::string digest;
      {
        Stmt q(db, "SELECT outer_digest FROM messages WHERE id = ?");
        q.Bind(1, key);
        if (q.Next()) digest = q.Text(0);
      }
      if (!digest.empty() && digest != m.outer_digest) {
        (*existing)[i] = DedupEntry{digest, ""};
        continue;
      }
      if (digest.empty()) {
        Stmt ins(db,
                 "INSERT INTO messages(id, priority, created_ms, "
                 "expires_ms, kind, envelope, outer_digest, submitter, "
                 "origin, chunks) VALUES(?,?,?,?,'',?,?,?,?,?)");
        ins.Bind(1, key).Bind(2, priority).Bind(3, m.created_ms);
        ins.Bind(4, m.expires_ms).BindBlob(5, m.envelope);
        ins.BindBlob(6, m.outer_digest);
        ins.Bind(7, absl::StrCat("relay:", m.from_peer)).Bind(8, m.origin);
        ins.Bind(9, static_cast<int64_t>(m.chunk_count));
        if (auto st = ins.Run("insert relayed"); !st.ok()) return st;
      }
      auto found = FindRelayedOn(db, key, m.deliver_to);
      if (!found.ok()) return found.status();
      if (found->has_value()) {
        (*existing)[i] = std::move(*found);
        continue;
      }
      Stmt d(db,
             "INSERT INTO deliveries(message_id, peer, state, priority, "
             "created_ms, expires_ms, updated_ms, custody_out) "
             "VALUES(?,?,?,?,?,?,?,?)");
      d.Bind(1, key).Bind(2, m.deliver_to).Bind(3, kStateQueued);
      d.Bind(4, priority).Bind(5, m.created_ms).Bind(6, m.expires_ms);
      d.Bind(7, m.created_ms).BindBlob(8, m.custody);
      if (auto st = d.Run("insert relayed delivery"); !st.ok()) return st;
      if (auto st = AppendAuditOn(
              db,
              {AuditEntry{std::string(kAuditRelay),
                          std::string(kAuditNodeActor), m.message_id, m.origin,
                          m.deliver_to, "", "",
                          absl::StrCat("custody from ", m.from_peer)}},
              m.received_ms);
          !st.ok()) {
        return st;
      }
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<std::optional<MessageFacts>> SqlStore::GetMessageFacts(
    const std::string& key) {
  absl::MutexLock l(&read_mu_);
  Stmt q(reader_,
         "SELECT origin, outer_digest, inner_digest FROM messages WHERE "
         "id = ?");
  q.Bind(1, key);
  if (!q.Next()) return std::optional<MessageFacts>();
  return std::optional<MessageFacts>(
      MessageFacts{q.Text(0), q.Text(1), q.Text(2)});
}

absl::StatusOr<std::optional<DeliveryRow>> SqlStore::GetDelivery(
    const std::string& key, const std::string& peer) {
  absl::MutexLock l(&read_mu_);
  Stmt s(reader_, absl::StrCat("SELECT ", kDeliveryCols,
                               " FROM deliveries WHERE message_id = ? AND "
                               "peer = ?")
                      .c_str());
  s.Bind(1, key).Bind(2, peer);
  if (!s.Next()) return std::optional<DeliveryRow>();
  return std::optional<DeliveryRow>(ReadDelivery(s));
}

absl::StatusOr<std::optional<DedupEntry>> SqlStore::FindInbox(
    const std::string& origin, const std::string& message_id) {
  absl::MutexLock l(&read_mu_);
  return FindInboxOn(reader_, origin, message_id);
}

absl::StatusOr<bool> SqlStore::HasAccepted(const std::string& origin,
                                           const std::string& message_id) {
  absl::MutexLock l(&read_mu_);
  Stmt s(reader_,
         "SELECT 1 FROM inbox WHERE origin = ? AND message_id = ? AND "
         "accepted = 1");
  if (auto st = s.status(); !st.ok()) return st;
  s.Bind(1, origin).Bind(2, message_id);
  return s.Next();
}

absl::StatusOr<std::optional<DedupEntry>> SqlStore::FindRelayedOn(
    sql::Tx* db, const std::string& key, const std::string& deliver_to) {
  Stmt s(db,
         "SELECT m.outer_digest, COALESCE(CASE WHEN d.state IN "
         "('delivered', 'rejected') THEN d.receipt END, d.custody_out) FROM "
         "deliveries d JOIN messages m ON m.id = d.message_id WHERE "
         "d.message_id = ? AND d.peer = ?");
  if (auto st = s.status(); !st.ok()) return st;
  s.Bind(1, key).Bind(2, deliver_to);
  if (!s.Next()) return std::optional<DedupEntry>();
  return std::optional<DedupEntry>(DedupEntry{s.Text(0), s.Text(1)});
}

absl::StatusOr<std::optional<DedupEntry>> SqlStore::FindInboxOn(
    sql::Tx* db, const std::string& origin, const std::string& id) {
  Stmt s(db,
         "SELECT outer_digest, receipt FROM inbox WHERE origin = ? AND "
         "message_id = ?");
  if (auto st = s.status(); !st.ok()) return st;
  s.Bind(1, origin).Bind(2, id);
  if (!s.Next()) return std::optional<DedupEntry>();
  return std::optional<DedupEntry>(DedupEntry{s.Text(0), s.Text(1)});
}

}  // namespace sql_store
}  // namespace kontor
