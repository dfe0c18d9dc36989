#include "daemon/api/local_service.h"

#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "daemon/api/export.h"
#include "daemon/api/operator_auth.h"
#include "daemon/attachment/files.h"
#include "daemon/common/crash_point.h"
#include "daemon/common/ids.h"
#include "daemon/common/kinds.h"
#include "daemon/common/log.h"
#include "daemon/crypto/primitives.h"
#include "daemon/kinds/kinds.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace kontor {
namespace {

constexpr size_t kMaxClientKey = 128;
// The shortest message id prefix taken for an id (as `kontor thread` shows).
constexpr size_t kMinIdPrefix = 8;
constexpr size_t kMaxList = 100000;  // rows per Inbox/Outbox answer

// An error's text goes to the caller (and often into the log): one line,
// bounded, whatever values went into it.
constexpr size_t kMaxErrorBytes = 2000;

grpc::Status Invalid(const std::string& message) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                      PrintableLine(message, kMaxErrorBytes));
}

grpc::Status Denied(const std::string& message) {
  return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                      PrintableLine(message, kMaxErrorBytes));
}

grpc::Status FromAbsl(const absl::Status& s) {
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()),
                      PrintableLine(s.message(), kMaxErrorBytes));
}

std::string DeterministicBytes(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::io::StringOutputStream stream(&out);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  m.SerializeToCodedStream(&coded);
  coded.Trim();
  return out;
}

MessageView ViewOf(const KnownMessage& m) {
  return MessageView{m.sent, m.submitter, m.kind};
}

void FillEntry(const InboxRecord& r, v1::InboxEntry* e) {
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

// A message id, or a unique prefix of one among what `caller` may see
// (ResolveId): the second line of every call that names a message.
#define KONTOR_RESOLVE(caller, raw, id)                 \
  auto id##_or = ResolveId(caller, raw);                \
  if (!id##_or.ok()) return FromAbsl(id##_or.status()); \
  const std::string& id = *id##_or

// Who may do what (policy.h): the first line of every call.
#define KONTOR_WHO(context, caller)                             \
  auto caller##_or = Who(context);                              \
  if (!caller##_or.ok()) return FromAbsl(caller##_or.status()); \
  const Caller& caller = *caller##_or

grpc::Status NeedAdmin(const Caller& caller, absl::string_view what) {
  if (RoleIsAdmin(caller.role)) return grpc::Status::OK;
  return Denied(absl::StrCat(what, " is for admins; you are ", caller.id, " (",
                             RoleName(caller.role), ")"));
}

grpc::Status NeedKind(const Caller& caller, const std::string& kind,
                      absl::string_view verb) {
  if (RoleMayUseKind(caller.role, kind)) return grpc::Status::OK;
  return Denied(absl::StrCat(
      "a ", RoleName(caller.role), " may not ", verb, " ", kind, " messages (",
      RoleName(caller.role),
      "s work with: ", absl::StrJoin(KindsOfRole(caller.role), ", "), ")"));
}

}  // namespace

LocalService::LocalService(
    const v1::NodeConfig* config, Store* store, const Sealer* sealer,
    kontor::Outbox* outbox, const Clock* clock,
    std::function<PeerCertInfo(const std::string&)> cert_info,
    OwnCertInfo own_certs, std::map<std::string, std::string> unusable_peers)
    : config_(config),
      store_(store),
      sealer_(sealer),
      outbox_(outbox),
      clock_(clock),
      cert_info_(std::move(cert_info)),
      own_certs_(own_certs),
      unusable_peers_(std::move(unusable_peers)),
      min_free_bytes_(config->limits().min_free_bytes() != 0
                          ? config->limits().min_free_bytes()
                          : DefaultMinFreeBytes(config->data_dir())) {
  ArchiveEvidence();
}

void LocalService::ArchiveEvidence() {
  std::vector<std::string> problems;
  std::vector<EvidenceItem> items = EvidenceFromConfig(*config_, &problems);
  for (const std::string& p : problems) {
    KLOG(Warning, "evidence") << "not archived: " << p;
  }
  if (auto s = store_->PutEvidence(items, clock_->NowUnixMs()); !s.ok()) {
    KLOG(Error, "evidence")
        << "cannot archive certificates and CRLs: " << s.message();
  }
}

grpc::Status LocalService::Export(grpc::ServerContext* context,
                                  const v1::ExportRequest* request,
                                  v1::ExportResponse* response) {
  KONTOR_WHO(context, caller);
  KONTOR_RESOLVE(caller, request->message_id(), id);
  auto known = store_->FindMessage(id);
  if (!known.ok()) return FromAbsl(known.status());
  if (!known->has_value() || !MaySee(caller, ViewOf(**known))) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        absl::StrCat("no message ", id));
  }
  ExportInput in;
  in.message = std::move(**known);
  const KnownMessage& m = in.message;
  if (m.sent) {
    auto own = OwnSent(caller, m.message_id);
    if (!own.ok()) return FromAbsl(own.status());
    auto rows = store_->Deliveries(m.message_id);
    if (!rows.ok()) return FromAbsl(rows.status());
    for (const DeliveryRow& r : *rows) {
      if (r.state == kStateDelivered && !r.receipt.empty()) {
        in.receipts.push_back(ExportReceipt{r.peer, r.receipt});
      }
    }
  } else {
    auto records = store_->GetInbox(m.message_id, m.origin);
    if (!records.ok()) return FromAbsl(records.status());
    for (const InboxRecord& r : *records) {
      in.receipts.push_back(ExportReceipt{config_->node_id(), r.receipt});
    }
  }
  v1::Payload payload;
  if (!m.payload.empty() && payload.ParseFromString(m.payload)) {
    for (auto& a : *payload.mutable_attachments()) a.clear_key();
    in.payload_json = kinds::PayloadJson(payload);
  }
  payload.set_kind(m.kind);  // for the audit record, also when erased
  in.node_id = config_->node_id();
  if (m.purged_ms != 0) {
    if (auto s = GatherErasureEvidence(&in); !s.ok()) return FromAbsl(s);
  }
  ArchiveEvidence();
  auto evidence = store_->ListEvidence();
  if (!evidence.ok()) return FromAbsl(evidence.status());
  in.evidence = std::move(*evidence);
  auto files = BuildExport(in);
  if (!files.ok()) return FromAbsl(files.status());
  if (grpc::Status s = AuditConsult(caller, m.message_id, m.origin, payload,
                                    "exported as evidence");
      !s.ok()) {
    return s;
  }
  for (ExportFile& f : *files) {
    v1::ExportFile* out = response->add_files();
    out->set_name(std::move(f.name));
    out->set_content(std::move(f.content));
  }
  return grpc::Status::OK;
}

