// Submit: a message from a local user (or system) becomes a sealed envelope
// in the durable outbox, in named stages, each ending it with the refusal
// the caller sees (refused here, never retried later):
//
//   CheckRequest → Policy → Duplicate → Uploads → ValidateContent → Seal →
//   AuthorizeEraseTargets → Persist

#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "daemon/app/app.h"
#include "daemon/app/internal.h"
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

std::string DeterministicBytes(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::io::StringOutputStream stream(&out);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  m.SerializeToCodedStream(&coded);
  coded.Trim();
  return out;
}

absl::Status Invalid(absl::string_view message) {
  return absl::InvalidArgumentError(message);
}

}  // namespace

// One submission on its way through the stages. Each stage reads what the
// ones before it established.
class App::Submission {
 public:
  Submission(App* app, const Caller& caller, const v1::SubmitRequest& request)
      : app_(app),
        o_(app->o_),
        caller_(caller),
        request_(request),
        payload_(request.payload()) {}

  // The request's shape: recipients, kind, sizes, key, expiry, priority.
  absl::Status CheckRequest();
  // Who may send what to whom: the caller's role (kind, flash) and each
  // recipient's policy.
  absl::Status Policy();
  // The idempotency key: the same request again is answered with the
  // original id (then *answered is set), other content is ALREADY_EXISTS.
  absl::Status Duplicate(v1::SubmitResponse* answered, bool* done);
  // The uploaded attachments: unused, within the limits, room on disk;
  // named in the payload with their keys.
  absl::Status Uploads();
  // The content: typed, validated and normalized (kinds/), seeing only the
  // messages the caller may see.
  absl::Status ValidateContent();
  // Sign (inner), encrypt to every recipient, sign (outer): once; retries
  // resend these bytes.
  absl::Status Seal();
  // An erase order names only the caller's own messages (an admin's: any
  // this node sent); they are erased here too, with the order.
  absl::Status AuthorizeEraseTargets();
  // Durable, with its audit record, in one transaction; then the outbox
  // is told.
  absl::StatusOr<v1::SubmitResponse> Persist();

 private:
  App* const app_;
  const AppOptions& o_;
  const Caller& caller_;
  const v1::SubmitRequest& request_;
  v1::Payload payload_;
  v1::Priority priority_ = v1::ROUTINE;
  size_t size_ = 0;
  std::vector<UploadRecord> uploads_;
  uint64_t attachment_bytes_ = 0;
  std::string request_hash_;
  std::vector<v1::Envelope> chunk_lists_;
  OutgoingMessage m_;
};

absl::Status App::Submission::CheckRequest() {
  const v1::NodeConfig& config = *o_.config;
  if (request_.to().empty()) return Invalid("to: at least one recipient");
  const size_t max_recipients = config.limits().max_recipients() != 0
                                    ? config.limits().max_recipients()
                                    : kDefaultMaxRecipients;
  if (static_cast<size_t>(request_.to_size()) > max_recipients) {
    return Invalid(absl::StrCat("to: at most ", max_recipients,
                                " recipients (limits.max_recipients)"));
  }
  std::set<std::string> recipients;
  for (const std::string& to : request_.to()) {
    if (!IsValidNodeId(to)) {
      return Invalid(
          absl::StrCat("to: '", Printable(to, 64), "' is not a node id"));
    }
    if (to == config.node_id()) {
      return Invalid(absl::StrCat("to: '", to, "' is this node"));
    }
    bool known = false;
    for (const auto& p : config.peers()) known = known || p.id() == to;
    if (!known) {
      return Invalid(absl::StrCat("to: '", to, "' is not a configured peer"));
    }
    if (auto it = o_.unusable_peers.find(to); it != o_.unusable_peers.end()) {
      return Invalid(
          absl::StrCat("to: peer '", to, "' is unusable: ", it->second));
    }
    if (!recipients.insert(to).second) {
      return Invalid(absl::StrCat("to: '", to, "' is listed twice"));
    }
  }
  if (payload_.kind().empty()) return Invalid("kind: required");
  if (payload_.attachments_size() > 0) {
    return Invalid(
        "payload.attachments: set by this node; upload files with "
        "UploadAttachment and name them in attachment_ids");
  }
  if (request_.attachment_ids_size() > static_cast<int>(kMaxAttachments)) {
    return Invalid(absl::StrCat("attachment_ids: at most ", kMaxAttachments));
  }
  if (!IsMessageKind(payload_.kind())) {
    return Invalid(absl::StrCat("kind: '", Printable(payload_.kind(), 40),
                                "' is not a message kind (one of ",
                                absl::StrJoin(MessageKinds(), ", "), ")"));
  }
  size_ = payload_.ByteSizeLong();
  if (size_ > config.limits().max_message_bytes()) {
    return Invalid(absl::StrCat(
        "message is ", size_, " bytes; this node's limit is ",
        config.limits().max_message_bytes(), " (limits.max_message_bytes)"));
  }
  if (request_.client_key().size() > kMaxClientKey) {
    return Invalid("client_key: at most 128 characters");
  }
  if (request_.expires_in_seconds() < 0 ||
      request_.expires_in_seconds() > kMaxLifetimeMs / 1000) {
    return Invalid("expires_in_seconds: 0 (default) to 90 days");
  }
  if (!v1::Priority_IsValid(request_.priority())) {
    return Invalid("priority: routine, urgent or flash");
  }
  priority_ = request_.priority() == v1::PRIORITY_UNSPECIFIED
                  ? v1::ROUTINE
                  : request_.priority();
  return absl::OkStatus();
}

