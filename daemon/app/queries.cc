// Reading: what a caller may see of the messages, threads, deliveries and
// peers.

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

absl::StatusOr<v1::StatusResponse> App::Status(
    const Caller& caller, const v1::StatusRequest& request) {
  v1::StatusResponse out;
  KONTOR_ASSIGN_OR_RETURN(const std::string id,
                          ResolveId(caller, request.message_id()));
  if (auto own = OwnSent(caller, id); !own.ok()) {
    return own.status();
  }
  auto rows = SentDeliveries(id);
  if (!rows.ok()) return rows.status();
  out.set_message_id(id);
  std::set<std::string> states;
  for (const DeliveryRow& r : *rows) {
    v1::DeliveryStatus* d = out.add_deliveries();
    d->set_recipient(r.peer);
    const std::string state = ShownState(r);
    d->set_state(state);
    d->set_attempts(r.attempts);
    d->set_last_error(r.last_error);
    d->set_updated_unix_ms(r.updated_ms);
    d->set_reason(r.reason);
    if (!r.receipt.empty()) {
      d->set_receipt(r.receipt);
      v1::Receipt receipt;
      v1::ReceiptBody body;
      if (receipt.ParseFromString(r.receipt) &&
          body.ParseFromString(receipt.body())) {
        d->set_receipt_signer(body.recipient());
        d->set_receipt_time_unix_ms(body.time_unix_ms());
        *d->mutable_erased() = body.erased();
        *d->mutable_erase_kept() = body.erase_kept();
      }
    }
    states.insert(state);
    out.set_created_unix_ms(r.created_ms);
    out.set_expires_unix_ms(r.expires_ms);
    out.set_priority(static_cast<v1::Priority>(r.priority));
  }
  out.set_state(states.size() == 1 ? *states.begin() : "partial");
  return out;
}

absl::StatusOr<v1::InboxResponse> App::Inbox(const Caller& caller,
                                             const v1::InboxRequest& request) {
  v1::InboxResponse out;
  const size_t limit =
      request.limit() == 0
          ? 100
          : std::min<size_t>(request.limit(), app_internal::kMaxList);
  if (!request.origin().empty() && !IsValidNodeId(request.origin())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "origin: '", Printable(request.origin(), 64), "' is not a node id"));
  }
  if (!request.kind().empty() && !IsMessageKind(request.kind())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "kind: '", Printable(request.kind(), 40), "' is not a message kind"));
  }
  if (request.case_ref().size() > 200) {
    return absl::InvalidArgumentError("case_ref: at most 200 characters");
  }
  InboxQuery query;
  query.unread_only = request.unread_only();
  query.after_seq = request.after_seq();
  query.limit = limit;
  query.kind = request.kind();
  query.origin = request.origin();
  query.case_ref = request.case_ref();
  query.newest_first = request.newest_first();
  // Page by page until `limit` entries this caller may see (what it may
  // not see takes no room in the answer), or the end.
  for (;;) {
    KONTOR_ASSIGN_OR_RETURN(auto records, o_.store->ListInbox(query));
    for (const InboxRecord& r : records) {
      (query.newest_first ? query.before_seq : query.after_seq) = r.seq;
      if (!MaySee(caller, MessageView{false, "", r.kind})) continue;
      app_internal::FillEntry(r, out.add_entries());
      if (static_cast<size_t>(out.entries_size()) == limit) return out;
    }
    if (records.size() < query.limit) return out;
  }
}

