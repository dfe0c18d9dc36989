#include "daemon/transport/federation_service.h"

#include <grpcpp/support/byte_buffer.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "daemon/common/crash_point.h"
#include "daemon/common/ids.h"
#include "daemon/common/log.h"
#include "daemon/transport/tls.h"

namespace kontor {
namespace {

constexpr int kMaxChunksPerCall = 4096;

// Parses a raw message; false if the bytes are not a `Message`.
template <typename Message>
bool Parse(grpc::ByteBuffer* in, Message* out) {
  return grpc::SerializationTraits<Message>::Deserialize(in, out).ok();
}

template <typename Message>
grpc::ByteBuffer Serialize(const Message& m) {
  grpc::ByteBuffer out;
  bool own = false;
  grpc::SerializationTraits<Message>::Serialize(m, &out, &own);
  return out;
}

// A call refused before it starts.
class RefusedBidi
    : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  explicit RefusedBidi(grpc::Status status) { Finish(std::move(status)); }
  void OnDone() override { delete this; }
};

class RefusedRead : public grpc::ServerReadReactor<grpc::ByteBuffer> {
 public:
  explicit RefusedRead(grpc::Status status) { Finish(std::move(status)); }
  void OnDone() override { delete this; }
};

}  // namespace

FederationService::CallSlot::~CallSlot() { service_->Release(peer_); }

FederationService::FederationService(Receiver* receiver,
                                     FederationOptions options)
    : receiver_(receiver),
      options_(std::move(options)),
      bulk_workers_(std::max<size_t>(1, options_.bulk_workers),
                    std::max<size_t>(1, options_.bulk_workers / 2)),
      workers_(std::max<size_t>(1, options_.workers),
               std::max<size_t>(1, options_.workers / 2)) {}

FederationService::~FederationService() = default;

size_t FederationService::open_calls(const std::string& peer) const {
  absl::MutexLock l(&mu_);
  auto it = open_.find(peer);
  return it == open_.end() ? 0 : it->second;
}

grpc::Status FederationService::Admit(grpc::ServerContextBase* context,
                                      const char* method,
                                      std::unique_ptr<CallSlot>* slot) {
  auto peer = AuthenticatedNodeId(*context->auth_context());
  if (!peer.ok()) {
    KLOG(Security, "transport") << "call from " << context->peer()
                                << " refused: " << peer.status().message();
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        PrintableLine(peer.status().message(), 300));
  }
  if (options_.peers.count(*peer) == 0) {
    KLOG(Security, "transport")
        << "node " << *peer << " at " << context->peer() << " is not a peer";
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        "not a configured peer");
  }
  {
    absl::MutexLock l(&mu_);
    size_t& open = open_[*peer];
    if (open >= options_.max_calls_per_peer) {
      KLOG(Warning, "transport")
          << "peer " << *peer << ": " << method << " refused, "
          << options_.max_calls_per_peer
          << " calls open already (limits.max_streams_per_peer)";
      if (options_.metrics != nullptr) {
        options_.metrics
            ->GetCounter("kontor_federation_calls_refused_total",
                         "Calls of peers refused before they started",
                         {{"peer", *peer}, {"reason", "too_many_calls"}})
            .Increment();
      }
      return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                          absl::StrCat("at most ", options_.max_calls_per_peer,
                                       " calls of one peer at once"));
    }
    ++open;
  }
  if (options_.metrics != nullptr) {
    options_.metrics
        ->GetGauge("kontor_federation_calls_open",
                   "Federation calls (streams included) open now, by peer",
                   {{"peer", *peer}})
        .Increment();
  }
  *slot = std::make_unique<CallSlot>(this, *peer);
  return grpc::Status::OK;
}

void FederationService::Release(const std::string& peer) {
  {
    absl::MutexLock l(&mu_);
    auto it = open_.find(peer);
    if (it != open_.end() && it->second > 0) --it->second;
  }
  if (options_.metrics != nullptr) {
    options_.metrics
        ->GetGauge("kontor_federation_calls_open",
                   "Federation calls (streams included) open now, by peer",
                   {{"peer", peer}})
        .Decrement();
  }
}

// Exchange: batch after batch, each answered with its receipts in order.
// Reading, the receiving work (on the pool) and writing take turns, so at
// most one batch of a stream is in work at a time.
class FederationService::ExchangeReactor
    : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  ExchangeReactor(FederationService* service, std::unique_ptr<CallSlot> slot)
      : service_(service), slot_(std::move(slot)) {
    StartRead(&in_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the peer is done (or went away)
      Finish(grpc::Status::OK);
      return;
    }
    auto batch = std::make_shared<v1::EnvelopeBatch>();
    if (!Parse(&in_, batch.get())) {
      KLOG(Warning, "transport") << "peer " << slot_->peer()
                                 << " sent bytes that are not an envelope "
                                    "batch on Exchange: call ended";
      Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "not a kontor.v1.EnvelopeBatch"));
      return;
    }
    const size_t max = service_->options_.max_batch;
    if (batch->envelopes_size() == 0 ||
        static_cast<size_t>(batch->envelopes_size()) > max) {
      KLOG(Warning, "transport")
          << "peer " << slot_->peer() << " sent a batch of "
          << batch->envelopes_size() << " envelopes";
      Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          absl::StrCat("batch size must be 1..", max)));
      return;
    }
    service_->workers_.Schedule(slot_->peer(), [this, batch] { Work(*batch); });
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status::OK);  // the peer went away; it asks again
      return;
    }
    StartRead(&in_);
  }

  void OnDone() override { delete this; }

 private:
  void Work(const v1::EnvelopeBatch& batch) {
    std::vector<v1::Envelope> envelopes(batch.envelopes().begin(),
                                        batch.envelopes().end());
    auto receipts = service_->receiver_->Receive(slot_->peer(), envelopes);
    if (!receipts.ok()) {
      Finish(ToGrpcStatus(receipts.status()));
      return;
    }
    v1::ReceiptBatch answer;
    answer.set_batch_seq(batch.batch_seq());
    for (const std::string& r : *receipts) {
      answer.add_receipts()->ParseFromString(r);
    }
    out_ = Serialize(answer);
    CrashPoint("receive.before_receipt_send");
    StartWrite(&out_);
  }

  FederationService* const service_;
  const std::unique_ptr<CallSlot> slot_;
  grpc::ByteBuffer in_;
  grpc::ByteBuffer out_;
};

