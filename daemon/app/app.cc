#include "daemon/app/app.h"

#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "daemon/app/internal.h"
#include "daemon/attachment/files.h"
#include "daemon/common/ids.h"
#include "daemon/common/log.h"

namespace kontor {

App::App(AppOptions options)
    : o_(std::move(options)),
      min_free_bytes_(o_.config->limits().min_free_bytes() != 0
                          ? o_.config->limits().min_free_bytes()
                          : DefaultMinFreeBytes(o_.config->data_dir())),
      peer_policy_(PeerPolicyOf(*o_.config)) {
  ArchiveEvidence();
}

PeerPolicy PeerPolicyOf(const v1::NodeConfig& config) {
  PeerPolicy::KindsByPeer accept, send;
  for (const auto& p : config.peers()) {
    if (p.accept_kinds_size() > 0) {
      accept[p.id()].insert(p.accept_kinds().begin(), p.accept_kinds().end());
    }
    if (p.send_kinds_size() > 0) {
      send[p.id()].insert(p.send_kinds().begin(), p.send_kinds().end());
    }
  }
  return PeerPolicy(std::move(accept), std::move(send));
}

void App::ArchiveEvidence() {
  std::vector<std::string> problems;
  std::vector<EvidenceItem> items = EvidenceFromConfig(*o_.config, &problems);
  for (const std::string& p : problems) {
    KLOG(Warning, "evidence") << "not archived: " << p;
  }
  if (auto s = o_.store->PutEvidence(items, o_.clock->NowUnixMs()); !s.ok()) {
    KLOG(Error, "evidence")
        << "cannot archive certificates and CRLs: " << s.message();
  }
}

absl::StatusOr<KnownMessage> App::OwnSent(const Caller& caller,
                                          const std::string& message_id) const {
  if (!IsValidMessageId(message_id)) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", Printable(message_id, 64), "' is not a message id"));
  }
  auto known = o_.store->FindMessage(message_id);
  if (!known.ok()) return known.status();
  // Not sent from here, or not yours: as if it did not exist.
  if (!known->has_value() || !(*known)->sent ||
      !MaySee(caller, app_internal::ViewOf(**known))) {
    return absl::NotFoundError(
        absl::StrCat("no message ", message_id, " was sent from this node"));
  }
  return std::move(**known);
}

absl::StatusOr<std::string> App::ResolveId(const Caller& caller,
                                           const std::string& raw) const {
  const std::string prefix = absl::AsciiStrToLower(raw);
  if (IsValidMessageId(prefix)) return prefix;
  const bool shape =
      prefix.size() >= app_internal::kMinIdPrefix && prefix.size() < 36 &&
      std::all_of(prefix.begin(), prefix.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == '-';
      });
  if (!shape) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", Printable(raw, 64),
        "' is not a message id (nor the start of one: 8 or more of its "
        "characters)"));
  }
  // Peers choose their ids, so many may share a prefix, most of them
  // perhaps hidden from this caller: the answer must depend on what the
  // caller may see only. Usually the first look is all there is.
  constexpr size_t kFirstLook = 64;
  constexpr size_t kMostMatches = 10000;
  std::set<std::string> ids;
  for (size_t limit : {kFirstLook, kMostMatches + 1}) {
    KONTOR_ASSIGN_OR_RETURN(auto found,
                            o_.store->FindByIdPrefix(prefix, limit));
    ids.clear();
    for (const KnownMessage& m : found) {
      if (MaySee(caller, app_internal::ViewOf(m))) ids.insert(m.message_id);
    }
    // Two visible ones are ambiguous whatever else there is.
    if (found.size() < limit || ids.size() > 1) break;
    // Over kMostMatches matches (a flood of ids sharing a prefix): what
    // this caller may see among the first ones is the answer; the whole id
    // always works.
  }
  if (ids.empty()) {
    return absl::NotFoundError(
        absl::StrCat("no message id starting with ", prefix, " on this node"));
  }
  if (ids.size() > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(prefix, " is the start of ", ids.size(),
                     " message ids; give more of it"));
  }
  return *ids.begin();
}

absl::Status App::AuditConsult(const Caller& caller,
                               const std::string& message_id,
                               const std::string& origin, const v1::Payload& p,
                               const std::string& what) {
  auto s = o_.store->AppendAudit(
      {AuditEntry{std::string(kAuditConsult), caller.id, message_id, origin, "",
                  p.kind(), p.markings().purpose(), what}},
      o_.clock->NowUnixMs());
  if (!s.ok()) {
    // No record, no content: the log must hold every consultation.
    return absl::Status(s.code(),
                        absl::StrCat("cannot record the consultation in the "
                                     "audit log now (",
                                     s.message(), "); nothing is shown"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<DeliveryRow>> App::SentDeliveries(
    const std::string& message_id) const {
  if (!IsValidMessageId(message_id)) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", Printable(message_id, 64), "' is not a message id"));
  }
  auto rows = o_.store->Deliveries(message_id);
  if (rows.ok() && rows->empty()) {
    return absl::NotFoundError(
        absl::StrCat("no message ", message_id, " was sent from this node"));
  }
  return rows;
}

absl::StatusOr<InboxRecord> App::FindReceived(const Caller& caller,
                                              const std::string& message_id,
                                              const std::string& origin) const {
  if (!origin.empty() && !IsValidNodeId(origin)) {
    return absl::InvalidArgumentError(
        absl::StrCat("origin: '", Printable(origin, 64), "' is not a node id"));
  }
  auto records = o_.store->GetInbox(message_id, origin);
  if (!records.ok()) return records.status();
  // What the caller may not see is not there, for them.
  records->erase(
      std::remove_if(records->begin(), records->end(),
                     [&](const InboxRecord& r) {
                       return !MaySee(caller, MessageView{false, "", r.kind});
                     }),
      records->end());
  if (records->empty()) {
    return absl::NotFoundError(
        absl::StrCat("no message ", message_id,
                     origin.empty() ? "" : absl::StrCat(" from ", origin),
                     " in this node's inbox"));
  }
  if (records->size() > 1) {
    std::string origins;
    for (const auto& r : *records) {
      absl::StrAppend(&origins, origins.empty() ? "" : ", ", r.origin);
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "message id ", message_id, " was received from several origins (",
        origins, "): name the origin (--from)"));
  }
  return std::move((*records)[0]);
}

std::string App::ShownState(const DeliveryRow& row) const {
  if (row.state == kStateQueued &&
      o_.outbox->InFlight(row.message_id, row.peer)) {
    return std::string(kStateInFlight);
  }
  return row.state;
}

}  // namespace kontor
