// kontor show: a message, decrypted and rendered for its kind; its
// attachments verified and saved.

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "client/commands.h"
#include "daemon/common/ids.h"
#include "daemon/common/text.h"
#include "daemon/kinds/kinds.h"

namespace kontor {
namespace cli {
namespace {

// Saves attachment `index` of a received message as `dir`/name (name made
// safe, never overwriting): written to a .part file and renamed only when
// the node says every chunk verified.
int SaveAttachment(const Options& o, v1::Local::Stub* stub,
                   const v1::ShowRequest& show, uint32_t index,
                   const v1::Attachment& a, const std::string& dir,
                   std::string* saved) {
  std::string name = SafeFileName(a.name(), index + 1);
  std::string path = dir + "/" + name;
  for (int n = 2; std::filesystem::exists(path) && n < 1000; ++n) {
    path = absl::StrCat(dir, "/", n, "-", name);
  }
  const std::string part = path + ".part";
  const int fd =
      open(part.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  FILE* f = fd < 0 ? nullptr : fdopen(fd, "wb");
  if (f == nullptr) return Fail(kFailed, "cannot create " + part);
  v1::FetchAttachmentRequest req;
  req.set_message_id(show.message_id());
  req.set_origin(show.origin());
  req.set_index(index);
  grpc::ClientContext c;
  SetDeadline(&c, static_cast<int>(60 + a.size() / (4 << 20)));
  auto reader = stub->FetchAttachment(&c, req);
  v1::AttachmentBytes chunk;
  uint64_t total = 0;
  bool write_ok = true;
  while (reader->Read(&chunk)) {
    total += chunk.data().size();
    write_ok = write_ok && fwrite(chunk.data().data(), 1, chunk.data().size(),
                                  f) == chunk.data().size();
  }
  grpc::Status status = reader->Finish();
  write_ok = write_ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
  fclose(f);
  if (!status.ok() || !write_ok || total != a.size()) {
    unlink(part.c_str());
    if (!status.ok()) return RpcFail(status, o);
    return Fail(kFailed, write_ok ? "attachment size differs; discarded"
                                  : "cannot write " + part);
  }
  if (link(part.c_str(), path.c_str()) != 0) {
    unlink(part.c_str());
    return Fail(kFailed, "cannot create " + path + " (exists?)");
  }
  unlink(part.c_str());
  *saved = path;
  return kOk;
}

}  // namespace

int Show(const Options& o, v1::Local::Stub* stub) {
  Args a(o.args, {});
  if (auto e = a.Check({"from", "save-attachments"}); !e.empty()) {
    return Fail(kUsage, e);
  }
  if (a.positional().size() != 1) {
    return Fail(kUsage,
                "usage: kontor show MSGID [--from ORIGIN] "
                "[--save-attachments DIR]");
  }
  const std::string save_dir = a.Get("save-attachments");
  if (a.Has("save-attachments")) {
    std::error_code ec;
    if (!std::filesystem::is_directory(save_dir, ec)) {
      return Fail(kUsage,
                  "--save-attachments " + save_dir + ": not a directory");
    }
  }
  v1::ShowRequest req;
  req.set_message_id(a.positional()[0]);
  req.set_origin(a.Get("from"));
  v1::ShowResponse resp;
  grpc::ClientContext c;
  SetDeadline(&c);
  auto s = stub->Show(&c, req, &resp);
  if (!s.ok()) return RpcFail(s, o);
  std::vector<std::string> saved(resp.payload().attachments_size());
  if (a.Has("save-attachments")) {
    req.set_message_id(resp.entry().message_id());  // a prefix resolved
    req.set_origin(resp.entry().origin());
    for (int i = 0; i < resp.payload().attachments_size(); ++i) {
      if (int rc = SaveAttachment(o, stub, req, static_cast<uint32_t>(i),
                                  resp.payload().attachments(i), save_dir,
                                  &saved[i]);
          rc != kOk) {
        return rc;
      }
    }
  }
  if (o.json) {
    PrintJson(resp);
    return kOk;
  }
  const auto& e = resp.entry();
  const auto& p = resp.payload();
  std::string to;
  for (const auto& r : resp.recipients()) to += (to.empty() ? "" : ",") + r;
  printf("Message:   %s\n", Safe(e.message_id(), 40).c_str());
  if (e.sent()) {
    printf("From:      %s (this node: your sent copy)\n",
           Safe(resp.signer(), 64).c_str());
  } else {
    printf("From:      %s (signature verified)\n",
           Safe(resp.signer(), 64).c_str());
  }
  printf("To:        %s\n", Safe(to, 400).c_str());
  printf("Kind:      %s\n", Safe(p.kind(), 40).c_str());
  printf("Priority:  %s\n", PriorityName(e.priority()).c_str());
  printf("Created:   %s\n", FormatRfc3339Ms(e.created_unix_ms()).c_str());
  if (!e.sent()) {
    printf("Received:  %s\n", FormatRfc3339Ms(e.received_unix_ms()).c_str());
  }
  if (!p.case_ref().empty()) {
    printf("Case:      %s\n", Safe(p.case_ref(), 200).c_str());
  }
  if (!p.in_reply_to().empty()) {
    printf("In reply:  %s\n", Safe(p.in_reply_to(), 80).c_str());
  }
  for (int i = 0; i < p.attachments_size(); ++i) {
    const auto& att = p.attachments(i);
    printf("Attached:  %s (%llu bytes, sha256 %s)%s\n",
           Safe(att.name(), 200).c_str(),
           static_cast<unsigned long long>(att.size()),
           HexEncode(att.sha256()).c_str(),
           saved[i].empty() ? "" : (" saved as " + Safe(saved[i])).c_str());
  }
  if (!p.subject().empty() || p.kind() == "note") {
    printf("Subject:   %s\n", Safe(p.subject(), 400).c_str());
  }
  printf("\n");
  if (e.purged_unix_ms() != 0) {
    printf(
        "(content erased at %s, after its retention or by an erase order "
        "(see `kontor audit tail`); metadata, digests and receipts are "
        "kept)\n",
        FormatRfc3339Ms(e.purged_unix_ms()).c_str());
    return kOk;
  }
  // Everything below is the sender's text: shown, never acted on by the
  // terminal (SafeBody).
  if (p.content_case() != v1::Payload::CONTENT_NOT_SET || p.has_markings()) {
    fputs(SafeBody(kinds::RenderText(p)).c_str(), stdout);
  }
  const std::string body = SafeBody(p.body());
  fwrite(body.data(), 1, body.size(), stdout);
  if (!body.empty() && body.back() != '\n') printf("\n");
  return kOk;
}

}  // namespace cli
}  // namespace kontor
