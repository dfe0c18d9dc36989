#include "daemon/store/sql_store.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "daemon/common/ids.h"
#include "daemon/common/kinds.h"
#include "daemon/common/log.h"
#include "daemon/crypto/primitives.h"
#include "daemon/store/check.h"
#include "daemon/store/content_keys.h"
#include "daemon/store/rules.h"
#include "daemon/store/sql.h"

namespace kontor {

std::string RelayKey(absl::string_view origin, absl::string_view message_id) {
  return absl::StrCat(origin, "/", message_id);
}

namespace {

using sql::Stmt;

// The failure of a query that always yields one row.
absl::Status NoRow(const Stmt& s, absl::string_view what) {
  absl::Status st = s.Done(what);
  return st.ok() ? absl::InternalError(absl::StrCat(what, ": no row")) : st;
}

// "state IN ('a', 'b')" for the states the rules (rules.h) allow before a
// move; "FALSE" if there are none. The states are the constants of
// store.h (lower-case words), never outside input.
std::string StateIn(DeliveryMove move, absl::string_view to) {
  const std::vector<absl::string_view>& states = StatesBefore(move, to);
  if (states.empty()) return "FALSE";
  std::vector<std::string> quoted;
  for (absl::string_view state : states) {
    for (char c : state) {
      if (!((c >= 'a' && c <= 'z') || c == '_')) std::abort();
    }
    quoted.push_back(absl::StrCat("'", state, "'"));
  }
  return absl::StrCat("state IN (", absl::StrJoin(quoted, ", "), ")");
}

DeliveryRow ReadDelivery(Stmt& s) {
  DeliveryRow r;
  r.message_id = s.Text(0);
  r.peer = s.Text(1);
  r.state = s.Text(2);
  r.priority = static_cast<int>(s.Int(3));
  r.created_ms = s.Int(4);
  r.expires_ms = s.Int(5);
  r.attempts = static_cast<uint32_t>(s.Int(6));
  r.last_error = s.Text(7);
  r.reason = s.Text(8);
  r.receipt = s.Text(9);
  r.updated_ms = s.Int(10);
  r.custody = s.Text(11);
  return r;
}
constexpr const char* kDeliveryCols =
    "message_id, peer, state, priority, created_ms, expires_ms, attempts, "
    "last_error, reason, receipt, updated_ms, custody";

// A delivery to send, with its message's envelope. Continue the query with
// conditions on `d`; the first parameter is the peer.
constexpr const char* kPendingSelect =
    "SELECT d.message_id, d.priority, d.created_ms, d.expires_ms, "
    "m.envelope, m.outer_digest, d.attempts, d.deferrals, d.peer, m.origin, "
    "m.chunks, m.uploads, m.inner_digest "
    "FROM deliveries d JOIN messages m ON m.id = d.message_id WHERE ";

PendingDelivery ReadPending(Stmt& s) {
  PendingDelivery d;
  d.message_id = s.Text(0);
  d.priority = static_cast<int>(s.Int(1));
  d.created_ms = s.Int(2);
  d.expires_ms = s.Int(3);
  d.envelope = s.Text(4);
  d.outer_digest = s.Text(5);
  d.attempts = static_cast<uint32_t>(s.Int(6));
  d.deferrals = static_cast<uint32_t>(s.Int(7));
  d.peer = s.Text(8);
  d.origin = s.Text(9);
  d.chunk_count = static_cast<uint32_t>(s.Int(10));
  const std::string uploads = s.Text(11);
  if (!uploads.empty()) d.uploads = absl::StrSplit(uploads, ',');
  d.inner_digest = s.Text(12);
  return d;
}

// "d.peer IN (?,?,...)" for n peers.
std::string PeerIn(size_t n) {
  std::string q = "d.peer IN (";
  for (size_t i = 0; i < n; ++i) absl::StrAppend(&q, i ? ",?" : "?");
  return q + ")";
}

InboxRecord ReadInbox(Stmt& s) {
  InboxRecord r;
  r.seq = static_cast<uint64_t>(s.Int(0));
  r.origin = s.Text(1);
  r.message_id = s.Text(2);
  r.outer_digest = s.Text(3);
  r.accepted = s.Int(4) != 0;
  r.header = s.Text(5);
  r.inner_signed = s.Text(6);
  r.payload = s.Text(7);
  r.kind = s.Text(8);
  r.subject = s.Text(9);
  r.case_ref = s.Text(10);
  r.priority = static_cast<int>(s.Int(11));
  r.created_ms = s.Int(12);
  r.expires_ms = s.Int(13);
  r.received_ms = s.Int(14);
  r.acked = s.Int(15) != 0;
  r.receipt = s.Text(16);
  r.chunk_refs = s.Text(17);
  r.in_reply_to = s.Text(18);
  r.purged_ms = s.Int(19);
  r.key_id = s.Text(20);
  return r;
}
constexpr const char* kInboxCols =
    "seq, origin, message_id, outer_digest, accepted, header, inner_signed, "
    "payload, kind, subject, case_ref, priority, created_ms, expires_ms, "
    "received_ms, acked, receipt, chunk_refs, in_reply_to, purged_ms, key_id";

// The store's operations, over a SQL backend (sql.h). The rules they apply
// are rules.h, audit.h and content_keys.h.
class SqlStore : public Store {
 public:
  SqlStore(std::unique_ptr<sql::Connection> writer,
           std::unique_ptr<sql::Connection> reader,
           std::unique_ptr<ContentKeys> keys)
      : writer_(std::move(writer)),
        keys_(std::move(keys)),
        reader_owner_(std::move(reader)),
        reader_(reader_owner_.get()) {
    max_seq_ = QueryMaxSeq();
    thread_ = std::thread([this] { WriterLoop(); });
  }

