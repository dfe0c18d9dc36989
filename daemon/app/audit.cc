// The audit log (tail, verify) and evidence (export) for people.

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "daemon/app/app.h"
#include "daemon/app/audit_verify.h"
#include "daemon/app/evidence.h"
#include "daemon/app/internal.h"
#include "daemon/attachment/files.h"
#include "daemon/common/ids.h"
#include "daemon/common/kinds.h"
#include "daemon/common/log.h"
#include "daemon/kinds/kinds.h"

namespace kontor {

absl::StatusOr<v1::AuditTailResponse> App::AuditTail(
    const Caller& caller, const v1::AuditTailRequest& request) {
  v1::AuditTailResponse out;
  KONTOR_RETURN_IF_ERROR(app_internal::NeedAdmin(caller, "the audit log"));
  const size_t limit =
      request.limit() == 0 ? 20 : std::min<size_t>(request.limit(), 10000);
  auto records = o_.store->TailAudit(limit);
  if (!records.ok()) return records.status();
  for (const AuditRecord& r : *records) {
    v1::AuditRecord* rec = out.add_records();
    rec->set_seq(r.seq);
    rec->set_time_unix_ms(r.time_ms);
    rec->set_action(r.entry.action);
    rec->set_actor(r.entry.actor);
    rec->set_message_id(r.entry.message_id);
    rec->set_origin(r.entry.origin);
    rec->set_peer(r.entry.peer);
    rec->set_kind(r.entry.kind);
    rec->set_purpose(r.entry.purpose);
    rec->set_detail(r.entry.detail);
    rec->set_hash(r.hash);
  }
  return out;
}

absl::StatusOr<v1::AuditVerifyResponse> App::AuditVerify(
    const Caller& caller, const v1::AuditVerifyRequest& request) {
  v1::AuditVerifyResponse out;
  KONTOR_RETURN_IF_ERROR(app_internal::NeedAdmin(caller, "the audit log"));
  if (!o_.signer) {
    return absl::FailedPreconditionError(
        "audit verification is not set up on this node");
  }
  auto result =
      VerifyAudit(o_.store, o_.config->node_id(), *o_.signer, o_.witness_peers,
                  request.local_only() ? WitnessFetch() : o_.witness);
  if (!result.ok()) return result.status();
  out = std::move(*result);
  if (!out.ok()) {
    KLOG(Security, "audit")
        << "audit log verification failed: " << out.problems(0);
  }
  return out;
}

absl::StatusOr<v1::ExportResponse> App::Export(
    const Caller& caller, const v1::ExportRequest& request) {
  v1::ExportResponse out;
  KONTOR_ASSIGN_OR_RETURN(const std::string id,
                          ResolveId(caller, request.message_id()));
  auto known = o_.store->FindMessage(id);
  if (!known.ok()) return known.status();
  if (!known->has_value() || !MaySee(caller, app_internal::ViewOf(**known))) {
    return absl::NotFoundError(absl::StrCat("no message ", id));
  }
  ExportInput in;
  in.message = std::move(**known);
  const KnownMessage& m = in.message;
  if (m.sent) {
    auto own = OwnSent(caller, m.message_id);
    if (!own.ok()) return own.status();
    auto rows = o_.store->Deliveries(m.message_id);
    if (!rows.ok()) return rows.status();
    for (const DeliveryRow& r : *rows) {
      if (r.state == kStateDelivered && !r.receipt.empty()) {
        in.receipts.push_back(ExportReceipt{r.peer, r.receipt});
      }
    }
  } else {
    auto records = o_.store->GetInbox(m.message_id, m.origin);
    if (!records.ok()) return records.status();
    for (const InboxRecord& r : *records) {
      in.receipts.push_back(ExportReceipt{o_.config->node_id(), r.receipt});
    }
  }
  v1::Payload payload;
  if (!m.payload.empty() && payload.ParseFromString(m.payload)) {
    for (auto& a : *payload.mutable_attachments()) a.clear_key();
    in.payload_json = kinds::PayloadJson(payload);
  }
  payload.set_kind(m.kind);  // for the audit record, also when erased
  in.node_id = o_.config->node_id();
  if (m.purged_ms != 0) {
    if (auto s = GatherErasureEvidence(&in); !s.ok()) return s;
  }
  ArchiveEvidence();
  auto evidence = o_.store->ListEvidence();
  if (!evidence.ok()) return evidence.status();
  in.evidence = std::move(*evidence);
  auto files = BuildExport(in);
  if (!files.ok()) return files.status();
  if (absl::Status s = AuditConsult(caller, m.message_id, m.origin, payload,
                                    "exported as evidence");
      !s.ok()) {
    return s;
  }
  for (ExportFile& f : *files) {
    v1::ExportFile* file = out.add_files();
    file->set_name(std::move(f.name));
    file->set_content(std::move(f.content));
  }
  return out;
}

absl::Status App::GatherErasureEvidence(ExportInput* in) const {
  KnownMessage& m = in->message;
  if (m.inner_digest.empty()) {
    // A received message: the digest this node signed in its receipt.
    for (const ExportReceipt& r : in->receipts) {
      v1::Receipt receipt;
      v1::ReceiptBody body;
      if (receipt.ParseFromString(r.receipt) &&
          body.ParseFromString(receipt.body()) &&
          body.verdict() == v1::ACCEPTED) {
        m.inner_digest = body.inner_digest();
      }
    }
  }
  // How it was erased: the audit log says (an erase order names itself).
  auto records = o_.store->AuditOfMessage(m.message_id, 1000);
  if (!records.ok()) return records.status();
  for (const AuditRecord& r : *records) {
    // Another origin may use the same id: only this message's records.
    if (r.entry.action != kAuditErase || r.entry.origin != m.origin) continue;
    in->erased_how = absl::StrCat(r.entry.detail, ", by ", r.entry.actor);
    constexpr absl::string_view kBy = "erased by ";
    if (!m.sent || !absl::StartsWith(r.entry.detail, kBy)) continue;
    const std::string order_id =
        r.entry.detail.substr(r.entry.detail.rfind(' ') + 1);
    if (!IsValidMessageId(order_id)) continue;
    auto order = o_.store->FindMessage(order_id);
    if (!order.ok()) return order.status();
    if (!order->has_value() || !(*order)->sent) continue;
    auto rows = o_.store->Deliveries(order_id);
    if (!rows.ok()) return rows.status();
    for (const DeliveryRow& d : *rows) {
      if (d.state != kStateDelivered || d.receipt.empty()) continue;
      in->erasures.push_back(ExportErasure{order_id, (*order)->inner_digest,
                                           ExportReceipt{d.peer, d.receipt}});
    }
  }
  return absl::OkStatus();
}

}  // namespace kontor
