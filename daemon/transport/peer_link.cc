#include "daemon/transport/peer_link.h"

#include <chrono>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "daemon/attachment/chunks.h"
#include "daemon/common/ids.h"

namespace kontor {
namespace {

const char* CodeName(grpc::StatusCode code) {
  static const char* const kNames[] = {"OK",
                                       "CANCELLED",
                                       "UNKNOWN",
                                       "INVALID_ARGUMENT",
                                       "DEADLINE_EXCEEDED",
                                       "NOT_FOUND",
                                       "ALREADY_EXISTS",
                                       "PERMISSION_DENIED",
                                       "RESOURCE_EXHAUSTED",
                                       "FAILED_PRECONDITION",
                                       "ABORTED",
                                       "OUT_OF_RANGE",
                                       "UNIMPLEMENTED",
                                       "INTERNAL",
                                       "UNAVAILABLE",
                                       "DATA_LOSS",
                                       "UNAUTHENTICATED"};
  const int i = static_cast<int>(code);
  return i >= 0 && i < 17 ? kNames[i] : "UNKNOWN";
}

// A failed call to a peer in words an operator can act on: it is shown in
// `kontor peers`, `status` and logged. The peer's own text (it chose it) is
// escaped and bounded.
std::string Describe(const std::string& peer, const std::string& address,
                     const std::string& what, const grpc::Status& status) {
  const std::string m = absl::AsciiStrToLower(status.error_message());
  const std::string at = address.empty() ? "" : absl::StrCat(" at ", address);
  std::string why;
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    if (absl::StrContains(m, "connection refused")) {
      why =
          absl::StrCat(peer, " is not reachable (connection refused", at, ")");
    } else if (absl::StrContains(m, "handshake") ||
               absl::StrContains(m, "ssl") ||
               absl::StrContains(m, "certificate")) {
      why = absl::StrCat(peer, " refused the TLS handshake", at,
                         " (or its certificate was refused here: see both "
                         "nodes' logs)");
    } else if (absl::StrContains(m, "socket closed")) {
      why = absl::StrCat(peer, " closed the connection", at,
                         " (restarting, or refusing this node: see its log)");
    } else if (absl::StrContains(m, "dns") || absl::StrContains(m, "resolve")) {
      why = absl::StrCat("the address of ", peer, at, " does not resolve");
    } else if (absl::StrContains(m, "timeout") ||
               absl::StrContains(m, "timed out") ||
               absl::StrContains(m, "unreachable")) {
      why = absl::StrCat(peer, " is not reachable", at, " (",
                         Printable(status.error_message(), 120), ")");
    }
  } else if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    why = absl::StrCat(peer, " did not answer in time", at);
  }
  if (why.empty()) {
    why = absl::StrCat(what, " with ", peer,
                       " failed: ", CodeName(status.error_code()), ": ",
                       Printable(status.error_message(), 200));
  }
  return absl::StrCat(why, "; messages stay queued");
}

}  // namespace

GrpcPeerLink::GrpcPeerLink(std::vector<PeerEndpoint> peers, TlsMaterial tls,
                           std::shared_ptr<const TrustStore> trust,
                           const Clock* clock, int max_message_bytes,
                           int64_t call_timeout_ms)
    : tls_(std::move(tls)),
      trust_(std::move(trust)),
      clock_(clock),
      max_message_bytes_(max_message_bytes),
      call_timeout_ms_(call_timeout_ms) {
  for (const PeerEndpoint& p : peers) addresses_[p.id] = p.address;
}

v1::Federation::Stub* GrpcPeerLink::Stub(const std::string& peer) {
  absl::MutexLock lock(&mu_);
  auto it = stubs_.find(peer);
  if (it != stubs_.end()) return it->second.get();
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(max_message_bytes_);
  args.SetMaxSendMessageSize(max_message_bytes_);
  // Kontor's own persisted backoff decides when to retry; keep gRPC's
  // reconnect backoff short so a returning peer is seen quickly.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  auto channel = grpc::CreateCustomChannel(
      addresses_.at(peer),
      FederationChannelCredentials(tls_, trust_, peer, clock_), args);
  auto stub = v1::Federation::NewStub(channel);
  auto* raw = stub.get();
  stubs_[peer] = std::move(stub);
  return raw;
}

void GrpcPeerLink::CancelAll() {
  absl::MutexLock lock(&mu_);
  cancelled_ = true;
  for (grpc::ClientContext* c : active_) c->TryCancel();
}

absl::StatusOr<std::vector<std::string>> GrpcPeerLink::Exchange(
    const std::string& peer, const std::vector<std::string>& envelopes) {
  if (addresses_.count(peer) == 0) {
    return absl::NotFoundError(absl::StrCat("unknown peer ", peer));
  }
  v1::EnvelopeBatch batch;
  {
    absl::MutexLock lock(&mu_);
    batch.set_batch_seq(next_seq_++);
  }
  for (const std::string& e : envelopes) {
    if (!batch.add_envelopes()->ParseFromString(e)) {
      return absl::InternalError("stored envelope does not parse");
    }
  }
  v1::Federation::Stub* stub = Stub(peer);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(call_timeout_ms_));
  if (!Track(&context)) return absl::CancelledError("this node is stopping");
  struct Forget {
    GrpcPeerLink* link;
    grpc::ClientContext* context;
    ~Forget() { link->Untrack(context); }
  } forget{this, &context};
  auto stream = stub->Exchange(&context);
  v1::ReceiptBatch answer;
  bool ok =
      stream->Write(batch) && stream->WritesDone() && stream->Read(&answer);
  grpc::Status status = stream->Finish();
  if (!ok) {
    {
      absl::MutexLock lock(&mu_);
      if (cancelled_) return absl::CancelledError("this node is stopping");
    }
    if (status.ok()) {
      status = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                            "stream closed without an answer");
    }
    return absl::UnavailableError(
        Describe(peer, addresses_.at(peer), "exchange", status));
  }
  if (answer.batch_seq() != batch.batch_seq()) {
    return absl::UnavailableError("answer for another batch");
  }
  std::vector<std::string> out;
  out.reserve(answer.receipts_size());
  for (const v1::Receipt& r : answer.receipts()) {
    out.push_back(r.SerializeAsString());
  }
  return out;
}

