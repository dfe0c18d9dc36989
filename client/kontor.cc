// kontor: the command-line client of a Kontor node (DESIGN.md §10).
//
// Exit codes: 0 ok, 1 failed, 2 usage or invalid input, 3 not found,
// 75 transient (retry later). Errors: one line on stderr.

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "client/json.h"
#include "daemon/attachment/files.h"
#include "daemon/common/ids.h"
#include "daemon/kinds/kinds.h"
#include "google/protobuf/util/json_util.h"
#include "kontor/v1/local.grpc.pb.h"

namespace {

using kontor::FormatRfc3339Ms;
namespace v1 = kontor::v1;

constexpr int kOk = 0;
constexpr int kFailed = 1;
constexpr int kUsage = 2;
constexpr int kNotFound = 3;
constexpr int kTransient = 75;
constexpr int kCallTimeoutSeconds = 30;

const char kUsageText[] =
    R"(usage: kontor [--node N] [--json] COMMAND [ARGS]

Commands:
  send --to ID[,ID] --kind K [--priority routine|urgent|flash] [--case REF]
       [--subject S] (--body-file F | --payload-json F) [--in-reply-to ID]
       [--expires-in SECONDS] [--client-key KEY] [--attach FILE]...
                              submit a message; prints its id once durable
                              (attachments: streamed, any size up to the
                              node's limits.max_attachment_bytes)
  status MSGID                delivery state per recipient, with receipts
  inbox [--unread]            list received messages
  show MSGID [--from ORIGIN] [--save-attachments DIR]
                              a message, decrypted and rendered for its kind
                              (received, or this node's copy of one sent);
                              its attachments verified and saved into DIR
  template KIND [--case REF] [--in-reply-to ID]
                              an annotated example of KIND (protobuf JSON,
                              // comments) that send --payload-json takes
  thread CASE | thread --message ID
                              a case's messages, sent and received, in order
  ack MSGID [--from ORIGIN]   mark a received message as handled
  watch [--since SEQ]         stream inbox messages as they arrive; with
                              --since, those after SEQ first (--since 0: all)
  watch --sent [--since SEQ]  stream what happens to messages sent from this
                              node: delivered, rejected, expired, suspended,
                              cancelled, forwarded (SEQ: of these events)
  peers                       connectivity, backoff, queue and certificates
  outbox [--state S]          deliveries (default: queued and in flight)
  cancel MSGID                cancel deliveries not yet made
  retry MSGID                 queue suspended deliveries again, now
  audit verify [--local]      recompute the audit chain; check it against
                              the node's signed heads and the heads its
                              peers hold in receipts (--local: not those)
  audit tail [--limit N]      the newest audit records (default 20)
  purge [--dry-run]           remove message content past its retention
                              (config `retention`), keeping metadata and
                              evidence; --dry-run lists what would go
  export MSGID --out DIR      evidence of a message sent or received: the
                              signed message, receipts, certificates and
                              CRLs, and a README (and verify.sh) of the
                              openssl commands that check them without
                              Kontor; DIR must not exist yet

Kinds: note, referral.consult, referral, referral.response, case.update,
consent.update, intel.report, intel.request, intel.response,
incident.report, sitrep, alert, restriction.update, erase.notice.
A note takes --subject and --body-file; every other kind takes
--payload-json F (see `kontor template KIND`).

Options:
  --node N    the node: a unix socket path (or unix:PATH), or host:port with
              --cert/--key/--ca; default $KONTOR_NODE
  --json      machine-readable output: one JSON document (watch: one object
              per line)
  --help      this text; COMMAND --help for the command

Exit codes: 0 ok, 1 failed, 2 usage or invalid input, 3 not found,
75 transient (retry later). Times are UTC, RFC 3339.
)";

struct Options {
  std::string node;
  std::string cert, key, ca;
  bool json = false;
  std::string command;
  std::vector<std::string> args;
};

int Fail(int code, const std::string& message) {
  fprintf(stderr, "kontor: %s\n", message.c_str());
  return code;
}

int ExitCodeFor(const grpc::Status& s) {
  switch (s.error_code()) {
    case grpc::StatusCode::OK:
      return kOk;
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::OUT_OF_RANGE:
    case grpc::StatusCode::ALREADY_EXISTS:
      return kUsage;
    case grpc::StatusCode::NOT_FOUND:
      return kNotFound;
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
    case grpc::StatusCode::ABORTED:
      return kTransient;
    default:
      return kFailed;
  }
}

int RpcFail(const grpc::Status& s, const Options& o) {
  std::string message = s.error_message();
  if (s.error_code() == grpc::StatusCode::UNAVAILABLE) {
    message = absl::StrCat("node ", o.node, " unavailable: ", message);
  }
  return Fail(ExitCodeFor(s), message);
}

bool IsTransient(const grpc::Status& s) { return ExitCodeFor(s) == kTransient; }

void PrintJson(const google::protobuf::Message& m) {
  printf("%s\n", kontor::ToJson(kontor::ToJsonValue(m), false).c_str());
}

std::unique_ptr<v1::Local::Stub> Connect(const Options& o, std::string* error) {
  std::string target;
  std::shared_ptr<grpc::ChannelCredentials> creds;
  std::string path = o.node;
  if (path.rfind("unix:", 0) == 0) path = path.substr(5);
  // A path (absolute or relative) is a unix socket; host:port has no '/'.
  if (path.find('/') != std::string::npos || o.node.rfind("unix:", 0) == 0) {
    if (path.size() > 107) {
      *error = absl::StrCat("socket path is ", path.size(),
                            " bytes; unix socket paths are limited to 107");
      return nullptr;
    }
    target = "unix:" + path;
    creds = grpc::InsecureChannelCredentials();
  } else {
    if (o.cert.empty() || o.key.empty() || o.ca.empty()) {
      *error = absl::StrCat("node '", o.node,
                            "' is not a socket path; host:port needs --cert, "
                            "--key and --ca (operator certificate)");
      return nullptr;
    }
    auto read = [](const std::string& p, std::string* out) {
      std::ifstream in(p);
      std::ostringstream ss;
      ss << in.rdbuf();
      *out = ss.str();
      return static_cast<bool>(in);
    };
    grpc::SslCredentialsOptions ssl;
    if (!read(o.ca, &ssl.pem_root_certs) ||
        !read(o.cert, &ssl.pem_cert_chain) ||
        !read(o.key, &ssl.pem_private_key)) {
      *error = "cannot read --cert, --key or --ca";
      return nullptr;
    }
    target = o.node;
    creds = grpc::SslCredentials(ssl);
  }
  return v1::Local::NewStub(grpc::CreateChannel(target, creds));
}

void SetDeadline(grpc::ClientContext* c) {
  c->set_deadline(std::chrono::system_clock::now() +
                  std::chrono::seconds(kCallTimeoutSeconds));
}

// Parses "--flag value" / "--flag=value" / "--switch" arguments.
class Args {
 public:
  Args(std::vector<std::string> args, std::vector<std::string> switches)
      : switches_(std::move(switches)) {
    for (size_t i = 0; i < args.size(); ++i) {
      const std::string& a = args[i];
      if (a.rfind("--", 0) != 0 || a == "--") {
        positional_.push_back(a);
        continue;
      }
      auto eq = a.find('=');
      std::string name = a.substr(2, eq == std::string::npos ? eq : eq - 2);
      if (eq != std::string::npos) {
        flags_[name] = a.substr(eq + 1);
        all_[name].push_back(flags_[name]);
      } else if (IsSwitch(name)) {
        flags_[name] = "true";
      } else if (i + 1 < args.size()) {
        flags_[name] = args[++i];
        all_[name].push_back(flags_[name]);
      } else {
        error_ = absl::StrCat("--", name, " needs a value");
      }
    }
  }
  bool Has(const std::string& name) const { return flags_.count(name) > 0; }
  std::string Get(const std::string& name) const {
    auto it = flags_.find(name);
    return it == flags_.end() ? "" : it->second;
  }
  const std::vector<std::string>& positional() const { return positional_; }
  // Every value of a flag given more than once, in order.
  std::vector<std::string> GetAll(const std::string& name) const {
    auto it = all_.find(name);
    return it == all_.end() ? std::vector<std::string>() : it->second;
  }
  // Error text if a flag is not among `known`, or a value is missing.
  std::string Check(const std::vector<std::string>& known) const {
    if (!error_.empty()) return error_;
    for (const auto& [name, value] : flags_) {
      bool ok = false;
      for (const auto& k : known) ok = ok || k == name;
      if (!ok) return absl::StrCat("unknown option --", name);
    }
    return "";
  }

 private:
  bool IsSwitch(const std::string& name) const {
    for (const auto& s : switches_) {
      if (s == name) return true;
    }
    return false;
  }
  std::vector<std::string> switches_;
  std::map<std::string, std::string> flags_;
  std::map<std::string, std::vector<std::string>> all_;
  std::vector<std::string> positional_;
  std::string error_;
};

std::string PriorityName(v1::Priority p) {
  switch (p) {
    case v1::FLASH:
      return "flash";
    case v1::URGENT:
      return "urgent";
    default:
      return "routine";
  }
}

std::string Ago(int64_t ms) {
  if (ms <= 0) return "-";
  return FormatRfc3339Ms(ms);
}

bool ReadInput(const std::string& path, std::string* out) {
  if (path == "-") {
    std::ostringstream ss;
    ss << std::cin.rdbuf();
    *out = ss.str();
    return true;
  }
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return false;
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return !in.bad();
}

std::string NewClientKey() {
  std::ifstream urandom("/dev/urandom", std::ios::binary);
  char bytes[16];
  urandom.read(bytes, sizeof bytes);
  return "cli-" + kontor::HexEncode(absl::string_view(bytes, sizeof bytes));
}

// Streams the file at `path` to the node (which encrypts it into chunks);
// sets *id to the attachment id. Returns an exit code.
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
    c.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::seconds(60 + size / (4 << 20)));
    v1::UploadedAttachment resp;
    auto writer = stub->UploadAttachment(&c, &resp);
    v1::AttachmentUpload msg;
    msg.set_name(std::filesystem::path(path).filename().string());
    std::string buffer(1 << 20, '\0');
    bool first = true;
    while (true) {
      in.read(&buffer[0], static_cast<std::streamsize>(buffer.size()));
      const std::streamsize n = in.gcount();
      if (n <= 0 && !first) break;
      msg.set_data(buffer.data(),
                   static_cast<size_t>(std::max<std::streamsize>(n, 0)));
      if (!writer->Write(msg)) break;
      msg.clear_name();
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
    if (!IsTransient(status) || attempt == 3) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500 * attempt));
  }
  return RpcFail(status, o);
}