// PutChunks: chunk after chunk, each stored (on the bulk pool) before the
// next is read; the answer lists what was stored (at most
// kMaxChunksPerCall: a sender makes a call per 64).
class FederationService::PutChunksReactor
    : public grpc::ServerReadReactor<grpc::ByteBuffer> {
 public:
  PutChunksReactor(FederationService* service, std::unique_ptr<CallSlot> slot,
                   grpc::ByteBuffer* response)
      : service_(service), slot_(std::move(slot)), response_(response) {
    StartRead(&in_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      KLOG(Debug, "transport") << "stored " << have_.have_size()
                               << " chunk(s) from " << slot_->peer();
      *response_ = Serialize(have_);
      Finish(grpc::Status::OK);
      return;
    }
    auto chunk = std::make_shared<v1::ChunkData>();
    if (!Parse(&in_, chunk.get())) {
      KLOG(Warning, "transport") << "peer " << slot_->peer()
                                 << " sent bytes that are not a chunk on "
                                    "PutChunks: call ended";
      Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "not a kontor.v1.ChunkData"));
      return;
    }
    if (have_.have_size() >= kMaxChunksPerCall) {
      Finish(grpc::Status(
          grpc::StatusCode::INVALID_ARGUMENT,
          absl::StrCat("at most ", kMaxChunksPerCall, " chunks per call")));
      return;
    }
    service_->bulk_workers_.Schedule(slot_->peer(), [this, chunk] {
      if (auto s = service_->receiver_->PutChunk(slot_->peer(), *chunk);
          !s.ok()) {
        Finish(ToGrpcStatus(s));
        return;
      }
      v1::ChunkKey* k = have_.add_have();
      k->set_attachment(chunk->attachment());
      k->set_index(chunk->index());
      StartRead(&in_);
    });
  }

  void OnDone() override { delete this; }

 private:
  FederationService* const service_;
  const std::unique_ptr<CallSlot> slot_;
  grpc::ByteBuffer* const response_;
  grpc::ByteBuffer in_;
  v1::ChunkHave have_;
};

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>*
FederationService::Exchange(grpc::CallbackServerContext* context) {
  std::unique_ptr<CallSlot> slot;
  if (grpc::Status s = Admit(context, "Exchange", &slot); !s.ok()) {
    return new RefusedBidi(std::move(s));
  }
  if (options_.on_contact) options_.on_contact(slot->peer());
  return new ExchangeReactor(this, std::move(slot));
}

grpc::ServerReadReactor<grpc::ByteBuffer>* FederationService::PutChunks(
    grpc::CallbackServerContext* context, grpc::ByteBuffer* response) {
  std::unique_ptr<CallSlot> slot;
  if (grpc::Status s = Admit(context, "PutChunks", &slot); !s.ok()) {
    return new RefusedRead(std::move(s));
  }
  if (options_.on_contact) options_.on_contact(slot->peer());
  return new PutChunksReactor(this, std::move(slot), response);
}

grpc::Status FederationService::ReturnReceipts(grpc::ServerContext* context,
                                               const v1::ReturnBatch* batch,
                                               v1::ReturnAck* ack) {
  std::unique_ptr<CallSlot> slot;
  if (grpc::Status s = Admit(context, "ReturnReceipts", &slot); !s.ok()) {
    return s;
  }
  if (options_.on_contact) options_.on_contact(slot->peer());
  if (static_cast<size_t>(batch->receipts_size()) > options_.max_batch) {
    return grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        absl::StrCat("at most ", options_.max_batch, " receipts"));
  }
  std::vector<v1::Receipt> receipts(batch->receipts().begin(),
                                    batch->receipts().end());
  return ToGrpcStatus(receiver_->AcceptReturns(slot->peer(), receipts));
}

grpc::Status FederationService::ChunkStatus(grpc::ServerContext* context,
                                            const v1::ChunkQuery* query,
                                            v1::ChunkHave* have) {
  std::unique_ptr<CallSlot> slot;
  if (grpc::Status s = Admit(context, "ChunkStatus", &slot); !s.ok()) return s;
  auto chunks =
      receiver_->Chunks(slot->peer(), query->origin(), query->message_id());
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
  std::unique_ptr<CallSlot> slot;
  if (grpc::Status s = Admit(context, "Witness", &slot); !s.ok()) return s;
  auto receipts = receiver_->Witnessed(
      slot->peer(),
      std::min<uint32_t>(request->limit() == 0 ? 16 : request->limit(), 64));
  if (!receipts.ok()) return ToGrpcStatus(receipts.status());
  for (std::string& r : *receipts) response->add_receipts(std::move(r));
  return grpc::Status::OK;
}

}  // namespace kontor
