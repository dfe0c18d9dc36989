#ifndef KONTOR_DAEMON_TRANSPORT_PEER_LINK_H_
#define KONTOR_DAEMON_TRANSPORT_PEER_LINK_H_

#include <grpcpp/grpcpp.h>

#include <map>
#include <memory>
#include <set>
#include <string>

#include "absl/synchronization/mutex.h"
#include "daemon/outbox/outbox.h"
#include "daemon/transport/tls.h"
#include "kontor/v1/federation.grpc.pb.h"

namespace kontor {

struct PeerEndpoint {
  std::string id;
  std::string address;  // host:port
};

// PeerLink over gRPC with mutual TLS: one channel per peer (kept), one short
// Exchange stream per batch, with a deadline so a hung peer cannot hold its
// loop forever. Thread-safe.
class GrpcPeerLink : public PeerLink {
 public:
  GrpcPeerLink(std::vector<PeerEndpoint> peers, TlsMaterial tls,
               std::shared_ptr<const TrustStore> trust, const Clock* clock,
               int max_message_bytes, int64_t call_timeout_ms);

  absl::StatusOr<std::vector<std::string>> Exchange(
      const std::string& peer,
      const std::vector<std::string>& envelopes) override;

  absl::Status ReturnReceipts(
      const std::string& peer,
      const std::vector<std::string>& receipts) override;
  absl::StatusOr<std::set<std::pair<uint32_t, uint32_t>>> ChunkStatus(
      const std::string& peer, const std::string& origin,
      const std::string& message_id) override;
  absl::Status PutChunks(const std::string& peer, const std::string& origin,
                         const std::string& message_id,
                         const std::vector<ChunkSource>& chunks) override;

  // The receipts `peer` holds that this node signed (serialized), newest
  // first: witnesses of this node's audit chain.
  absl::StatusOr<std::vector<std::string>> Witness(const std::string& peer,
                                                   uint32_t limit);

  // Cancels every exchange in progress (they fail as kUnavailable), and
  // makes later ones fail at once. For shutdown.
  void CancelAll();

 private:
  v1::Federation::Stub* Stub(const std::string& peer);
  // Registers `context` for CancelAll; false if this node is stopping.
  bool Track(grpc::ClientContext* context);
  void Untrack(grpc::ClientContext* context);

  const TlsMaterial tls_;
  const std::shared_ptr<const TrustStore> trust_;
  const Clock* clock_;
  const int max_message_bytes_;
  const int64_t call_timeout_ms_;
  std::map<std::string, std::string> addresses_;
  absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<v1::Federation::Stub>> stubs_
      ABSL_GUARDED_BY(mu_);
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 1;
  std::set<grpc::ClientContext*> active_ ABSL_GUARDED_BY(mu_);
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace kontor

#endif  // KONTOR_DAEMON_TRANSPORT_PEER_LINK_H_
