#include "daemon/store/rules.h"

#include <algorithm>
#include <utility>

namespace kontor {
namespace {

using States = std::vector<absl::string_view>;

const States& None() {
  static const auto* const none = new States{};
  return *none;
}

}  // namespace

const std::vector<absl::string_view>& StoredDeliveryStates() {
  static const auto* const states = new States{
      kStateQueued,   kStateForwarded, kStateSuspended, kStateDelivered,
      kStateRejected, kStateExpired,   kStateCancelled};
  return *states;
}

const std::vector<absl::string_view>& StatesBefore(DeliveryMove move,
                                                   absl::string_view to) {
  // Not yet settled: waiting here, or in a relay's custody.
  static const auto* const open = new States{kStateQueued, kStateForwarded};
  static const auto* const late_receipt =
      new States{kStateQueued, kStateForwarded, kStateExpired, kStateCancelled,
                 kStateRejected};
  static const auto* const queued = new States{kStateQueued};
  static const auto* const cancellable =
      new States{kStateQueued, kStateSuspended};
  switch (move) {
    case DeliveryMove::kSettle:
      if (to == kStateDelivered) return *late_receipt;
      if (to == kStateRejected || to == kStateExpired) return *open;
      return None();
    case DeliveryMove::kForward:
      return to == kStateForwarded ? *queued : None();
    case DeliveryMove::kSuspend:
      return to == kStateSuspended ? *queued : None();
    case DeliveryMove::kCancel:
      return to == kStateCancelled ? *cancellable : None();
    case DeliveryMove::kRetry:
      return to == kStateQueued ? *cancellable : None();
  }
  return None();
}

bool MayMove(absl::string_view from, DeliveryMove move, absl::string_view to) {
  const States& before = StatesBefore(move, to);
  return std::find(before.begin(), before.end(), from) != before.end();
}

std::vector<PendingDelivery> ComposeBatch(std::vector<PendingDelivery> flash,
                                          std::vector<PendingDelivery> urgent,
                                          std::vector<PendingDelivery> routine,
                                          size_t limit) {
  if (flash.size() > limit) flash.resize(limit);
  const size_t rest = limit - flash.size();
  const size_t routine_share = rest / 4;
  size_t take_routine = std::min(routine.size(), routine_share);
  const size_t take_urgent = std::min(urgent.size(), rest - take_routine);
  take_routine = std::min(routine.size(), rest - take_urgent);
  std::vector<PendingDelivery> out = std::move(flash);
  out.reserve(out.size() + take_urgent + take_routine);
  size_t u = 0, r = 0;
  while (u < take_urgent || r < take_routine) {
    for (int k = 0; k < 3 && u < take_urgent; ++k) {
      out.push_back(std::move(urgent[u++]));
    }
    if (r < take_routine) out.push_back(std::move(routine[r++]));
  }
  return out;
}

std::vector<RetentionCutoff> RetentionCutoffs(
    const std::vector<std::string>& kinds,
    const std::map<std::string, uint32_t>& days_by_kind, uint32_t default_days,
    int64_t now_ms) {
  std::vector<RetentionCutoff> out;
  for (const std::string& kind : kinds) {
    const auto it = days_by_kind.find(kind);
    const uint32_t days = it != days_by_kind.end() ? it->second : default_days;
    if (days == 0) continue;
    out.push_back({kind, days, now_ms - int64_t{days} * 24 * 3600 * 1000});
  }
  return out;
}

AuditEntry RefusalAuditEntry(const Settlement& x) {
  AuditEntry e;
  e.action = std::string(kAuditRefuse);
  e.actor = "node:" + x.peer;
  e.message_id = x.message_id;
  e.peer = x.peer;
  e.detail = x.reason;
  const size_t slash = x.message_id.find('/');
  if (slash != std::string::npos) {
    e.origin = x.message_id.substr(0, slash);
    e.message_id = x.message_id.substr(slash + 1);
  }
  return e;
}

}  // namespace kontor
