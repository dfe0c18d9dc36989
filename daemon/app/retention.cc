// Retention (DESIGN.md §7): content past its time is erased, metadata and
// evidence stay.

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

absl::StatusOr<std::vector<PurgeCandidate>> App::PurgeExpired(
    const std::string& actor, bool dry_run) {
  const auto& r = o_.config->retention();
  std::map<std::string, uint32_t> days(r.days_by_kind().begin(),
                                       r.days_by_kind().end());
  auto due = o_.store->PurgeCandidates(days, r.default_days(),
                                       o_.clock->NowUnixMs(), 10000);
  if (!due.ok() || dry_run || due->empty()) return due;
  if (auto s = o_.store->Purge(*due, actor, o_.clock->NowUnixMs()); !s.ok()) {
    return s;
  }
  // Attachments of purged received messages go with them. (Own copies'
  // chunk files stay until their deliveries settle: they are still sent.)
  const AttachmentDirs dirs(o_.config->data_dir());
  for (const PurgeCandidate& c : *due) {
    if (!c.sent) RemoveTree(dirs.IncomingMessage(c.origin, c.message_id));
  }
  KLOG(Info, "retention") << actor << " purged the content of " << due->size()
                          << " message(s) past their retention";
  return due;
}

absl::StatusOr<v1::PurgeResponse> App::Purge(const Caller& caller,
                                             const v1::PurgeRequest& request) {
  v1::PurgeResponse out;
  KONTOR_RETURN_IF_ERROR(app_internal::NeedAdmin(caller, "purge"));
  auto done = PurgeExpired(caller.id, request.dry_run());
  if (!done.ok()) return done.status();
  out.set_dry_run(request.dry_run());
  for (const PurgeCandidate& c : *done) {
    v1::PurgedMessage* m = out.add_messages();
    m->set_message_id(c.message_id);
    m->set_origin(c.sent ? o_.config->node_id() : c.origin);
    m->set_sent(c.sent);
    m->set_kind(c.kind);
    m->set_kept_since_unix_ms(c.since_ms);
    m->set_retention_days(c.days);
  }
  return out;
}

}  // namespace kontor