absl::StatusOr<v1::ShowResponse> App::Show(const Caller& caller,
                                           const v1::ShowRequest& request) {
  v1::ShowResponse out;
  KONTOR_ASSIGN_OR_RETURN(const std::string id,
                          ResolveId(caller, request.message_id()));
  auto found = FindReceived(caller, id, request.origin());
  if (found.status().code() == absl::StatusCode::kNotFound &&
      (request.origin().empty() || request.origin() == o_.config->node_id())) {
    // A message this node sent: its own copy.
    auto own = OwnSent(caller, id);
    if (!own.ok()) return found.status();
    v1::Payload* p = out.mutable_payload();
    if (!p->ParseFromString(own->payload)) {
      return absl::DataLossError("stored payload is damaged");
    }
    if (own->purged_ms != 0) {  // what is left: the metadata
      p->set_kind(own->kind);
      p->set_case_ref(own->case_ref);
    }
    v1::InboxEntry* e = out.mutable_entry();
    e->set_message_id(own->message_id);
    e->set_origin(o_.config->node_id());
    e->set_kind(p->kind());
    e->set_subject(p->subject());
    e->set_case_ref(p->case_ref());
    e->set_in_reply_to(p->in_reply_to());
    e->set_created_unix_ms(own->created_ms);
    e->set_sent(true);
    e->set_purged_unix_ms(own->purged_ms);
    auto rows = o_.store->Deliveries(own->message_id);
    if (rows.ok()) {
      for (const DeliveryRow& r : *rows) {
        out.add_recipients(r.peer);
        e->set_priority(static_cast<v1::Priority>(r.priority));
      }
    }
    out.set_signer(o_.config->node_id());
    for (auto& a : *p->mutable_attachments()) a.clear_key();
    if (absl::Status s =
            AuditConsult(caller, own->message_id, "", *p, "shown (sent copy)");
        !s.ok()) {
      return s;
    }
    return out;
  }
  if (!found.ok()) return found.status();
  const InboxRecord& record = *found;
  app_internal::FillEntry(record, out.mutable_entry());
  if (!out.mutable_payload()->ParseFromString(record.payload)) {
    return absl::DataLossError("stored payload is damaged");
  }
  if (record.purged_ms != 0) {  // what is left: the metadata
    out.mutable_payload()->set_kind(record.kind);
    out.mutable_payload()->set_case_ref(record.case_ref);
  }
  if (absl::Status s = AuditConsult(caller, record.message_id, record.origin,
                                    out.payload(), "shown");
      !s.ok()) {
    return s;
  }
  v1::Header header;
  if (header.ParseFromString(record.header)) {
    for (const auto& r : header.recipients()) out.add_recipients(r);
  }
  out.set_signer(record.origin);
  // The attachment keys stay in the node: FetchAttachment decrypts.
  for (auto& a : *out.mutable_payload()->mutable_attachments()) {
    a.clear_key();
  }
  KLOG(Info, "api") << caller.id << " read message " << id;
  return out;
}

absl::StatusOr<v1::ThreadResponse> App::Thread(
    const Caller& caller, const v1::ThreadRequest& request) {
  v1::ThreadResponse out;
  std::string case_ref = request.case_ref();
  if (case_ref.empty()) {
    auto resolved = ResolveId(caller, request.message_id());
    if (!resolved.ok()) return resolved.status();
    const std::string& id = *resolved;
    auto known = o_.store->FindMessage(id);
    if (!known.ok()) return known.status();
    // Nothing of a message the caller may not see is read, not even its
    // case: it is an unknown id.
    if (!known->has_value() || !MaySee(caller, app_internal::ViewOf(**known))) {
      return absl::NotFoundError(
          absl::StrCat("no message ", id, " on this node"));
    }
    case_ref = (*known)->case_ref;
    if (case_ref.empty()) {
      return absl::NotFoundError(
          absl::StrCat("message ", id, " has no case reference"));
    }
  }
  if (case_ref.size() > 200)
    return absl::InvalidArgumentError("case: at most 200 characters");
  auto entries = o_.store->Thread(case_ref);
  if (!entries.ok()) return entries.status();
  out.set_case_ref(case_ref);
  for (const ThreadEntry& t : *entries) {
    if (!MaySee(caller, MessageView{t.sent, t.submitter, t.kind})) continue;
    v1::ThreadMessage* m = out.add_messages();
    m->set_message_id(t.message_id);
    m->set_origin(t.sent ? o_.config->node_id() : t.origin);
    m->set_sent(t.sent);
    for (const std::string& p : t.peers) m->add_peers(p);
    m->set_kind(t.kind);
    m->set_subject(t.subject);
    m->set_in_reply_to(t.in_reply_to);
    m->set_created_unix_ms(t.created_ms);
    m->set_erased_unix_ms(t.purged_ms);
    if (!t.sent) {
      m->set_state("received");
      continue;
    }
    std::set<std::string> states;
    if (auto rows = o_.store->Deliveries(t.message_id); rows.ok()) {
      for (const DeliveryRow& r : *rows) states.insert(ShownState(r));
    }
    m->set_state(states.size() == 1 ? *states.begin() : "partial");
  }
  if (out.messages().empty()) {
    return absl::NotFoundError(absl::StrCat(
        "no messages of case '", Printable(case_ref, 80), "' on this node"));
  }
  return out;
}

