#ifndef KONTOR_DAEMON_API_LOCAL_SERVICE_H_
#define KONTOR_DAEMON_API_LOCAL_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <set>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "daemon/app/app.h"
#include "daemon/app/watch.h"
#include "daemon/common/thread_pool.h"
#include "daemon/policy/policy.h"
#include "kontor/v1/local.grpc.pb.h"

namespace kontor {

// The local API (DESIGN.md §10) over gRPC: used by the kontor CLI and by
// national systems, on the unix socket and on the operator mTLS port. A thin
// adapter over App: who is calling (Who), the call mapped to a use case, the
// status mapped back (bounded, one line). No rule lives here.
//
// Watch and WatchSent use gRPC's callback API: a watcher that waits holds
// no thread (WatchHub wakes them; their reads run on a small pool).
class LocalService final
    : public v1::Local::WithCallbackMethod_Watch<
          v1::Local::WithCallbackMethod_WatchSent<v1::Local::Service>> {
 public:
  LocalService(App* app, WatchHub* hub);
  ~LocalService() override;

  grpc::Status Submit(grpc::ServerContext*, const v1::SubmitRequest*,
                      v1::SubmitResponse*) override;
  grpc::Status Status(grpc::ServerContext*, const v1::StatusRequest*,
                      v1::StatusResponse*) override;
  grpc::Status Inbox(grpc::ServerContext*, const v1::InboxRequest*,
                     v1::InboxResponse*) override;
  grpc::Status Show(grpc::ServerContext*, const v1::ShowRequest*,
                    v1::ShowResponse*) override;
  grpc::Status Ack(grpc::ServerContext*, const v1::AckRequest*,
                   v1::AckResponse*) override;
  grpc::Status Peers(grpc::ServerContext*, const v1::PeersRequest*,
                     v1::PeersResponse*) override;
  grpc::Status Outbox(grpc::ServerContext*, const v1::OutboxRequest*,
                      v1::OutboxResponse*) override;
  grpc::Status Cancel(grpc::ServerContext*, const v1::CancelRequest*,
                      v1::CancelResponse*) override;
  grpc::Status Retry(grpc::ServerContext*, const v1::RetryRequest*,
                     v1::RetryResponse*) override;
  grpc::Status UploadAttachment(grpc::ServerContext*,
                                grpc::ServerReader<v1::AttachmentUpload>*,
                                v1::UploadedAttachment*) override;
  grpc::Status FetchAttachment(
      grpc::ServerContext*, const v1::FetchAttachmentRequest*,
      grpc::ServerWriter<v1::AttachmentBytes>*) override;
  grpc::Status Thread(grpc::ServerContext*, const v1::ThreadRequest*,
                      v1::ThreadResponse*) override;
  grpc::Status AuditTail(grpc::ServerContext*, const v1::AuditTailRequest*,
                         v1::AuditTailResponse*) override;
  grpc::Status AuditVerify(grpc::ServerContext*, const v1::AuditVerifyRequest*,
                           v1::AuditVerifyResponse*) override;
  grpc::Status Export(grpc::ServerContext*, const v1::ExportRequest*,
                      v1::ExportResponse*) override;
  grpc::Status Purge(grpc::ServerContext*, const v1::PurgeRequest*,
                     v1::PurgeResponse*) override;

  grpc::ServerWriteReactor<v1::InboxEntry>* Watch(
      grpc::CallbackServerContext* context,
      const v1::WatchRequest* request) override;
  grpc::ServerWriteReactor<v1::DeliveryEvent>* WatchSent(
      grpc::CallbackServerContext* context,
      const v1::WatchRequest* request) override;

  // Who is calling: the user and role of a verified operator certificate
  // (operator port), or the local administrator on the unix socket (gRPC
  // 1.51 gives no uid there). kPermissionDenied for any other certificate.
  static absl::StatusOr<Caller> Who(grpc::ServerContextBase* context);

  // Ends open Watch streams (UNAVAILABLE: the client resumes after its
  // cursor), so that the server can shut down at once.
  void Stop();

  // A watch stream (local_service.cc); registered while open.
  class Stream {
   public:
    virtual ~Stream() = default;
    virtual void Stop() = 0;
  };

 private:
  template <typename Item>
  class WatchReactor;

  void Register(Stream* s);
  void Forget(Stream* s);

  App* const app_;
  WatchHub* const hub_;
  absl::Mutex mu_;
  std::set<Stream*> streams_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Last: the watch streams' jobs (their reads), off gRPC's threads; one at
  // a time per stream.
  ThreadPool readers_{2, 1};
};

}  // namespace kontor

#endif  // KONTOR_DAEMON_API_LOCAL_SERVICE_H_
