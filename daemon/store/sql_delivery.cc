// DeliveryStore: what the outbox takes (the 3:1 share of rules.h), settles,
// defers, expires and suspends; peer state; returns; chunk collection.

#include "daemon/store/sql_store_internal.h"

namespace kontor {
namespace sql_store {

absl::Status SqlStore::MarkAttempted(const std::string& peer,
                                     const std::vector<std::string>& ids,
                                     const std::string& error, int64_t now_ms,
                                     int64_t not_before_ms) {
  return Write([&](sql::Tx* db) -> absl::Status {
    for (const std::string& id : ids) {
      Stmt s(db,
             "UPDATE deliveries SET attempts = attempts + 1, last_error = ?, "
             "updated_ms = ?, not_before_ms = ?, deferrals = deferrals + "
             "CASE WHEN ? > 0 THEN 1 ELSE 0 END WHERE message_id = ? AND peer "
             "= ? AND state = ?");
      s.Bind(1, error).Bind(2, now_ms).Bind(3, not_before_ms);
      s.Bind(4, not_before_ms).Bind(5, id).Bind(6, peer).Bind(7, kStateQueued);
      if (auto st = s.Run("mark attempted"); !st.ok()) return st;
    }
    return absl::OkStatus();
  });
}

absl::Status SqlStore::Settle(const std::vector<Settlement>& settlements) {
  return Write([&](sql::Tx* db) -> absl::Status {
    for (const Settlement& x : settlements) {
      // Which state may become which: rules.h (StatesBefore). A settlement
      // into a state no settlement leads to is a caller's mistake.
      if (x.state != kStateForwarded &&
          StatesBefore(DeliveryMove::kSettle, x.state).empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "no delivery is settled as '", Printable(x.state), "'"));
      }
      if (x.state == kStateForwarded) {
        // Custody by a relay: the end-to-end receipt is still to come.
        Stmt f(db,
               absl::StrCat("UPDATE deliveries SET state = 'forwarded', "
                            "custody = ?, reason = ?, updated_ms = ?, "
                            "last_error = '', attempts = attempts + 1 "
                            "WHERE message_id = ? AND peer = ? AND ",
                            StateIn(DeliveryMove::kForward, kStateForwarded))
                   .c_str());
        f.BindBlob(1, x.receipt).Bind(2, x.reason).Bind(3, x.time_ms);
        f.Bind(4, x.message_id).Bind(5, x.peer);
        if (auto st = f.Run("forwarded"); !st.ok()) return st;
        if (db->Changes() > 0) {
          if (auto st = AddEvent(db, x.message_id, x.peer, x.state, x.reason,
                                 x.time_ms);
              !st.ok()) {
            return st;
          }
        }
        continue;
      }
      Stmt s(db, absl::StrCat(
                     "UPDATE deliveries SET state = ?, reason = ?, "
                     "receipt = ?, updated_ms = ?, last_error = '', "
                     "attempts = attempts + CASE state WHEN 'queued' THEN 1 "
                     "ELSE 0 END "
                     "WHERE message_id = ? AND peer = ? AND ",
                     StateIn(DeliveryMove::kSettle, x.state))
                     .c_str());
      s.Bind(1, x.state).Bind(2, x.reason);
      if (x.receipt.empty()) {
        s.BindNull(3);
      } else {
        s.BindBlob(3, x.receipt);
      }
      s.Bind(4, x.time_ms).Bind(5, x.message_id).Bind(6, x.peer);
      if (auto st = s.Run("settle"); !st.ok()) return st;
      const int settled = db->Changes();
      if (settled > 0) {
        if (auto st = AddEvent(db, x.message_id, x.peer, x.state, x.reason,
                               x.time_ms);
            !st.ok()) {
          return st;
        }
        if (x.state == kStateRejected) {
          // A refusal by the recipient, signed.
          if (auto st = AppendAuditOn(db, {RefusalAuditEntry(x)}, x.time_ms);
              !st.ok()) {
            return st;
          }
        }
      }
      if (!x.return_to.empty() && !x.receipt.empty() && settled > 0) {
        Stmt r(db,
               "INSERT INTO returns(to_peer, receipt, created_ms) "
               "VALUES(?,?,?)");
        r.Bind(1, x.return_to).BindBlob(2, x.receipt).Bind(3, x.time_ms);
        if (auto st = r.Run("queue return"); !st.ok()) return st;
      }
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<int64_t> SqlStore::EarliestQueuedExpiryMs(
    const std::string& peer) {
  absl::MutexLock l(&read_mu_);
  Stmt s(reader_,
         "SELECT COALESCE(MIN(CASE state WHEN 'queued' THEN expires_ms ELSE "
         "expires_ms + ? END), 0) FROM deliveries WHERE peer = ? AND state "
         "IN ('queued', 'forwarded')");
  s.Bind(1, kForwardedExpiryGraceMs).Bind(2, peer);
  if (!s.Next()) return NoRow(s, "expiry");
  return s.Int(0);
}

absl::StatusOr<uint32_t> SqlStore::ExpireOverdue(const std::string& peer,
                                                 int64_t now_ms) {
  uint32_t changed = 0;
  absl::Status s = Write([&](sql::Tx* db) -> absl::Status {
    Stmt ev(db,
            "INSERT INTO events(message_id, peer, state, reason, time_ms) "
            "SELECT message_id, peer, 'expired', CASE state WHEN 'queued' "
            "THEN 'expired before delivery' ELSE 'expired without an "
            "end-to-end receipt (forwarded by a relay)' END, ? FROM "
            "deliveries WHERE peer = ? AND ((state = 'queued' AND "
            "expires_ms < ?) OR (state = 'forwarded' AND expires_ms < ?)) "
            "AND message_id NOT LIKE '%/%'");
    ev.Bind(1, now_ms).Bind(2, peer).Bind(3, now_ms);
    ev.Bind(4, now_ms - kForwardedExpiryGraceMs);
    if (auto st = ev.Run("expiry events"); !st.ok()) return st;
    Stmt u(db,
           "UPDATE deliveries SET state = 'expired', reason = 'expired "
           "before delivery', updated_ms = ?, not_before_ms = CASE WHEN "
           "attempts > 0 THEN 0 ELSE -1 END WHERE peer = ? AND state = "
           "'queued' AND expires_ms < ?");
    u.Bind(1, now_ms).Bind(2, peer).Bind(3, now_ms);
    if (auto st = u.Run("expire"); !st.ok()) return st;
    changed = static_cast<uint32_t>(db->Changes());
    // Forwarded ones whose end-to-end receipt never came back: a late
    // receipt still settles them as delivered.
    Stmt f(db,
           "UPDATE deliveries SET state = 'expired', reason = 'expired "
           "without an end-to-end receipt (forwarded by a relay)', "
           "updated_ms = ?, not_before_ms = -1 WHERE peer = ? AND state = "
           "'forwarded' AND expires_ms < ?");
    f.Bind(1, now_ms).Bind(2, peer).Bind(3, now_ms - kForwardedExpiryGraceMs);
    if (auto st = f.Run("expire forwarded"); !st.ok()) return st;
    changed += static_cast<uint32_t>(db->Changes());
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return changed;
}

absl::StatusOr<std::vector<PendingDelivery>> SqlStore::FinalAttempts(
    const std::string& peer, size_t limit, int64_t now_ms, int64_t window_ms) {
  absl::MutexLock l(&read_mu_);
  Stmt s(reader_, absl::StrCat(kPendingSelect,
                               "d.peer = ? AND d.state = 'expired' AND "
                               "d.not_before_ms = 0 AND "
                               "d.attempts > 0 AND d.expires_ms > ? ORDER BY "
                               "d.expires_ms LIMIT ?")
                      .c_str());
  if (auto st = s.status(); !st.ok()) return st;
  s.Bind(1, peer).Bind(2, now_ms - window_ms);
  s.Bind(3, static_cast<int64_t>(limit));
  std::vector<PendingDelivery> out;
  while (s.Next()) {
    out.push_back(ReadPending(s));
  }
  return out;
}

absl::Status SqlStore::FinalAttemptMade(const std::string& peer,
                                        const std::vector<std::string>& ids) {
  return Write([&](sql::Tx* db) -> absl::Status {
    for (const std::string& id : ids) {
      Stmt u(db,
             "UPDATE deliveries SET not_before_ms = -1 WHERE message_id = ? "
             "AND peer = ? AND state = 'expired'");
      u.Bind(1, id).Bind(2, peer);
      if (auto st = u.Run("final attempt"); !st.ok()) return st;
    }
    return absl::OkStatus();
  });
}

absl::Status SqlStore::Suspend(const std::string& message_id,
                               const std::string& peer,
                               const std::string& reason, int64_t now_ms) {
  return Write([&](sql::Tx* db) -> absl::Status {
    Stmt u(db, absl::StrCat("UPDATE deliveries SET state = 'suspended', "
                            "reason = ?, updated_ms = ? WHERE message_id = "
                            "? AND peer = ? AND ",
                            StateIn(DeliveryMove::kSuspend, kStateSuspended))
                   .c_str());
    u.Bind(1, reason).Bind(2, now_ms).Bind(3, message_id).Bind(4, peer);
    if (auto st = u.Run("suspend"); !st.ok()) return st;
    if (db->Changes() == 0) return absl::OkStatus();
    return AddEvent(db, message_id, peer, kStateSuspended, reason, now_ms);
  });
}

absl::Status SqlStore::PutPeerState(const PeerState& p) {
  return Write([&](sql::Tx* db) -> absl::Status {
    Stmt s(db,
           "INSERT INTO peers(peer, failures, next_attempt_ms, last_error, "
           "last_success_ms) VALUES(?,?,?,?,?) ON CONFLICT(peer) DO UPDATE "
           "SET failures = excluded.failures, next_attempt_ms = "
           "excluded.next_attempt_ms, last_error = excluded.last_error, "
           "last_success_ms = excluded.last_success_ms");
    s.Bind(1, p.peer).Bind(2, static_cast<int64_t>(p.failures));
    s.Bind(3, p.next_attempt_ms).Bind(4, p.last_error);
    s.Bind(5, p.last_success_ms);
    return s.Run("put peer state");
  });
}

absl::StatusOr<std::vector<PendingDelivery>> SqlStore::NextDeliveries(
    const std::vector<std::string>& peer, size_t limit, int64_t now_ms) {
  absl::MutexLock l(&read_mu_);
  std::vector<PendingDelivery> flash, urgent, routine;
  // Priorities are stored as 1..3 (InsertOutgoing clamps), so each class
  // is one value and the queue index yields rows in order: no sort, and
  // only `limit` envelopes are read.
  if (auto s = Due(peer, 3, limit, now_ms, &flash); !s.ok()) return s;
  const size_t rest = limit - flash.size();
  if (rest > 0) {
    // Fetch each class up to the whole rest, then share it.
    if (auto s = Due(peer, 2, rest, now_ms, &urgent); !s.ok()) return s;
    if (auto s = Due(peer, 1, rest, now_ms, &routine); !s.ok()) return s;
  }
  // The share between the classes: rules.h.
  return ComposeBatch(std::move(flash), std::move(urgent), std::move(routine),
                      limit);
}

absl::StatusOr<int64_t> SqlStore::NextDeferredDueMs(const std::string& peer,
                                                    int64_t now_ms) {
  absl::MutexLock l(&read_mu_);
  Stmt s(reader_,
         "SELECT COALESCE(MIN(not_before_ms), 0) FROM deliveries WHERE "
         "peer = ? AND state = 'queued' AND not_before_ms > ?");
  s.Bind(1, peer).Bind(2, now_ms);
  if (!s.Next()) return NoRow(s, "due");
  return s.Int(0);
}

absl::StatusOr<std::vector<ChunkHolder>> SqlStore::SettledChunkHolders(
    int64_t expired_before_ms, size_t limit) {
  absl::MutexLock l(&read_mu_);
  Stmt s(reader_,
         "SELECT m.id, m.origin, m.uploads FROM messages m WHERE m.chunks > "
         "0 AND m.chunks_removed_ms = 0 AND NOT EXISTS (SELECT 1 FROM "
         "deliveries d WHERE d.message_id = m.id AND (d.state IN "
         "('queued', 'suspended', 'forwarded') OR (d.state = 'expired' AND "
         "d.updated_ms >= ?))) LIMIT ?");
  if (auto st = s.status(); !st.ok()) return st;
  s.Bind(1, expired_before_ms).Bind(2, static_cast<int64_t>(limit));
  std::vector<ChunkHolder> out;
  while (s.Next()) {
    ChunkHolder h;
    h.key = s.Text(0);
    h.origin = s.Text(1);
    const std::string uploads = s.Text(2);
    if (!uploads.empty()) h.uploads = absl::StrSplit(uploads, ',');
    out.push_back(std::move(h));
  }
  return out;
}

absl::Status SqlStore::MarkChunksRemoved(const std::vector<std::string>& keys,
                                         int64_t now_ms) {
  return Write([&](sql::Tx* db) -> absl::Status {
    for (const std::string& key : keys) {
      Stmt u(db,
             "UPDATE messages SET chunks_removed_ms = ? WHERE id = ? AND "
             "chunks_removed_ms = 0");
      u.Bind(1, now_ms).Bind(2, key);
      if (auto st = u.Run("mark chunks removed"); !st.ok()) return st;
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<PendingReturn>> SqlStore::NextReturns(
    const std::string& peer, size_t limit) {
  absl::MutexLock l(&read_mu_);
  Stmt s(reader_,
         "SELECT id, receipt FROM returns WHERE to_peer = ? ORDER BY id "
         "LIMIT ?");
  s.Bind(1, peer).Bind(2, static_cast<int64_t>(limit));
  std::vector<PendingReturn> out;
  while (s.Next()) {
    out.push_back(PendingReturn{s.Int(0), s.Text(1)});
  }
  return out;
}

absl::Status SqlStore::ReturnsDone(const std::vector<int64_t>& ids) {
  return Write([&](sql::Tx* db) -> absl::Status {
    for (int64_t id : ids) {
      Stmt d(db, "DELETE FROM returns WHERE id = ?");
      d.Bind(1, id);
      if (auto st = d.Run("return done"); !st.ok()) return st;
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<PeerState> SqlStore::GetPeerState(const std::string& peer) {
  absl::MutexLock l(&read_mu_);
  Stmt s(reader_,
         "SELECT failures, next_attempt_ms, last_error, last_success_ms "
         "FROM peers WHERE peer = ?");
  s.Bind(1, peer);
  PeerState p;
  p.peer = peer;
  if (s.Next()) {
    p.failures = static_cast<uint32_t>(s.Int(0));
    p.next_attempt_ms = s.Int(1);
    p.last_error = s.Text(2);
    p.last_success_ms = s.Int(3);
  }
  return p;
}

absl::Status SqlStore::Due(const std::vector<std::string>& peers, int priority,
                           size_t limit, int64_t now_ms,
                           std::vector<PendingDelivery>* out) {
  if (peers.empty()) return absl::OkStatus();
  // One peer: the queue index yields rows in order. Several (a next hop
  // for routed recipients): SQLite merges them with a sort.
  Stmt s(reader_, absl::StrCat(kPendingSelect,
                               peers.size() == 1 ? std::string("d.peer = ?")
                                                 : PeerIn(peers.size()),
                               " AND d.state = 'queued' AND d.priority = ? AND "
                               "d.not_before_ms <= ? AND d.expires_ms >= ? "
                               "ORDER BY d.created_ms LIMIT ?")
                      .c_str());
  if (auto st = s.status(); !st.ok()) return st;
  int i = 1;
  for (const std::string& p : peers) s.Bind(i++, p);
  s.Bind(i, priority).Bind(i + 1, now_ms).Bind(i + 2, now_ms);
  s.Bind(i + 3, static_cast<int64_t>(limit));
  while (s.Next()) out->push_back(ReadPending(s));
  if (auto st = s.Done("due deliveries"); !st.ok()) return st;
  return absl::OkStatus();
}

}  // namespace sql_store
}  // namespace kontor