// Saves attachment `index` of a received message as `dir`/name (name made
// safe, never overwriting): written to a .part file and renamed only when
// the node says every chunk verified.
int SaveAttachment(const Options& o, v1::Local::Stub* stub,
                   const v1::ShowRequest& show, uint32_t index,
                   const v1::Attachment& a, const std::string& dir,
                   std::string* saved) {
  std::string name = kontor::SafeFileName(a.name(), index + 1);
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
  c.set_deadline(std::chrono::system_clock::now() +
                 std::chrono::seconds(60 + a.size() / (4 << 20)));
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

// ------------------------------------------------------------------ commands

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
    if (auto s = kontor::kinds::ParsePayloadJson(json, p); !s.ok()) {
      return Fail(kUsage,
                  absl::StrCat(a.Get("payload-json"), ": ", s.message()));
    }
    if (a.Has("kind") && !p->kind().empty() && p->kind() != a.Get("kind")) {
      return Fail(kUsage,
                  absl::StrCat("--kind ", a.Get("kind"), " but ",
                               a.Get("payload-json"), " is a ", p->kind()));
    }
  } else if (a.Has("body-file")) {
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
    if (status.ok() || !IsTransient(status) || attempt == 5) break;
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

int Status(const Options& o, v1::Local::Stub* stub) {
  Args a(o.args, {});
  if (auto e = a.Check({}); !e.empty()) return Fail(kUsage, e);
  if (a.positional().size() != 1)
    return Fail(kUsage, "usage: kontor status MSGID");
  v1::StatusRequest req;
  req.set_message_id(a.positional()[0]);
  v1::StatusResponse resp;
  grpc::ClientContext c;
  SetDeadline(&c);
  auto s = stub->Status(&c, req, &resp);
  if (!s.ok()) return RpcFail(s, o);
  if (o.json) {
    PrintJson(resp);
    return kOk;
  }
  printf("%s  %s  %s  created %s  expires %s\n", resp.message_id().c_str(),
         resp.state().c_str(), PriorityName(resp.priority()).c_str(),
         Ago(resp.created_unix_ms()).c_str(),
         Ago(resp.expires_unix_ms()).c_str());
  for (const auto& d : resp.deliveries()) {
    printf("  %-10s %-10s attempts %u", d.recipient().c_str(),
           d.state().c_str(), d.attempts());
    if (!d.receipt().empty()) {
      printf("  receipt signed by %s at %s", d.receipt_signer().c_str(),
             Ago(d.receipt_time_unix_ms()).c_str());
    }
    if (!d.reason().empty()) {
      printf("  reason: %s", kontor::Printable(d.reason(), 400).c_str());
    }
    if (!d.last_error().empty()) {
      printf("  last error: %s",
             kontor::Printable(d.last_error(), 400).c_str());
    }
    printf("\n");
    if (d.erased_size() > 0) {
      printf("    erased (confirmed, signed): %s\n",
             kontor::Printable(absl::StrJoin(d.erased(), " "), 2000).c_str());
    }
    if (d.erase_kept_size() > 0) {
      printf(
          "    not there yet, erased on arrival: %s\n",
          kontor::Printable(absl::StrJoin(d.erase_kept(), " "), 2000).c_str());
    }
  }
  return kOk;
}

void PrintEntry(const v1::InboxEntry& e) {
  printf("%6llu  %s  %-4s %-18s %s%s  %s\n",
         static_cast<unsigned long long>(e.seq()),
         FormatRfc3339Ms(e.received_unix_ms()).c_str(), e.origin().c_str(),
         kontor::Printable(e.kind(), 40).c_str(), e.message_id().c_str(),
         e.acked() ? " " : "*", kontor::Printable(e.subject(), 200).c_str());
}

int Inbox(const Options& o, v1::Local::Stub* stub) {
  Args a(o.args, {"unread"});
  if (auto e = a.Check({"unread", "limit"}); !e.empty()) return Fail(kUsage, e);
  v1::InboxRequest req;
  req.set_unread_only(a.Has("unread"));
  uint32_t limit = 1000;
  if (a.Has("limit") && !absl::SimpleAtoi(a.Get("limit"), &limit)) {
    return Fail(kUsage, "--limit: a number");
  }
  req.set_limit(limit);
  v1::InboxResponse resp;
  grpc::ClientContext c;
  SetDeadline(&c);
  auto s = stub->Inbox(&c, req, &resp);
  if (!s.ok()) return RpcFail(s, o);
  if (o.json) {
    PrintJson(resp);
    return kOk;
  }
  if (resp.entries().empty()) {
    printf("(inbox empty)\n");
    return kOk;
  }
  printf("%6s  %-24s  %-4s %-18s %-37s %s\n", "SEQ", "RECEIVED", "FROM", "KIND",
         "ID (* unread)", "SUBJECT");
  for (const auto& e : resp.entries()) PrintEntry(e);
  return kOk;
}

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
  printf("Message:   %s\n", e.message_id().c_str());
  if (e.sent()) {
    printf("From:      %s (this node: your sent copy)\n",
           resp.signer().c_str());
  } else {
    printf("From:      %s (signature verified)\n", resp.signer().c_str());
  }
  printf("To:        %s\n", to.c_str());
  printf("Kind:      %s\n", kontor::Printable(p.kind(), 40).c_str());
  printf("Priority:  %s\n", PriorityName(e.priority()).c_str());
  printf("Created:   %s\n", FormatRfc3339Ms(e.created_unix_ms()).c_str());
  if (!e.sent()) {
    printf("Received:  %s\n", FormatRfc3339Ms(e.received_unix_ms()).c_str());
  }
  if (!p.case_ref().empty()) {
    printf("Case:      %s\n", kontor::Printable(p.case_ref(), 200).c_str());
  }
  if (!p.in_reply_to().empty()) {
    printf("In reply:  %s\n", kontor::Printable(p.in_reply_to(), 80).c_str());
  }
  for (int i = 0; i < p.attachments_size(); ++i) {
    const auto& att = p.attachments(i);
    printf("Attached:  %s (%llu bytes, sha256 %s)%s\n",
           kontor::Printable(att.name(), 200).c_str(),
           static_cast<unsigned long long>(att.size()),
           kontor::HexEncode(att.sha256()).c_str(),
           saved[i].empty() ? "" : (" saved as " + saved[i]).c_str());
  }
  if (!p.subject().empty() || p.kind() == "note") {
    printf("Subject:   %s\n", kontor::Printable(p.subject(), 400).c_str());
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
  if (p.content_case() != v1::Payload::CONTENT_NOT_SET || p.has_markings()) {
    fputs(kontor::kinds::RenderText(p).c_str(), stdout);
  }
  fwrite(p.body().data(), 1, p.body().size(), stdout);
  if (!p.body().empty() && p.body().back() != '\n') printf("\n");
  return kOk;
}

int Ack(const Options& o, v1::Local::Stub* stub) {
  Args a(o.args, {});
  if (auto e = a.Check({"from"}); !e.empty()) return Fail(kUsage, e);
  if (a.positional().size() != 1) {
    return Fail(kUsage, "usage: kontor ack MSGID [--from ORIGIN]");
  }
  v1::AckRequest req;
  req.set_message_id(a.positional()[0]);
  req.set_origin(a.Get("from"));
  v1::AckResponse resp;
  grpc::ClientContext c;
  SetDeadline(&c);
  auto s = stub->Ack(&c, req, &resp);
  if (!s.ok()) return RpcFail(s, o);
  if (o.json) {
    PrintJson(resp);
  } else {
    printf("%s %s\n", req.message_id().c_str(),
           resp.already() ? "was already acked" : "acked");
  }
  return kOk;
}

// Streams with `open(context, req)` and prints each item with `print`; a
// node that restarts (reload, upgrade) ends the stream: resume after the
// last item printed, so nothing is missed or printed twice. Gives up only
// when the node stays away.
template <typename Item, typename Open, typename Print>
int ResumableWatch(const Options& o, v1::WatchRequest req, Open open,
                   Print print) {
  bool seen_any = false;
  for (int failures = 0;;) {
    grpc::ClientContext c;
    auto reader = open(&c, req);
    Item e;
    while (reader->Read(&e)) {
      failures = 0;
      seen_any = true;
      if (o.json) {
        PrintJson(e);
      } else {
        print(e);
      }
      fflush(stdout);
      req.set_since_seq(e.seq());
      req.set_from_now(false);  // resume after what was printed
    }
    auto s = reader->Finish();
    if (s.ok()) {  // a watch has no natural end: treat it as an interruption
      s = grpc::Status(grpc::StatusCode::UNAVAILABLE, "watch stream ended");
    }
    if (!IsTransient(s) || ++failures > 30) return RpcFail(s, o);
    if (failures == 1 && seen_any) {
      fprintf(stderr, "kontor: node unavailable, resuming after seq %llu\n",
              static_cast<unsigned long long>(req.since_seq()));
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

void PrintEvent(const v1::DeliveryEvent& e) {
  printf("%6llu  %s  %-10s %s  to %s%s%s\n",
         static_cast<unsigned long long>(e.seq()),
         FormatRfc3339Ms(e.time_unix_ms()).c_str(), e.state().c_str(),
         e.message_id().c_str(), e.recipient().c_str(),
         e.reason().empty() ? "" : "  ",
         kontor::Printable(e.reason(), 400).c_str());
}

int Watch(const Options& o, v1::Local::Stub* stub) {
  Args a(o.args, {"sent"});
  if (auto e = a.Check({"since", "sent"}); !e.empty()) return Fail(kUsage, e);
  v1::WatchRequest req;
  if (a.Has("since")) {
    uint64_t since = 0;
    if (!absl::SimpleAtoi(a.Get("since"), &since)) {
      return Fail(kUsage, "--since: a sequence number (seq of a printed line)");
    }
    req.set_since_seq(since);
  } else {
    req.set_from_now(true);
  }
  if (a.Has("sent")) {
    return ResumableWatch<v1::DeliveryEvent>(
        o, req,
        [stub](grpc::ClientContext* c, const v1::WatchRequest& r) {
          return stub->WatchSent(c, r);
        },
        PrintEvent);
  }
  return ResumableWatch<v1::InboxEntry>(
      o, req,
      [stub](grpc::ClientContext* c, const v1::WatchRequest& r) {
        return stub->Watch(c, r);
      },
      PrintEntry);
}

int Peers(const Options& o, v1::Local::Stub* stub) {
  Args a(o.args, {});
  if (auto e = a.Check({}); !e.empty()) return Fail(kUsage, e);
  v1::PeersResponse resp;
  grpc::ClientContext c;
  SetDeadline(&c);
  auto s = stub->Peers(&c, v1::PeersRequest(), &resp);
  if (!s.ok()) return RpcFail(s, o);
  if (o.json) {
    PrintJson(resp);
    return kOk;
  }
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  auto expiry = [&](const char* what, int64_t t, const char* indent) {
    if (t <= 0) return;
    const int64_t days = (t - now) / (24 * 3600 * 1000LL);
    printf("%s%s %s %s%s\n", indent, what, t < now ? "expired" : "expires",
           Ago(t).c_str(),
           t < now     ? "  WARNING: expired"
           : days < 30 ? "  WARNING: renew soon"
                       : "");
  };
  printf("node %s\n", resp.node_id().c_str());
  expiry("own TLS cert", resp.tls_cert_not_after_unix_ms(), "  ");
  expiry("own signing cert", resp.signing_cert_not_after_unix_ms(), "  ");
  expiry("own encryption cert", resp.encryption_cert_not_after_unix_ms(), "  ");
  for (const auto& p : resp.peers()) {
    std::string state = p.connected() ? "up" : "down";
    if (p.consecutive_failures() == 0 && !p.connected()) state = "idle";
    if (!p.unusable_reason().empty()) state = "UNUSABLE";
    const std::string where = p.via().empty() ? p.address() : "via " + p.via();
    printf("  %-10s %-21s %-5s queue %llu", p.id().c_str(), where.c_str(),
           state.c_str(), static_cast<unsigned long long>(p.queue_depth()));
    if (p.oldest_queued_unix_ms() > 0) {
      printf(" (oldest %llds)",
             static_cast<long long>((now - p.oldest_queued_unix_ms()) / 1000));
    }
    if (p.consecutive_failures() > 0) {
      printf("  backoff: %u failures, next try %s", p.consecutive_failures(),
             Ago(p.next_attempt_unix_ms()).c_str());
    }
    printf("\n");
    if (!p.unusable_reason().empty()) {
      printf("             unusable: %s\n",
             kontor::Printable(p.unusable_reason(), 400).c_str());
    }
    if (!p.last_error().empty()) {
      printf("             last error: %s\n",
             kontor::Printable(p.last_error(), 400).c_str());
    }
    expiry("signing cert", p.signing_cert_not_after_unix_ms(), "             ");
    expiry("encryption cert", p.encryption_cert_not_after_unix_ms(),
           "             ");
    const int64_t crl = p.crl_next_update_unix_ms();
    if (crl > 0) {
      const int64_t days = (crl - now) / (24 * 3600 * 1000LL);
      printf("             CRL next update %s%s\n", Ago(crl).c_str(),
             crl < now  ? "  WARNING: CRL out of date, peer refused"
             : days < 7 ? "  WARNING: CRL must be renewed soon"
                        : "");
    }
  }
  return kOk;
}

int Outbox(const Options& o, v1::Local::Stub* stub) {
  Args a(o.args, {});
  if (auto e = a.Check({"state", "limit"}); !e.empty()) return Fail(kUsage, e);
  v1::OutboxRequest req;
  req.set_state(a.Get("state"));
  uint32_t limit = 1000;
  if (a.Has("limit") && !absl::SimpleAtoi(a.Get("limit"), &limit)) {
    return Fail(kUsage, "--limit: a number");
  }
  req.set_limit(limit);
  v1::OutboxResponse resp;
  grpc::ClientContext c;
  SetDeadline(&c);
  auto s = stub->Outbox(&c, req, &resp);
  if (!s.ok()) return RpcFail(s, o);
  if (o.json) {
    PrintJson(resp);
    return kOk;
  }
  if (resp.entries().empty()) {
    printf("(nothing)\n");
    return kOk;
  }
  for (const auto& e : resp.entries()) {
    printf("%s  %-6s %-10s %-8s created %s  attempts %u%s%s\n",
           e.message_id().c_str(), e.recipient().c_str(), e.state().c_str(),
           PriorityName(e.priority()).c_str(),
           FormatRfc3339Ms(e.created_unix_ms()).c_str(), e.attempts(),
           e.last_error().empty() ? "" : "  last error: ",
           kontor::Printable(e.last_error(), 400).c_str());
  }
  return kOk;
}

int Retry(const Options& o, v1::Local::Stub* stub) {
  Args a(o.args, {});
  if (auto e = a.Check({}); !e.empty()) return Fail(kUsage, e);
  if (a.positional().size() != 1) {
    return Fail(kUsage, "usage: kontor retry MSGID");
  }
  v1::RetryRequest req;
  req.set_message_id(a.positional()[0]);
  v1::RetryResponse resp;
  grpc::ClientContext c;
  SetDeadline(&c);
  auto s = stub->Retry(&c, req, &resp);
  if (!s.ok()) return RpcFail(s, o);
  if (o.json) {
    PrintJson(resp);
  } else {
    printf("%u delivery(ies) queued again\n", resp.retried());
  }
  return kOk;
}

int Cancel(const Options& o, v1::Local::Stub* stub) {
  Args a(o.args, {});
  if (auto e = a.Check({}); !e.empty()) return Fail(kUsage, e);
  if (a.positional().size() != 1)
    return Fail(kUsage, "usage: kontor cancel MSGID");
  v1::CancelRequest req;
  req.set_message_id(a.positional()[0]);
  v1::CancelResponse resp;
  grpc::ClientContext c;
  SetDeadline(&c);
  auto s = stub->Cancel(&c, req, &resp);
  if (!s.ok()) return RpcFail(s, o);
  if (o.json) {
    PrintJson(resp);
  } else {
    printf("%u delivery(ies) cancelled\n", resp.cancelled());
  }
  return kOk;
}

int Template(const Options& o) {
  Args a(o.args, {});
  if (auto e = a.Check({"case", "in-reply-to"}); !e.empty()) {
    return Fail(kUsage, e);
  }
  if (a.positional().size() != 1) {
    return Fail(kUsage,
                "usage: kontor template KIND [--case REF] [--in-reply-to ID]");
  }
  kontor::kinds::TemplateOptions opts;
  opts.case_ref = a.Get("case");
  opts.in_reply_to = a.Get("in-reply-to");
  opts.now_ms = absl::ToUnixMillis(absl::Now());
  auto text = kontor::kinds::TemplateJson(a.positional()[0], opts);
  if (!text.ok()) return Fail(kUsage, std::string(text.status().message()));
  fputs(text->c_str(), stdout);
  if (!text->empty() && text->back() != '\n') printf("\n");
  return kOk;
}

int Thread(const Options& o, v1::Local::Stub* stub) {
  Args a(o.args, {});
  if (auto e = a.Check({"message"}); !e.empty()) return Fail(kUsage, e);
  v1::ThreadRequest req;
  if (a.positional().size() == 1 && !a.Has("message")) {
    req.set_case_ref(a.positional()[0]);
  } else if (a.positional().empty() && a.Has("message")) {
    req.set_message_id(a.Get("message"));
  } else {
    return Fail(kUsage,
                "usage: kontor thread CASE | kontor thread --message ID");
  }
  v1::ThreadResponse resp;
  grpc::ClientContext c;
  SetDeadline(&c);
  auto s = stub->Thread(&c, req, &resp);
  if (!s.ok()) return RpcFail(s, o);
  if (o.json) {
    PrintJson(resp);
    return kOk;
  }
  printf("Case %s: %d message(s)\n",
         kontor::Printable(resp.case_ref(), 200).c_str(), resp.messages_size());
  for (const auto& m : resp.messages()) {
    std::string peers;
    for (const auto& p : m.peers()) peers += (peers.empty() ? "" : ",") + p;
    const std::string dir = m.sent() ? absl::StrCat("sent to ", peers)
                                     : absl::StrCat("from ", m.origin());
    printf("%s  %-18s %-12s %s  %-10s %s%s\n",
           FormatRfc3339Ms(m.created_unix_ms()).c_str(),
           kontor::Printable(m.kind(), 18).c_str(), dir.c_str(),
           m.message_id().c_str(), m.state().c_str(),
           kontor::Printable(m.subject(), 60).c_str(),
           m.in_reply_to().empty()
               ? ""
               : absl::StrCat("  (reply to ", m.in_reply_to().substr(0, 8), ")")
                     .c_str());
  }
  return kOk;
}

int Purge(const Options& o, v1::Local::Stub* stub) {
  Args a(o.args, {"dry-run"});
  if (auto e = a.Check({"dry-run"}); !e.empty()) return Fail(kUsage, e);
  if (!a.positional().empty()) {
    return Fail(kUsage, "usage: kontor purge [--dry-run]");
  }
  v1::PurgeRequest req;
  req.set_dry_run(a.Has("dry-run"));
  v1::PurgeResponse resp;
  grpc::ClientContext c;
  SetDeadline(&c);
  auto s = stub->Purge(&c, req, &resp);
  if (!s.ok()) return RpcFail(s, o);
  if (o.json) {
    PrintJson(resp);
    return kOk;
  }
  for (const auto& m : resp.messages()) {
    printf("%s  %-4s %-18s %s  %s since %s (retention %u days)\n",
           resp.dry_run() ? "would purge" : "purged", m.origin().c_str(),
           m.kind().c_str(), m.message_id().c_str(),
           m.sent() ? "sent" : "received",
           FormatRfc3339Ms(m.kept_since_unix_ms()).c_str(), m.retention_days());
  }
  printf("%d message(s) %s\n", resp.messages_size(),
         resp.dry_run() ? "past their retention (nothing changed)" : "purged");
  return kOk;
}

// A file name the node sent for an export: relative, no "..", plain
// characters only (the node is trusted, but a path is never taken blindly).
bool SafeExportName(const std::string& name) {
  if (name.empty() || name.size() > 200 || name[0] == '/') return false;
  for (absl::string_view part : absl::StrSplit(name, '/')) {
    if (part.empty() || part == "." || part == "..") return false;
  }
  for (char c : name) {
    if (!(absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' ||
          c == '-' || c == '_' || c == '/')) {
      return false;
    }
  }
  return true;
}

int Export(const Options& o, v1::Local::Stub* stub) {
  Args a(o.args, {});
  if (auto e = a.Check({"out"}); !e.empty()) return Fail(kUsage, e);
  if (a.positional().size() != 1 || a.Get("out").empty()) {
    return Fail(kUsage, "usage: kontor export MSGID --out DIR");
  }
  namespace fs = std::filesystem;
  std::string out_arg = a.Get("out");
  while (out_arg.size() > 1 && out_arg.back() == '/') out_arg.pop_back();
  const fs::path out = out_arg;
  std::error_code ec;
  if (fs::exists(out, ec) || fs::is_symlink(out, ec)) {
    return Fail(kUsage, absl::StrCat(out.string(),
                                     " already exists; name a new directory"));
  }
  v1::ExportRequest req;
  req.set_message_id(a.positional()[0]);
  v1::ExportResponse resp;
  grpc::ClientContext c;
  SetDeadline(&c);
  auto s = stub->Export(&c, req, &resp);
  if (!s.ok()) return RpcFail(s, o);
  // mkdir is the atomic claim: nothing that exists is written into or
  // replaced. On any failure the directory goes again.
  if (mkdir(out.c_str(), 0700) != 0) {
    return Fail(
        errno == EEXIST ? kUsage : kFailed,
        absl::StrCat("cannot create ", out.string(), ": ", strerror(errno)));
  }
  auto abandon = [&](const std::string& why) {
    fs::remove_all(out, ec);
    return Fail(kFailed, why);
  };
  for (const auto& f : resp.files()) {
    if (!SafeExportName(f.name())) {
      return abandon(absl::StrCat("the node sent an unsafe file name: ",
                                  kontor::Printable(f.name(), 80)));
    }
    const fs::path path = out / f.name();
    fs::create_directories(path.parent_path(), ec);
    std::ofstream file(path, std::ios::binary | std::ios::trunc);
    file.write(f.content().data(),
               static_cast<std::streamsize>(f.content().size()));
    file.close();
    if (!file) return abandon(absl::StrCat("cannot write ", path.string()));
    if (f.name() == "verify.sh") {
      fs::permissions(path, fs::perms::owner_exec, fs::perm_options::add, ec);
    }
  }
  if (o.json) {
    google::protobuf::Value v;
    auto* fields = v.mutable_struct_value()->mutable_fields();
    (*fields)["dir"].set_string_value(out.string());
    auto* names = (*fields)["files"].mutable_list_value();
    for (const auto& f : resp.files()) {
      names->add_values()->set_string_value(f.name());
    }
    printf("%s\n", kontor::ToJson(v, false).c_str());
    return kOk;
  }
  printf(
      "wrote %d files to %s\nverify without Kontor: cd %s && sh verify.sh "
      "(see README.md)\n",
      resp.files_size(), out.string().c_str(), out.string().c_str());
  return kOk;
}

int Audit(const Options& o, v1::Local::Stub* stub) {
  Args a(o.args, {"local"});
  if (auto e = a.Check({"local", "limit"}); !e.empty()) return Fail(kUsage, e);
  const std::string what = a.positional().empty() ? "" : a.positional()[0];
  if (a.positional().size() != 1 || (what != "verify" && what != "tail")) {
    return Fail(kUsage,
                "usage: kontor audit verify [--local] | kontor audit tail "
                "[--limit N]");
  }
  if (what == "tail") {
    v1::AuditTailRequest req;
    if (a.Has("limit")) {
      uint32_t n = 0;
      if (!absl::SimpleAtoi(a.Get("limit"), &n) || n == 0) {
        return Fail(kUsage, "--limit: a positive number");
      }
      req.set_limit(n);
    }
    v1::AuditTailResponse resp;
    grpc::ClientContext c;
    SetDeadline(&c);
    auto s = stub->AuditTail(&c, req, &resp);
    if (!s.ok()) return RpcFail(s, o);
    if (o.json) {
      PrintJson(resp);
      return kOk;
    }
    for (const auto& r : resp.records()) {
      printf("%6llu  %s  %-8s %-16s %s%s%s  %s%s%s%s\n",
             static_cast<unsigned long long>(r.seq()),
             FormatRfc3339Ms(r.time_unix_ms()).c_str(), r.action().c_str(),
             kontor::Printable(r.actor(), 40).c_str(),
             r.origin().empty() ? "" : (r.origin() + "/").c_str(),
             r.message_id().c_str(),
             r.peer().empty() ? "" : (" peer " + r.peer()).c_str(),
             kontor::Printable(r.kind(), 20).c_str(),
             r.purpose().empty()
                 ? ""
                 : ("  purpose: " + kontor::Printable(r.purpose(), 60)).c_str(),
             r.detail().empty() ? "" : "  ",
             kontor::Printable(r.detail(), 120).c_str());
    }
    return kOk;
  }
  v1::AuditVerifyRequest req;
  req.set_local_only(a.Has("local"));
  v1::AuditVerifyResponse resp;
  grpc::ClientContext c;
  SetDeadline(&c);
  auto s = stub->AuditVerify(&c, req, &resp);
  if (!s.ok()) return RpcFail(s, o);
  if (o.json) {
    PrintJson(resp);
  } else {
    printf("%s: %llu record(s), head %llu %s\n",
           resp.ok() ? "audit log intact" : "AUDIT LOG BROKEN",
           static_cast<unsigned long long>(resp.records()),
           static_cast<unsigned long long>(resp.head_seq()),
           kontor::HexEncode(resp.head_hash()).substr(0, 16).c_str());
    printf("  signed heads checked: %u\n", resp.signed_heads());
    for (const auto& w : resp.witnesses()) {
      printf("  witness %-6s %u head(s), newest %llu%s%s\n", w.peer().c_str(),
             w.heads(), static_cast<unsigned long long>(w.newest_seq()),
             w.error().empty() ? "" : "  ", w.error().c_str());
    }
    if (resp.head_seq() > resp.covered_seq()) {
      printf(
          "  note: records %llu..%llu are not yet confirmed by a signed head "
          "or a peer's witness; only their chain was checked\n",
          static_cast<unsigned long long>(resp.covered_seq() + 1),
          static_cast<unsigned long long>(resp.head_seq()));
    }
    if (resp.first_bad_seq() != 0) {
      printf("  first broken record: %llu\n",
             static_cast<unsigned long long>(resp.first_bad_seq()));
    }
    for (const auto& p : resp.problems()) printf("  problem: %s\n", p.c_str());
  }
  if (!resp.ok()) {
    return Fail(kFailed, absl::StrCat("audit log verification failed: ",
                                      resp.problems(0)));
  }
  return kOk;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (const char* env = getenv("KONTOR_NODE")) o.node = env;
  int i = 1;
  for (; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    };
    if (a == "--help" || a == "-h" || a == "help") {
      fputs(kUsageText, stdout);
      return kOk;
    } else if (a == "--json") {
      o.json = true;
    } else if (a == "--node") {
      if (!value(&o.node)) return Fail(kUsage, "--node needs a value");
    } else if (a == "--cert") {
      if (!value(&o.cert)) return Fail(kUsage, "--cert needs a value");
    } else if (a == "--key") {
      if (!value(&o.key)) return Fail(kUsage, "--key needs a value");
    } else if (a == "--ca") {
      if (!value(&o.ca)) return Fail(kUsage, "--ca needs a value");
    } else if (a.rfind("--", 0) == 0) {
      return Fail(kUsage, absl::StrCat("unknown option ", a, " (see --help)"));
    } else {
      o.command = a;
      ++i;
      break;
    }
  }
  // Global options may also follow the command.
  for (; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--json") {
      o.json = true;
    } else if (a == "--node" && i + 1 < argc) {
      o.node = argv[++i];
    } else if (a == "--cert" && i + 1 < argc) {
      o.cert = argv[++i];
    } else if (a == "--key" && i + 1 < argc) {
      o.key = argv[++i];
    } else if (a == "--ca" && i + 1 < argc) {
      o.ca = argv[++i];
    } else if (a == "--help" || a == "-h") {
      fputs(kUsageText, stdout);
      return kOk;
    } else {
      o.args.push_back(a);
    }
  }
  if (o.command.empty()) {
    fputs(kUsageText, stderr);
    return kUsage;
  }
  static const std::map<std::string,
                        std::function<int(const Options&, v1::Local::Stub*)>>
      kCommands = {{"send", Send},   {"status", Status}, {"inbox", Inbox},
                   {"show", Show},   {"ack", Ack},       {"watch", Watch},
                   {"peers", Peers}, {"outbox", Outbox}, {"cancel", Cancel},
                   {"retry", Retry}, {"thread", Thread}, {"audit", Audit},
                   {"purge", Purge}, {"export", Export}};
  if (o.command == "template") return Template(o);  // needs no node
  auto it = kCommands.find(o.command);
  if (it == kCommands.end()) {
    return Fail(kUsage,
                absl::StrCat("unknown command '", o.command, "' (see --help)"));
  }
  if (o.node.empty()) {
    return Fail(kUsage, "no node: set KONTOR_NODE or pass --node");
  }
  std::string error;
  auto stub = Connect(o, &error);
  if (!stub) return Fail(kUsage, error);
  return it->second(o, stub.get());
}
