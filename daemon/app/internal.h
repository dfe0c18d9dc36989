#ifndef KONTOR_DAEMON_APP_INTERNAL_H_
#define KONTOR_DAEMON_APP_INTERNAL_H_

// What the use cases of app/ share among themselves. Not for front ends.

#include <cstddef>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "daemon/common/status_macros.h"
#include "daemon/policy/policy.h"
#include "daemon/store/store.h"
#include "kontor/v1/local.pb.h"

namespace kontor {
namespace app_internal {

// The shortest message id prefix taken for an id (as `kontor thread` shows).
inline constexpr size_t kMinIdPrefix = 8;
inline constexpr size_t kMaxList = 100000;  // rows per Inbox/Outbox answer

inline MessageView ViewOf(const KnownMessage& m) {
  return MessageView{m.sent, m.submitter, m.kind};
}

inline void FillEntry(const InboxRecord& r, v1::InboxEntry* e) {
  e->set_seq(r.seq);
  e->set_message_id(r.message_id);
  e->set_origin(r.origin);
  e->set_kind(r.kind);
  e->set_subject(r.subject);
  e->set_priority(static_cast<v1::Priority>(r.priority));
  e->set_created_unix_ms(r.created_ms);
  e->set_received_unix_ms(r.received_ms);
  e->set_acked(r.acked);
  e->set_case_ref(r.case_ref);
  e->set_in_reply_to(r.in_reply_to);
  e->set_purged_unix_ms(r.purged_ms);
}

// Audit log, purge: admins only.
inline absl::Status NeedAdmin(const Caller& caller, absl::string_view what) {
  if (RoleIsAdmin(caller.role)) return absl::OkStatus();
  return absl::PermissionDeniedError(
      absl::StrCat(what, " is for admins; you are ", caller.id, " (",
                   RoleName(caller.role), ")"));
}

}  // namespace app_internal
}  // namespace kontor

#endif  // KONTOR_DAEMON_APP_INTERNAL_H_