absl::Status LocalService::GatherErasureEvidence(ExportInput* in) const {
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
  auto records = store_->AuditOfMessage(m.message_id, 1000);
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
    auto order = store_->FindMessage(order_id);
    if (!order.ok()) return order.status();
    if (!order->has_value() || !(*order)->sent) continue;
    auto rows = store_->Deliveries(order_id);
    if (!rows.ok()) return rows.status();
    for (const DeliveryRow& d : *rows) {
      if (d.state != kStateDelivered || d.receipt.empty()) continue;
      in->erasures.push_back(ExportErasure{order_id, (*order)->inner_digest,
                                           ExportReceipt{d.peer, d.receipt}});
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Caller> LocalService::Who(grpc::ServerContext* context) {
  auto auth = context->auth_context();
  auto pems = auth ? auth->FindPropertyValues("x509_pem_cert")
                   : std::vector<grpc::string_ref>();
  if (pems.empty()) {
    // Only the unix socket (its file mode is the access control) makes a
    // caller without a certificate the local administrator.
    if (absl::StartsWith(context->peer(), "unix:")) {
      return Caller{"local-admin", Role::kAdmin};
    }
    return absl::UnauthenticatedError(
        "no client certificate: use an operator certificate, or the unix "
        "socket on the node's host");
  }
  auto cert = Certificate::FromPem(
      absl::string_view(pems.front().data(), pems.front().size()));
  if (!cert.ok()) {
    return absl::PermissionDeniedError("operator certificate does not parse");
  }
  auto caller = OperatorFromCertificate(**cert);
  if (!caller.ok()) {
    KLOG(Security, "api") << "local call from " << context->peer()
                          << " refused: " << caller.status().message();
  }
  return caller;
}

absl::StatusOr<KnownMessage> LocalService::OwnSent(
    const Caller& caller, const std::string& message_id) const {
  if (!IsValidMessageId(message_id)) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", Printable(message_id, 64), "' is not a message id"));
  }
  auto known = store_->FindMessage(message_id);
  if (!known.ok()) return known.status();
  // Not sent from here, or not yours: as if it did not exist.
  if (!known->has_value() || !(*known)->sent ||
      !MaySee(caller, ViewOf(**known))) {
    return absl::NotFoundError(
        absl::StrCat("no message ", message_id, " was sent from this node"));
  }
  return std::move(**known);
}

absl::StatusOr<std::string> LocalService::ResolveId(
    const Caller& caller, const std::string& raw) const {
  if (IsValidMessageId(raw)) return raw;
  const std::string prefix = absl::AsciiStrToLower(raw);
  const bool shape =
      prefix.size() >= kMinIdPrefix && prefix.size() < 36 &&
      std::all_of(prefix.begin(), prefix.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == '-';
      });
  if (!shape) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", Printable(raw, 64),
        "' is not a message id (nor the start of one: 8 or more of its "
        "characters)"));
  }
  constexpr size_t kPrefixLimit = 64;
  auto found = store_->FindByIdPrefix(prefix, kPrefixLimit);
  if (!found.ok()) return found.status();
  if (found->size() >= kPrefixLimit) {
    // Too many to tell apart (peers choose their ids): not a guess.
    return absl::InvalidArgumentError(
        absl::StrCat(prefix,
                     " is the start of many message ids; give more "
                     "of it"));
  }
  std::set<std::string> ids;
  for (const KnownMessage& m : *found) {
    if (MaySee(caller, ViewOf(m))) ids.insert(m.message_id);
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

grpc::Status LocalService::AuditConsult(const Caller& caller,
                                        const std::string& message_id,
                                        const std::string& origin,
                                        const v1::Payload& p,
                                        const std::string& what) {
  auto s = store_->AppendAudit(
      {AuditEntry{std::string(kAuditConsult), caller.id, message_id, origin, "",
                  p.kind(), p.markings().purpose(), what}},
      clock_->NowUnixMs());
  if (!s.ok()) {
    // No record, no content: the log must hold every consultation.
    return FromAbsl(absl::Status(
        s.code(), absl::StrCat("cannot record the consultation in the audit "
                               "log now (",
                               s.message(), "); nothing is shown")));
  }
  return grpc::Status::OK;
}

absl::StatusOr<std::vector<DeliveryRow>> LocalService::SentDeliveries(
    const std::string& message_id) const {
  if (!IsValidMessageId(message_id)) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", Printable(message_id, 64), "' is not a message id"));
  }
  auto rows = store_->Deliveries(message_id);
  if (rows.ok() && rows->empty()) {
    return absl::NotFoundError(
        absl::StrCat("no message ", message_id, " was sent from this node"));
  }
  return rows;
}

