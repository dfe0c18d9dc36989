// kontor send: submit a message (and upload its attachments first).

#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/commands.h"
#include "daemon/common/ids.h"
#include "daemon/kinds/kinds.h"

namespace kontor {
namespace cli {
namespace {

std::string NewClientKey() {
  std::ifstream urandom("/dev/urandom", std::ios::binary);
  char bytes[16];
  urandom.read(bytes, sizeof bytes);
  return "cli-" + HexEncode(absl::string_view(bytes, sizeof bytes));
}

// Streams the file at `path` to the node (which encrypts it into chunks);
// sets *id to the attachment id. The size goes first, so a file over the
// node's limit is refused before its bytes are sent. Returns an exit code.
int UploadFile(const Options& o, v1::Local::Stub* stub, const std::string& path,
               std::string* id) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return Fail(kUsage, "--attach " + path + ": not a readable file");
  }
  const uint64_t size = std::filesystem::file_size(path, ec);
  grpc::Status status;
  for (int attempt = 1;; ++attempt) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return Fail(kUsage, "--attach " + path + ": cannot read");
    grpc::ClientContext c;
    // A minute, and one more second per 4 MiB.
    SetDeadline(&c, static_cast<int>(60 + size / (4 << 20)));
    v1::UploadedAttachment resp;
    auto writer = stub->UploadAttachment(&c, &resp);
    v1::AttachmentUpload msg;
    msg.set_name(std::filesystem::path(path).filename().string());
    msg.set_size(size);
    std::string buffer(1 << 20, '\0');
    bool first = true;
    while (true) {
      in.read(&buffer[0], static_cast<std::streamsize>(buffer.size()));
      const std::streamsize n = in.gcount();
      if (n <= 0 && !first) break;
      msg.set_data(buffer.data(),
                   static_cast<size_t>(std::max<std::streamsize>(n, 0)));
      if (!writer->Write(msg)) break;  // refused: Finish says why
      msg.clear_name();
      msg.clear_size();
      first = false;
      if (n < static_cast<std::streamsize>(buffer.size())) break;
    }
    if (in.bad()) {
      c.TryCancel();
      writer->Finish();
      return Fail(kFailed, "--attach " + path + ": read error");
    }
    writer->WritesDone();
    status = writer->Finish();
    if (status.ok()) {
      *id = resp.attachment_id();
      return kOk;
    }
    if (!ShouldRetry(status, o) || attempt == 3) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500 * attempt));
  }
  if (!status.ok()) {
    return RpcFail(
        grpc::Status(status.error_code(), absl::StrCat("--attach ", path, ": ",
                                                       status.error_message())),
        o);
  }
  return kFailed;
}

}  // namespace

int Send(const Options& o, v1::Local::Stub* stub) {
  Args a(o.args, {});
  if (auto e = a.Check({"to", "kind", "priority", "case", "subject",
                        "body-file", "payload-json", "in-reply-to",
                        "expires-in", "client-key", "attach"});
      !e.empty()) {
    return Fail(kUsage, e);
  }
  if (!a.positional().empty()) {
    return Fail(kUsage, "send takes no positional arguments (see --help)");
  }
  v1::SubmitRequest req;
  if (a.Get("to").empty()) return Fail(kUsage, "send: --to is required");
  for (absl::string_view to : absl::StrSplit(a.Get("to"), ',')) {
    if (!to.empty()) req.add_to(std::string(to));
  }
  v1::Payload* p = req.mutable_payload();
  if (a.Has("payload-json")) {
    if (a.Has("body-file")) {
      return Fail(kUsage, "send: use --body-file or --payload-json, not both");
    }
    std::string json;
    if (!ReadInput(a.Get("payload-json"), &json)) {
      return Fail(kUsage, "cannot read " + a.Get("payload-json") +
                              " (not a readable file)");
    }
    if (auto s = kinds::ParsePayloadJson(json, p); !s.ok()) {
      return Fail(kUsage,
                  absl::StrCat(a.Get("payload-json"), ": ", s.message()));
    }
    if (a.Has("kind") && !p->kind().empty() && p->kind() != a.Get("kind")) {
      return Fail(kUsage,
                  absl::StrCat("--kind ", a.Get("kind"), " but ",
                               a.Get("payload-json"), " is a ", p->kind()));
    }
  } else if (a.Has("body-file")) {
    if (a.Has("kind") && a.Get("kind") != "note") {
      // Typed kinds have fields of their own (DESIGN.md §6).
      return Fail(kUsage,
                  absl::StrCat("--body-file is for notes; a ", a.Get("kind"),
                               " message takes --payload-json FILE: start "
                               "from `kontor template ",
                               a.Get("kind"),
                               " > FILE`, edit it, then `kontor "
                               "send --to ",
                               a.Get("to"), " --payload-json FILE`"));
    }
    std::string body;
    if (!ReadInput(a.Get("body-file"), &body)) {
      return Fail(kUsage, "cannot read " + a.Get("body-file") +
                              " (not a readable file)");
    }
    p->set_body(body);
    p->set_content_type("text/plain; charset=utf-8");
  } else {
    return Fail(kUsage, "send: --body-file F or --payload-json F is required");
  }
  if (a.Has("kind")) p->set_kind(a.Get("kind"));
  if (p->kind().empty()) return Fail(kUsage, "send: --kind is required");
  if (a.Has("subject")) p->set_subject(a.Get("subject"));
  if (a.Has("case")) p->set_case_ref(a.Get("case"));
  if (a.Has("in-reply-to")) p->set_in_reply_to(a.Get("in-reply-to"));
  // An alert goes out flash unless told otherwise.
  const std::string prio = a.Has("priority")      ? a.Get("priority")
                           : p->kind() == "alert" ? "flash"
                                                  : "routine";
  if (prio == "routine") {
    req.set_priority(v1::ROUTINE);
  } else if (prio == "urgent") {
    req.set_priority(v1::URGENT);
  } else if (prio == "flash") {
    req.set_priority(v1::FLASH);
  } else {
    return Fail(kUsage, "--priority: routine, urgent or flash");
  }
  if (a.Has("expires-in")) {
    int64_t s = 0;
    if (!absl::SimpleAtoi(a.Get("expires-in"), &s) || s <= 0) {
      return Fail(kUsage, "--expires-in: a number of seconds");
    }
    req.set_expires_in_seconds(s);
  }
  req.set_client_key(a.Has("client-key") ? a.Get("client-key")
                                         : NewClientKey());
  for (const std::string& file : a.GetAll("attach")) {
    std::string id;
    if (int rc = UploadFile(o, stub, file, &id); rc != kOk) return rc;
    req.add_attachment_ids(id);
  }

  // The same client key on every try: a retry can never send twice.
  v1::SubmitResponse resp;
  grpc::Status status;
  int64_t delay_ms = 200;
  for (int attempt = 1;; ++attempt) {
    grpc::ClientContext c;
    SetDeadline(&c);
    resp.Clear();
    status = stub->Submit(&c, req, &resp);
    if (status.ok() || !ShouldRetry(status, o) || attempt == 5) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    delay_ms *= 2;
  }
  if (!status.ok()) return RpcFail(status, o);
  if (o.json) {
    PrintJson(resp);
  } else {
    printf("%s\n", resp.message_id().c_str());
  }
  return kOk;
}

}  // namespace cli
}  // namespace kontor
