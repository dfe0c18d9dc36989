#include "daemon/transport/federation_service.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "daemon/common/crash_point.h"
#include "daemon/common/log.h"
#include "daemon/transport/tls.h"

namespace kontor {

FederationService::FederationService(
    Receiver* receiver, std::set<std::string> peers, size_t max_batch,
    std::function<void(const std::string&)> on_contact)
    : receiver_(receiver),
      peers_(std::move(peers)),
      max_batch_(max_batch),
      on_contact_(std::move(on_contact)) {}

grpc::Status FederationService::Authenticate(grpc::ServerContext* context,
                                             std::string* out) {
  auto peer = AuthenticatedNodeId(*context->auth_context());
  if (!peer.ok()) {
    KLOG(Security, "transport") << "call from " << context->peer()
                                << " refused: " << peer.status().message();
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        std::string(peer.status().message()));
  }
  if (peers_.count(*peer) == 0) {
    KLOG(Security, "transport")
        << "node " << *peer << " at " << context->peer() << " is not a peer";
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        "not a configured peer");
  }
  *out = *peer;
  return grpc::Status::OK;
}

grpc::Status FederationService::ReturnReceipts(grpc::ServerContext* context,
                                               const v1::ReturnBatch* batch,
                                               v1::ReturnAck* ack) {
  std::string peer;
  if (grpc::Status s = Authenticate(context, &peer); !s.ok()) return s;
  on_contact_(peer);
  if (static_cast<size_t>(batch->receipts_size()) > max_batch_) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrCat("at most ", max_batch_, " receipts"));
  }
  std::vector<v1::Receipt> receipts(batch->receipts().begin(),
                                    batch->receipts().end());
  return ToGrpcStatus(receiver_->AcceptReturns(peer, receipts));
}

grpc::Status FederationService::ChunkStatus(grpc::ServerContext* context,
                                            const v1::ChunkQuery* query,
                                            v1::ChunkHave* have) {
  std::string peer;
  if (grpc::Status s = Authenticate(context, &peer); !s.ok()) return s;
  auto chunks = receiver_->Chunks(peer, query->origin(), query->message_id());
  if (!chunks.ok()) return ToGrpcStatus(chunks.status());
  for (const auto& [a, i] : *chunks) {
    v1::ChunkKey* k = have->add_have();
    k->set_attachment(a);
    k->set_index(i);
  }
  return grpc::Status::OK;
}

grpc::Status FederationService::Witness(grpc::ServerContext* context,
                                        const v1::WitnessRequest* request,
                                        v1::WitnessResponse* response) {
  std::string peer;
  if (grpc::Status s = Authenticate(context, &peer); !s.ok()) return s;
  auto receipts = receiver_->Witnessed(
      peer,
      std::min<uint32_t>(request->limit() == 0 ? 16 : request->limit(), 64));
  if (!receipts.ok()) return ToGrpcStatus(receipts.status());
  for (std::string& r : *receipts) response->add_receipts(std::move(r));
  return grpc::Status::OK;
}

grpc::Status FederationService::PutChunks(
    grpc::ServerContext* context, grpc::ServerReader<v1::ChunkData>* reader,
    v1::ChunkHave* have) {
  std::string peer;
  if (grpc::Status s = Authenticate(context, &peer); !s.ok()) return s;
  on_contact_(peer);
  v1::ChunkData chunk;
  uint64_t n = 0;
  while (reader->Read(&chunk)) {
    if (auto s = receiver_->PutChunk(peer, chunk); !s.ok()) {
      return ToGrpcStatus(s);
    }
    v1::ChunkKey* k = have->add_have();
    k->set_attachment(chunk.attachment());
    k->set_index(chunk.index());
    ++n;
  }
  KLOG(Debug, "transport") << "stored " << n << " chunk(s) from " << peer;
  return grpc::Status::OK;
}

grpc::Status FederationService::Exchange(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<v1::ReceiptBatch, v1::EnvelopeBatch>* stream) {
  std::string peer_id;
  if (grpc::Status s = Authenticate(context, &peer_id); !s.ok()) return s;
  const std::string* peer = &peer_id;
  on_contact_(*peer);
  v1::EnvelopeBatch batch;
  while (stream->Read(&batch)) {
    if (batch.envelopes_size() == 0 ||
        static_cast<size_t>(batch.envelopes_size()) > max_batch_) {
      KLOG(Warning, "transport") << "peer " << *peer << " sent a batch of "
                                 << batch.envelopes_size() << " envelopes";
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          absl::StrCat("batch size must be 1..", max_batch_));
    }
    std::vector<v1::Envelope> envelopes(batch.envelopes().begin(),
                                        batch.envelopes().end());
    auto receipts = receiver_->Receive(*peer, envelopes);
    if (!receipts.ok()) return ToGrpcStatus(receipts.status());
    v1::ReceiptBatch answer;
    answer.set_batch_seq(batch.batch_seq());
    for (const std::string& r : *receipts) {
      answer.add_receipts()->ParseFromString(r);
    }
    CrashPoint("receive.before_receipt_send");
    if (!stream->Write(answer)) break;
  }
  return grpc::Status::OK;
}

}  // namespace kontor
