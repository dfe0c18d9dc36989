#ifndef KONTOR_DAEMON_STORE_STORE_H_
#define KONTOR_DAEMON_STORE_STORE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "daemon/metrics/metrics.h"
#include "daemon/store/audit.h"

namespace kontor {

// Delivery states as stored and shown (DESIGN.md §5). in_flight is not
// stored: it is what the sender is doing right now, so a crash can never
// leave a message stuck in it.
inline constexpr absl::string_view kStateQueued = "queued";
inline constexpr absl::string_view kStateInFlight = "in_flight";
inline constexpr absl::string_view kStateDelivered = "delivered";
inline constexpr absl::string_view kStateRejected = "rejected";
inline constexpr absl::string_view kStateExpired = "expired";
inline constexpr absl::string_view kStateCancelled = "cancelled";
// Waits for an operator (`kontor retry`); not settled.
inline constexpr absl::string_view kStateSuspended = "suspended";
// A relay took custody (signed); the end-to-end receipt is still to come
// back through it. Not settled.
inline constexpr absl::string_view kStateForwarded = "forwarded";

// Store key of a message this node relays for `origin`: "origin/id". Own
// messages are stored under their id (ids never contain '/').
std::string RelayKey(absl::string_view origin, absl::string_view message_id);

struct OutgoingMessage {
  std::string id;
  std::vector<std::string> recipients;
  int priority = 0;
  int64_t created_ms = 0;
  int64_t expires_ms = 0;
  std::string kind;
  std::string envelope;  // serialized, sealed and signed: resent as is
  std::string outer_digest;
  std::string submitter;     // local user, scope of client_key
  std::string client_key;    // may be empty
  std::string request_hash;  // SHA-256 of the request, for idempotency
  // Attachment ids (uploads) whose chunk files go with the envelope, in
  // order; chunk_count: how many chunks the envelope lists.
  std::vector<std::string> uploads;
  uint32_t chunk_count = 0;
  // The sender's own copy, for `kontor show`, threads, `kontor export` and
  // the audit log. Stored sealed under the message's content key.
  std::string payload;       // serialized Payload (plaintext)
  std::string inner_signed;  // the inner CMS SignedData as sent (evidence)
  std::string subject;
  std::string case_ref;
  std::string in_reply_to;
  std::string purpose;  // markings.purpose, for the audit record
  // An erase order (erase.notice, a withdrawn consent): own messages it
  // erases here, in the same transaction.
  std::vector<std::string> erase_targets;
};

// An attachment uploaded by a local user, kept as encrypted chunk files.
struct UploadRecord {
  std::string id;
  std::string submitter;
  std::string name;
  std::string content_type;
  uint64_t size = 0;
  std::string sha256;      // of the plaintext
  std::string key;         // its chunks' AES-256-GCM key
  std::string chunk_refs;  // serialized v1::Envelope holding only `chunks`
  int64_t created_ms = 0;
  std::string message_id;  // empty until a message uses it
};

// A message whose attachment chunk files can go (SettledChunkHolders).
struct ChunkHolder {
  std::string key;                   // store key: id, or RelayKey
  std::string origin;                // empty: this node's own message
  std::vector<std::string> uploads;  // own messages: their upload ids
};

struct SubmitOutcome {
  std::string message_id;
  bool duplicate = false;
};

struct PendingDelivery {
  std::string message_id;  // store key: the id, or RelayKey for relayed ones
  std::string peer;        // the final recipient
  std::string origin;      // empty: this node; else relayed for `origin`
  int priority = 0;
  int64_t created_ms = 0;
  int64_t expires_ms = 0;
  std::string envelope;
  std::string outer_digest;
  uint32_t attempts = 0;
  uint32_t deferrals = 0;    // times the recipient deferred it since queued
  uint32_t chunk_count = 0;  // attachment chunks to send first
  std::vector<std::string> uploads;  // their attachment ids (own messages)
  // SHA-256 of the inner CMS this node signed (own messages): what the
  // recipient's acceptance must name.
  std::string inner_digest;

