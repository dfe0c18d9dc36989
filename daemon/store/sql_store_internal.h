#ifndef KONTOR_DAEMON_STORE_SQL_STORE_INTERNAL_H_
#define KONTOR_DAEMON_STORE_SQL_STORE_INTERNAL_H_

// The store over the SQL interface (sql_store.h), inside: the class, whose
// operations are in one file per consumer interface of store.h
//
//   sql_submit.cc     SubmitStore: submissions, uploads, cancel, retry
//   sql_delivery.cc   DeliveryStore: what the outbox takes, settles, defers
//   sql_receive.cc    ReceiveStore: inbox and relay dedup, storing arrivals
//   sql_inbox.cc      InboxStore: reading the inbox, acks, events, waiting
//   sql_query.cc      QueryStore: deliveries, queues, threads, lookups
//   sql_retention.cc  RetentionStore: purge, erase orders, erasure
//   sql_audit.cc      AuditStore: the audit chain, signed heads, evidence
//   sql_store.cc      the writer (group commit), content keys and sealing
//
// and the row mappings they share. Internal to daemon/store.

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
#include "daemon/store/content_keys.h"
#include "daemon/store/rules.h"
#include "daemon/store/sql.h"
#include "daemon/store/sql_store.h"

namespace kontor {
namespace sql_store {

using sql::Stmt;

// The failure of a query that always yields one row.
inline absl::Status NoRow(const Stmt& s, absl::string_view what) {
  absl::Status st = s.Done(what);
  return st.ok() ? absl::InternalError(absl::StrCat(what, ": no row")) : st;
}

// "state IN ('a', 'b')" for the states the rules (rules.h) allow before a
// move; "FALSE" if there are none. The states are the constants of
// store.h (lower-case words), never outside input.
inline std::string StateIn(DeliveryMove move, absl::string_view to) {
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

inline DeliveryRow ReadDelivery(Stmt& s) {
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
inline constexpr const char* kDeliveryCols =
    "message_id, peer, state, priority, created_ms, expires_ms, attempts, "
    "last_error, reason, receipt, updated_ms, custody";

// A delivery to send, with its message's envelope. Continue the query with
// conditions on `d`; the first parameter is the peer.
inline constexpr const char* kPendingSelect =
    "SELECT d.message_id, d.priority, d.created_ms, d.expires_ms, "
    "m.envelope, m.outer_digest, d.attempts, d.deferrals, d.peer, m.origin, "
    "m.chunks, m.uploads, m.inner_digest "
    "FROM deliveries d JOIN messages m ON m.id = d.message_id WHERE ";

inline PendingDelivery ReadPending(Stmt& s) {
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
inline std::string PeerIn(size_t n) {
  std::string q = "d.peer IN (";
  for (size_t i = 0; i < n; ++i) absl::StrAppend(&q, i ? ",?" : "?");
  return q + ")";
}

inline InboxRecord ReadInbox(Stmt& s) {
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
inline constexpr const char* kInboxCols =
    "seq, origin, message_id, outer_digest, accepted, header, inner_signed, "
    "payload, kind, subject, case_ref, priority, created_ms, expires_ms, "
    "received_ms, acked, receipt, chunk_refs, in_reply_to, purged_ms, key_id";

// The store's operations, over a SQL backend (sql.h). The rules they apply
// are rules.h, audit.h and content_keys.h.
class SqlStore : public Store {
 public:
  SqlStore(std::unique_ptr<sql::Connection> writer,
           std::unique_ptr<sql::Connection> reader,
           std::unique_ptr<ContentKeys> keys);

  ~SqlStore() override;

  // SubmitStore (sql_submit.cc)
  absl::StatusOr<SubmitOutcome> InsertOutgoing(
      const OutgoingMessage& m) override;

  absl::StatusOr<uint32_t> Cancel(const std::string& message_id, int64_t now_ms,
                                  const std::string& actor) override;

  absl::StatusOr<uint32_t> Retry(const std::string& message_id, int64_t now_ms,
                                 const std::string& actor) override;

  absl::StatusOr<std::optional<SubmitOutcome>> FindByClientKey(
      const std::string& submitter, const std::string& client_key,
      const std::string& request_hash) override;

  absl::Status InsertUpload(const UploadRecord& u) override;

  absl::StatusOr<std::optional<UploadRecord>> GetUpload(
      const std::string& id) override;

  absl::StatusOr<std::vector<std::string>> DropStaleUploads(
      int64_t before_ms) override;

  // DeliveryStore (sql_delivery.cc)
  absl::Status MarkAttempted(const std::string& peer,
                             const std::vector<std::string>& ids,
                             const std::string& error, int64_t now_ms,
                             int64_t not_before_ms) override;

  absl::Status Settle(const std::vector<Settlement>& settlements) override;

  absl::StatusOr<int64_t> EarliestQueuedExpiryMs(
      const std::string& peer) override;

  // For expired rows not_before_ms says whether a final attempt is pending:
  // 0 pending, -1 made (or never needed).
  absl::StatusOr<uint32_t> ExpireOverdue(const std::string& peer,
                                         int64_t now_ms) override;

  absl::StatusOr<std::vector<PendingDelivery>> FinalAttempts(
      const std::string& peer, size_t limit, int64_t now_ms,
      int64_t window_ms) override;

  absl::Status FinalAttemptMade(const std::string& peer,
                                const std::vector<std::string>& ids) override;

  absl::Status Suspend(const std::string& message_id, const std::string& peer,
                       const std::string& reason, int64_t now_ms) override;

  absl::Status PutPeerState(const PeerState& p) override;

  using Store::NextDeliveries;
  absl::StatusOr<std::vector<PendingDelivery>> NextDeliveries(
      const std::vector<std::string>& peer, size_t limit,
      int64_t now_ms) override;

  absl::StatusOr<int64_t> NextDeferredDueMs(const std::string& peer,
                                            int64_t now_ms) override;

  absl::StatusOr<std::vector<ChunkHolder>> SettledChunkHolders(
      int64_t expired_before_ms, size_t limit) override;

  absl::Status MarkChunksRemoved(const std::vector<std::string>& keys,
                                 int64_t now_ms) override;

  absl::StatusOr<std::vector<PendingReturn>> NextReturns(
      const std::string& peer, size_t limit) override;

  absl::Status ReturnsDone(const std::vector<int64_t>& ids) override;

  absl::StatusOr<PeerState> GetPeerState(const std::string& peer) override;

  // ReceiveStore (sql_receive.cc)
  absl::Status InsertInbox(
      const std::vector<InboxRecord>& records,
      std::vector<std::optional<DedupEntry>>* existing) override;

  absl::StatusOr<std::optional<DedupEntry>> FindRelayed(
      const std::string& origin, const std::string& message_id,
      const std::string& deliver_to) override;

  absl::Status InsertRelayed(
      const std::vector<RelayedMessage>& messages,
      std::vector<std::optional<DedupEntry>>* existing) override;

  absl::StatusOr<std::optional<MessageFacts>> GetMessageFacts(
      const std::string& key) override;

  absl::StatusOr<std::optional<DeliveryRow>> GetDelivery(
      const std::string& key, const std::string& peer) override;

  absl::StatusOr<std::optional<DedupEntry>> FindInbox(
      const std::string& origin, const std::string& message_id) override;

  absl::StatusOr<bool> HasAccepted(const std::string& origin,
                                   const std::string& message_id) override;

  // InboxStore (sql_inbox.cc)
  uint64_t MaxInboxSeq() override {
    absl::MutexLock l(&seq_mu_);
    return max_seq_;
  }

  absl::StatusOr<std::vector<DeliveryEvent>> ListEvents(uint64_t after_seq,
                                                        size_t limit) override;

  absl::StatusOr<uint64_t> MaxEventSeq() override;

  absl::StatusOr<bool> Ack(const std::string& origin,
                           const std::string& message_id) override;

  absl::StatusOr<std::vector<InboxRecord>> ListInbox(
      const InboxQuery& q) override;

  absl::StatusOr<std::vector<InboxRecord>> GetInbox(
      const std::string& message_id, const std::string& origin) override;

  void WaitInbox(uint64_t after_seq, int64_t timeout_ms) override;

  // QueryStore (sql_query.cc)
  absl::StatusOr<std::vector<DeliveryRow>> Deliveries(
      const std::string& message_id) override;

  absl::StatusOr<std::vector<DeliveryRow>> ListDeliveries(
      const std::string& state, size_t limit,
      const std::string& submitter) override;

  absl::StatusOr<QueueStats> PeerQueue(const std::string& peer) override;

  absl::StatusOr<std::vector<ThreadEntry>> Thread(
      const std::string& case_ref) override;

  absl::StatusOr<std::vector<KnownMessage>> FindByIdPrefix(
      const std::string& prefix, size_t limit) override;

  absl::StatusOr<std::optional<KnownMessage>> FindMessage(
      const std::string& message_id) override;

  // RetentionStore (sql_retention.cc)
  absl::StatusOr<std::vector<PurgeCandidate>> PurgeCandidates(
      const std::map<std::string, uint32_t>& days_by_kind,
      uint32_t default_days, int64_t now_ms, size_t limit) override;

  absl::Status Purge(const std::vector<PurgeCandidate>& messages,
                     const std::string& actor, int64_t now_ms) override;

  absl::StatusOr<std::vector<EraseOrder>> ListEraseOrders(
      const std::string& order_id) override;

  // AuditStore (sql_audit.cc)
  absl::Status AppendAudit(const std::vector<AuditEntry>& entries,
                           int64_t now_ms) override;

  absl::StatusOr<std::vector<AuditRecord>> ListAudit(uint64_t after_seq,
                                                     size_t limit) override;

  absl::StatusOr<std::vector<AuditRecord>> AuditOfMessage(
      const std::string& message_id, size_t limit) override;

  absl::StatusOr<std::vector<AuditRecord>> TailAudit(size_t limit) override;

  absl::StatusOr<AuditHead> GetAuditHead() override;

  absl::StatusOr<std::optional<AuditRecord>> GetAuditRecord(
      uint64_t seq) override;

  absl::StatusOr<AuditCheck> VerifyAuditChain() override;

  absl::Status PutSignedHead(const SignedAuditHead& h) override;

  absl::StatusOr<std::vector<SignedAuditHead>> ListSignedHeads() override;

  absl::StatusOr<std::vector<std::string>> ReceiptsFrom(const std::string& peer,
                                                        size_t limit) override;

  absl::Status PutEvidence(const std::vector<EvidenceItem>& items,
                           int64_t now_ms) override;

  absl::StatusOr<std::vector<EvidenceItem>> ListEvidence() override;

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
  absl::Status Write(Job job, size_t keys = 0);

  void WriterLoop();

  void RunBatch(std::deque<std::shared_ptr<Pending>>& batch);

  // Due queued deliveries of one priority, oldest first.
  absl::Status Due(const std::vector<std::string>& peers, int priority,
                   size_t limit, int64_t now_ms,
                   std::vector<PendingDelivery>* out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(read_mu_);

  // The receipt that answers a relayed duplicate: the end-to-end one once
  // it came back, else the custody receipt this node signed.
  static absl::StatusOr<std::optional<DedupEntry>> FindRelayedOn(
      sql::Tx* db, const std::string& key, const std::string& deliver_to);

  // Records a state change of a delivery of this node's own message (relayed
  // copies, keyed origin/id, are not this node's news).
  static absl::Status AddEvent(sql::Tx* db, const std::string& key,
                               const std::string& peer, absl::string_view state,
                               const std::string& reason, int64_t time_ms);

  // An operator's cancel or retry of `n` deliveries, audited.
  static absl::Status AuditAlter(sql::Tx* db, const std::string& actor,
                                 const std::string& message_id,
                                 absl::string_view what, uint32_t n,
                                 int64_t now_ms);

  // Appends audit records inside the caller's transaction, chained to the
  // current head (read here, so a rolled-back savepoint leaves no gap).
  static absl::Status AppendAuditOn(sql::Tx* db,
                                    const std::vector<AuditEntry>& entries,
                                    int64_t time_ms);
  // The same with a time per record; the head is read once.
  static absl::Status AppendAuditOn(
      sql::Tx* db, const std::vector<std::pair<AuditEntry, int64_t>>& entries);

  static AuditRecord ReadAudit(Stmt& s);
  static constexpr const char* kAuditCols =
      "seq, time_ms, action, actor, message_id, origin, peer, kind, purpose, "
      "detail, prev, hash";

  static absl::StatusOr<std::optional<SubmitOutcome>> FindClientKey(
      sql::Tx* db, const std::string& submitter, const std::string& client_key,
      const std::string& request_hash);

  static absl::StatusOr<std::optional<DedupEntry>> FindInboxOn(
      sql::Tx* db, const std::string& origin, const std::string& id);

  uint64_t QueryMaxSeq();

  // Erases one message's content: the sealed columns go, and its key (with
  // its attachments' keys) is destroyed after the commit, so no copy of the
  // ciphertext (WAL frames, backups) opens again. Metadata, digests,
  // receipts and dedup records stay. One "erase" audit record, in the same
  // transaction. `erased` (optional): whether there was content to erase.
  absl::Status EraseOn(sql::Tx* db, const PurgeCandidate& c,
                       const std::string& actor, int64_t now_ms, bool* erased);

  // For an accepted inbox record, in its transaction: an erase order kept
  // for it (it came before the message) is applied now; and if the record
  // is itself an erase order, the messages of the same origin it names are
  // erased, or the order is kept for the ones not here yet.
  absl::Status ApplyEraseOrders(sql::Tx* db, const InboxRecord& r);

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
  absl::StatusOr<ContentKey> TakeKey();

  static absl::StatusOr<std::string> Seal(const ContentKey& k,
                                          absl::string_view column,
                                          absl::string_view plaintext);

  // Destroys content keys (writer thread); what fails is kept to try again
  // after the next commit. A key file WAL a reader holds is truncated later.
  void DestroyKeys(std::vector<std::string> ids);

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
                                     std::string value);

  absl::Status UnsealInbox(InboxRecord* r);

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

}  // namespace sql_store
}  // namespace kontor

#endif  // KONTOR_DAEMON_STORE_SQL_STORE_INTERNAL_H_
