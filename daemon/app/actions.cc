// Acting on messages: acknowledge, cancel, retry.

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "daemon/app/app.h"
#include "daemon/app/internal.h"
#include "daemon/attachment/files.h"
#include "daemon/common/ids.h"
#include "daemon/common/kinds.h"
#include "daemon/common/log.h"
#include "daemon/kinds/kinds.h"

namespace kontor {

absl::StatusOr<v1::AckResponse> App::Ack(const Caller& caller,
                                         const v1::AckRequest& request) {
  v1::AckResponse out;
  KONTOR_ASSIGN_OR_RETURN(const std::string id,
                          ResolveId(caller, request.message_id()));
  auto found = FindReceived(caller, id, request.origin());
  if (!found.ok()) return found.status();
  auto already = o_.store->Ack(found->origin, found->message_id);
  if (!already.ok()) return already.status();
  out.set_already(*already);
  out.set_message_id(found->message_id);
  if (!*already) {
    // Who marked it handled, and when: an alteration of its state.
    if (auto s = o_.store->AppendAudit(
            {AuditEntry{std::string(kAuditAlter), caller.id, found->message_id,
                        found->origin, "", found->kind, found->purpose,
                        "acknowledged (marked handled)"}},
            o_.clock->NowUnixMs());
        !s.ok()) {
      KLOG(Error, "audit") << "acknowledgement not audited: " << s.message();
    }
  }
  return out;
}

absl::StatusOr<v1::CancelResponse> App::Cancel(
    const Caller& caller, const v1::CancelRequest& request) {
  v1::CancelResponse out;
  KONTOR_ASSIGN_OR_RETURN(const std::string id,
                          ResolveId(caller, request.message_id()));
  if (auto own = OwnSent(caller, id); !own.ok()) {
    return own.status();
  }
  auto rows = SentDeliveries(id);
  if (!rows.ok()) return rows.status();
  auto n = o_.store->Cancel(id, o_.clock->NowUnixMs(), caller.id);
  if (!n.ok()) return n.status();
  KLOG(Info, "api") << caller.id << " cancelled " << *n << " delivery(ies) of "
                    << id;
  out.set_cancelled(*n);
  out.set_message_id(id);
  return out;
}

absl::StatusOr<v1::RetryResponse> App::Retry(const Caller& caller,
                                             const v1::RetryRequest& request) {
  v1::RetryResponse out;
  KONTOR_ASSIGN_OR_RETURN(const std::string id,
                          ResolveId(caller, request.message_id()));
  if (auto own = OwnSent(caller, id); !own.ok()) {
    return own.status();
  }
  auto rows = SentDeliveries(id);
  if (!rows.ok()) return rows.status();
  auto n = o_.store->Retry(id, o_.clock->NowUnixMs(), caller.id);
  if (!n.ok()) return n.status();
  for (const DeliveryRow& r : *rows) o_.outbox->PeerContact(r.peer);
  KLOG(Info, "api") << caller.id << " retried " << *n << " delivery(ies) of "
                    << id;
  out.set_retried(*n);
  out.set_message_id(id);
  return out;
}

}  // namespace kontor
