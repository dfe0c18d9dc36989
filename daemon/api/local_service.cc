#include "daemon/api/local_service.h"

#include <atomic>
#include <cstdint>
#include <deque>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "daemon/api/operator_auth.h"
#include "daemon/common/log.h"
#include "daemon/common/text.h"
#include "daemon/crypto/certificate.h"

namespace kontor {
namespace {

// An error's text goes to the caller (and often into the log): one line,
// bounded, whatever values went into it.
constexpr size_t kMaxErrorBytes = 2000;

grpc::Status ToGrpc(const absl::Status& s) {
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()),
                      PrintableLine(s.message(), kMaxErrorBytes));
}

// The use case's answer into gRPC's response.
template <typename Response>
grpc::Status Reply(absl::StatusOr<Response> result, Response* response) {
  if (!result.ok()) return ToGrpc(result.status());
  *response = std::move(*result);
  return grpc::Status::OK;
}

}  // namespace

// Who is calling: the first line of every call.
#define KONTOR_WHO(context, caller)                           \
  auto caller##_or = Who(context);                            \
  if (!caller##_or.ok()) return ToGrpc(caller##_or.status()); \
  const Caller& caller = *caller##_or

LocalService::LocalService(App* app, WatchHub* hub) : app_(app), hub_(hub) {}

LocalService::~LocalService() = default;

absl::StatusOr<Caller> LocalService::Who(grpc::ServerContextBase* context) {
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
    KLOG(Security, "api") << "local call from " << Printable(context->peer())
                          << " refused: " << caller.status().message();
  }
  return caller;
}

grpc::Status LocalService::Submit(grpc::ServerContext* context,
                                  const v1::SubmitRequest* request,
                                  v1::SubmitResponse* response) {
  KONTOR_WHO(context, caller);
  return Reply(app_->Submit(caller, *request), response);
}

grpc::Status LocalService::Status(grpc::ServerContext* context,
                                  const v1::StatusRequest* request,
                                  v1::StatusResponse* response) {
  KONTOR_WHO(context, caller);
  return Reply(app_->Status(caller, *request), response);
}

grpc::Status LocalService::Inbox(grpc::ServerContext* context,
                                 const v1::InboxRequest* request,
                                 v1::InboxResponse* response) {
  KONTOR_WHO(context, caller);
  return Reply(app_->Inbox(caller, *request), response);
}

grpc::Status LocalService::Show(grpc::ServerContext* context,
                                const v1::ShowRequest* request,
                                v1::ShowResponse* response) {
  KONTOR_WHO(context, caller);
  return Reply(app_->Show(caller, *request), response);
}

grpc::Status LocalService::Ack(grpc::ServerContext* context,
                               const v1::AckRequest* request,
                               v1::AckResponse* response) {
  KONTOR_WHO(context, caller);
  return Reply(app_->Ack(caller, *request), response);
}

grpc::Status LocalService::Peers(grpc::ServerContext* context,
                                 const v1::PeersRequest*,
                                 v1::PeersResponse* response) {
  KONTOR_WHO(context, caller);
  return Reply(app_->Peers(caller), response);
}

grpc::Status LocalService::Outbox(grpc::ServerContext* context,
                                  const v1::OutboxRequest* request,
                                  v1::OutboxResponse* response) {
  KONTOR_WHO(context, caller);
  return Reply(app_->Outbox(caller, *request), response);
}

grpc::Status LocalService::Cancel(grpc::ServerContext* context,
                                  const v1::CancelRequest* request,
                                  v1::CancelResponse* response) {
  KONTOR_WHO(context, caller);
  return Reply(app_->Cancel(caller, *request), response);
}

grpc::Status LocalService::Retry(grpc::ServerContext* context,
                                 const v1::RetryRequest* request,
                                 v1::RetryResponse* response) {
  KONTOR_WHO(context, caller);
  return Reply(app_->Retry(caller, *request), response);
}

