#ifndef KONTOR_DAEMON_STORE_RULES_H_
#define KONTOR_DAEMON_STORE_RULES_H_

// The store's rules that do not depend on a backend: the delivery state
// machine, how a batch is shared between priorities, which content retention
// reaches, and the audit record of a peer's refusal. A backend asks these
// functions and turns the answers into its own queries; it does not restate
// them. (Audit chaining is in audit.h, content sealing in content_keys.h.)

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "daemon/store/audit.h"
#include "daemon/store/store.h"

namespace kontor {

// What moves a delivery from one state to another.
enum class DeliveryMove {
  kSettle,   // the recipient's signed answer: delivered | rejected, or
             // expired by the recipient through a relay
  kForward,  // a relay's signed custody receipt: → forwarded
  kSuspend,  // the recipient needs an operator: → suspended
  kCancel,   // `kontor cancel`: → cancelled
  kRetry,    // `kontor retry`: → queued (and due now)
};

// The states a delivery may be in for `move` to take it to `to`; empty if
// `move` never leads to `to`. The whole delivery state machine (DESIGN.md
// §5) apart from expiry by time (ExpireOverdue): a settled state is final,
// except that a late receipt (delivered) wins over expired and cancelled (the
// recipient stored the message after all) and over rejected (a recipient's
// refusal of bytes a relay altered: it holds the real ones).
const std::vector<absl::string_view>& StatesBefore(DeliveryMove move,
                                                   absl::string_view to);
bool MayMove(absl::string_view from, DeliveryMove move, absl::string_view to);

// Expiry by time (ExpireOverdue): a queued delivery expires at its
// message's expiry; a forwarded one (in a relay's custody, its end-to-end
// receipt still to come back) this much later, so that a receipt on its way
// is not overtaken.
inline constexpr int64_t kForwardedExpiryGraceMs = 24LL * 3600 * 1000;

// Every delivery state as stored (in_flight is never stored).
const std::vector<absl::string_view>& StoredDeliveryStates();

// One batch to a peer from the due deliveries of each priority class, each
// oldest first: flash strictly first, the rest of `limit` shared 3:1 between
// urgent and routine (either takes what the other leaves), interleaved three
// urgent then one routine so that a batch cut short by its byte limit still
// keeps the share. Under four places left there is no share: urgent first.
std::vector<PendingDelivery> ComposeBatch(std::vector<PendingDelivery> flash,
                                          std::vector<PendingDelivery> urgent,
                                          std::vector<PendingDelivery> routine,
                                          size_t limit);

// Content of one kind that retention reaches: received (or, for own copies,
// sent) before `cutoff_ms`.
struct RetentionCutoff {
  std::string kind;
  uint32_t days = 0;
  int64_t cutoff_ms = 0;
};
// For each of `kinds`: its days from `days_by_kind`, else `default_days`;
// kinds kept for ever (0 days) are left out.
std::vector<RetentionCutoff> RetentionCutoffs(
    const std::vector<std::string>& kinds,
    const std::map<std::string, uint32_t>& days_by_kind, uint32_t default_days,
    int64_t now_ms);

// The audit record of a recipient's signed refusal (a settlement to
// rejected), in the same transaction as the settlement. `x.message_id` is a
// store key (the id, or RelayKey for relayed ones).
AuditEntry RefusalAuditEntry(const Settlement& x);

}  // namespace kontor

#endif  // KONTOR_DAEMON_STORE_RULES_H_