  ~SqlStore() override {
    {
      std::lock_guard<std::mutex> l(queue_mu_);
      stopping_ = true;
    }
    queue_cv_.notify_all();
    thread_.join();
    writer_.reset();
    reader_owner_.reset();
  }

  // ---------------------------------------------------------------- writes

  absl::StatusOr<SubmitOutcome> InsertOutgoing(
      const OutgoingMessage& m) override {
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
              return absl::FailedPreconditionError(absl::StrCat(
                  "attachment ", u, " is unknown or already sent"));
            }
          }
          std::vector<AuditEntry> disclosed;
          for (const std::string& peer : m.recipients) {
            Stmt d(db,
                   "INSERT INTO deliveries(message_id, peer, state, priority, "
                   "created_ms, expires_ms, updated_ms) VALUES(?,?,?,?,?,?,?)");
            d.Bind(1, m.id)
                .Bind(2, peer)
                .Bind(3, kStateQueued)
                .Bind(4, priority);
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
            if (auto st =
                    EraseOn(db,
                            PurgeCandidate{
                                target, "", true, "", 0, 0,
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

  absl::Status MarkAttempted(const std::string& peer,
                             const std::vector<std::string>& ids,
                             const std::string& error, int64_t now_ms,
                             int64_t not_before_ms) override {
    return Write([&](sql::Tx* db) -> absl::Status {
      for (const std::string& id : ids) {
        Stmt s(db,
               "UPDATE deliveries SET attempts = attempts + 1, last_error = ?, "
               "updated_ms = ?, not_before_ms = ?, deferrals = deferrals + "
               "(? > 0) WHERE message_id = ? AND peer = ? AND state = ?");
        s.Bind(1, error).Bind(2, now_ms).Bind(3, not_before_ms);
        s.Bind(4, not_before_ms)
            .Bind(5, id)
            .Bind(6, peer)
            .Bind(7, kStateQueued);
        if (auto st = s.Run("mark attempted"); !st.ok()) return st;
      }
      return absl::OkStatus();
    });
  }

  absl::Status Settle(const std::vector<Settlement>& settlements) override {
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
        Stmt s(db, absl::StrCat("UPDATE deliveries SET state = ?, reason = ?, "
                                "receipt = ?, updated_ms = ?, last_error = '', "
                                "attempts = attempts + (state = 'queued') "
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

  absl::StatusOr<uint32_t> Cancel(const std::string& message_id, int64_t now_ms,
                                  const std::string& actor) override {
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

  absl::StatusOr<std::vector<DeliveryEvent>> ListEvents(uint64_t after_seq,
                                                        size_t limit) override {
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

  absl::StatusOr<uint64_t> MaxEventSeq() override {
    absl::MutexLock l(&read_mu_);
    Stmt s(reader_, "SELECT COALESCE(MAX(seq), 0) FROM events");
    if (!s.Next()) return NoRow(s, "events");
    return static_cast<uint64_t>(s.Int(0));
  }

  absl::StatusOr<int64_t> EarliestQueuedExpiryMs(
      const std::string& peer) override {
    absl::MutexLock l(&read_mu_);
    Stmt s(reader_,
           "SELECT COALESCE(MIN(CASE state WHEN 'queued' THEN expires_ms ELSE "
           "expires_ms + ? END), 0) FROM deliveries WHERE peer = ? AND state "
           "IN ('queued', 'forwarded')");
    s.Bind(1, kForwardedExpiryGraceMs).Bind(2, peer);
    if (!s.Next()) return NoRow(s, "expiry");
    return s.Int(0);
  }

  // For expired rows not_before_ms says whether a final attempt is pending:
  // 0 pending, -1 made (or never needed).
  absl::StatusOr<uint32_t> ExpireOverdue(const std::string& peer,
                                         int64_t now_ms) override {
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

  absl::StatusOr<std::vector<PendingDelivery>> FinalAttempts(
      const std::string& peer, size_t limit, int64_t now_ms,
      int64_t window_ms) override {
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

  absl::Status FinalAttemptMade(const std::string& peer,
                                const std::vector<std::string>& ids) override {
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

  absl::Status Suspend(const std::string& message_id, const std::string& peer,
                       const std::string& reason, int64_t now_ms) override {
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

  absl::StatusOr<uint32_t> Retry(const std::string& message_id, int64_t now_ms,
                                 const std::string& actor) override {
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

  absl::Status PutPeerState(const PeerState& p) override {
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

  absl::Status InsertInbox(
      const std::vector<InboxRecord>& records,
      std::vector<std::optional<DedupEntry>>* existing) override {
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
            ins.Bind(8, r.kind).Bind(9, subject).Bind(10, r.case_ref);
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
                AuditEntry{
                    std::string(r.accepted ? kAuditCollect : kAuditRefuse),
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

  absl::StatusOr<bool> Ack(const std::string& origin,
                           const std::string& message_id) override {
    bool already = false;
    bool found = false;
    absl::Status s = Write([&](sql::Tx* db) -> absl::Status {
      Stmt q(db,
             "SELECT acked FROM inbox WHERE origin = ? AND message_id = ? AND "
             "accepted = 1");
      q.Bind(1, origin).Bind(2, message_id);
      if (!q.Next()) return absl::OkStatus();
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

  // ----------------------------------------------------------------- reads

  absl::StatusOr<std::optional<SubmitOutcome>> FindByClientKey(
      const std::string& submitter, const std::string& client_key,
      const std::string& request_hash) override {
    absl::MutexLock l(&read_mu_);
    return FindClientKey(reader_, submitter, client_key, request_hash);
  }

  using Store::NextDeliveries;
  absl::StatusOr<std::vector<PendingDelivery>> NextDeliveries(
      const std::vector<std::string>& peer, size_t limit,
      int64_t now_ms) override {
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

  absl::StatusOr<std::vector<DeliveryRow>> Deliveries(
      const std::string& message_id) override {
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

  absl::StatusOr<std::vector<DeliveryRow>> ListDeliveries(
      const std::string& state, size_t limit,
      const std::string& submitter) override {
    absl::MutexLock l(&read_mu_);
    Stmt s(reader_,
           absl::StrCat(
               "SELECT ", kDeliveryCols,
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

  absl::StatusOr<QueueStats> PeerQueue(const std::string& peer) override {
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

  absl::StatusOr<int64_t> NextDeferredDueMs(const std::string& peer,
                                            int64_t now_ms) override {
    absl::MutexLock l(&read_mu_);
    Stmt s(reader_,
           "SELECT COALESCE(MIN(not_before_ms), 0) FROM deliveries WHERE "
           "peer = ? AND state = 'queued' AND not_before_ms > ?");
    s.Bind(1, peer).Bind(2, now_ms);
    if (!s.Next()) return NoRow(s, "due");
    return s.Int(0);
  }

  absl::Status InsertUpload(const UploadRecord& u) override {
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

  absl::StatusOr<std::optional<UploadRecord>> GetUpload(
      const std::string& id) override {
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

  absl::StatusOr<std::vector<std::string>> DropStaleUploads(
      int64_t before_ms) override {
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
      Stmt d(db,
             "DELETE FROM uploads WHERE message_id = '' AND created_ms < ?");
      d.Bind(1, before_ms);
      return d.Run("drop stale uploads");
    });
    if (!s.ok()) return s;
    return ids;
  }

  absl::StatusOr<std::vector<ChunkHolder>> SettledChunkHolders(
      int64_t expired_before_ms, size_t limit) override {
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

  absl::Status MarkChunksRemoved(const std::vector<std::string>& keys,
                                 int64_t now_ms) override {
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

  absl::StatusOr<std::optional<DedupEntry>> FindRelayed(
      const std::string& origin, const std::string& message_id,
      const std::string& deliver_to) override {
    absl::MutexLock l(&read_mu_);
    return FindRelayedOn(reader_, RelayKey(origin, message_id), deliver_to);
  }

  absl::Status InsertRelayed(
      const std::vector<RelayedMessage>& messages,
      std::vector<std::optional<DedupEntry>>* existing) override {
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
                            std::string(kAuditNodeActor), m.message_id,
                            m.origin, m.deliver_to, "", "",
                            absl::StrCat("custody from ", m.from_peer)}},
                m.received_ms);
            !st.ok()) {
          return st;
        }
      }
      return absl::OkStatus();
    });
  }

  absl::StatusOr<std::optional<MessageFacts>> GetMessageFacts(
      const std::string& key) override {
    absl::MutexLock l(&read_mu_);
    Stmt q(reader_,
           "SELECT origin, outer_digest, inner_digest FROM messages WHERE "
           "id = ?");
    q.Bind(1, key);
    if (!q.Next()) return std::optional<MessageFacts>();
    return std::optional<MessageFacts>(
        MessageFacts{q.Text(0), q.Text(1), q.Text(2)});
  }

  absl::StatusOr<std::optional<DeliveryRow>> GetDelivery(
      const std::string& key, const std::string& peer) override {
    absl::MutexLock l(&read_mu_);
    Stmt s(reader_, absl::StrCat("SELECT ", kDeliveryCols,
                                 " FROM deliveries WHERE message_id = ? AND "
                                 "peer = ?")
                        .c_str());
    s.Bind(1, key).Bind(2, peer);
    if (!s.Next()) return std::optional<DeliveryRow>();
    return std::optional<DeliveryRow>(ReadDelivery(s));
  }

  absl::StatusOr<std::vector<PendingReturn>> NextReturns(
      const std::string& peer, size_t limit) override {
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

  absl::Status ReturnsDone(const std::vector<int64_t>& ids) override {
    return Write([&](sql::Tx* db) -> absl::Status {
      for (int64_t id : ids) {
        Stmt d(db, "DELETE FROM returns WHERE id = ?");
        d.Bind(1, id);
        if (auto st = d.Run("return done"); !st.ok()) return st;
      }
      return absl::OkStatus();
    });
  }

  absl::StatusOr<PeerState> GetPeerState(const std::string& peer) override {
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

  absl::StatusOr<std::optional<DedupEntry>> FindInbox(
      const std::string& origin, const std::string& message_id) override {
    absl::MutexLock l(&read_mu_);
    return FindInboxOn(reader_, origin, message_id);
  }

  absl::StatusOr<std::vector<InboxRecord>> ListInbox(
      const InboxQuery& q) override {
    absl::MutexLock l(&read_mu_);
    Stmt s(reader_,
           absl::StrCat(
               "SELECT ", kInboxCols,
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

  absl::StatusOr<std::vector<InboxRecord>> GetInbox(
      const std::string& message_id, const std::string& origin) override {
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

  absl::StatusOr<bool> HasAccepted(const std::string& origin,
                                   const std::string& message_id) override {
    absl::MutexLock l(&read_mu_);
    Stmt s(reader_,
           "SELECT 1 FROM inbox WHERE origin = ? AND message_id = ? AND "
           "accepted = 1");
    if (auto st = s.status(); !st.ok()) return st;
    s.Bind(1, origin).Bind(2, message_id);
    return s.Next();
  }

  uint64_t MaxInboxSeq() override {
    absl::MutexLock l(&seq_mu_);
    return max_seq_;
  }

  void WaitInbox(uint64_t after_seq, int64_t timeout_ms) override {
    absl::MutexLock l(&seq_mu_);
    auto more = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(seq_mu_) {
      return max_seq_ > after_seq;
    };
    seq_mu_.AwaitWithTimeout(absl::Condition(&more),
                             absl::Milliseconds(timeout_ms));
  }

  // --------------------------------------------------------------- threads

  absl::StatusOr<std::vector<ThreadEntry>> Thread(
      const std::string& case_ref) override {
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

  absl::StatusOr<std::vector<KnownMessage>> FindByIdPrefix(
      const std::string& prefix, size_t limit) override {
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

  absl::StatusOr<std::optional<KnownMessage>> FindMessage(
      const std::string& message_id) override {
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

  // ------------------------------------------------------------- retention

  absl::StatusOr<std::vector<PurgeCandidate>> PurgeCandidates(
      const std::map<std::string, uint32_t>& days_by_kind,
      uint32_t default_days, int64_t now_ms, size_t limit) override {
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
        out.push_back(
            PurgeCandidate{m.Text(0), "", true, kind, m.Int(1), days});
      }
    }
    return out;
  }

  absl::Status Purge(const std::vector<PurgeCandidate>& messages,
                     const std::string& actor, int64_t now_ms) override {
    return Write([&](sql::Tx* db) -> absl::Status {
      for (const PurgeCandidate& c : messages) {
        if (auto st = EraseOn(db, c, actor, now_ms, nullptr); !st.ok()) {
          return st;
        }
      }
      return absl::OkStatus();
    });
  }

  absl::StatusOr<std::vector<EraseOrder>> ListEraseOrders(
      const std::string& order_id) override {
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

  // ----------------------------------------------------------------- audit

  absl::Status AppendAudit(const std::vector<AuditEntry>& entries,
                           int64_t now_ms) override {
    return Write([&](sql::Tx* db) -> absl::Status {
      return AppendAuditOn(db, entries, now_ms);
    });
  }

  absl::StatusOr<std::vector<AuditRecord>> ListAudit(uint64_t after_seq,
                                                     size_t limit) override {
    absl::MutexLock l(&read_mu_);
    Stmt s(reader_, absl::StrCat("SELECT ", kAuditCols,
                                 " FROM audit WHERE seq > ? ORDER BY seq "
                                 "LIMIT ?")
                        .c_str());
    s.Bind(1, static_cast<int64_t>(after_seq));
    s.Bind(2, static_cast<int64_t>(limit));
    std::vector<AuditRecord> out;
    while (s.Next()) out.push_back(ReadAudit(s));
    return out;
  }

  absl::StatusOr<std::vector<AuditRecord>> AuditOfMessage(
      const std::string& message_id, size_t limit) override {
    absl::MutexLock l(&read_mu_);
    Stmt s(reader_, absl::StrCat("SELECT ", kAuditCols,
                                 " FROM audit WHERE message_id = ? ORDER BY "
                                 "seq LIMIT ?")
                        .c_str());
    if (auto st = s.status(); !st.ok()) return st;
    s.Bind(1, message_id);
    s.Bind(2, static_cast<int64_t>(limit));
    std::vector<AuditRecord> out;
    while (s.Next()) out.push_back(ReadAudit(s));
    return out;
  }

  absl::StatusOr<std::vector<AuditRecord>> TailAudit(size_t limit) override {
    absl::MutexLock l(&read_mu_);
    Stmt s(reader_, absl::StrCat("SELECT ", kAuditCols,
                                 " FROM audit ORDER BY seq DESC LIMIT ?")
                        .c_str());
    s.Bind(1, static_cast<int64_t>(limit));
    std::vector<AuditRecord> out;
    while (s.Next()) out.push_back(ReadAudit(s));
    std::reverse(out.begin(), out.end());
    return out;
  }

  absl::StatusOr<AuditHead> GetAuditHead() override {
    absl::MutexLock l(&read_mu_);
    Stmt s(reader_, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1");
    if (!s.Next()) return AuditHead{0, GenesisHash()};
    return AuditHead{static_cast<uint64_t>(s.Int(0)), s.Text(1)};
  }

  absl::StatusOr<std::optional<AuditRecord>> GetAuditRecord(
      uint64_t seq) override {
    absl::MutexLock l(&read_mu_);
    Stmt s(reader_,
           absl::StrCat("SELECT ", kAuditCols, " FROM audit WHERE seq = ?")
               .c_str());
    s.Bind(1, static_cast<int64_t>(seq));
    if (!s.Next()) return std::optional<AuditRecord>();
    return std::optional<AuditRecord>(ReadAudit(s));
  }

  absl::StatusOr<AuditCheck> VerifyAuditChain() override {
    absl::MutexLock l(&read_mu_);
    // One read transaction, so the chain is seen at one point in time.
    if (auto st = reader_->BeginRead(); !st.ok()) return st;
    AuditChainCheck chain;  // the rule: audit.h
    absl::Status read;
    {
      Stmt s(reader_,
             absl::StrCat("SELECT ", kAuditCols, " FROM audit ORDER BY seq")
                 .c_str());
      while (s.Next()) {
        if (!chain.Add(ReadAudit(s))) break;
      }
      read = s.Done("audit");
    }
    reader_->Commit().IgnoreError();
    const AuditCheck& check = chain.check();
    if (check.first_bad_seq == 0 && !read.ok()) return read;
    return check;
  }

  absl::Status PutSignedHead(const SignedAuditHead& h) override {
    return Write([&](sql::Tx* db) -> absl::Status {
      Stmt s(db,
             "INSERT INTO audit_heads(seq, hash, time_ms, signature) "
             "VALUES(?,?,?,?) ON CONFLICT(seq) DO UPDATE SET hash = "
             "excluded.hash, time_ms = excluded.time_ms, signature = "
             "excluded.signature");
      s.Bind(1, static_cast<int64_t>(h.head.seq)).BindBlob(2, h.head.hash);
      s.Bind(3, h.time_ms).BindBlob(4, h.signature);
      return s.Run("signed head");
    });
  }

  absl::StatusOr<std::vector<SignedAuditHead>> ListSignedHeads() override {
    absl::MutexLock l(&read_mu_);
    Stmt s(reader_,
           "SELECT seq, hash, time_ms, signature FROM audit_heads ORDER BY "
           "seq");
    std::vector<SignedAuditHead> out;
    while (s.Next()) {
      out.push_back(
          SignedAuditHead{AuditHead{static_cast<uint64_t>(s.Int(0)), s.Text(1)},
                          s.Int(2), s.Text(3)});
    }
    return out;
  }

  absl::StatusOr<std::vector<std::string>> ReceiptsFrom(const std::string& peer,
                                                        size_t limit) override {
    absl::MutexLock l(&read_mu_);
    Stmt s(reader_,
           "SELECT receipt FROM deliveries WHERE peer = ? AND receipt IS NOT "
           "NULL ORDER BY updated_ms DESC LIMIT ?");
    s.Bind(1, peer).Bind(2, static_cast<int64_t>(limit));
    std::vector<std::string> out;
    while (s.Next()) out.push_back(s.Text(0));
    return out;
  }

  absl::Status PutEvidence(const std::vector<EvidenceItem>& items,
                           int64_t now_ms) override {
    if (items.empty()) return absl::OkStatus();
    return Write([&](sql::Tx* db) -> absl::Status {
      for (const EvidenceItem& e : items) {
        Stmt ins(db,
                 "INSERT INTO evidence(sha256, type, der, added_ms) "
                 "VALUES(?,?,?,?) ON CONFLICT(sha256) DO NOTHING");
        ins.BindBlob(1, Sha256(e.der)).Bind(2, e.type).BindBlob(3, e.der);
        ins.Bind(4, now_ms);
        if (auto st = ins.Run("archive evidence"); !st.ok()) return st;
      }
      return absl::OkStatus();
    });
  }

  absl::StatusOr<std::vector<EvidenceItem>> ListEvidence() override {
    absl::MutexLock l(&read_mu_);
    Stmt s(reader_,
           "SELECT type, der, added_ms FROM evidence ORDER BY added_ms");
    if (auto st = s.status(); !st.ok()) return st;
    std::vector<EvidenceItem> out;
    while (s.Next()) {
      out.push_back(EvidenceItem{s.Text(0), s.Text(1), s.Int(2)});
    }
    return out;
  }

  uint64_t commits() const override { return commits_.load(); }
  uint64_t writes() const override { return writes_.load(); }

 private:
  using Job = std::function<absl::Status(sql::Tx*)>;
  struct Pending {
    Job job;
    std::promise<absl::Status> done;
    // How many content keys the job takes (TakeKey), and keys it destroys
    // once its transaction commits.
    size_t keys = 0;
    std::vector<std::string> destroys;
  };

  // Queues `job` for the writer thread and waits until its transaction is
  // committed (or failed). `keys` content keys are there for the job to
  // take, durably, before it runs.
  absl::Status Write(Job job, size_t keys = 0) {
    auto p = std::make_shared<Pending>();
    p->job = std::move(job);
    p->keys = keys;
    std::future<absl::Status> f = p->done.get_future();
    {
      std::lock_guard<std::mutex> l(queue_mu_);
      queue_.push_back(p);
    }
    queue_cv_.notify_one();
    return f.get();
  }

  void WriterLoop() {
    for (;;) {
      std::deque<std::shared_ptr<Pending>> batch;
      {
        std::unique_lock<std::mutex> l(queue_mu_);
        queue_cv_.wait(l, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty() && stopping_) return;
        batch.swap(queue_);
      }
      RunBatch(batch);
    }
  }

  void RunBatch(std::deque<std::shared_ptr<Pending>>& batch) {
    // Keys first, in their own file and transaction, made in advance for
    // many writes (one fsync of the key file per kKeyPoolRefill keys): a
    // crash leaves unused keys, never sealed content without its key.
    size_t needed = 0;
    for (auto& p : batch) needed += p->keys;
    if (key_pool_.size() < needed) {
      std::vector<std::string> ids;
      const size_t make = std::max(needed - key_pool_.size(), kKeyPoolRefill);
      for (size_t i = 0; i < make; ++i) {
        ids.push_back(absl::StrCat("k:", HexEncode(RandomBytes(16))));
      }
      auto made = keys_->Ensure(ids);
      if (!made.ok()) {
        KLOG(Error, "store") << made.status().message();
        for (auto& p : batch) p->done.set_value(made.status());
        return;
      }
      for (std::string& id : ids) {
        std::string key = (*made)[id];
        key_pool_.push_back(ContentKey{std::move(id), std::move(key)});
      }
    }
    absl::Status begin = writer_->BeginWrite();
    if (!begin.ok()) {
      for (auto& p : batch) p->done.set_value(begin);
      return;
    }
    std::vector<absl::Status> results;
    results.reserve(batch.size());
    for (auto& p : batch) {
      absl::Status s = writer_->Savepoint();
      job_destroys_ = &p->destroys;
      if (s.ok()) s = p->job(writer_.get());
      job_destroys_ = nullptr;
      if (s.ok()) {
        s = writer_->ReleaseSavepoint();
      } else {
        writer_->RollbackSavepoint();
      }
      if (!s.ok()) p->destroys.clear();
      results.push_back(s);
      if (!writer_->InTransaction()) {
        // The database rolled the whole transaction back (disk full, I/O error,
        // out of memory): nothing of this batch is committed, so every job
        // fails, and none may run outside the transaction.
        absl::Status lost =
            s.ok() ? absl::UnavailableError("store transaction rolled back")
                   : s;
        KLOG(Error, "store") << "transaction lost: " << lost.message();
        for (auto& q : batch) q->done.set_value(lost);
        return;
      }
    }
    absl::Status commit = writer_->Commit();
    if (!commit.ok()) {
      KLOG(Error, "store") << "commit failed: " << commit.message();
      writer_->Rollback();
      for (auto& p : batch) p->done.set_value(commit);
      return;
    }
    commits_.fetch_add(1);
    writes_.fetch_add(batch.size());
    commit_writes_.Observe(static_cast<double>(batch.size()));
    // Content erased in this transaction: now its keys go. If that fails
    // it is tried again after the next commit (and the next Open sweeps
    // every key no row uses).
    std::vector<std::string> destroys = std::move(pending_destroys_);
    pending_destroys_.clear();
    for (auto& p : batch) {
      destroys.insert(destroys.end(), p->destroys.begin(), p->destroys.end());
    }
    DestroyKeys(std::move(destroys));
    for (size_t i = 0; i < batch.size(); ++i) {
      batch[i]->done.set_value(results[i]);
    }
  }

  // Due queued deliveries of one priority, oldest first.
  absl::Status Due(const std::vector<std::string>& peers, int priority,
                   size_t limit, int64_t now_ms,
                   std::vector<PendingDelivery>* out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(read_mu_) {
    if (peers.empty()) return absl::OkStatus();
    // One peer: the queue index yields rows in order. Several (a next hop
    // for routed recipients): SQLite merges them with a sort.
    Stmt s(reader_,
           absl::StrCat(kPendingSelect,
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

  // The receipt that answers a relayed duplicate: the end-to-end one once
  // it came back, else the custody receipt this node signed.
  static absl::StatusOr<std::optional<DedupEntry>> FindRelayedOn(
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

  // Records a state change of a delivery of this node's own message (relayed
  // copies, keyed origin/id, are not this node's news).
  static absl::Status AddEvent(sql::Tx* db, const std::string& key,
                               const std::string& peer, absl::string_view state,
                               const std::string& reason, int64_t time_ms) {
    if (key.find('/') != std::string::npos) return absl::OkStatus();
    Stmt e(db,
           "INSERT INTO events(message_id, peer, state, reason, time_ms) "
           "VALUES(?,?,?,?,?)");
    e.Bind(1, key).Bind(2, peer).Bind(3, state).Bind(4, reason);
    e.Bind(5, time_ms);
    return e.Run("event");
  }

  // An operator's cancel or retry of `n` deliveries, audited.
  static absl::Status AuditAlter(sql::Tx* db, const std::string& actor,
                                 const std::string& message_id,
                                 absl::string_view what, uint32_t n,
                                 int64_t now_ms) {
    if (n == 0) return absl::OkStatus();
    return AppendAuditOn(
        db,
        {AuditEntry{std::string(kAuditAlter),
                    actor.empty() ? "local-admin" : actor, message_id, "", "",
                    "", "", absl::StrCat(what, " ", n)}},
        now_ms);
  }

  // Appends audit records inside the caller's transaction, chained to the
  // current head (read here, so a rolled-back savepoint leaves no gap).
  static absl::Status AppendAuditOn(sql::Tx* db,
                                    const std::vector<AuditEntry>& entries,
                                    int64_t time_ms) {
    std::vector<std::pair<AuditEntry, int64_t>> timed;
    timed.reserve(entries.size());
    for (const AuditEntry& e : entries) timed.emplace_back(e, time_ms);
    return AppendAuditOn(db, timed);
  }
  // The same with a time per record; the head is read once.
  static absl::Status AppendAuditOn(
      sql::Tx* db, const std::vector<std::pair<AuditEntry, int64_t>>& entries) {
    if (entries.empty()) return absl::OkStatus();
    AuditHead head{0, GenesisHash()};
    {
      Stmt h(db, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1");
      if (auto st = h.status(); !st.ok()) return st;
      if (h.Next()) {
        head = AuditHead{static_cast<uint64_t>(h.Int(0)), h.Text(1)};
      }
    }
    for (const AuditRecord& r : ChainAudit(head, entries)) {
      const AuditEntry& e = r.entry;
      Stmt ins(db,
               "INSERT INTO audit(seq, time_ms, action, actor, message_id, "
               "origin, peer, kind, purpose, detail, prev, hash) "
               "VALUES(?,?,?,?,?,?,?,?,?,?,?,?)");
      ins.Bind(1, static_cast<int64_t>(r.seq)).Bind(2, r.time_ms);
      ins.Bind(3, e.action).Bind(4, e.actor).Bind(5, e.message_id);
      ins.Bind(6, e.origin).Bind(7, e.peer).Bind(8, e.kind);
      ins.Bind(9, e.purpose).Bind(10, e.detail);
      ins.BindBlob(11, r.prev).BindBlob(12, r.hash);
      if (auto st = ins.Run("audit"); !st.ok()) return st;
    }
    return absl::OkStatus();
  }

  static AuditRecord ReadAudit(Stmt& s) {
    AuditRecord r;
    r.seq = static_cast<uint64_t>(s.Int(0));
    r.time_ms = s.Int(1);
    r.entry = AuditEntry{s.Text(2), s.Text(3), s.Text(4), s.Text(5),
                         s.Text(6), s.Text(7), s.Text(8), s.Text(9)};
    r.prev = s.Text(10);
    r.hash = s.Text(11);
    return r;
  }
  static constexpr const char* kAuditCols =
      "seq, time_ms, action, actor, message_id, origin, peer, kind, purpose, "
      "detail, prev, hash";

  static absl::StatusOr<std::optional<SubmitOutcome>> FindClientKey(
      sql::Tx* db, const std::string& submitter, const std::string& client_key,
      const std::string& request_hash) {
    Stmt s(db,
           "SELECT id, request_hash FROM messages WHERE submitter = ? AND "
           "client_key = ?");
    if (auto st = s.status(); !st.ok()) return st;
    s.Bind(1, submitter).Bind(2, client_key);
    if (!s.Next()) return std::optional<SubmitOutcome>();
    if (s.Text(1) != request_hash) {
      return absl::AlreadyExistsError(
          absl::StrCat("client key '", client_key,
                       "' was already used for different content (message ",
                       s.Text(0), ")"));
    }
    return std::optional<SubmitOutcome>(SubmitOutcome{s.Text(0), true});
  }

  static absl::StatusOr<std::optional<DedupEntry>> FindInboxOn(
      sql::Tx* db, const std::string& origin, const std::string& id) {
    Stmt s(db,
           "SELECT outer_digest, receipt FROM inbox WHERE origin = ? AND "
           "message_id = ?");
    if (auto st = s.status(); !st.ok()) return st;
    s.Bind(1, origin).Bind(2, id);
    if (!s.Next()) return std::optional<DedupEntry>();
    return std::optional<DedupEntry>(DedupEntry{s.Text(0), s.Text(1)});
  }

  uint64_t QueryMaxSeq() {
    Stmt s(reader_,
           "SELECT COALESCE(MAX(seq), 0) FROM inbox WHERE accepted = 1");
    return s.Next() ? static_cast<uint64_t>(s.Int(0)) : 0;
  }

  // Erases one message's content: the sealed columns go, and its key (with
  // its attachments' keys) is destroyed after the commit, so no copy of the
  // ciphertext (WAL frames, backups) opens again. Metadata, digests,
  // receipts and dedup records stay. One "erase" audit record, in the same
  // transaction. `erased` (optional): whether there was content to erase.
  absl::Status EraseOn(sql::Tx* db, const PurgeCandidate& c,
                       const std::string& actor, int64_t now_ms, bool* erased) {
    if (erased != nullptr) *erased = false;
    std::string kind = c.kind;
    std::string key_id;
    {
      Stmt q(db, c.sent
                     ? "SELECT kind, key_id FROM messages WHERE id = ? "
                       "AND origin = '' AND purged_ms = 0"
                     : "SELECT kind, key_id FROM inbox WHERE message_id = "
                       "? AND origin = ? AND accepted = 1 AND purged_ms = 0");
      q.Bind(1, c.message_id);
      if (!c.sent) q.Bind(2, c.origin);
      if (!q.Next()) return absl::OkStatus();  // none, or gone
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
        !c.detail.empty()
            ? c.detail
            : absl::StrCat("content purged after its retention of ", c.days,
                           " days");
    return AppendAuditOn(
        db,
        {AuditEntry{std::string(kAuditErase), actor, c.message_id, c.origin, "",
                    kind, "", detail}},
        now_ms);
  }

  // For an accepted inbox record, in its transaction: an erase order kept
  // for it (it came before the message) is applied now; and if the record
  // is itself an erase order, the messages of the same origin it names are
  // erased, or the order is kept for the ones not here yet.
  absl::Status ApplyEraseOrders(sql::Tx* db, const InboxRecord& r) {
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

  // --- content sealing (DESIGN.md §7: erasure is cryptographic)
  static std::string MessageKeyId(absl::string_view id) {
    return absl::StrCat("m:", id);
  }
  static std::string InboxKeyId(absl::string_view origin,
                                absl::string_view id) {
    return absl::StrCat("i:", origin, "/", id);
  }
  static std::string UploadKeyId(absl::string_view id) {
    return absl::StrCat("u:", id);
  }

  // A row's content key id; rows sealed at the first open after an upgrade
  // (schema 7) have none stored and use the legacy id.
  static std::string KeyIdOr(std::string stored, std::string legacy) {
    return stored.empty() ? legacy : stored;
  }

  struct ContentKey {
    std::string id;
    std::string key;
  };

  // A fresh content key from the pool, durable in the key file (writer
  // thread, inside a job whose Write asked for it). Each key seals one row
  // only, so destroying it erases exactly that row.
  absl::StatusOr<ContentKey> TakeKey() {
    if (key_pool_.empty()) {
      return absl::InternalError("no content key left for this write");
    }
    ContentKey k = std::move(key_pool_.front());
    key_pool_.pop_front();
    return k;
  }

  static absl::StatusOr<std::string> Seal(const ContentKey& k,
                                          absl::string_view column,
                                          absl::string_view plaintext) {
    return SealColumn(k.key, k.id, column, plaintext);
  }

  // Destroys content keys (writer thread); what fails is kept to try again
  // after the next commit. A key file WAL a reader holds is truncated later.
  void DestroyKeys(std::vector<std::string> ids) {
    const auto now = std::chrono::steady_clock::now();
    if (ids.empty() &&
        (!wal_pending_ || now - wal_tried_ < std::chrono::seconds(5))) {
      return;  // nothing to do, or tried a moment ago (a backup runs)
    }
    wal_tried_ = now;
    absl::Status st = ids.empty() ? keys_->Checkpoint() : keys_->Destroy(ids);
    if (st.ok()) {
      wal_pending_ = false;
    } else if (st.code() == absl::StatusCode::kAborted) {
      if (!wal_pending_) KLOG(Warning, "store") << st.message();
      wal_pending_ = true;
    } else {
      KLOG(Error, "store") << "content keys of erased messages not destroyed "
                              "yet (tried again after the next write): "
                           << st.message();
      pending_destroys_ = std::move(ids);
    }
  }

  // The key goes after the running job's transaction commits.
  void DestroyAfterCommit(std::string key_id) {
    if (job_destroys_ != nullptr) job_destroys_->push_back(std::move(key_id));
  }

  // Opens a sealed column value; a value whose key was destroyed reads as
  // empty: it is erased. Content is sealed at the first open after an
  // upgrade, so an unsealed value was put there behind the node's back:
  // never shown (logged, read as empty).
  absl::StatusOr<std::string> Unseal(const std::string& key_id,
                                     absl::string_view column,
                                     std::string value) {
    if (value.empty()) return value;
    if (!IsSealed(value)) {
      KLOG(Security, "store") << column << " of " << key_id
                              << " is stored unsealed: not written by this "
                                 "node (the store file was changed); not shown";
      return std::string();
    }
    auto key = keys_->Get(key_id);
    if (!key.ok()) return key.status();
    if (!key->has_value()) return std::string();
    return OpenColumn(**key, key_id, column, value);
  }

  absl::Status UnsealInbox(InboxRecord* r) {
    const std::string id =
        KeyIdOr(r->key_id, InboxKeyId(r->origin, r->message_id));
    for (auto [column, value] : {std::pair<const char*, std::string*>{
                                     "inner_signed", &r->inner_signed},
                                 {"payload", &r->payload},
                                 {"subject", &r->subject}}) {
      auto plain = Unseal(id, column, std::move(*value));
      if (!plain.ok()) return plain.status();
      *value = std::move(*plain);
    }
    return absl::OkStatus();
  }

  std::unique_ptr<sql::Connection> writer_;
  std::unique_ptr<ContentKeys> keys_;
  // Writer thread only: content keys made, durable, not used yet; and
  // where the running job lists keys to destroy after its commit.
  static constexpr size_t kKeyPoolRefill = 64;
  std::deque<ContentKey> key_pool_;
  std::vector<std::string>* job_destroys_ = nullptr;
  std::vector<std::string> pending_destroys_;  // to try again
  // The key file's WAL still to truncate (true at start: the open may have
  // been kept from it), tried again at most every few seconds.
  bool wal_pending_ = true;
  std::chrono::steady_clock::time_point wal_tried_{};
  absl::Mutex read_mu_;
  std::unique_ptr<sql::Connection> reader_owner_;
  sql::Connection* reader_ ABSL_GUARDED_BY(read_mu_);

  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<std::shared_ptr<Pending>> queue_;  // guarded by queue_mu_
  bool stopping_ = false;                       // guarded by queue_mu_
  std::thread thread_;

  absl::Mutex seq_mu_;
  uint64_t max_seq_ ABSL_GUARDED_BY(seq_mu_) = 0;

  std::atomic<uint64_t> commits_{0};
  std::atomic<uint64_t> writes_{0};

 public:
  Histogram commit_writes_;  // set once, before any write
};

}  // namespace

std::unique_ptr<Store> NewSqlStore(std::unique_ptr<sql::Connection> writer,
                                   std::unique_ptr<sql::Connection> reader,
                                   std::unique_ptr<ContentKeys> keys,
                                   Metrics* metrics) {
  auto store = std::make_unique<SqlStore>(std::move(writer), std::move(reader),
                                          std::move(keys));
  if (metrics != nullptr) {
    store->commit_writes_ = metrics->GetHistogram(
        "kontor_store_commit_writes",
        "Writes (submissions, receptions, settlements...) per store "
        "transaction: group commit at work",
        {1, 2, 4, 8, 16, 32, 64, 128, 256, 512});
  }
  return store;
}

}  // namespace kontor
