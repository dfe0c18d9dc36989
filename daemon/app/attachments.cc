// Attachments: uploaded by a local user (encrypted into chunk files as the
// bytes come), fetched by a reader (verified chunk by chunk).

#include "absl/strings/str_cat.h"
#include "daemon/app/app.h"
#include "daemon/app/internal.h"
#include "daemon/attachment/chunks.h"
#include "daemon/attachment/files.h"
#include "daemon/common/ids.h"
#include "daemon/common/log.h"
#include "daemon/common/text.h"
#include "daemon/crypto/primitives.h"

namespace kontor {

// One upload: the first part names the file (and may declare its size: a
// file over the limit is refused before its bytes travel), every part
// carries the next bytes (at most 1 MiB), encrypted as they come. Refused
// or abandoned (destroyed unfinished), its files go.
class App::UploadSession final : public App::Upload {
 public:
  UploadSession(App* app, std::string caller, std::string id, std::string dir,
                std::string key, std::unique_ptr<ChunkEncryptor> enc)
      : app_(app),
        caller_(std::move(caller)),
        id_(std::move(id)),
        dir_(std::move(dir)),
        key_(std::move(key)),
        enc_(std::move(enc)),
        limit_(app->o_.config->limits().max_attachment_bytes()) {}
  ~UploadSession() override {
    if (!done_) RemoveTree(dir_);
  }

  absl::Status Add(const v1::AttachmentUpload& part) override {
    if (failed_) return absl::FailedPreconditionError("upload refused");
    if (first_) {
      first_ = false;
      name_ = SafeFileName(part.name(), 1);
      content_type_ = part.content_type().empty() ? "application/octet-stream"
                                                  : part.content_type();
      if (content_type_.size() > 200) {
        return Fail(
            absl::InvalidArgumentError("content_type: at most 200 characters"));
      }
      declared_ = part.size();
      if (declared_ > limit_) return TooLarge(declared_);
      if (auto s = CheckFreeSpace(app_->o_.config->data_dir(), declared_,
                                  app_->min_free_bytes_);
          !s.ok()) {
        KLOG(Error, "api") << "upload by " << caller_
                           << " refused: " << s.message();
        return Fail(s);
      }
    }
    if (part.data().size() > kChunkPlainBytes) {
      return Fail(
          absl::InvalidArgumentError("data: at most 1 MiB per message"));
    }
    total_ += part.data().size();
    if (total_ > limit_) return TooLarge(total_);
    if (declared_ != 0 && total_ > declared_) {
      return Fail(absl::InvalidArgumentError(absl::StrCat(
          "the attachment was declared as ", declared_, " bytes; more came")));
    }
    // The floor again as the bytes come (every 64 MiB): other uploads and
    // peers' chunks share the disk.
    if (total_ % (64 << 20) < part.data().size()) {
      if (auto s = CheckFreeSpace(app_->o_.config->data_dir(), 64 << 20,
                                  app_->min_free_bytes_);
          !s.ok()) {
        KLOG(Error, "api") << "upload by " << caller_
                           << " refused: " << s.message();
        return Fail(s);
      }
    }
    if (auto s = enc_->Write(part.data()); !s.ok()) return Fail(s);
    return absl::OkStatus();
  }

  absl::StatusOr<v1::UploadedAttachment> Finish() override {
    if (failed_) return absl::FailedPreconditionError("upload refused");
    if (first_) {
      return Fail(absl::InvalidArgumentError(
          "empty upload: the first message names the file"));
    }
    if (declared_ != 0 && total_ != declared_) {
      return Fail(absl::InvalidArgumentError(
          absl::StrCat("the attachment was declared as ", declared_, " bytes; ",
                       total_, " came")));
    }
    auto summary = enc_->Finish();
    if (!summary.ok()) return Fail(summary.status());
    UploadRecord u;
    u.id = id_;
    u.submitter = caller_;
    u.name = name_;
    u.content_type = content_type_;
    u.size = summary->plain_size;
    u.sha256 = summary->plain_sha256;
    u.key = key_;
    v1::Envelope refs;
    AddChunkRefs(0, summary->chunks, &refs);
    u.chunk_refs = refs.SerializeAsString();
    u.created_ms = app_->o_.clock->NowUnixMs();
    if (auto s = app_->o_.store->InsertUpload(u); !s.ok()) {
      return Fail(absl::Status(
          s.code(), absl::StrCat("this node cannot store the attachment now (",
                                 s.message(), ")")));
    }
    done_ = true;
    KLOG(Info, "api") << caller_ << " uploaded attachment " << id_ << " ("
                      << total_ << " bytes, " << summary->chunks.size()
                      << " chunks)";
    v1::UploadedAttachment out;
    out.set_attachment_id(id_);
    out.set_size(summary->plain_size);
    out.set_sha256(summary->plain_sha256);
    return out;
  }