absl::StatusOr<InboxRecord> LocalService::FindReceived(
    const Caller& caller, const std::string& message_id,
    const std::string& origin) const {
  if (!origin.empty() && !IsValidNodeId(origin)) {
    return absl::InvalidArgumentError(
        absl::StrCat("origin: '", Printable(origin, 64), "' is not a node id"));
  }
  auto records = store_->GetInbox(message_id, origin);
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

std::string LocalService::ShownState(const DeliveryRow& row) const {
  if (row.state == kStateQueued &&
      outbox_->InFlight(row.message_id, row.peer)) {
    return std::string(kStateInFlight);
  }
  return row.state;
}

grpc::Status LocalService::Submit(grpc::ServerContext* context,
                                  const v1::SubmitRequest* request,
                                  v1::SubmitResponse* response) {
  KONTOR_WHO(context, caller);
  const absl::Time start = absl::Now();
  grpc::Status status = DoSubmit(caller, request, response);
  if (!status.ok()) {
    KLOG(Warning, "api") << "refused submission by " << caller.id << ": "
                         << status.error_message();
  }
  if (metrics_ != nullptr) {
    const std::string outcome = !status.ok()            ? "refused"
                                : response->duplicate() ? "duplicate"
                                                        : "accepted";
    metrics_
        ->GetCounter("kontor_submissions_total",
                     "Messages submitted on the local API, by outcome "
                     "(accepted, duplicate, refused)",
                     {{"outcome", outcome}})
        .Increment();
    if (status.ok()) {
      metrics_
          ->GetHistogram("kontor_submit_latency_seconds",
                         "From a Submit call to its message durable here",
                         LatencyBuckets())
          .Observe(absl::ToDoubleSeconds(absl::Now() - start));
    }
  }
  return status;
}

grpc::Status LocalService::DoSubmit(const Caller& caller,
                                    const v1::SubmitRequest* request,
                                    v1::SubmitResponse* response) {
  // --- validate: refused here, never retried later.
  if (request->to().empty()) return Invalid("to: at least one recipient");
  const size_t max_recipients = config_->limits().max_recipients() != 0
                                    ? config_->limits().max_recipients()
                                    : kDefaultMaxRecipients;
  if (static_cast<size_t>(request->to_size()) > max_recipients) {
    return Invalid(absl::StrCat("to: at most ", max_recipients,
                                " recipients (limits.max_recipients)"));
  }
  std::set<std::string> recipients;
  for (const std::string& to : request->to()) {
    if (!IsValidNodeId(to)) {
      return Invalid(
          absl::StrCat("to: '", Printable(to, 64), "' is not a node id"));
    }
    if (to == config_->node_id()) {
      return Invalid(absl::StrCat("to: '", to, "' is this node"));
    }
    bool known = false;
    for (const auto& p : config_->peers()) known = known || p.id() == to;
    if (!known) {
      return Invalid(absl::StrCat("to: '", to, "' is not a configured peer"));
    }
    if (auto it = unusable_peers_.find(to); it != unusable_peers_.end()) {
      return Invalid(
          absl::StrCat("to: peer '", to, "' is unusable: ", it->second));
    }
    if (!recipients.insert(to).second) {
      return Invalid(absl::StrCat("to: '", to, "' is listed twice"));
    }
  }
  v1::Payload payload = request->payload();
  if (payload.kind().empty()) return Invalid("kind: required");
  if (payload.attachments_size() > 0) {
    return Invalid(
        "payload.attachments: set by this node; upload files with "
        "UploadAttachment and name them in attachment_ids");
  }
  if (request->attachment_ids_size() > static_cast<int>(kMaxAttachments)) {
    return Invalid(absl::StrCat("attachment_ids: at most ", kMaxAttachments));
  }
  if (!IsMessageKind(payload.kind())) {
    return Invalid(absl::StrCat("kind: '", Printable(payload.kind(), 40),
                                "' is not a message kind (one of ",
                                absl::StrJoin(MessageKinds(), ", "), ")"));
  }
  if (grpc::Status s = NeedKind(caller, payload.kind(), "send"); !s.ok()) {
    return s;
  }
  if (request->priority() == v1::FLASH && !RoleMaySendFlash(caller.role)) {
    return Denied(absl::StrCat("priority: a ", RoleName(caller.role),
                               " may not send flash messages"));
  }
  // Per-peer policy: what each recipient takes from us.
  for (const auto& p : config_->peers()) {
    if (!recipients.count(p.id()) || p.send_kinds().empty()) continue;
    if (std::find(p.send_kinds().begin(), p.send_kinds().end(),
                  payload.kind()) == p.send_kinds().end()) {
      return Invalid(absl::StrCat(
          "to: ", p.id(), " does not take ", payload.kind(),
          " messages from this node (policy: peers ", p.id(),
          " send_kinds: ", absl::StrJoin(p.send_kinds(), ", "), ")"));
    }
  }
  const size_t size = payload.ByteSizeLong();
  if (size > config_->limits().max_message_bytes()) {
    return Invalid(absl::StrCat(
        "message is ", size, " bytes; this node's limit is ",
        config_->limits().max_message_bytes(), " (limits.max_message_bytes)"));
  }
  if (request->client_key().size() > kMaxClientKey) {
    return Invalid("client_key: at most 128 characters");
  }
  if (request->expires_in_seconds() < 0 ||
      request->expires_in_seconds() > kMaxLifetimeMs / 1000) {
    return Invalid("expires_in_seconds: 0 (default) to 90 days");
  }
  if (!v1::Priority_IsValid(request->priority())) {
    return Invalid("priority: routine, urgent or flash");
  }
  v1::Priority priority = request->priority();
  if (priority == v1::PRIORITY_UNSPECIFIED) priority = v1::ROUTINE;

  // Attachments: uploaded (and encrypted) before, by this caller, unused.
  // Looked up first: the idempotency key compares what they are (name,
  // type, size, SHA-256), not their ids, so that a retry that uploaded the
  // same files again finds the original message.
  std::vector<UploadRecord> uploads;
  uint64_t attachment_bytes = 0;
  for (const std::string& id : request->attachment_ids()) {
    auto u = store_->GetUpload(id);
    if (!u.ok()) return FromAbsl(u.status());
    if (!u->has_value() || (*u)->submitter != caller.id) {
      return Invalid(absl::StrCat("attachment_ids: '", Printable(id, 64),
                                  "' is not an attachment you uploaded"));
    }
    for (const UploadRecord& seen : uploads) {
      if (seen.id == id) {
        return Invalid(
            absl::StrCat("attachment_ids: '", Printable(id, 64), "' twice"));
      }
    }
    attachment_bytes += (*u)->size;
    uploads.push_back(std::move(**u));
  }
  v1::SubmitRequest canonical = *request;
  canonical.clear_client_key();
  canonical.clear_attachment_ids();
  for (const UploadRecord& u : uploads) {
    v1::Attachment* a = canonical.mutable_payload()->add_attachments();
    a->set_name(u.name);
    a->set_content_type(u.content_type);
    a->set_size(u.size);
    a->set_sha256(u.sha256);
  }
  const std::string request_hash = Sha256(DeterministicBytes(canonical));
  if (!request->client_key().empty()) {
    auto found =
        store_->FindByClientKey(caller.id, request->client_key(), request_hash);
    if (!found.ok()) return FromAbsl(found.status());
    if (found->has_value()) {
      response->set_message_id((*found)->message_id);
      response->set_duplicate(true);
      return grpc::Status::OK;
    }
  }

  // --- seal once; retries resend these bytes.
  const int64_t now = clock_->NowUnixMs();
  // Expiry: the request's, else the kind's default, else the node's.
  const auto& by_kind = config_->limits().expiry_seconds_by_kind();
  const auto kind_default = by_kind.find(payload.kind());
  const int64_t expiry_s = request->expires_in_seconds() > 0
                               ? request->expires_in_seconds()
                           : kind_default != by_kind.end()
                               ? kind_default->second
                               : config_->limits().default_expiry_seconds();
  for (const UploadRecord& u : uploads) {
    if (!u.message_id.empty()) {
      return Invalid(absl::StrCat("attachment_ids: '", u.id,
                                  "' was sent already (upload it again)"));
    }
  }
  // Room to store it (and what is already accepted can still be delivered).
  if (auto s = CheckFreeSpace(config_->data_dir(), size, min_free_bytes_);
      !s.ok()) {
    KLOG(Error, "api") << "refused submission by " << caller.id << ": "
                       << s.message();
    return FromAbsl(absl::Status(
        s.code(), absl::StrCat(s.message(), "; nothing was sent")));
  }
  if (attachment_bytes > config_->limits().max_attachment_bytes()) {
    return Invalid(absl::StrCat("attachments are ", attachment_bytes,
                                " bytes; this node's limit is ",
                                config_->limits().max_attachment_bytes(),
                                " (limits.max_attachment_bytes)"));
  }
  std::vector<v1::Envelope> chunk_lists(uploads.size());
  for (size_t i = 0; i < uploads.size(); ++i) {
    const UploadRecord& u = uploads[i];
    if (!chunk_lists[i].ParseFromString(u.chunk_refs)) {
      return FromAbsl(absl::DataLossError("stored attachment is damaged"));
    }
    v1::Attachment* a = payload.add_attachments();
    a->set_name(u.name);
    a->set_content_type(u.content_type);
    a->set_size(u.size);
    a->set_sha256(u.sha256);
    a->set_key(u.key);
    a->set_chunk_count(static_cast<uint32_t>(chunk_lists[i].chunks_size()));
  }

  // The content: typed, validated and normalized before it is sealed
  // (attachments included: an anonymous consultation carries none).
  {
    kinds::Context ctx;
    ctx.priority = request->priority() == v1::PRIORITY_UNSPECIFIED
                       ? v1::ROUTINE
                       : request->priority();
    ctx.now_ms = clock_->NowUnixMs();
    // Only what the caller may see: a message outside its role or another
    // user's sent one is "unknown" (its kind and case are not told).
    ctx.lookup =
        [this,
         &caller](const std::string& id) -> std::optional<kinds::KnownMessage> {
      auto known = store_->FindMessage(id);
      if (!known.ok() || !known->has_value() ||
          !MaySee(caller, ViewOf(**known))) {
        return std::nullopt;
      }
      return kinds::KnownMessage{
          (*known)->kind,
          (*known)->sent ? config_->node_id() : (*known)->origin,
          (*known)->case_ref};
    };
    if (absl::Status s = kinds::ValidatePayload(ctx, &payload); !s.ok()) {
      return Invalid(std::string(s.message()));
    }
  }
  v1::Header header;
  header.set_message_id(NewMessageId());
  header.set_origin(config_->node_id());
  for (const std::string& r : request->to()) header.add_recipients(r);
  header.set_priority(priority);
  header.set_created_unix_ms(now);
  header.set_expires_unix_ms(now + expiry_s * 1000);
  std::string inner_signed;
  auto envelope = sealer_->Seal(header, payload, &inner_signed);
  if (!envelope.ok()) {
    KLOG(Error, "api") << "cannot seal: " << envelope.status().message();
    return FromAbsl(envelope.status());
  }
  uint32_t chunk_count = 0;
  for (size_t i = 0; i < chunk_lists.size(); ++i) {
    for (const v1::AttachmentChunkRef& c : chunk_lists[i].chunks()) {
      v1::AttachmentChunkRef* r = envelope->add_chunks();
      *r = c;
      r->set_attachment(static_cast<uint32_t>(i));
      ++chunk_count;
    }
  }
  if (auto s = sealer_->SignOuter({&*envelope}); !s.ok()) return FromAbsl(s);

  OutgoingMessage m;
  m.id = header.message_id();
  m.recipients.assign(request->to().begin(), request->to().end());
  m.priority = priority;
  m.created_ms = now;
  m.expires_ms = header.expires_unix_ms();
  m.kind = payload.kind();
  m.outer_digest = OuterDigest(*envelope, kSuiteV1);
  m.envelope = envelope->SerializeAsString();
  m.submitter = caller.id;
  m.client_key = request->client_key();
  m.payload = payload.SerializeAsString();
  m.inner_signed = std::move(inner_signed);
  // An erase order names messages this node sent, sent by the caller (any
  // for an admin): the recipients erase every message of this origin it
  // names, so nobody orders the erasure of a colleague's messages. It
  // erases this node's own copies too, in the same transaction.
  for (const std::string& target : kinds::EraseTargets(payload)) {
    auto known = store_->FindMessage(target);
    if (!known.ok()) return FromAbsl(known.status());
    // Another user's message is as unknown as one never sent: only its
    // sender (or an admin) may order its erasure.
    if (!known->has_value() || !(*known)->sent ||
        !MaySee(caller, ViewOf(**known))) {
      return Invalid(absl::StrCat(
          payload.kind() == "erase.notice" ? "erase_notice.refers_to"
                                           : "consent_update.referral_id",
          ": ", target,
          " is not a message this node sent for you; an erase order names "
          "its sender's own messages (an admin's: any this node sent)"));
    }
    m.erase_targets.push_back(target);
  }
  m.subject = payload.subject();
  m.case_ref = payload.case_ref();
  m.in_reply_to = payload.in_reply_to();
  m.purpose = payload.markings().purpose();
  m.request_hash = request_hash;
  for (const UploadRecord& u : uploads) m.uploads.push_back(u.id);
  m.chunk_count = chunk_count;
  auto outcome = store_->InsertOutgoing(m);
  if (outcome.status().code() == absl::StatusCode::kFailedPrecondition) {
    return Invalid(std::string(outcome.status().message()));  // lost a race
  }
  if (!outcome.ok()) {
    KLOG(Error, "api") << "cannot store message: "
                       << outcome.status().message();
    return FromAbsl(absl::Status(
        outcome.status().code(),
        absl::StrCat("this node cannot store the message now (",
                     outcome.status().message(), "); nothing was sent")));
  }
  CrashPoint("submit.after_commit");
  if (!outcome->duplicate) {
    KLOG(Info, "api") << "accepted message " << m.id << " ("
                      << v1::Priority_Name(priority) << ") for "
                      << m.recipients.size() << " recipient(s)";
    for (const std::string& r : m.recipients) {
      outbox_->Notify(r, priority == v1::FLASH);
    }
  }
  response->set_message_id(outcome->message_id);
  response->set_duplicate(outcome->duplicate);
  return grpc::Status::OK;
}

grpc::Status LocalService::Status(grpc::ServerContext* context,
                                  const v1::StatusRequest* request,
                                  v1::StatusResponse* response) {
  KONTOR_WHO(context, caller);
  KONTOR_RESOLVE(caller, request->message_id(), id);
  if (auto own = OwnSent(caller, id); !own.ok()) {
    return FromAbsl(own.status());
  }
  auto rows = SentDeliveries(id);
  if (!rows.ok()) return FromAbsl(rows.status());
  response->set_message_id(id);
  std::set<std::string> states;
  for (const DeliveryRow& r : *rows) {
    v1::DeliveryStatus* d = response->add_deliveries();
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
    response->set_created_unix_ms(r.created_ms);
    response->set_expires_unix_ms(r.expires_ms);
    response->set_priority(static_cast<v1::Priority>(r.priority));
  }
  response->set_state(states.size() == 1 ? *states.begin() : "partial");
  return grpc::Status::OK;
}

grpc::Status LocalService::Inbox(grpc::ServerContext* context,
                                 const v1::InboxRequest* request,
                                 v1::InboxResponse* response) {
  KONTOR_WHO(context, caller);
  const size_t limit = request->limit() == 0
                           ? 100
                           : std::min<size_t>(request->limit(), kMaxList);
  if (!request->origin().empty() && !IsValidNodeId(request->origin())) {
    return Invalid(absl::StrCat("origin: '", Printable(request->origin(), 64),
                                "' is not a node id"));
  }
  if (!request->kind().empty() && !IsMessageKind(request->kind())) {
    return Invalid(absl::StrCat("kind: '", Printable(request->kind(), 40),
                                "' is not a message kind"));
  }
  if (request->case_ref().size() > 200) {
    return Invalid("case_ref: at most 200 characters");
  }
  InboxQuery query;
  query.unread_only = request->unread_only();
  query.after_seq = request->after_seq();
  query.limit = limit;
  query.kind = request->kind();
  query.origin = request->origin();
  query.case_ref = request->case_ref();
  query.newest_first = request->newest_first();
  auto records = store_->ListInbox(query);
  if (!records.ok()) return FromAbsl(records.status());
  for (const InboxRecord& r : *records) {
    if (MaySee(caller, MessageView{false, "", r.kind})) {
      FillEntry(r, response->add_entries());
    }
  }
  return grpc::Status::OK;
}

grpc::Status LocalService::Show(grpc::ServerContext* context,
                                const v1::ShowRequest* request,
                                v1::ShowResponse* response) {
  KONTOR_WHO(context, caller);
  KONTOR_RESOLVE(caller, request->message_id(), id);
  auto found = FindReceived(caller, id, request->origin());
  if (found.status().code() == absl::StatusCode::kNotFound &&
      (request->origin().empty() || request->origin() == config_->node_id())) {
    // A message this node sent: its own copy.
    auto own = OwnSent(caller, id);
    if (!own.ok()) return FromAbsl(found.status());
    v1::Payload* p = response->mutable_payload();
    if (!p->ParseFromString(own->payload)) {
      return grpc::Status(grpc::StatusCode::DATA_LOSS,
                          "stored payload is damaged");
    }
    if (own->purged_ms != 0) {  // what is left: the metadata
      p->set_kind(own->kind);
      p->set_case_ref(own->case_ref);
    }
    v1::InboxEntry* e = response->mutable_entry();
    e->set_message_id(own->message_id);
    e->set_origin(config_->node_id());
    e->set_kind(p->kind());
    e->set_subject(p->subject());
    e->set_case_ref(p->case_ref());
    e->set_in_reply_to(p->in_reply_to());
    e->set_created_unix_ms(own->created_ms);
    e->set_sent(true);
    e->set_purged_unix_ms(own->purged_ms);
    auto rows = store_->Deliveries(own->message_id);
    if (rows.ok()) {
      for (const DeliveryRow& r : *rows) {
        response->add_recipients(r.peer);
        e->set_priority(static_cast<v1::Priority>(r.priority));
      }
    }
    response->set_signer(config_->node_id());
    for (auto& a : *p->mutable_attachments()) a.clear_key();
    if (grpc::Status s =
            AuditConsult(caller, own->message_id, "", *p, "shown (sent copy)");
        !s.ok()) {
      return s;
    }
    return grpc::Status::OK;
  }
  if (!found.ok()) return FromAbsl(found.status());
  const InboxRecord& record = *found;
  FillEntry(record, response->mutable_entry());
  if (!response->mutable_payload()->ParseFromString(record.payload)) {
    return grpc::Status(grpc::StatusCode::DATA_LOSS,
                        "stored payload is damaged");
  }
  if (record.purged_ms != 0) {  // what is left: the metadata
    response->mutable_payload()->set_kind(record.kind);
    response->mutable_payload()->set_case_ref(record.case_ref);
  }
  if (grpc::Status s = AuditConsult(caller, record.message_id, record.origin,
                                    response->payload(), "shown");
      !s.ok()) {
    return s;
  }
  v1::Header header;
  if (header.ParseFromString(record.header)) {
    for (const auto& r : header.recipients()) response->add_recipients(r);
  }
  response->set_signer(record.origin);
  // The attachment keys stay in the node: FetchAttachment decrypts.
  for (auto& a : *response->mutable_payload()->mutable_attachments()) {
    a.clear_key();
  }
  KLOG(Info, "api") << caller.id << " read message " << id;
  return grpc::Status::OK;
}

grpc::Status LocalService::Ack(grpc::ServerContext* context,
                               const v1::AckRequest* request,
                               v1::AckResponse* response) {
  KONTOR_WHO(context, caller);
  KONTOR_RESOLVE(caller, request->message_id(), id);
  auto found = FindReceived(caller, id, request->origin());
  if (!found.ok()) return FromAbsl(found.status());
  auto already = store_->Ack(found->origin, found->message_id);
  if (!already.ok()) return FromAbsl(already.status());
  response->set_already(*already);
  response->set_message_id(found->message_id);
  if (!*already) {
    // Who marked it handled, and when: an alteration of its state.
    if (auto s = store_->AppendAudit(
            {AuditEntry{std::string(kAuditAlter), caller.id, found->message_id,
                        found->origin, "", found->kind, found->purpose,
                        "acknowledged (marked handled)"}},
            clock_->NowUnixMs());
        !s.ok()) {
      KLOG(Error, "audit") << "acknowledgement not audited: " << s.message();
    }
  }
  return grpc::Status::OK;
}

grpc::Status LocalService::Watch(grpc::ServerContext* context,
                                 const v1::WatchRequest* request,
                                 grpc::ServerWriter<v1::InboxEntry>* writer) {
  KONTOR_WHO(context, caller);
  uint64_t cursor =
      request->from_now() ? store_->MaxInboxSeq() : request->since_seq();
  while (!context->IsCancelled() && !stopping_.load()) {
    auto records = store_->ListInbox(false, cursor, 100);
    if (!records.ok()) return FromAbsl(records.status());
    for (const InboxRecord& r : *records) {
      cursor = r.seq;
      if (!MaySee(caller, MessageView{false, "", r.kind})) continue;
      v1::InboxEntry e;
      FillEntry(r, &e);
      if (!writer->Write(e)) return grpc::Status::OK;
    }
    if (records->empty()) store_->WaitInbox(cursor, 1000);
  }
  // A watch has no natural end: the client went away, or this node is
  // stopping (then the client should resume after its cursor).
  return grpc::Status(grpc::StatusCode::UNAVAILABLE, "node is stopping");
}

grpc::Status LocalService::WatchSent(
    grpc::ServerContext* context, const v1::WatchRequest* request,
    grpc::ServerWriter<v1::DeliveryEvent>* writer) {
  KONTOR_WHO(context, caller);
  uint64_t cursor = request->since_seq();
  if (request->from_now()) {
    auto max = store_->MaxEventSeq();
    if (!max.ok()) return FromAbsl(max.status());
    cursor = *max;
  }
  while (!context->IsCancelled() && !stopping_.load()) {
    auto events = store_->ListEvents(cursor, 100);
    if (!events.ok()) return FromAbsl(events.status());
    for (const DeliveryEvent& ev : *events) {
      if (!RoleIsAdmin(caller.role)) {
        // Only the caller's own messages.
        auto own = OwnSent(caller, ev.message_id);
        if (!own.ok()) {
          cursor = ev.seq;
          continue;
        }
      }
      v1::DeliveryEvent e;
      e.set_seq(ev.seq);
      e.set_message_id(ev.message_id);
      e.set_recipient(ev.peer);
      e.set_state(ev.state);
      e.set_reason(ev.reason);
      e.set_time_unix_ms(ev.time_ms);
      if (!writer->Write(e)) return grpc::Status::OK;
      cursor = ev.seq;
    }
    // Events are rarer than messages: a short poll is enough.
    if (events->empty()) absl::SleepFor(absl::Milliseconds(250));
  }
  return grpc::Status(grpc::StatusCode::UNAVAILABLE, "node is stopping");
}

grpc::Status LocalService::Peers(grpc::ServerContext* context,
                                 const v1::PeersRequest*,
                                 v1::PeersResponse* response) {
  // Any known caller (every role sees connectivity); no certificate that
  // Who() refuses.
  if (auto who = Who(context); !who.ok()) return FromAbsl(who.status());
  response->set_node_id(config_->node_id());
  response->set_tls_cert_not_after_unix_ms(own_certs_.tls_not_after_ms);
  response->set_signing_cert_not_after_unix_ms(own_certs_.signing_not_after_ms);
  response->set_encryption_cert_not_after_unix_ms(
      own_certs_.encryption_not_after_ms);
  for (const auto& p : config_->peers()) {
    v1::PeerInfo* info = response->add_peers();
    info->set_id(p.id());
    info->set_address(p.address());
    for (const auto& r : config_->routes()) {
      if (r.destination() == p.id()) info->set_via(r.via());
    }
    PeerRuntime rt = outbox_->Runtime(p.id());
    info->set_connected(rt.connected);
    auto state = store_->GetPeerState(p.id());
    if (state.ok()) {
      info->set_consecutive_failures(state->failures);
      info->set_next_attempt_unix_ms(state->next_attempt_ms);
      info->set_last_error(state->last_error);
      info->set_last_success_unix_ms(state->last_success_ms);
    }
    auto queue = store_->PeerQueue(p.id());
    if (queue.ok()) {
      info->set_queue_depth(queue->depth);
      info->set_oldest_queued_unix_ms(queue->oldest_created_ms);
    }
    if (auto it = unusable_peers_.find(p.id()); it != unusable_peers_.end()) {
      info->set_unusable_reason(it->second);
    }
    PeerCertInfo certs = cert_info_(p.id());
    info->set_signing_cert_not_after_unix_ms(certs.signing_not_after_ms);
    info->set_crl_next_update_unix_ms(certs.crl_next_update_ms);
    info->set_encryption_cert_not_after_unix_ms(certs.encryption_not_after_ms);
  }
  return grpc::Status::OK;
}

grpc::Status LocalService::Outbox(grpc::ServerContext* context,
                                  const v1::OutboxRequest* request,
                                  v1::OutboxResponse* response) {
  KONTOR_WHO(context, caller);
  static const std::set<std::string> kStates = {
      "",         "queued",  "in_flight", "delivered",
      "rejected", "expired", "cancelled", "suspended"};
  if (kStates.count(request->state()) == 0) {
    return Invalid(
        absl::StrCat("state: '", Printable(request->state(), 40),
                     "' is not one of queued, in_flight, "
                     "delivered, rejected, expired, cancelled, suspended"));
  }
  const bool want_in_flight = request->state() == kStateInFlight;
  const std::string stored_state =
      want_in_flight ? std::string(kStateQueued) : request->state();
  const size_t limit = request->limit() == 0
                           ? 1000
                           : std::min<size_t>(request->limit(), kMaxList);
  // Only an admin sees the messages of others.
  auto rows = store_->ListDeliveries(stored_state, limit,
                                     RoleIsAdmin(caller.role) ? "" : caller.id);
  if (!rows.ok()) return FromAbsl(rows.status());
  for (const DeliveryRow& r : *rows) {
    const std::string state = ShownState(r);
    if (want_in_flight && state != kStateInFlight) continue;
    v1::OutboxEntry* e = response->add_entries();
    e->set_message_id(r.message_id);
    e->set_recipient(r.peer);
    e->set_state(state);
    e->set_priority(static_cast<v1::Priority>(r.priority));
    e->set_created_unix_ms(r.created_ms);
    e->set_attempts(r.attempts);
    e->set_last_error(r.last_error);
  }
  return grpc::Status::OK;
}

grpc::Status LocalService::Cancel(grpc::ServerContext* context,
                                  const v1::CancelRequest* request,
                                  v1::CancelResponse* response) {
  KONTOR_WHO(context, caller);
  KONTOR_RESOLVE(caller, request->message_id(), id);
  if (auto own = OwnSent(caller, id); !own.ok()) {
    return FromAbsl(own.status());
  }
  auto rows = SentDeliveries(id);
  if (!rows.ok()) return FromAbsl(rows.status());
  auto n = store_->Cancel(id, clock_->NowUnixMs(), caller.id);
  if (!n.ok()) return FromAbsl(n.status());
  KLOG(Info, "api") << caller.id << " cancelled " << *n << " delivery(ies) of "
                    << id;
  response->set_cancelled(*n);
  response->set_message_id(id);
  return grpc::Status::OK;
}

grpc::Status LocalService::UploadAttachment(
    grpc::ServerContext* context,
    grpc::ServerReader<v1::AttachmentUpload>* reader,
    v1::UploadedAttachment* response) {
  KONTOR_WHO(context, who);
  const std::string caller = who.id;
  const AttachmentDirs dirs(config_->data_dir());
  const std::string id = NewMessageId();
  const std::string dir = dirs.Upload(id);
  if (auto s = MakeDirs(dirs.root() + "/out"); !s.ok()) return FromAbsl(s);
  const std::string key = RandomBytes(kChunkKeyBytes);
  auto enc = ChunkEncryptor::Create(dir, key, 0);
  if (!enc.ok()) return FromAbsl(enc.status());
  auto fail = [&](grpc::Status s) {
    RemoveTree(dir);
    KLOG(Warning, "api") << "upload by " << caller
                         << " refused: " << s.error_message();
    return s;
  };
  const uint64_t limit = config_->limits().max_attachment_bytes();
  auto too_large = [&](uint64_t size) {
    return fail(Invalid(absl::StrCat(
        "the attachment is ", size, " bytes, larger than this node's limit of ",
        limit, " bytes (limits.max_attachment_bytes)")));
  };
  v1::AttachmentUpload msg;
  bool first = true;
  std::string name, content_type;
  uint64_t total = 0;
  uint64_t declared = 0;  // 0: not told
  while (reader->Read(&msg)) {
    if (first) {
      first = false;
      name = SafeFileName(msg.name(), 1);
      content_type = msg.content_type().empty() ? "application/octet-stream"
                                                : msg.content_type();
      if (content_type.size() > 200) {
        return fail(Invalid("content_type: at most 200 characters"));
      }
      // Refused at once, before the bytes travel.
      declared = msg.size();
      if (declared > limit) return too_large(declared);
      if (auto s =
              CheckFreeSpace(config_->data_dir(), declared, min_free_bytes_);
          !s.ok()) {
        KLOG(Error, "api") << "upload by " << caller
                           << " refused: " << s.message();
        return fail(FromAbsl(s));
      }
    }
    if (msg.data().size() > kChunkPlainBytes) {
      return fail(Invalid("data: at most 1 MiB per message"));
    }
    total += msg.data().size();
    if (total > limit) return too_large(total);
    if (declared != 0 && total > declared) {
      return fail(Invalid(absl::StrCat("the attachment was declared as ",
                                       declared, " bytes; more came")));
    }
    // The floor again as the bytes come (every 64 MiB): other uploads and
    // peers' chunks share the disk.
    if (total % (64 << 20) < msg.data().size()) {
      if (auto s =
              CheckFreeSpace(config_->data_dir(), 64 << 20, min_free_bytes_);
          !s.ok()) {
        KLOG(Error, "api") << "upload by " << caller
                           << " refused: " << s.message();
        return fail(FromAbsl(s));
      }
    }
    if (auto s = (*enc)->Write(msg.data()); !s.ok()) return fail(FromAbsl(s));
  }
  if (declared != 0 && total != declared && !context->IsCancelled()) {
    return fail(Invalid(absl::StrCat("the attachment was declared as ",
                                     declared, " bytes; ", total, " came")));
  }
  if (context->IsCancelled()) {
    return fail(grpc::Status(grpc::StatusCode::CANCELLED, "upload cancelled"));
  }
  if (first) {
    return fail(Invalid("empty upload: the first message names the file"));
  }
  auto summary = (*enc)->Finish();
  if (!summary.ok()) return fail(FromAbsl(summary.status()));
  UploadRecord u;
  u.id = id;
  u.submitter = caller;
  u.name = name;
  u.content_type = content_type;
  u.size = summary->plain_size;
  u.sha256 = summary->plain_sha256;
  u.key = key;
  v1::Envelope refs;
  AddChunkRefs(0, summary->chunks, &refs);
  u.chunk_refs = refs.SerializeAsString();
  u.created_ms = clock_->NowUnixMs();
  if (auto s = store_->InsertUpload(u); !s.ok()) {
    return fail(FromAbsl(absl::Status(
        s.code(), absl::StrCat("this node cannot store the attachment now (",
                               s.message(), ")"))));
  }
  KLOG(Info, "api") << caller << " uploaded attachment " << id << " (" << total
                    << " bytes, " << summary->chunks.size() << " chunks)";
  response->set_attachment_id(id);
  response->set_size(summary->plain_size);
  response->set_sha256(summary->plain_sha256);
  return grpc::Status::OK;
}

grpc::Status LocalService::FetchAttachment(
    grpc::ServerContext* context, const v1::FetchAttachmentRequest* request,
    grpc::ServerWriter<v1::AttachmentBytes>* writer) {
  KONTOR_WHO(context, caller);
  KONTOR_RESOLVE(caller, request->message_id(), id);
  auto found = FindReceived(caller, id, request->origin());
  if (!found.ok()) return FromAbsl(found.status());
  const InboxRecord& record = *found;
  v1::Payload payload;
  v1::Envelope refs;
  if (!payload.ParseFromString(record.payload) ||
      !refs.ParseFromString(record.chunk_refs)) {
    return grpc::Status(grpc::StatusCode::DATA_LOSS,
                        "stored message is damaged");
  }
  if (request->index() >= static_cast<uint32_t>(payload.attachments_size())) {
    return grpc::Status(
        grpc::StatusCode::NOT_FOUND,
        absl::StrCat("the message has ", payload.attachments_size(),
                     " attachment(s); index ", request->index()));
  }
  auto lists = ChunkLists(refs.chunks(), UINT64_MAX);
  if (!lists.ok() || lists->size() <= request->index()) {
    return grpc::Status(grpc::StatusCode::DATA_LOSS,
                        "stored chunk list is damaged");
  }
  const v1::Attachment& a = payload.attachments(request->index());
  if (grpc::Status s = AuditConsult(
          caller, record.message_id, record.origin, payload,
          absl::StrCat("attachment ", request->index(), " fetched"));
      !s.ok()) {
    return s;
  }
  const AttachmentDirs dirs(config_->data_dir());
  absl::Status s = DecryptChunks(
      dirs.Incoming(record.origin, record.message_id, request->index()),
      (*lists)[request->index()], a.key(), 0, a.size(), a.sha256(),
      [&](absl::string_view plain) {
        v1::AttachmentBytes b;
        b.set_data(std::string(plain));
        return writer->Write(b) ? absl::OkStatus()
                                : absl::CancelledError("reader went away");
      });
  if (!s.ok()) {
    KLOG(Error, "api") << "attachment " << request->index() << " of "
                       << record.message_id << ": " << s.message();
    return FromAbsl(s);
  }
  KLOG(Info, "api") << caller.id << " fetched attachment " << request->index()
                    << " of message " << record.message_id;
  return grpc::Status::OK;
}

grpc::Status LocalService::Retry(grpc::ServerContext* context,
                                 const v1::RetryRequest* request,
                                 v1::RetryResponse* response) {
  KONTOR_WHO(context, caller);
  KONTOR_RESOLVE(caller, request->message_id(), id);
  if (auto own = OwnSent(caller, id); !own.ok()) {
    return FromAbsl(own.status());
  }
  auto rows = SentDeliveries(id);
  if (!rows.ok()) return FromAbsl(rows.status());
  auto n = store_->Retry(id, clock_->NowUnixMs(), caller.id);
  if (!n.ok()) return FromAbsl(n.status());
  for (const DeliveryRow& r : *rows) outbox_->PeerContact(r.peer);
  KLOG(Info, "api") << caller.id << " retried " << *n << " delivery(ies) of "
                    << id;
  response->set_retried(*n);
  response->set_message_id(id);
  return grpc::Status::OK;
}

grpc::Status LocalService::Thread(grpc::ServerContext* context,
                                  const v1::ThreadRequest* request,
                                  v1::ThreadResponse* response) {
  KONTOR_WHO(context, caller);
  std::string case_ref = request->case_ref();
  if (case_ref.empty()) {
    auto resolved = ResolveId(caller, request->message_id());
    if (!resolved.ok()) return FromAbsl(resolved.status());
    const std::string& id = *resolved;
    auto known = store_->FindMessage(id);
    if (!known.ok()) return FromAbsl(known.status());
    // Nothing of a message the caller may not see is read, not even its
    // case: it is an unknown id.
    if (!known->has_value() || !MaySee(caller, ViewOf(**known))) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND,
                          absl::StrCat("no message ", id, " on this node"));
    }
    case_ref = (*known)->case_ref;
    if (case_ref.empty()) {
      return grpc::Status(
          grpc::StatusCode::NOT_FOUND,
          absl::StrCat("message ", id, " has no case reference"));
    }
  }
  if (case_ref.size() > 200) return Invalid("case: at most 200 characters");
  auto entries = store_->Thread(case_ref);
  if (!entries.ok()) return FromAbsl(entries.status());
  response->set_case_ref(case_ref);
  for (const ThreadEntry& t : *entries) {
    if (!MaySee(caller, MessageView{t.sent, t.submitter, t.kind})) continue;
    v1::ThreadMessage* m = response->add_messages();
    m->set_message_id(t.message_id);
    m->set_origin(t.sent ? config_->node_id() : t.origin);
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
    if (auto rows = store_->Deliveries(t.message_id); rows.ok()) {
      for (const DeliveryRow& r : *rows) states.insert(ShownState(r));
    }
    m->set_state(states.size() == 1 ? *states.begin() : "partial");
  }
  if (response->messages().empty()) {
    return grpc::Status(
        grpc::StatusCode::NOT_FOUND,
        absl::StrCat("no messages of case '", Printable(case_ref, 80),
                     "' on this node"));
  }
  return grpc::Status::OK;
}