absl::Status GrpcPeerLink::ReturnReceipts(
    const std::string& peer, const std::vector<std::string>& receipts) {
  if (addresses_.count(peer) == 0) {
    return absl::NotFoundError(absl::StrCat("unknown peer ", peer));
  }
  v1::ReturnBatch batch;
  for (const std::string& r : receipts) {
    if (!batch.add_receipts()->ParseFromString(r)) {
      return absl::InternalError("stored receipt does not parse");
    }
  }
  v1::Federation::Stub* stub = Stub(peer);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(call_timeout_ms_));
  if (!Track(&context)) return absl::CancelledError("this node is stopping");
  v1::ReturnAck ack;
  grpc::Status status = stub->ReturnReceipts(&context, batch, &ack);
  Untrack(&context);
  {
    absl::MutexLock lock(&mu_);
    if (!status.ok() && cancelled_) {
      return absl::CancelledError("this node is stopping");
    }
  }
  if (!status.ok()) {
    return absl::UnavailableError(
        Describe(peer, addresses_.at(peer), "returning receipts", status));
  }
  return absl::OkStatus();
}

bool GrpcPeerLink::Track(grpc::ClientContext* context) {
  absl::MutexLock lock(&mu_);
  if (cancelled_) return false;
  active_.insert(context);
  return true;
}

void GrpcPeerLink::Untrack(grpc::ClientContext* context) {
  absl::MutexLock lock(&mu_);
  active_.erase(context);
}

absl::StatusOr<std::vector<std::string>> GrpcPeerLink::Witness(
    const std::string& peer, uint32_t limit) {
  if (addresses_.count(peer) == 0) {
    return absl::NotFoundError(absl::StrCat("no address for peer ", peer));
  }
  v1::WitnessRequest request;
  request.set_limit(limit);
  v1::WitnessResponse response;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(call_timeout_ms_));
  if (!Track(&context)) return absl::CancelledError("this node is stopping");
  grpc::Status status = Stub(peer)->Witness(&context, request, &response);
  Untrack(&context);
  if (!status.ok()) {
    return absl::UnavailableError(
        Describe(peer, addresses_.at(peer), "witness", status));
  }
  return std::vector<std::string>(response.receipts().begin(),
                                  response.receipts().end());
}

absl::StatusOr<std::set<std::pair<uint32_t, uint32_t>>>
GrpcPeerLink::ChunkStatus(const std::string& peer, const std::string& origin,
                          const std::string& message_id) {
  if (addresses_.count(peer) == 0) {
    return absl::NotFoundError(absl::StrCat("unknown peer ", peer));
  }
  v1::ChunkQuery query;
  query.set_origin(origin);
  query.set_message_id(message_id);
  v1::ChunkHave have;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(call_timeout_ms_));
  if (!Track(&context)) return absl::CancelledError("this node is stopping");
  grpc::Status status = Stub(peer)->ChunkStatus(&context, query, &have);
  Untrack(&context);
  if (!status.ok()) {
    return absl::UnavailableError(
        Describe(peer, addresses_.at(peer), "chunk status", status));
  }
  std::set<std::pair<uint32_t, uint32_t>> out;
  for (const v1::ChunkKey& k : have.have()) {
    out.emplace(k.attachment(), k.index());
  }
  return out;
}

absl::Status GrpcPeerLink::PutChunks(const std::string& peer,
                                     const std::string& origin,
                                     const std::string& message_id,
                                     const std::vector<ChunkSource>& chunks) {
  if (addresses_.count(peer) == 0) {
    return absl::NotFoundError(absl::StrCat("unknown peer ", peer));
  }
  // Calls of at most 64 chunks (64 MiB), each with its own deadline: what
  // one call stored stays stored if a later one fails (resume).
  constexpr size_t kPerCall = 64;
  for (size_t start = 0; start < chunks.size(); start += kPerCall) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::minutes(5));
    if (!Track(&context)) return absl::CancelledError("this node is stopping");
    v1::ChunkHave have;
    auto writer = Stub(peer)->PutChunks(&context, &have);
    bool ok = true;
    absl::Status read_error;
    const size_t end = std::min(chunks.size(), start + kPerCall);
    for (size_t i = start; ok && i < end; ++i) {
      auto data = ReadChunkFile(chunks[i].dir, chunks[i].index);
      if (!data.ok()) {
        read_error = data.status();
        break;
      }
      v1::ChunkData msg;
      msg.set_origin(origin);
      msg.set_message_id(message_id);
      msg.set_attachment(chunks[i].attachment);
      msg.set_index(chunks[i].index);
      msg.set_data(std::move(*data));
      ok = writer->Write(msg);
    }
    if (!read_error.ok()) context.TryCancel();
    writer->WritesDone();
    grpc::Status status = writer->Finish();
    Untrack(&context);
    if (!read_error.ok()) return read_error;
    if (!status.ok()) {
      {
        absl::MutexLock lock(&mu_);
        if (cancelled_) return absl::CancelledError("this node is stopping");
      }
      return absl::UnavailableError(
          Describe(peer, addresses_.at(peer), "sending chunks", status));
    }
  }
  return absl::OkStatus();
}

}  // namespace kontor