grpc::Status LocalService::Thread(grpc::ServerContext* context,
                                  const v1::ThreadRequest* request,
                                  v1::ThreadResponse* response) {
  KONTOR_WHO(context, caller);
  return Reply(app_->Thread(caller, *request), response);
}

grpc::Status LocalService::AuditTail(grpc::ServerContext* context,
                                     const v1::AuditTailRequest* request,
                                     v1::AuditTailResponse* response) {
  KONTOR_WHO(context, caller);
  return Reply(app_->AuditTail(caller, *request), response);
}

grpc::Status LocalService::AuditVerify(grpc::ServerContext* context,
                                       const v1::AuditVerifyRequest* request,
                                       v1::AuditVerifyResponse* response) {
  KONTOR_WHO(context, caller);
  return Reply(app_->AuditVerify(caller, *request), response);
}

grpc::Status LocalService::Export(grpc::ServerContext* context,
                                  const v1::ExportRequest* request,
                                  v1::ExportResponse* response) {
  KONTOR_WHO(context, caller);
  return Reply(app_->Export(caller, *request), response);
}

grpc::Status LocalService::Purge(grpc::ServerContext* context,
                                 const v1::PurgeRequest* request,
                                 v1::PurgeResponse* response) {
  KONTOR_WHO(context, caller);
  return Reply(app_->Purge(caller, *request), response);
}

grpc::Status LocalService::UploadAttachment(
    grpc::ServerContext* context,
    grpc::ServerReader<v1::AttachmentUpload>* reader,
    v1::UploadedAttachment* response) {
  KONTOR_WHO(context, caller);
  auto upload = app_->StartUpload(caller);
  if (!upload.ok()) return ToGrpc(upload.status());
  v1::AttachmentUpload part;
  while (reader->Read(&part)) {
    // A refusal ends the call at once: the client stops sending.
    if (auto s = (*upload)->Add(part); !s.ok()) return ToGrpc(s);
  }
  if (context->IsCancelled()) {
    return grpc::Status(grpc::StatusCode::CANCELLED, "upload cancelled");
  }
  return Reply((*upload)->Finish(), response);
}

grpc::Status LocalService::FetchAttachment(
    grpc::ServerContext* context, const v1::FetchAttachmentRequest* request,
    grpc::ServerWriter<v1::AttachmentBytes>* writer) {
  KONTOR_WHO(context, caller);
  return ToGrpc(
      app_->FetchAttachment(caller, *request, [&](absl::string_view plain) {
        v1::AttachmentBytes b;
        b.set_data(std::string(plain));
        return writer->Write(b) ? absl::OkStatus()
                                : absl::CancelledError("reader went away");
      }));
}