absl::Status App::Submission::Policy() {
  if (!RoleMayUseKind(caller_.role, payload_.kind())) {
    return absl::PermissionDeniedError(absl::StrCat(
        "a ", RoleName(caller_.role), " may not send ", payload_.kind(),
        " messages (", RoleName(caller_.role),
        "s work with: ", absl::StrJoin(KindsOfRole(caller_.role), ", "), ")"));
  }
  if (request_.priority() == v1::FLASH && !RoleMaySendFlash(caller_.role)) {
    return absl::PermissionDeniedError(
        absl::StrCat("priority: a ", RoleName(caller_.role),
                     " may not send flash messages"));
  }
  for (const std::string& to : request_.to()) {
    KONTOR_RETURN_IF_ERROR(app_->peer_policy_.MaySendTo(to, payload_.kind()));
  }
  return absl::OkStatus();
}

absl::Status App::Submission::Duplicate(v1::SubmitResponse* answered,
                                        bool* done) {
  // The uploads are looked up first: the idempotency key compares what
  // they are (name, type, size, SHA-256), not their ids, so that a retry
  // that uploaded the same files again finds the original message.
  for (const std::string& id : request_.attachment_ids()) {
    auto u = o_.store->GetUpload(id);
    if (!u.ok()) return u.status();
    if (!u->has_value() || (*u)->submitter != caller_.id) {
      return Invalid(absl::StrCat("attachment_ids: '", Printable(id, 64),
                                  "' is not an attachment you uploaded"));
    }
    for (const UploadRecord& seen : uploads_) {
      if (seen.id == id) {
        return Invalid(
            absl::StrCat("attachment_ids: '", Printable(id, 64), "' twice"));
      }
    }
    attachment_bytes_ += (*u)->size;
    uploads_.push_back(std::move(**u));
  }
  v1::SubmitRequest canonical = request_;
  canonical.clear_client_key();
  canonical.clear_attachment_ids();
  for (const UploadRecord& u : uploads_) {
    v1::Attachment* a = canonical.mutable_payload()->add_attachments();
    a->set_name(u.name);
    a->set_content_type(u.content_type);
    a->set_size(u.size);
    a->set_sha256(u.sha256);
  }
  request_hash_ = Sha256(DeterministicBytes(canonical));
  *done = false;
  if (request_.client_key().empty()) return absl::OkStatus();
  auto found = o_.store->FindByClientKey(caller_.id, request_.client_key(),
                                         request_hash_);
  if (!found.ok()) return found.status();
  if (found->has_value()) {
    answered->set_message_id((*found)->message_id);
    answered->set_duplicate(true);
    *done = true;
  }
  return absl::OkStatus();
}

