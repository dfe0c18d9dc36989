// The federation requests as the server gets them (FederationService:
// Exchange's EnvelopeBatch, ReturnReceipts' ReturnBatch, PutChunks'
// ChunkData, ChunkStatus' ChunkQuery, Witness' WitnessRequest), from an
// authenticated peer, driven through kontor::Receiver with a real store, as
// federation_service.cc does (without gRPC and TLS: the peer is given).
//
// Input: kontor.fuzz.FederationInput, a sequence of requests. Fixups: real
// envelopes (EnvelopeInput) and receipts signed by a peer (ReceiptSpec) are
// appended to the batches. Message ids MessageIdFor(n), n < 256, stand for
// ids of this input (fuzz_support.h: TestNode), 1 for the message fi sent to
// lv and 2 for the one it relays from ee to lv.
// Invariants: one receipt per envelope, each a Receipt signed by fi.
#include <algorithm>
#include <cstdint>
#include <set>

#include "absl/strings/str_cat.h"
#include "daemon/envelope/receipt.h"
#include "tests/fuzz/fuzz_support.h"

namespace kontor::fuzz {
namespace {

constexpr size_t kMaxBatch = 64;  // limits.max_batch

void Run(const FederationInput& in) {
  const World& w = GetWorld();
  TestNode& node = TestNode::Shared();
  PeerPolicy::KindsByPeer accept_kinds;
  if (in.accept_kinds_ee_size() > 0) {
    accept_kinds["ee"] = std::set<std::string>(in.accept_kinds_ee().begin(),
                                               in.accept_kinds_ee().end());
  }
  node.Prepare(in.routes(),
               std::clamp<int64_t>(in.clock_offset_ms(), -1800 * 1000,
                                   300LL * 86400 * 1000),
               in.max_attachment_bytes() == 0
                   ? (1 << 20)
                   : std::min<uint64_t>(in.max_attachment_bytes(), 1ULL << 36),
               std::move(accept_kinds));
  const IdMap map = [&node](const std::string& id) { return node.MapId(id); };
  Receiver& receiver = *node.receiver;

  for (int i = 0; i < in.requests_size() && i < 8; ++i) {
    const FederationRequest& req = in.requests(i);
    const std::string peer =
        req.peer_name().empty() ? w.id(req.peer()) : req.peer_name();
    FederationRequest::RequestCase what = req.request_case();
    if (what == FederationRequest::REQUEST_NOT_SET) {
      what = req.envelopes_size() > 0 ? FederationRequest::kExchange
                                      : FederationRequest::kReturns;
    }
    switch (what) {
      case FederationRequest::kExchange: {
        std::vector<v1::Envelope> envs(req.exchange().envelopes().begin(),
                                       req.exchange().envelopes().end());
        for (int k = 0; k < req.envelopes_size() && k < 8; ++k) {
          envs.push_back(BuildEnvelope(req.envelopes(k), map));
        }
        if (envs.empty() || envs.size() > kMaxBatch) break;
        auto receipts = receiver.Receive(peer, envs);
        if (!receipts.ok()) {
          Note(receipts.status().ToString());
          break;
        }
        Require(receipts->size() == envs.size(),
                "not one receipt per envelope");
        v1::ReceiptBatch answer;
        for (const std::string& r : *receipts) {
          Require(answer.add_receipts()->ParseFromString(r),
                  "a receipt does not parse");
          v1::ReceiptBody body;
          body.ParseFromString(answer.receipts().rbegin()->body());
          Note(absl::StrCat("Receive: ", v1::Verdict_Name(body.verdict()), " ",
                            body.reason()));
          Require(body.ParseFromString(answer.receipts().rbegin()->body()) &&
                      body.recipient() == "fi" &&
                      answer.receipts().rbegin()->signature().signer_key_id() ==
                          w.node(FI).signing.cert->key_id(),
                  "a receipt not signed by fi");
        }
        break;
      }
      case FederationRequest::kReturns:
      case FederationRequest::REQUEST_NOT_SET: {
        std::vector<v1::Receipt> receipts(req.returns().receipts().begin(),
                                          req.returns().receipts().end());
        google::protobuf::RepeatedPtrField<ReceiptSpec> specs;
        for (int k = 0; k < req.receipts_size() && k < 8; ++k) {
          *specs.Add() = req.receipts(k);
        }
        for (v1::Receipt& r : BuildReceipts(specs, req.signer(), map)) {
          receipts.push_back(std::move(r));
        }
        if (receipts.empty() || receipts.size() > kMaxBatch) break;
        Note(absl::StrCat("AcceptReturns: ",
                          receiver.AcceptReturns(peer, receipts).ToString(),
                          ", notified ", node.notified));
        break;
      }
      case FederationRequest::kChunk: {
        v1::ChunkData chunk = req.chunk();
        chunk.set_message_id(node.MapId(chunk.message_id()));
        Note(absl::StrCat("PutChunk: ",
                          receiver.PutChunk(peer, chunk).ToString()));
        break;
      }
      case FederationRequest::kQuery:
        receiver
            .Chunks(peer, req.query().origin(),
                    node.MapId(req.query().message_id()))
            .IgnoreError();
        break;
      case FederationRequest::kWitness: {
        const uint32_t limit = req.witness().limit();
        receiver
            .Witnessed(peer, std::min<uint32_t>(limit == 0 ? 16 : limit, 64))
            .IgnoreError();
        break;
      }
    }
  }
}

}  // namespace
}  // namespace kontor::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  kontor::fuzz::InitFuzzing();
  kontor::fuzz::GetWorld();
  return 0;
}

KONTOR_FUZZ_PROTO_INPUT(kontor::fuzz::FederationInput)

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kontor::fuzz::FederationInput in;
  if (!kontor::fuzz::ParseInput(data, size, &in)) return -1;
  kontor::fuzz::Run(in);
  return 0;
}
