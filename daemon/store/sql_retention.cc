// RetentionStore: purge candidates by kind, purge and erase orders; erasure
// destroys the content key.

#include "daemon/store/sql_store_internal.h"

namespace kontor {
namespace sql_store {

absl::StatusOr<std::vector<PurgeCandidate>> SqlStore::PurgeCandidates(
    const std::map<std::string, uint32_t>& days_by_kind, uint32_t default_days,
    int64_t now_ms, size_t limit) {
  absl::MutexLock l(&read_mu_);
  std::vector<PurgeCandidate> out;
  for (const RetentionCutoff& rule :
       RetentionCutoffs(MessageKinds(), days_by_kind, default_days, now_ms)) {
    const std::string& kind = rule.kind;
    const uint32_t days = rule.days;
    const int64_t cutoff = rule.cutoff_ms;
    Stmt r(reader_,
           "SELECT message_id, origin, received_ms FROM inbox WHERE "
           "accepted = 1 AND purged_ms = 0 AND kind = ? AND received_ms < ? "
           "ORDER BY received_ms LIMIT ?");
    r.Bind(1, kind).Bind(2, cutoff).Bind(3, static_cast<int64_t>(limit));
    while (r.Next() && out.size() < limit) {
      out.push_back(
          PurgeCandidate{r.Text(0), r.Text(1), false, kind, r.Int(2), days});
    }
    Stmt m(reader_,
           "SELECT id, created_ms FROM messages WHERE origin = '' AND "
           "purged_ms = 0 AND payload IS NOT NULL AND kind = ? AND "
           "created_ms < ? ORDER BY created_ms LIMIT ?");
    m.Bind(1, kind).Bind(2, cutoff).Bind(3, static_cast<int64_t>(limit));
    while (m.Next() && out.size() < limit) {
      out.push_back(PurgeCandidate{m.Text(0), "", true, kind, m.Int(1), days});
    }
  }
  return out;
}

absl::Status SqlStore::Purge(const std::vector<PurgeCandidate>& messages,
                             const std::string& actor, int64_t now_ms) {
  return Write([&](sql::Tx* db) -> absl::Status {
    for (const PurgeCandidate& c : messages) {
      if (auto st = EraseOn(db, c, actor, now_ms, nullptr); !st.ok()) {
        return st;
      }
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<EraseOrder>> SqlStore::ListEraseOrders(
    const std::string& order_id) {
  absl::MutexLock l(&read_mu_);
  Stmt s(reader_,
         "SELECT origin, message_id, order_id, order_kind, reason, "
         "received_ms, applied_ms FROM erase_orders WHERE (? = '' OR "
         "order_id = ?) ORDER BY received_ms, message_id");
  if (auto st = s.status(); !st.ok()) return st;
  s.Bind(1, order_id).Bind(2, order_id);
  std::vector<EraseOrder> out;
  while (s.Next()) {
    out.push_back(EraseOrder{s.Text(0), s.Text(1), s.Text(2), s.Text(3),
                             s.Text(4), s.Int(5), s.Int(6)});
  }
  return out;
}

absl::Status SqlStore::EraseOn(sql::Tx* db, const PurgeCandidate& c,
                               const std::string& actor, int64_t now_ms,
                               bool* erased) {
  if (erased != nullptr) *erased = false;
  std::string kind = c.kind;
  std::string key_id;
  {
    Stmt q(db, c.sent ? "SELECT kind, key_id FROM messages WHERE id = ? "
                        "AND origin = '' AND purged_ms = 0"
                      : "SELECT kind, key_id FROM inbox WHERE message_id = "
                        "? AND origin = ? AND accepted = 1 AND purged_ms = 0");
    q.Bind(1, c.message_id);
    if (!c.sent) q.Bind(2, c.origin);
    if (!q.Next()) return q.Done("erase");  // none, or gone (or failed)
    if (kind.empty()) kind = q.Text(0);
    key_id = q.Text(1);
  }
  Stmt u(db, c.sent ? "UPDATE messages SET payload = NULL, subject = '', "
                      "inner_signed = NULL, purged_ms = ? WHERE id = ? AND "
                      "origin = '' AND purged_ms = 0"
                    : "UPDATE inbox SET payload = NULL, inner_signed = "
                      "NULL, subject = '', purged_ms = ? WHERE "
                      "message_id = ? AND origin = ? AND purged_ms = 0");
  u.Bind(1, now_ms).Bind(2, c.message_id);
  if (!c.sent) u.Bind(3, c.origin);
  if (auto st = u.Run("erase"); !st.ok()) return st;
  if (db->Changes() == 0) return absl::OkStatus();
  if (c.sent) {
    DestroyAfterCommit(KeyIdOr(key_id, MessageKeyId(c.message_id)));
    {
      Stmt up(db, "SELECT id, key_id FROM uploads WHERE message_id = ?");
      up.Bind(1, c.message_id);
      while (up.Next()) {
        DestroyAfterCommit(KeyIdOr(up.Text(1), UploadKeyId(up.Text(0))));
      }
    }
    // File names and types may say who the files are about.
    Stmt names(db,
               "UPDATE uploads SET name = '', content_type = '' WHERE "
               "message_id = ?");
    names.Bind(1, c.message_id);
    if (auto st = names.Run("erase attachment names"); !st.ok()) return st;
  } else {
    DestroyAfterCommit(KeyIdOr(key_id, InboxKeyId(c.origin, c.message_id)));
  }
  if (erased != nullptr) *erased = true;
  const std::string detail =
      !c.detail.empty() ? c.detail
                        : absl::StrCat("content purged after its retention of ",
                                       c.days, " days");
  return AppendAuditOn(
      db,
      {AuditEntry{std::string(kAuditErase), actor, c.message_id, c.origin, "",
                  kind, "", detail}},
      now_ms);
}

absl::Status SqlStore::ApplyEraseOrders(sql::Tx* db, const InboxRecord& r) {
  const std::string actor = absl::StrCat("node:", r.origin);
  {
    Stmt q(db,
           "SELECT order_id, order_kind, reason FROM erase_orders WHERE "
           "origin = ? AND message_id = ? AND applied_ms = 0 LIMIT 1");
    q.Bind(1, r.origin).Bind(2, r.message_id);
    if (q.Next()) {
      const std::string detail =
          absl::StrCat("erased on arrival by ", q.Text(1), " ", q.Text(0),
                       " (received before it)");
      if (auto st = EraseOn(db,
                            PurgeCandidate{r.message_id, r.origin, false,
                                           r.kind, 0, 0, detail},
                            actor, r.received_ms, nullptr);
          !st.ok()) {
        return st;
      }
      Stmt a(db,
             "UPDATE erase_orders SET applied_ms = ? WHERE origin = ? AND "
             "message_id = ? AND applied_ms = 0");
      a.Bind(1, r.received_ms).Bind(2, r.origin).Bind(3, r.message_id);
      if (auto st = a.Run("apply erase order"); !st.ok()) return st;
    }
  }
  for (const std::string& target : r.erase_targets) {
    bool erased = false;
    const std::string detail =
        absl::StrCat("erased by ", r.kind, " ", r.message_id);
    if (auto st = EraseOn(
            db, PurgeCandidate{target, r.origin, false, "", 0, 0, detail},
            actor, r.received_ms, &erased);
        !st.ok()) {
      return st;
    }
    bool present = erased;
    if (!present) {
      Stmt q(db,
             "SELECT 1 FROM inbox WHERE origin = ? AND message_id = ? AND "
             "accepted = 1");
      q.Bind(1, r.origin).Bind(2, target);
      present = q.Next();
    }
    Stmt k(db,
           "INSERT INTO erase_orders(origin, message_id, order_id, "
           "order_kind, reason, received_ms, applied_ms) "
           "VALUES(?,?,?,?,?,?,?) ON CONFLICT DO NOTHING");
    k.Bind(1, r.origin).Bind(2, target).Bind(3, r.message_id);
    // No reason text: it is message content, and this row outlives it.
    k.Bind(4, r.kind).Bind(5, "").Bind(6, r.received_ms);
    k.Bind(7, present ? r.received_ms : 0);
    if (auto st = k.Run("keep erase order"); !st.ok()) return st;
  }
  return absl::OkStatus();
}

}  // namespace sql_store
}  // namespace kontor