absl::Status App::Submission::Uploads() {
  for (const UploadRecord& u : uploads_) {
    if (!u.message_id.empty()) {
      return Invalid(absl::StrCat("attachment_ids: '", u.id,
                                  "' was sent already (upload it again)"));
    }
  }
  // Room to store it (and what is already accepted can still be delivered).
  if (auto s =
          CheckFreeSpace(o_.config->data_dir(), size_, app_->min_free_bytes_);
      !s.ok()) {
    KLOG(Error, "api") << "refused submission by " << caller_.id << ": "
                       << s.message();
    return absl::Status(s.code(),
                        absl::StrCat(s.message(), "; nothing was sent"));
  }
  const uint64_t limit = o_.config->limits().max_attachment_bytes();
  if (attachment_bytes_ > limit) {
    return Invalid(absl::StrCat("attachments are ", attachment_bytes_,
                                " bytes; this node's limit is ", limit,
                                " (limits.max_attachment_bytes)"));
  }
  chunk_lists_.resize(uploads_.size());
  for (size_t i = 0; i < uploads_.size(); ++i) {
    const UploadRecord& u = uploads_[i];
    if (!chunk_lists_[i].ParseFromString(u.chunk_refs)) {
      return absl::DataLossError("stored attachment is damaged");
    }
    v1::Attachment* a = payload_.add_attachments();
    a->set_name(u.name);
    a->set_content_type(u.content_type);
    a->set_size(u.size);
    a->set_sha256(u.sha256);
    a->set_key(u.key);
    a->set_chunk_count(static_cast<uint32_t>(chunk_lists_[i].chunks_size()));
  }
  return absl::OkStatus();
}

absl::Status App::Submission::ValidateContent() {
  kinds::Context ctx;
  ctx.priority = priority_;
  ctx.now_ms = o_.clock->NowUnixMs();
  // Only what the caller may see: a message outside its role or another
  // user's sent one is "unknown" (its kind and case are not told).
  ctx.lookup =
      [this](const std::string& id) -> std::optional<kinds::KnownMessage> {
    auto known = o_.store->FindMessage(id);
    if (!known.ok() || !known->has_value() ||
        !MaySee(caller_, app_internal::ViewOf(**known))) {
      return std::nullopt;
    }
    return kinds::KnownMessage{
        (*known)->kind,
        (*known)->sent ? o_.config->node_id() : (*known)->origin,
        (*known)->case_ref};
  };
  if (absl::Status s = kinds::ValidatePayload(ctx, &payload_); !s.ok()) {
    return Invalid(s.message());
  }
  return absl::OkStatus();
}

absl::Status App::Submission::Seal() {
  const int64_t now = o_.clock->NowUnixMs();
  // Expiry: the request's, else the kind's default, else the node's.
  const auto& by_kind = o_.config->limits().expiry_seconds_by_kind();
  const auto kind_default = by_kind.find(payload_.kind());
  const int64_t expiry_s = request_.expires_in_seconds() > 0
                               ? request_.expires_in_seconds()
                           : kind_default != by_kind.end()
                               ? kind_default->second
                               : o_.config->limits().default_expiry_seconds();
  v1::Header header;
  header.set_message_id(NewMessageId());
  header.set_origin(o_.config->node_id());
  for (const std::string& r : request_.to()) header.add_recipients(r);
  header.set_priority(priority_);
  header.set_created_unix_ms(now);
  header.set_expires_unix_ms(now + expiry_s * 1000);
  std::string inner_signed;
  auto envelope = o_.sealer->Seal(header, payload_, &inner_signed);
  if (!envelope.ok()) {
    KLOG(Error, "api") << "cannot seal: " << envelope.status().message();
    return envelope.status();
  }
  uint32_t chunk_count = 0;
  for (size_t i = 0; i < chunk_lists_.size(); ++i) {
    for (const v1::AttachmentChunkRef& c : chunk_lists_[i].chunks()) {
      v1::AttachmentChunkRef* r = envelope->add_chunks();
      *r = c;
      r->set_attachment(static_cast<uint32_t>(i));
      ++chunk_count;
    }
  }
  KONTOR_RETURN_IF_ERROR(o_.sealer->SignOuter({&*envelope}));

  m_.id = header.message_id();
  m_.recipients.assign(request_.to().begin(), request_.to().end());
  m_.priority = priority_;
  m_.created_ms = now;
  m_.expires_ms = header.expires_unix_ms();
  m_.kind = payload_.kind();
  m_.outer_digest = OuterDigest(*envelope, kSuiteV1);
  m_.envelope = envelope->SerializeAsString();
  m_.submitter = caller_.id;
  m_.client_key = request_.client_key();
  m_.payload = payload_.SerializeAsString();
  m_.inner_signed = std::move(inner_signed);
  m_.subject = payload_.subject();
  m_.case_ref = payload_.case_ref();
  m_.in_reply_to = payload_.in_reply_to();
  m_.purpose = payload_.markings().purpose();
  m_.request_hash = request_hash_;
  for (const UploadRecord& u : uploads_) m_.uploads.push_back(u.id);
  m_.chunk_count = chunk_count;
  return absl::OkStatus();
}