absl::StatusOr<v1::OutboxResponse> App::Outbox(
    const Caller& caller, const v1::OutboxRequest& request) {
  v1::OutboxResponse out;
  static const std::set<std::string> kStates = {
      "",         "queued",  "in_flight", "delivered",
      "rejected", "expired", "cancelled", "suspended"};
  if (kStates.count(request.state()) == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("state: '", Printable(request.state(), 40),
                     "' is not one of queued, in_flight, "
                     "delivered, rejected, expired, cancelled, suspended"));
  }
  const bool want_in_flight = request.state() == kStateInFlight;
  const std::string stored_state =
      want_in_flight ? std::string(kStateQueued) : request.state();
  const size_t limit =
      request.limit() == 0
          ? 1000
          : std::min<size_t>(request.limit(), app_internal::kMaxList);
  // Only an admin sees the messages of others.
  auto rows = o_.store->ListDeliveries(
      stored_state, limit, RoleIsAdmin(caller.role) ? "" : caller.id);
  if (!rows.ok()) return rows.status();
  for (const DeliveryRow& r : *rows) {
    const std::string state = ShownState(r);
    if (want_in_flight && state != kStateInFlight) continue;
    v1::OutboxEntry* e = out.add_entries();
    e->set_message_id(r.message_id);
    e->set_recipient(r.peer);
    e->set_state(state);
    e->set_priority(static_cast<v1::Priority>(r.priority));
    e->set_created_unix_ms(r.created_ms);
    e->set_attempts(r.attempts);
    e->set_last_error(r.last_error);
  }
  return out;
}

absl::StatusOr<v1::PeersResponse> App::Peers(const Caller& caller) {
  v1::PeersResponse out;
  (void)caller;  // every role sees connectivity
  out.set_node_id(o_.config->node_id());
  out.set_tls_cert_not_after_unix_ms(o_.own_certs.tls_not_after_ms);
  out.set_signing_cert_not_after_unix_ms(o_.own_certs.signing_not_after_ms);
  out.set_encryption_cert_not_after_unix_ms(
      o_.own_certs.encryption_not_after_ms);
  for (const auto& p : o_.config->peers()) {
    v1::PeerInfo* info = out.add_peers();
    info->set_id(p.id());
    info->set_address(p.address());
    for (const auto& r : o_.config->routes()) {
      if (r.destination() == p.id()) info->set_via(r.via());
    }
    PeerRuntime rt = o_.outbox->Runtime(p.id());
    info->set_connected(rt.connected);
    auto state = o_.store->GetPeerState(p.id());
    if (state.ok()) {
      info->set_consecutive_failures(state->failures);
      info->set_next_attempt_unix_ms(state->next_attempt_ms);
      info->set_last_error(state->last_error);
      info->set_last_success_unix_ms(state->last_success_ms);
    }
    auto queue = o_.store->PeerQueue(p.id());
    if (queue.ok()) {
      info->set_queue_depth(queue->depth);
      info->set_oldest_queued_unix_ms(queue->oldest_created_ms);
    }
    if (auto it = o_.unusable_peers.find(p.id());
        it != o_.unusable_peers.end()) {
      info->set_unusable_reason(it->second);
    }
    const PeerCertInfo certs =
        o_.cert_info ? o_.cert_info(p.id()) : PeerCertInfo();
    info->set_signing_cert_not_after_unix_ms(certs.signing_not_after_ms);
    info->set_crl_next_update_unix_ms(certs.crl_next_update_ms);
    info->set_encryption_cert_not_after_unix_ms(certs.encryption_not_after_ms);
  }
  return out;
}

}  // namespace kontor
