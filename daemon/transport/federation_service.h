#ifndef KONTOR_DAEMON_TRANSPORT_FEDERATION_SERVICE_H_
#define KONTOR_DAEMON_TRANSPORT_FEDERATION_SERVICE_H_

#include <functional>
#include <set>
#include <string>

#include "daemon/inbox/receiver.h"
#include "kontor/v1/federation.grpc.pb.h"

namespace kontor {

// The federation endpoint: a peer streams envelope batches and gets signed
// receipts back, batch by batch, in order. The peer is who its certificate
// says (AuthenticatedNodeId), never what a message says.
class FederationService final : public v1::Federation::Service {
 public:
  FederationService(Receiver* receiver, std::set<std::string> peers,
                    size_t max_batch,
                    std::function<void(const std::string&)> on_contact);

  grpc::Status Exchange(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<v1::ReceiptBatch, v1::EnvelopeBatch>* stream)
      override;
  grpc::Status ReturnReceipts(grpc::ServerContext* context,
                              const v1::ReturnBatch* batch,
                              v1::ReturnAck* ack) override;
  grpc::Status ChunkStatus(grpc::ServerContext* context,
                           const v1::ChunkQuery* query,
                           v1::ChunkHave* have) override;
  grpc::Status PutChunks(grpc::ServerContext* context,
                         grpc::ServerReader<v1::ChunkData>* reader,
                         v1::ChunkHave* have) override;
  grpc::Status Witness(grpc::ServerContext* context,
                       const v1::WitnessRequest* request,
                       v1::WitnessResponse* response) override;

 private:
  // The authenticated, configured peer of the call; an error status else.
  grpc::Status Authenticate(grpc::ServerContext* context, std::string* peer);

  Receiver* receiver_;
  const std::set<std::string> peers_;
  const size_t max_batch_;
  std::function<void(const std::string&)> on_contact_;
};

}  // namespace kontor

#endif  // KONTOR_DAEMON_TRANSPORT_FEDERATION_SERVICE_H_