absl::Status App::Submission::AuthorizeEraseTargets() {
  // The recipients erase every message of this origin an order names, so
  // nobody may order the erasure of a colleague's messages: another user's
  // message is as unknown as one never sent.
  for (const std::string& target : kinds::EraseTargets(payload_)) {
    auto known = o_.store->FindMessage(target);
    if (!known.ok()) return known.status();
    if (!known->has_value() || !(*known)->sent ||
        !MaySee(caller_, app_internal::ViewOf(**known))) {
      return Invalid(absl::StrCat(
          payload_.kind() == "erase.notice" ? "erase_notice.refers_to"
                                            : "consent_update.referral_id",
          ": ", target,
          " is not a message this node sent for you; an erase order names "
          "its sender's own messages (an admin's: any this node sent)"));
    }
    m_.erase_targets.push_back(target);
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::SubmitResponse> App::Submission::Persist() {
  auto outcome = o_.store->InsertOutgoing(m_);
  if (outcome.status().code() == absl::StatusCode::kFailedPrecondition) {
    return Invalid(outcome.status().message());  // lost a race
  }
  if (!outcome.ok()) {
    KLOG(Error, "api") << "cannot store message: "
                       << outcome.status().message();
    return absl::Status(
        outcome.status().code(),
        absl::StrCat("this node cannot store the message now (",
                     outcome.status().message(), "); nothing was sent"));
  }
  CrashPoint("submit.after_commit");
  if (!outcome->duplicate) {
    KLOG(Info, "api") << "accepted message " << m_.id << " ("
                      << v1::Priority_Name(priority_) << ") for "
                      << m_.recipients.size() << " recipient(s)";
    for (const std::string& r : m_.recipients) {
      o_.outbox->Notify(r, priority_ == v1::FLASH);
    }
  }
  v1::SubmitResponse response;
  response.set_message_id(outcome->message_id);
  response.set_duplicate(outcome->duplicate);
  return response;
}

absl::StatusOr<v1::SubmitResponse> App::Submit(
    const Caller& caller, const v1::SubmitRequest& request) {
  const int64_t start_ms = o_.clock->MonotonicMs();
  Submission s(this, caller, request);
  v1::SubmitResponse answered;
  bool duplicate = false;
  absl::StatusOr<v1::SubmitResponse> result =
      [&]() -> absl::StatusOr<v1::SubmitResponse> {
    KONTOR_RETURN_IF_ERROR(s.CheckRequest());
    KONTOR_RETURN_IF_ERROR(s.Policy());
    KONTOR_RETURN_IF_ERROR(s.Duplicate(&answered, &duplicate));
    if (duplicate) return answered;
    KONTOR_RETURN_IF_ERROR(s.Uploads());
    KONTOR_RETURN_IF_ERROR(s.ValidateContent());
    KONTOR_RETURN_IF_ERROR(s.Seal());
    KONTOR_RETURN_IF_ERROR(s.AuthorizeEraseTargets());
    return s.Persist();
  }();
  if (!result.ok()) {
    KLOG(Warning, "api") << "refused submission by " << caller.id << ": "
                         << result.status().message();
  }
  if (o_.metrics != nullptr) {
    const std::string outcome = !result.ok()          ? "refused"
                                : result->duplicate() ? "duplicate"
                                                      : "accepted";
    o_.metrics
        ->GetCounter("kontor_submissions_total",
                     "Messages submitted, by outcome (accepted, duplicate, "
                     "refused)",
                     {{"outcome", outcome}})
        .Increment();
    if (result.ok()) {
      o_.metrics
          ->GetHistogram("kontor_submit_latency_seconds",
                         "From a Submit call to its message durable here",
                         LatencyBuckets())
          .Observe((o_.clock->MonotonicMs() - start_ms) / 1000.0);
    }
  }
  return result;
}

}  // namespace kontor
