#ifndef KONTOR_DAEMON_STORE_AUDIT_H_
#define KONTOR_DAEMON_STORE_AUDIT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace kontor {

// What the hash-chained audit log records (DESIGN.md §7, Directive 2016/680
// Art. 25): who, when, which message, why. Never content.
inline constexpr absl::string_view kAuditCollect = "collect";    // received
inline constexpr absl::string_view kAuditConsult = "consult";    // shown
inline constexpr absl::string_view kAuditDisclose = "disclose";  // sent
inline constexpr absl::string_view kAuditRelay = "relay";        // passed on
inline constexpr absl::string_view kAuditAlter = "alter";  // cancel, retry
inline constexpr absl::string_view kAuditErase = "erase";
inline constexpr absl::string_view kAuditRefuse = "refuse";  // by us or a peer
// The node signed its chain head (detail "signed head N"): kept in the chain
// itself, so deleting signed heads shows (kontor audit verify).
inline constexpr absl::string_view kAuditAttest = "attest";

// The actor of what the node does by itself (a refusal by policy, a purge).
inline constexpr absl::string_view kAuditNodeActor = "kontord";

struct AuditEntry {
  std::string action;
  std::string actor;       // "user:<id>", "local-admin", "node:<id>", kontord
  std::string message_id;  // the message id (not the relay store key)
  std::string origin;      // its origin node
  std::string peer;        // the other node: recipient, sender, next hop
  std::string kind;        // message kind when known
  std::string purpose;     // stated purpose / legal basis when known
  std::string detail;      // a reason, a state; never content
};

struct AuditRecord {
  uint64_t seq = 0;  // 1, 2, 3, ...
  int64_t time_ms = 0;
  AuditEntry entry;
  std::string prev;  // hash of record seq-1 (32 zero bytes for seq 1)
  std::string hash;  // AuditRecordHash of this record
};

// SHA-256 over "kontor-audit-v1", seq, time and every field length-prefixed,
// and prev. Independent implementations recompute it the same way (see
// chain_hash in tests/system/kinds_test.py).
std::string AuditRecordHash(const AuditRecord& r);

// The head of the chain: the last record's seq and hash. Seq 0 with 32 zero
// bytes is the empty chain.
struct AuditHead {
  uint64_t seq = 0;
  std::string hash;
};
std::string GenesisHash();
// As carried in receipts (ReceiptBody.audit_head): u64be(seq) || hash.
std::string EncodeAuditHead(const AuditHead& head);
std::optional<AuditHead> DecodeAuditHead(absl::string_view bytes);

// The outcome of recomputing the chain.
struct AuditCheck {
  uint64_t records = 0;
  AuditHead head;
  // 0 if the chain is intact, else the first record that does not fit.
  uint64_t first_bad_seq = 0;
  std::string problem;
};

// The records `entries` (each with its time) become when appended after
// `head`: numbered on from it, each linked to the one before, and hashed.
// Every backend appends through this, in the transaction of the event the
// records are about.
std::vector<AuditRecord> ChainAudit(
    const AuditHead& head,
    const std::vector<std::pair<AuditEntry, int64_t>>& entries);

// Verification record by record, oldest first: Add each record in seq order
// until it returns false (the chain breaks there: see check()).
class AuditChainCheck {
 public:
  AuditChainCheck();
  bool Add(const AuditRecord& r);
  const AuditCheck& check() const { return check_; }

 private:
  AuditCheck check_;
};

}  // namespace kontor

#endif  // KONTOR_DAEMON_STORE_AUDIT_H_
