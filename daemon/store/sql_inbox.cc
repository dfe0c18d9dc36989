// InboxStore: reading the inbox, acknowledgements, delivery events, waiting for
// new messages.

#include "daemon/store/sql_store_internal.h"

namespace kontor {
namespace sql_store {

absl::StatusOr<std::vector<DeliveryEvent>> SqlStore::ListEvents(
    uint64_t after_seq, size_t limit) {
  absl::MutexLock l(&read_mu_);
  Stmt s(reader_,
         "SELECT seq, message_id, peer, state, reason, time_ms FROM events "
         "WHERE seq > ? ORDER BY seq LIMIT ?");
  s.Bind(1, static_cast<int64_t>(after_seq));
  s.Bind(2, static_cast<int64_t>(limit));
  std::vector<DeliveryEvent> out;
  while (s.Next()) {
    out.push_back(DeliveryEvent{static_cast<uint64_t>(s.Int(0)), s.Text(1),
                                s.Text(2), s.Text(3), s.Text(4), s.Int(5)});
  }
  return out;
}

absl::StatusOr<uint64_t> SqlStore::MaxEventSeq() {
  absl::MutexLock l(&read_mu_);
  Stmt s(reader_, "SELECT COALESCE(MAX(seq), 0) FROM events");
  if (!s.Next()) return NoRow(s, "events");
  return static_cast<uint64_t>(s.Int(0));
}

absl::StatusOr<bool> SqlStore::Ack(const std::string& origin,
                                   const std::string& message_id) {
  bool already = false;
  bool found = false;
  absl::Status s = Write([&](sql::Tx* db) -> absl::Status {
    Stmt q(db,
           "SELECT acked FROM inbox WHERE origin = ? AND message_id = ? AND "
           "accepted = 1");
    q.Bind(1, origin).Bind(2, message_id);
    if (!q.Next()) return q.Done("ack");  // not here, or failed
    found = true;
    already = q.Int(0) != 0;
    Stmt u(db,
           "UPDATE inbox SET acked = 1 WHERE origin = ? AND message_id = ?");
    u.Bind(1, origin).Bind(2, message_id);
    return u.Run("ack");
  });
  if (!s.ok()) return s;
  if (!found) return absl::NotFoundError("no such message in the inbox");
  return already;
}

absl::StatusOr<std::vector<InboxRecord>> SqlStore::ListInbox(
    const InboxQuery& q) {
  absl::MutexLock l(&read_mu_);
  Stmt s(
      reader_,
      absl::StrCat("SELECT ", kInboxCols,
                   " FROM inbox WHERE accepted = 1 AND seq > ? "
                   "AND (? = 0 OR seq < ?) AND (? = 0 OR acked = 0) "
                   "AND (? = '' OR kind = ?) AND (? = '' OR origin = ?) "
                   "AND (? = '' OR case_ref = ? COLLATE NOCASE) ORDER BY seq ",
                   q.newest_first ? "DESC" : "ASC", " LIMIT ?")
          .c_str());
  if (auto st = s.status(); !st.ok()) return st;
  s.Bind(1, static_cast<int64_t>(q.after_seq))
      .Bind(2, static_cast<int64_t>(q.before_seq))
      .Bind(3, static_cast<int64_t>(q.before_seq))
      .Bind(4, q.unread_only ? 1 : 0);
  s.Bind(5, q.kind).Bind(6, q.kind).Bind(7, q.origin).Bind(8, q.origin);
  s.Bind(9, q.case_ref).Bind(10, q.case_ref);
  s.Bind(11, static_cast<int64_t>(q.limit));
  std::vector<InboxRecord> out;
  while (s.Next()) {
    out.push_back(ReadInbox(s));
    if (auto st = UnsealInbox(&out.back()); !st.ok()) return st;
  }
  return out;
}

absl::StatusOr<std::vector<InboxRecord>> SqlStore::GetInbox(
    const std::string& message_id, const std::string& origin) {
  absl::MutexLock l(&read_mu_);
  Stmt s(reader_, absl::StrCat("SELECT ", kInboxCols,
                               " FROM inbox WHERE message_id = ? AND "
                               "(? = '' OR origin = ?) AND accepted = 1 "
                               "ORDER BY seq LIMIT 16")
                      .c_str());
  if (auto st = s.status(); !st.ok()) return st;
  s.Bind(1, message_id).Bind(2, origin).Bind(3, origin);
  std::vector<InboxRecord> out;
  while (s.Next()) {
    out.push_back(ReadInbox(s));
    if (auto st = UnsealInbox(&out.back()); !st.ok()) return st;
  }
  return out;
}

void SqlStore::WaitInbox(uint64_t after_seq, int64_t timeout_ms) {
  absl::MutexLock l(&seq_mu_);
  auto more = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(seq_mu_) {
    return max_seq_ > after_seq;
  };
  seq_mu_.AwaitWithTimeout(absl::Condition(&more),
                           absl::Milliseconds(timeout_ms));
}

}  // namespace sql_store
}  // namespace kontor