 private:
  absl::Status Fail(absl::Status s) {
    failed_ = true;
    RemoveTree(dir_);
    KLOG(Warning, "api") << "upload by " << caller_
                         << " refused: " << s.message();
    return s;
  }
  absl::Status TooLarge(uint64_t size) {
    return Fail(absl::InvalidArgumentError(absl::StrCat(
        "the attachment is ", size, " bytes, larger than this node's limit of ",
        limit_, " bytes (limits.max_attachment_bytes)")));
  }

  App* const app_;
  const std::string caller_;
  const std::string id_;
  const std::string dir_;
  const std::string key_;
  const std::unique_ptr<ChunkEncryptor> enc_;
  const uint64_t limit_;
  bool first_ = true;
  bool failed_ = false;
  bool done_ = false;
  std::string name_, content_type_;
  uint64_t total_ = 0;
  uint64_t declared_ = 0;  // 0: not told
};

absl::StatusOr<std::unique_ptr<App::Upload>> App::StartUpload(
    const Caller& caller) {
  const AttachmentDirs dirs(o_.config->data_dir());
  const std::string id = NewMessageId();
  const std::string dir = dirs.Upload(id);
  KONTOR_RETURN_IF_ERROR(MakeDirs(dirs.root() + "/out"));
  std::string key = RandomBytes(kChunkKeyBytes);
  auto enc = ChunkEncryptor::Create(dir, key, 0);
  if (!enc.ok()) return enc.status();
  return std::unique_ptr<Upload>(new UploadSession(
      this, caller.id, id, dir, std::move(key), std::move(*enc)));
}

absl::Status App::FetchAttachment(
    const Caller& caller, const v1::FetchAttachmentRequest& request,
    const std::function<absl::Status(absl::string_view)>& sink) {
  KONTOR_ASSIGN_OR_RETURN(const std::string id,
                          ResolveId(caller, request.message_id()));
  KONTOR_ASSIGN_OR_RETURN(const InboxRecord record,
                          FindReceived(caller, id, request.origin()));
  v1::Payload payload;
  v1::Envelope refs;
  if (!payload.ParseFromString(record.payload) ||
      !refs.ParseFromString(record.chunk_refs)) {
    return absl::DataLossError("stored message is damaged");
  }
  if (request.index() >= static_cast<uint32_t>(payload.attachments_size())) {
    return absl::NotFoundError(
        absl::StrCat("the message has ", payload.attachments_size(),
                     " attachment(s); index ", request.index()));
  }
  auto lists = ChunkLists(refs.chunks(), UINT64_MAX);
  if (!lists.ok() || lists->size() <= request.index()) {
    return absl::DataLossError("stored chunk list is damaged");
  }
  const v1::Attachment& a = payload.attachments(request.index());
  KONTOR_RETURN_IF_ERROR(
      AuditConsult(caller, record.message_id, record.origin, payload,
                   absl::StrCat("attachment ", request.index(), " fetched")));
  const AttachmentDirs dirs(o_.config->data_dir());
  absl::Status s = DecryptChunks(
      dirs.Incoming(record.origin, record.message_id, request.index()),
      (*lists)[request.index()], a.key(), 0, a.size(), a.sha256(), sink);
  if (!s.ok()) {
    KLOG(Error, "api") << "attachment " << request.index() << " of "
                       << record.message_id << ": " << s.message();
    return s;
  }
  KLOG(Info, "api") << caller.id << " fetched attachment " << request.index()
                    << " of message " << record.message_id;
  return absl::OkStatus();
}

}  // namespace kontor