  // The message id on the wire (message_id without a relay key's origin).
  std::string wire_id() const {
    return origin.empty() ? message_id : message_id.substr(origin.size() + 1);
  }
};

struct Settlement {
  std::string message_id;
  std::string peer;
  absl::string_view state;  // delivered | rejected | expired
  std::string reason;
  std::string receipt;  // serialized Receipt, may be empty for expired
  int64_t time_ms = 0;
  // A relayed message's end-to-end receipt (delivered/rejected/expired by
  // the final recipient) is queued in the same transaction to go back
  // towards its origin through this peer. Empty: nothing to return.
  std::string return_to;
};

// A relayed envelope taken into custody, to pass on to `deliver_to`.
struct RelayedMessage {
  std::string origin;
  std::string message_id;
  std::string deliver_to;
  std::string from_peer;
  int priority = 0;
  int64_t created_ms = 0;
  int64_t expires_ms = 0;
  std::string envelope;  // with the routing block as it is to be sent on
  std::string outer_digest;
  uint32_t chunk_count = 0;
  std::string custody;      // the FORWARDED receipt this node signed
  int64_t received_ms = 0;  // taken into custody (the audit record's time)
};

// One end-to-end receipt waiting to go back one hop.
struct PendingReturn {
  int64_t id = 0;
  std::string receipt;
};

struct MessageFacts {
  std::string origin;  // empty: this node
  std::string outer_digest;
  std::string inner_digest;  // SHA-256 of the inner CMS (own messages)
};

struct DeliveryRow {
  std::string message_id;
  std::string peer;
  std::string state;
  int priority = 0;
  int64_t created_ms = 0;
  int64_t expires_ms = 0;
  uint32_t attempts = 0;
  std::string last_error;
  std::string reason;
  std::string receipt;
  int64_t updated_ms = 0;
  std::string custody;  // FORWARDED receipt of the relay, if routed
};

struct DeliveryEvent {
  uint64_t seq = 0;
  std::string message_id;
  std::string peer;
  std::string state;
  std::string reason;
  int64_t time_ms = 0;
};

struct PeerState {
  std::string peer;
  uint32_t failures = 0;
  int64_t next_attempt_ms = 0;
  std::string last_error;
  int64_t last_success_ms = 0;
};

struct QueueStats {
  uint64_t depth = 0;
  int64_t oldest_created_ms = 0;  // 0 if empty
};

struct InboxRecord {
  uint64_t seq = 0;
  std::string origin;
  std::string message_id;
  std::string outer_digest;
  bool accepted = true;  // false: a signed refusal is stored instead
  std::string header;
  std::string inner_signed;  // CMS SignedData (evidence)
  std::string payload;       // serialized Payload
  std::string kind;
  std::string subject;
  std::string case_ref;
  int priority = 0;
  int64_t created_ms = 0;
  int64_t expires_ms = 0;
  int64_t received_ms = 0;
  bool acked = false;
  std::string receipt;     // serialized signed Receipt, resent on duplicates
  std::string chunk_refs;  // serialized v1::Envelope holding only `chunks`
  std::string in_reply_to;
  int64_t purged_ms = 0;  // content removed after its retention
  // For the audit record only (not kept in the inbox row): the stated
  // purpose, and why a refused envelope was refused.
  std::string purpose;
  std::string refusal;
  // An erase order from `origin` (erase.notice, a withdrawn consent): the
  // ids of its messages to erase here, now or when they arrive.
  std::vector<std::string> erase_targets;
  std::string erase_reason;
  std::string key_id;  // its content key (store internal)
};

// Which inbox records ListInbox returns: all that are set must match.
struct InboxQuery {
  bool unread_only = false;
  uint64_t after_seq = 0;   // seq > after_seq (oldest first), or
  uint64_t before_seq = 0;  // seq < before_seq when set (newest first)
  size_t limit = 100;
  std::string kind;
  std::string origin;
  std::string case_ref;  // compared ignoring ASCII case
  bool newest_first = false;
};

// One message of a case thread, sent or received (`kontor thread`).
struct ThreadEntry {
  std::string message_id;
  std::string origin;
  bool sent = false;               // by this node
  std::vector<std::string> peers;  // recipients (sent) or empty (received)
  std::string submitter;           // the local user who sent it (sent)
  std::string kind;
  std::string subject;
  std::string case_ref;
  std::string in_reply_to;
  int64_t created_ms = 0;
  int64_t purged_ms = 0;  // content erased (0: kept)
};

// A message this node holds by id, sent or received.
struct KnownMessage {
  std::string message_id;
  std::string origin;
  bool sent = false;
  std::string kind;
  std::string case_ref;
  std::string payload;  // serialized Payload; empty for a refused one
  int64_t created_ms = 0;
  std::string submitter;  // the local user who sent it (sent only)
  int64_t purged_ms = 0;
  std::string inner_signed;  // CMS SignedData as sent; empty once erased
  std::string inner_digest;  // its SHA-256 (own messages; kept when erased)
};

// A message whose content is past its retention.
struct PurgeCandidate {
  std::string message_id;
  std::string origin;  // empty: this node's own copy
  bool sent = false;
  std::string kind;
  int64_t since_ms = 0;  // received (or submitted) at
  uint32_t days = 0;     // its retention
  std::string detail;    // for the audit record; default: the retention
};

// An erase order received from a peer, per message it names: applied (the
// message was here, or came later), or kept until the message arrives.
struct EraseOrder {
  std::string origin;
  std::string message_id;  // the message to erase
  std::string order_id;    // the erase.notice / consent.update
  std::string order_kind;
  std::string reason;
  int64_t received_ms = 0;
  int64_t applied_ms = 0;  // 0: kept, the message has not arrived
};

// An audit chain head signed with the node's signing key.
struct SignedAuditHead {
  AuditHead head;
  int64_t time_ms = 0;
  std::string signature;  // serialized BatchSignature-like blob, see server
};

// A certificate or CRL this node has used or trusted, kept (by content)
// so that evidence of old messages can still be checked after a rotation
// or a new CRL (`kontor export`).
struct EvidenceItem {
  std::string type;  // "cert" | "crl"
  std::string der;
  int64_t added_ms = 0;
};

struct DedupEntry {
  std::string outer_digest;
  std::string receipt;
};

// What submitting a message and the operator actions on its deliveries need
// (app/submission, app/deliveries).
class SubmitStore {
 public:
  virtual ~SubmitStore() = default;

