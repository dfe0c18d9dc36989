// QueryStore: deliveries by message and by state, queues, threads, messages by
// id.

#include "daemon/store/sql_store_internal.h"

namespace kontor {
namespace sql_store {

absl::StatusOr<std::vector<DeliveryRow>> SqlStore::Deliveries(
    const std::string& message_id) {
  absl::MutexLock l(&read_mu_);
  Stmt s(reader_, absl::StrCat("SELECT ", kDeliveryCols,
                               " FROM deliveries WHERE message_id = ? "
                               "ORDER BY peer")
                      .c_str());
  s.Bind(1, message_id);
  std::vector<DeliveryRow> out;
  while (s.Next()) out.push_back(ReadDelivery(s));
  return out;
}

absl::StatusOr<std::vector<DeliveryRow>> SqlStore::ListDeliveries(
    const std::string& state, size_t limit, const std::string& submitter) {
  absl::MutexLock l(&read_mu_);
  Stmt s(
      reader_,
      absl::StrCat("SELECT ", kDeliveryCols,
                   " FROM deliveries WHERE ((? = '' AND state = 'queued') "
                   "OR state = ?) AND (? = '' OR message_id IN (SELECT id FROM "
                   "messages WHERE submitter = ?)) ORDER BY priority DESC, "
                   "created_ms LIMIT ?")
          .c_str());
  s.Bind(1, state).Bind(2, state).Bind(3, submitter).Bind(4, submitter);
  s.Bind(5, static_cast<int64_t>(limit));
  std::vector<DeliveryRow> out;
  while (s.Next()) out.push_back(ReadDelivery(s));
  return out;
}

absl::StatusOr<QueueStats> SqlStore::PeerQueue(const std::string& peer) {
  absl::MutexLock l(&read_mu_);
  Stmt s(reader_,
         "SELECT COUNT(*), COALESCE(MIN(created_ms), 0) FROM deliveries "
         "WHERE peer = ? AND state = 'queued'");
  s.Bind(1, peer);
  QueueStats q;
  if (s.Next()) {
    q.depth = static_cast<uint64_t>(s.Int(0));
    q.oldest_created_ms = s.Int(1);
  }
  return q;
}

absl::StatusOr<std::vector<ThreadEntry>> SqlStore::Thread(
    const std::string& case_ref) {
  absl::MutexLock l(&read_mu_);
  std::vector<ThreadEntry> out;
  {
    Stmt s(reader_,
           "SELECT m.id, m.kind, m.subject, m.case_ref, m.in_reply_to, "
           "m.created_ms, (SELECT group_concat(peer) FROM deliveries d "
           "WHERE d.message_id = m.id), m.submitter, m.key_id, m.purged_ms "
           "FROM messages m WHERE m.case_ref = ? COLLATE NOCASE "
           "AND m.origin = ''");
    if (auto st = s.status(); !st.ok()) return st;
    s.Bind(1, case_ref);
    while (s.Next()) {
      ThreadEntry t;
      t.message_id = s.Text(0);
      t.sent = true;
      t.kind = s.Text(1);
      auto subject = Unseal(KeyIdOr(s.Text(8), MessageKeyId(t.message_id)),
                            "subject", s.Text(2));
      if (!subject.ok()) return subject.status();
      t.subject = std::move(*subject);
      t.case_ref = s.Text(3);
      t.in_reply_to = s.Text(4);
      t.created_ms = s.Int(5);
      const std::string peers = s.Text(6);
      if (!peers.empty()) t.peers = absl::StrSplit(peers, ',');
      t.submitter = s.Text(7);
      t.purged_ms = s.Int(9);
      out.push_back(std::move(t));
    }
  }
  {
    Stmt s(reader_,
           "SELECT message_id, origin, kind, subject, case_ref, in_reply_to, "
           "created_ms, key_id, purged_ms FROM inbox WHERE case_ref = ? "
           "COLLATE NOCASE AND accepted = 1");
    if (auto st = s.status(); !st.ok()) return st;
    s.Bind(1, case_ref);
    while (s.Next()) {
      ThreadEntry t;
      t.message_id = s.Text(0);
      t.origin = s.Text(1);
      t.kind = s.Text(2);
      auto subject =
          Unseal(KeyIdOr(s.Text(7), InboxKeyId(t.origin, t.message_id)),
                 "subject", s.Text(3));
      if (!subject.ok()) return subject.status();
      t.subject = std::move(*subject);
      t.case_ref = s.Text(4);
      t.in_reply_to = s.Text(5);
      t.created_ms = s.Int(6);
      t.purged_ms = s.Int(8);
      out.push_back(std::move(t));
    }
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const ThreadEntry& a, const ThreadEntry& b) {
                     return a.created_ms < b.created_ms;
                   });
  return out;
}

absl::StatusOr<std::vector<KnownMessage>> SqlStore::FindByIdPrefix(
    const std::string& prefix, size_t limit) {
  absl::MutexLock l(&read_mu_);
  // A range over the indexed id: every id that starts with the prefix.
  const std::string hi = prefix + "\x7f";
  std::vector<KnownMessage> out;
  {
    Stmt s(reader_,
           "SELECT id, kind, case_ref, created_ms, submitter, purged_ms "
           "FROM messages WHERE id >= ? AND id < ? AND origin = '' "
           "LIMIT ?");
    if (auto st = s.status(); !st.ok()) return st;
    s.Bind(1, prefix).Bind(2, hi).Bind(3, static_cast<int64_t>(limit));
    while (s.Next()) {
      KnownMessage k;
      k.message_id = s.Text(0);
      k.sent = true;
      k.kind = s.Text(1);
      k.case_ref = s.Text(2);
      k.created_ms = s.Int(3);
      k.submitter = s.Text(4);
      k.purged_ms = s.Int(5);
      out.push_back(std::move(k));
    }
  }
  {
    Stmt s(reader_,
           "SELECT message_id, origin, kind, case_ref, created_ms, "
           "purged_ms FROM inbox WHERE message_id >= ? AND message_id < ? "
           "AND accepted = 1 LIMIT ?");
    if (auto st = s.status(); !st.ok()) return st;
    // At most `limit` in all, sent and received together.
    s.Bind(1, prefix).Bind(2, hi).Bind(
        3, static_cast<int64_t>(limit - out.size()));
    while (s.Next()) {
      KnownMessage k;
      k.message_id = s.Text(0);
      k.origin = s.Text(1);
      k.kind = s.Text(2);
      k.case_ref = s.Text(3);
      k.created_ms = s.Int(4);
      k.purged_ms = s.Int(5);
      out.push_back(std::move(k));
    }
  }
  return out;
}

absl::StatusOr<std::optional<KnownMessage>> SqlStore::FindMessage(
    const std::string& message_id) {
  absl::MutexLock l(&read_mu_);
  KnownMessage k;
  std::string key_id;
  {
    Stmt s(reader_,
           "SELECT kind, case_ref, payload, created_ms, submitter, "
           "purged_ms, inner_signed, key_id, inner_digest FROM messages "
           "WHERE id = ? AND origin = ''");
    s.Bind(1, message_id);
    if (s.Next()) {
      k = KnownMessage{message_id, "",       true,      s.Text(0), s.Text(1),
                       s.Text(2),  s.Int(3), s.Text(4), s.Int(5)};
      k.inner_signed = s.Text(6);
      key_id = KeyIdOr(s.Text(7), MessageKeyId(message_id));
      k.inner_digest = s.Text(8);
    }
  }
  if (key_id.empty()) {
    Stmt s(reader_,
           "SELECT origin, kind, case_ref, payload, created_ms, purged_ms, "
           "inner_signed, key_id FROM inbox WHERE message_id = ? AND "
           "accepted = 1 ORDER BY seq LIMIT 1");
    s.Bind(1, message_id);
    if (!s.Next()) return std::optional<KnownMessage>();
    k = KnownMessage{message_id, s.Text(0), false, s.Text(1), s.Text(2),
                     s.Text(3),  s.Int(4),  "",    s.Int(5)};
    k.inner_signed = s.Text(6);
    key_id = KeyIdOr(s.Text(7), InboxKeyId(k.origin, message_id));
  }
  auto payload = Unseal(key_id, "payload", std::move(k.payload));
  if (!payload.ok()) return payload.status();
  k.payload = std::move(*payload);
  auto inner = Unseal(key_id, "inner_signed", std::move(k.inner_signed));
  if (!inner.ok()) return inner.status();
  k.inner_signed = std::move(*inner);
  return std::optional<KnownMessage>(std::move(k));
}

}  // namespace sql_store
}  // namespace kontor