// One Watch or WatchSent stream: reads what is new (App) when the hub says
// there may be news, writes it item by item, and holds no thread while it
// waits. Every event of a stream (a wake, a write done, a cancel, a stop)
// runs as a job of the service's pool under the stream's own key: one at a
// time, in order, never inside a gRPC call (gRPC may run a reaction inline).
// A watch has no natural end: it ends when the client goes, on an error, or
// when the node stops (UNAVAILABLE: the client resumes after the last seq
// it got).
template <typename Item>
class LocalService::WatchReactor final : public grpc::ServerWriteReactor<Item>,
                                         public LocalService::Stream {
 public:
  using Fetch = std::function<absl::StatusOr<std::vector<Item>>(uint64_t*)>;

  WatchReactor(LocalService* service, uint64_t cursor, Fetch fetch)
      : service_(service),
        key_(absl::StrCat("watch-", reinterpret_cast<uintptr_t>(this))),
        cursor_(cursor),
        fetch_(std::move(fetch)) {
    service_->Register(this);
    hub_id_ = service_->hub_->Subscribe([this] { Wake(); });
    Wake();
  }

  void OnWriteDone(bool ok) override {
    Post([this, ok] {
      writing_ = false;
      if (!ok) {
        End(grpc::Status::OK);  // the client went away
        return;
      }
      pending_.pop_front();
      Pump();
    });
  }

  void OnCancel() override {
    Post([this] { End(grpc::Status::CANCELLED); });
  }

  void OnDone() override {
    // No wake and no stop after these return; the jobs queued before the
    // last one run first.
    service_->hub_->Unsubscribe(hub_id_);
    service_->Forget(this);
    Post([this] { delete this; });
  }

  void Stop() override {
    Post([this] {
      End(grpc::Status(grpc::StatusCode::UNAVAILABLE, "node is stopping"));
    });
  }

 private:
  void Post(std::function<void()> job) {
    service_->readers_.Schedule(key_, std::move(job));
  }

  // Coalesced: one pump queued at a time, however many wakes came.
  void Wake() {
    if (pump_queued_.exchange(true)) return;
    Post([this] {
      pump_queued_.store(false);
      Pump();
    });
  }

  void Pump() {
    if (finished_ || writing_) return;
    if (pending_.empty()) {
      auto items = fetch_(&cursor_);
      if (!items.ok()) {
        End(grpc::Status(
            static_cast<grpc::StatusCode>(items.status().code()),
            PrintableLine(items.status().message(), kMaxErrorBytes)));
        return;
      }
      for (Item& i : *items) pending_.push_back(std::move(i));
    }
    if (pending_.empty()) return;  // until the next wake
    writing_ = true;
    this->StartWrite(&pending_.front());
  }

  void End(grpc::Status s) {
    if (finished_) return;
    finished_ = true;
    this->Finish(std::move(s));
  }

  LocalService* const service_;
  const std::string key_;
  WatchHub::Id hub_id_ = 0;
  std::atomic<bool> pump_queued_{false};
  // Only the stream's jobs touch these (one at a time).
  uint64_t cursor_;
  const Fetch fetch_;
  std::deque<Item> pending_;
  bool writing_ = false;
  bool finished_ = false;
};

namespace {

template <typename Item>
class Refused final : public grpc::ServerWriteReactor<Item> {
 public:
  explicit Refused(const absl::Status& s) { this->Finish(ToGrpc(s)); }
  void OnDone() override { delete this; }
};

}  // namespace

grpc::ServerWriteReactor<v1::InboxEntry>* LocalService::Watch(
    grpc::CallbackServerContext* context, const v1::WatchRequest* request) {
  auto caller = Who(context);
  if (!caller.ok()) return new Refused<v1::InboxEntry>(caller.status());
  uint64_t cursor = request->since_seq();
  if (request->from_now()) {
    auto now = app_->InboxNow();
    if (!now.ok()) return new Refused<v1::InboxEntry>(now.status());
    cursor = *now;
  }
  return new WatchReactor<v1::InboxEntry>(
      this, cursor, [app = app_, who = *caller](uint64_t* c) {
        return app->InboxAfter(who, c, 100, absl::ZeroDuration());
      });
}

grpc::ServerWriteReactor<v1::DeliveryEvent>* LocalService::WatchSent(
    grpc::CallbackServerContext* context, const v1::WatchRequest* request) {
  auto caller = Who(context);
  if (!caller.ok()) return new Refused<v1::DeliveryEvent>(caller.status());
  uint64_t cursor = request->since_seq();
  if (request->from_now()) {
    auto now = app_->SentNow();
    if (!now.ok()) return new Refused<v1::DeliveryEvent>(now.status());
    cursor = *now;
  }
  return new WatchReactor<v1::DeliveryEvent>(
      this, cursor, [app = app_, who = *caller](uint64_t* c) {
        return app->SentAfter(who, c, 100, absl::ZeroDuration());
      });
}

void LocalService::Register(Stream* s) {
  absl::MutexLock l(&mu_);
  streams_.insert(s);
  if (stopping_) s->Stop();
}

void LocalService::Forget(Stream* s) {
  absl::MutexLock l(&mu_);
  streams_.erase(s);
}

void LocalService::Stop() {
  absl::MutexLock l(&mu_);
  stopping_ = true;
  for (Stream* s : streams_) s->Stop();
}

}  // namespace kontor