  // Inserts the message and one queued delivery per recipient, durably.
  // With a client key already used by the submitter: same request hash →
  // the original id (duplicate=true); different → kAlreadyExists.
  virtual absl::StatusOr<SubmitOutcome> InsertOutgoing(
      const OutgoingMessage& m) = 0;

  // Looks up an idempotency key without writing.
  virtual absl::StatusOr<std::optional<SubmitOutcome>> FindByClientKey(
      const std::string& submitter, const std::string& client_key,
      const std::string& request_hash) = 0;
  virtual absl::Status InsertUpload(const UploadRecord& upload) = 0;
  virtual absl::StatusOr<std::optional<UploadRecord>> GetUpload(
      const std::string& id) = 0;

  // Uploads no message took, created before `before_ms`: rows removed, ids
  // returned (their chunk files are the caller's to remove).
  virtual absl::StatusOr<std::vector<std::string>> DropStaleUploads(
      int64_t before_ms) = 0;

  // Moves queued or suspended deliveries of the message to cancelled;
  // returns how many.
  virtual absl::StatusOr<uint32_t> Cancel(const std::string& message_id,
                                          int64_t now_ms,
                                          const std::string& actor = "") = 0;

  // Suspended deliveries of the message are queued again and queued ones
  // made due now; returns how many.
  virtual absl::StatusOr<uint32_t> Retry(const std::string& message_id,
                                         int64_t now_ms,
                                         const std::string& actor = "") = 0;
};

// What the outbox needs: the due deliveries to a peer, their attempts and
// settlement, deferral and expiry, receipts going back through a relay, and
// attachment files nobody needs any more.
class DeliveryStore {
 public:
  virtual ~DeliveryStore() = default;

  // Queued deliveries to `peer` that are due at `now_ms` (not deferred past
  // it, not expired), oldest first within a priority. Flash strictly first; the
  // rest of the batch is shared 3:1 between urgent and routine (either takes
  // what the other leaves), so routine traffic is never starved. A batch
  // under four cannot share: urgent first there.
  virtual absl::StatusOr<std::vector<PendingDelivery>> NextDeliveries(
      const std::string& peer, size_t limit, int64_t now_ms) {
    return NextDeliveries(std::vector<std::string>{peer}, limit, now_ms);
  }