absl::StatusOr<std::vector<PurgeCandidate>> LocalService::PurgeExpired(
    const std::string& actor, bool dry_run) {
  const auto& r = config_->retention();
  std::map<std::string, uint32_t> days(r.days_by_kind().begin(),
                                       r.days_by_kind().end());
  auto due = store_->PurgeCandidates(days, r.default_days(),
                                     clock_->NowUnixMs(), 10000);
  if (!due.ok() || dry_run || due->empty()) return due;
  if (auto s = store_->Purge(*due, actor, clock_->NowUnixMs()); !s.ok()) {
    return s;
  }
  // Attachments of purged received messages go with them. (Own copies'
  // chunk files stay until their deliveries settle: they are still sent.)
  const AttachmentDirs dirs(config_->data_dir());
  for (const PurgeCandidate& c : *due) {
    if (!c.sent) RemoveTree(dirs.IncomingMessage(c.origin, c.message_id));
  }
  KLOG(Info, "retention") << actor << " purged the content of " << due->size()
                          << " message(s) past their retention";
  return due;
}

grpc::Status LocalService::Purge(grpc::ServerContext* context,
                                 const v1::PurgeRequest* request,
                                 v1::PurgeResponse* response) {
  KONTOR_WHO(context, caller);
  if (grpc::Status s = NeedAdmin(caller, "purge"); !s.ok()) return s;
  auto done = PurgeExpired(caller.id, request->dry_run());
  if (!done.ok()) return FromAbsl(done.status());
  response->set_dry_run(request->dry_run());
  for (const PurgeCandidate& c : *done) {
    v1::PurgedMessage* m = response->add_messages();
    m->set_message_id(c.message_id);
    m->set_origin(c.sent ? config_->node_id() : c.origin);
    m->set_sent(c.sent);
    m->set_kind(c.kind);
    m->set_kept_since_unix_ms(c.since_ms);
    m->set_retention_days(c.days);
  }
  return grpc::Status::OK;
}

