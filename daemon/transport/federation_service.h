#ifndef KONTOR_DAEMON_TRANSPORT_FEDERATION_SERVICE_H_
#define KONTOR_DAEMON_TRANSPORT_FEDERATION_SERVICE_H_

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "absl/synchronization/mutex.h"
#include "daemon/common/thread_pool.h"
#include "daemon/inbox/receiver.h"
#include "daemon/metrics/metrics.h"
#include "kontor/v1/federation.grpc.pb.h"

namespace kontor {

struct FederationOptions {
  std::set<std::string> peers;  // configured peers with an address
  size_t max_batch = 64;        // envelopes (or receipts) per batch
  // Calls one peer may have open at once (streams included): more are
  // refused with RESOURCE_EXHAUSTED.
  size_t max_calls_per_peer = 16;
  // Threads that run the receiving work of every stream (a stream holds
  // none while it waits): envelopes (verify, open, store commit) on
  // `workers`, attachment chunk writes apart on `bulk_workers`, so that no
  // envelope waits behind a 1 MiB fsync. Peers take turns: one peer's work
  // uses at most half of each.
  size_t workers = 8;
  size_t bulk_workers = 2;
  std::function<void(const std::string&)> on_contact;  // a peer called
  Metrics* metrics = nullptr;                          // optional
};

// The federation endpoint: a peer streams envelope batches and gets signed
// receipts back, batch by batch, in order. The peer is who its certificate
// says (AuthenticatedNodeId), never what a message says.
//
// The streams (Exchange, PutChunks) use gRPC's callback API with raw
// messages: an idle stream holds no thread, and bytes that do not parse end
// the call with INVALID_ARGUMENT (the typed API cannot tell them from the
// end of the stream).
class FederationService final
    : public v1::Federation::WithRawCallbackMethod_Exchange<
          v1::Federation::WithRawCallbackMethod_PutChunks<
              v1::Federation::Service>> {
 public:
  FederationService(Receiver* receiver, FederationOptions options);
  ~FederationService() override;

  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* Exchange(
      grpc::CallbackServerContext* context) override;
  grpc::ServerReadReactor<grpc::ByteBuffer>* PutChunks(
      grpc::CallbackServerContext* context,
      grpc::ByteBuffer* response) override;
  grpc::Status ReturnReceipts(grpc::ServerContext* context,
                              const v1::ReturnBatch* batch,
                              v1::ReturnAck* ack) override;
  grpc::Status ChunkStatus(grpc::ServerContext* context,
                           const v1::ChunkQuery* query,
                           v1::ChunkHave* have) override;
  grpc::Status Witness(grpc::ServerContext* context,
                       const v1::WitnessRequest* request,
                       v1::WitnessResponse* response) override;

  // Calls open now from `peer` (for tests and `kontor peers`).
  size_t open_calls(const std::string& peer) const;

  class ExchangeReactor;
  class PutChunksReactor;
  // One admitted call of a peer; the count goes down when it is destroyed.
  class CallSlot {
   public:
    CallSlot(FederationService* service, std::string peer)
        : service_(service), peer_(std::move(peer)) {}
    ~CallSlot();
    CallSlot(const CallSlot&) = delete;
    CallSlot& operator=(const CallSlot&) = delete;
    const std::string& peer() const { return peer_; }

   private:
    FederationService* service_;
    std::string peer_;
  };

 private:
  // The authenticated, configured peer of the call, admitted (under its
  // cap); an error status else (logged).
  grpc::Status Admit(grpc::ServerContextBase* context, const char* method,
                     std::unique_ptr<CallSlot>* slot);
  void Release(const std::string& peer);

  Receiver* receiver_;
  const FederationOptions options_;
  mutable absl::Mutex mu_;
  std::map<std::string, size_t> open_ ABSL_GUARDED_BY(mu_);
  // Last: destroyed first, so that their work finishes while the rest is
  // still there.
  ThreadPool bulk_workers_;
  ThreadPool workers_;
};

}  // namespace kontor

#endif  // KONTOR_DAEMON_TRANSPORT_FEDERATION_SERVICE_H_