  // The same over several recipients (all reached through one next hop).
  virtual absl::StatusOr<std::vector<PendingDelivery>> NextDeliveries(
      const std::vector<std::string>& peers, size_t limit, int64_t now_ms) = 0;

  // Counts a failed attempt; with not_before_ms > 0 it is a deferral of this
  // message (counted apart) and the delivery is not due again before then.
  virtual absl::Status MarkAttempted(const std::string& peer,
                                     const std::vector<std::string>& ids,
                                     const std::string& error, int64_t now_ms,
                                     int64_t not_before_ms = 0) = 0;
  virtual absl::Status Settle(const std::vector<Settlement>& settlements) = 0;

  // When the earliest deferred (queued, not yet due) delivery to `peer`
  // becomes due; 0 if there is none.
  virtual absl::StatusOr<int64_t> NextDeferredDueMs(const std::string& peer,
                                                    int64_t now_ms) = 0;

  // When the next delivery to `peer` expires by time: the earliest expiry
  // among queued ones and, a grace period later (rules.h), among forwarded
  // ones; 0 if there is none.
  virtual absl::StatusOr<int64_t> EarliestQueuedExpiryMs(
      const std::string& peer) = 0;

  // Marks deliveries to `peer` whose time is up as expired: queued ones past
  // their expiry, forwarded ones (no end-to-end receipt came back through
  // the relay) a grace period after it (rules.h: kForwardedExpiryGraceMs; a
  // late receipt still settles them as delivered). Queued ones that were
  // sent before (the recipient may have stored them and its receipt been
  // lost) stay candidates for one final attempt (see FinalAttempts).
  virtual absl::StatusOr<uint32_t> ExpireOverdue(const std::string& peer,
                                                 int64_t now_ms) = 0;

  // Expired deliveries to `peer` still awaiting their final attempt (sent
  // before, expired less than `window_ms` ago), oldest first.
  virtual absl::StatusOr<std::vector<PendingDelivery>> FinalAttempts(
      const std::string& peer, size_t limit, int64_t now_ms,
      int64_t window_ms) = 0;

  // The final attempt of these expired deliveries was made.
  virtual absl::Status FinalAttemptMade(
      const std::string& peer, const std::vector<std::string>& ids) = 0;

  // Suspends a queued delivery (it needs an operator).
  virtual absl::Status Suspend(const std::string& message_id,
                               const std::string& peer,
                               const std::string& reason, int64_t now_ms) = 0;
  virtual absl::StatusOr<PeerState> GetPeerState(const std::string& peer) = 0;
  virtual absl::Status PutPeerState(const PeerState& state) = 0;

  // Receipts queued to go back through `peer`, oldest first.
  virtual absl::StatusOr<std::vector<PendingReturn>> NextReturns(
      const std::string& peer, size_t limit) = 0;
  virtual absl::Status ReturnsDone(const std::vector<int64_t>& ids) = 0;

  // Messages sent or relayed from here that have attachment chunk files
  // nobody needs any more: every delivery settled (an expired one at least
  // since `expired_before_ms`, past its final attempt), the files not
  // removed yet. At most `limit`.
  virtual absl::StatusOr<std::vector<ChunkHolder>> SettledChunkHolders(
      int64_t expired_before_ms, size_t limit) = 0;

  // Their chunk files were removed (by the caller).
  virtual absl::Status MarkChunksRemoved(const std::vector<std::string>& keys,
                                         int64_t now_ms) = 0;
};

// What the receiver needs of its own: duplicate detection and storage of
// messages for this node (inbox) and of messages relayed on, and the facts of
// a stored message its receipt refers to.
class ReceiveStore {
 public:
  virtual ~ReceiveStore() = default;

  virtual absl::StatusOr<std::optional<DedupEntry>> FindInbox(
      const std::string& origin, const std::string& message_id) = 0;

  // Inserts all records in one transaction; a record whose (origin, id) is
  // already there is left as it is (its existing entry is reported back in
  // `existing` at the same index, else nullopt).
  virtual absl::Status InsertInbox(
      const std::vector<InboxRecord>& records,
      std::vector<std::optional<DedupEntry>>* existing) = 0;

  // Whether (origin, message_id) was accepted here (content not read).
  virtual absl::StatusOr<bool> HasAccepted(const std::string& origin,
                                           const std::string& message_id) = 0;