grpc::Status LocalService::AuditTail(grpc::ServerContext* context,
                                     const v1::AuditTailRequest* request,
                                     v1::AuditTailResponse* response) {
  KONTOR_WHO(context, caller);
  if (grpc::Status s = NeedAdmin(caller, "the audit log"); !s.ok()) return s;
  const size_t limit =
      request->limit() == 0 ? 20 : std::min<size_t>(request->limit(), 10000);
  auto records = store_->TailAudit(limit);
  if (!records.ok()) return FromAbsl(records.status());
  for (const AuditRecord& r : *records) {
    v1::AuditRecord* out = response->add_records();
    out->set_seq(r.seq);
    out->set_time_unix_ms(r.time_ms);
    out->set_action(r.entry.action);
    out->set_actor(r.entry.actor);
    out->set_message_id(r.entry.message_id);
    out->set_origin(r.entry.origin);
    out->set_peer(r.entry.peer);
    out->set_kind(r.entry.kind);
    out->set_purpose(r.entry.purpose);
    out->set_detail(r.entry.detail);
    out->set_hash(r.hash);
  }
  return grpc::Status::OK;
}

grpc::Status LocalService::AuditVerify(grpc::ServerContext* context,
                                       const v1::AuditVerifyRequest* request,
                                       v1::AuditVerifyResponse* response) {
  KONTOR_WHO(context, caller);
  if (grpc::Status s = NeedAdmin(caller, "the audit log"); !s.ok()) return s;
  if (!signer_) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "audit verification is not set up on this node");
  }
  auto result =
      VerifyAudit(store_, config_->node_id(), *signer_, witness_peers_,
                  request->local_only() ? WitnessFetch() : witness_);
  if (!result.ok()) return FromAbsl(result.status());
  *response = std::move(*result);
  if (!response->ok()) {
    KLOG(Security, "audit")
        << "audit log verification failed: " << response->problems(0);
  }
  return grpc::Status::OK;
}

}  // namespace kontor