  // Where (RelayKey(origin, id), deliver_to) stands, if known: its digest
  // and the receipt to answer a duplicate with (the end-to-end one once
  // settled, else this node's custody receipt).
  virtual absl::StatusOr<std::optional<DedupEntry>> FindRelayed(
      const std::string& origin, const std::string& message_id,
      const std::string& deliver_to) = 0;

  // Stores relayed envelopes, each with a queued delivery to its deliver_to,
  // in one transaction. One already there is left as it is and reported in
  // `existing` (same index), as FindRelayed would.
  virtual absl::Status InsertRelayed(
      const std::vector<RelayedMessage>& messages,
      std::vector<std::optional<DedupEntry>>* existing) = 0;

  // Origin and digest of a stored message (store key); nullopt if unknown.
  virtual absl::StatusOr<std::optional<MessageFacts>> GetMessageFacts(
      const std::string& key) = 0;

  // State of one delivery; nullopt if there is none.
  virtual absl::StatusOr<std::optional<DeliveryRow>> GetDelivery(
      const std::string& key, const std::string& peer) = 0;
};

// The inbox as its readers see it: accepted messages, acknowledgements,
// delivery events, and waiting for new ones (watch).
class InboxStore {
 public:
  virtual ~InboxStore() = default;

  // Accepted inbox records matching `query` (see InboxQuery).
  virtual absl::StatusOr<std::vector<InboxRecord>> ListInbox(
      const InboxQuery& query) = 0;
  absl::StatusOr<std::vector<InboxRecord>> ListInbox(bool unread_only,
                                                     uint64_t after_seq,
                                                     size_t limit) {
    InboxQuery q;
    q.unread_only = unread_only;
    q.after_seq = after_seq;
    q.limit = limit;
    return ListInbox(q);
  }

  // Accepted inbox records with this id; `origin` empty means any origin
  // (ids are random, so normally at most one).
  virtual absl::StatusOr<std::vector<InboxRecord>> GetInbox(
      const std::string& message_id, const std::string& origin) = 0;

  // Marks (origin, message_id) as handled; returns true if it already was.
  // kNotFound if there is no such accepted message.
  virtual absl::StatusOr<bool> Ack(const std::string& origin,
                                   const std::string& message_id) = 0;
  virtual uint64_t MaxInboxSeq() = 0;

  // State changes of deliveries of this node's own messages (kept in the
  // same transaction as the change), after `after_seq`, oldest first.
  virtual absl::StatusOr<std::vector<DeliveryEvent>> ListEvents(
      uint64_t after_seq, size_t limit) = 0;
  virtual absl::StatusOr<uint64_t> MaxEventSeq() = 0;

  // Blocks until an accepted inbox record with seq > after_seq may exist or
  // `timeout_ms` passes.
  virtual void WaitInbox(uint64_t after_seq, int64_t timeout_ms) = 0;
};

// Reads for the status, outbox, peers, show and thread views.
class QueryStore {
 public:
  virtual ~QueryStore() = default;

  virtual absl::StatusOr<std::vector<DeliveryRow>> Deliveries(
      const std::string& message_id) = 0;

  // Deliveries in `state` ("" = queued), of messages `submitter` sent (""
  // = anyone's).
  virtual absl::StatusOr<std::vector<DeliveryRow>> ListDeliveries(
      const std::string& state, size_t limit,
      const std::string& submitter = "") = 0;
  virtual absl::StatusOr<QueueStats> PeerQueue(const std::string& peer) = 0;

  // Messages of a case (by case reference, ignoring ASCII case), sent and
  // received, oldest first.
  virtual absl::StatusOr<std::vector<ThreadEntry>> Thread(
      const std::string& case_ref) = 0;

  // Messages sent or accepted here whose id starts with `prefix` (lower
  // case), at most `limit`; content is not read (payload and inner_signed
  // stay empty).
  virtual absl::StatusOr<std::vector<KnownMessage>> FindByIdPrefix(
      const std::string& prefix, size_t limit) = 0;

  // A message this node sent (origin empty) or accepted, by id.
  virtual absl::StatusOr<std::optional<KnownMessage>> FindMessage(
      const std::string& message_id) = 0;
};

// Retention and erasure (DESIGN.md §7).
class RetentionStore {
 public:
  virtual ~RetentionStore() = default;

  // Messages (received, and own copies) whose content is older than the
  // retention of their kind (default_days for kinds not listed; 0: kept).
  virtual absl::StatusOr<std::vector<PurgeCandidate>> PurgeCandidates(
      const std::map<std::string, uint32_t>& days_by_kind,
      uint32_t default_days, int64_t now_ms, size_t limit) = 0;

  // Erases their content (payload, inner signature, subject, attachment
  // keys) cryptographically: the columns go and the message's content key
  // is destroyed. Keeps metadata, digests, receipts and dedup records; one
  // "erase" audit record each, in the same transaction.
  virtual absl::Status Purge(const std::vector<PurgeCandidate>& messages,
                             const std::string& actor, int64_t now_ms) = 0;

  // Erase orders received (all, or those of one order message).
  virtual absl::StatusOr<std::vector<EraseOrder>> ListEraseOrders(
      const std::string& order_id) = 0;
};

// The audit chain, its signed heads, the receipts that witness peers' chains,
// and the evidence archive (DESIGN.md §7). Every write of the other interfaces
// that collects, discloses, relays, alters or refuses appends its audit
// records in its own transaction; AppendAudit is for the others
// (consultations).
class AuditStore {
 public:
  virtual ~AuditStore() = default;

  // Appends records of what no other write records (consultations), in a
  // transaction of their own, durably.
  virtual absl::Status AppendAudit(const std::vector<AuditEntry>& entries,
                                   int64_t now_ms) = 0;
  virtual absl::StatusOr<std::vector<AuditRecord>> ListAudit(uint64_t after_seq,
                                                             size_t limit) = 0;

  // The records about one message, oldest first.
  virtual absl::StatusOr<std::vector<AuditRecord>> AuditOfMessage(
      const std::string& message_id, size_t limit) = 0;

  // The newest `limit` records, oldest first.
  virtual absl::StatusOr<std::vector<AuditRecord>> TailAudit(size_t limit) = 0;
  virtual absl::StatusOr<AuditHead> GetAuditHead() = 0;
  virtual absl::StatusOr<std::optional<AuditRecord>> GetAuditRecord(
      uint64_t seq) = 0;

  // Recomputes the whole chain: sequence, links and hashes.
  virtual absl::StatusOr<AuditCheck> VerifyAuditChain() = 0;
  virtual absl::Status PutSignedHead(const SignedAuditHead& head) = 0;
  virtual absl::StatusOr<std::vector<SignedAuditHead>> ListSignedHeads() = 0;

  // The newest receipts `peer` signed for this node's messages (they carry
  // its audit head): what this node witnesses for it.
  virtual absl::StatusOr<std::vector<std::string>> ReceiptsFrom(
      const std::string& peer, size_t limit) = 0;

  // Adds certificates and CRLs not archived yet (same bytes: kept once).
  virtual absl::Status PutEvidence(const std::vector<EvidenceItem>& items,
                                   int64_t now_ms) = 0;
  virtual absl::StatusOr<std::vector<EvidenceItem>> ListEvidence() = 0;
};

// The node's durable state: every interface above. The operations are
// written once, over the small SQL interface of store/sql.h (sql_store.cc),
// which is what a database backend implements. Store::Open (and OpenStore,
// store/open.h, by configuration) builds it on SQLite (sqlite_store.cc): one
// SQLite file (WAL, synchronous=FULL), and message content keys in a second
// one beside it (ContentKeysPath): all content is stored sealed, so erasing
// destroys a key (DESIGN.md §7). Writes go through one writer thread that
// commits whatever is pending in one transaction (group commit): a write
// returns only after its transaction is durable. Each write is its own
// savepoint, so one failing write does not fail the others. Thread-safe.
class Store : public SubmitStore,
              public DeliveryStore,
              public ReceiveStore,
              public InboxStore,
              public QueryStore,
              public RetentionStore,
              public AuditStore {
 public:
  // `metrics` (optional) gets the commit sizes.
  static absl::StatusOr<std::unique_ptr<Store>> Open(
      const std::string& path, Metrics* metrics = nullptr);
  ~Store() override = default;

  // Wait-free counters for benchmarks: transactions and writes committed.
  virtual uint64_t commits() const = 0;
  virtual uint64_t writes() const = 0;
};

}  // namespace kontor

#endif  // KONTOR_DAEMON_STORE_STORE_H_
