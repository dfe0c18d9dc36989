#ifndef KONTOR_DAEMON_API_LOCAL_SERVICE_H_
#define KONTOR_DAEMON_API_LOCAL_SERVICE_H_

#include <atomic>
#include <functional>
#include <map>
#include <string>

#include "daemon/api/audit.h"
#include "daemon/api/export.h"
#include "daemon/common/clock.h"
#include "daemon/envelope/envelope.h"
#include "daemon/outbox/outbox.h"
#include "daemon/policy/policy.h"
#include "daemon/store/store.h"
#include "kontor/v1/config.pb.h"
#include "kontor/v1/local.grpc.pb.h"

namespace kontor {

// Facts about peers that only the composition root knows (certificate
// expiry), for `kontor peers`.
struct PeerCertInfo {
  int64_t signing_not_after_ms = 0;
  int64_t encryption_not_after_ms = 0;
  int64_t crl_next_update_ms = 0;
};

struct OwnCertInfo {
  int64_t tls_not_after_ms = 0;
  int64_t signing_not_after_ms = 0;
  int64_t encryption_not_after_ms = 0;
};

// The local API (DESIGN.md §10): used by the kontor CLI and by national
// systems. Submit returns only once the sealed message is durable.
class LocalService final : public v1::Local::Service {
 public:
  LocalService(const v1::NodeConfig* config, Store* store, const Sealer* sealer,
               kontor::Outbox* outbox, const Clock* clock,
               std::function<PeerCertInfo(const std::string&)> cert_info,
               OwnCertInfo own_certs,
               std::map<std::string, std::string> unusable_peers = {});

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
  grpc::Status Watch(grpc::ServerContext*, const v1::WatchRequest*,
                     grpc::ServerWriter<v1::InboxEntry>*) override;
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
  grpc::Status WatchSent(grpc::ServerContext*, const v1::WatchRequest*,
                         grpc::ServerWriter<v1::DeliveryEvent>*) override;
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

  // Purges what is past its retention (config `retention`) as `actor`;
  // with dry_run only lists it. Also run by the node, hourly.
  absl::StatusOr<std::vector<PurgeCandidate>> PurgeExpired(
      const std::string& actor, bool dry_run);

  // Who is calling: the user and role of a verified operator certificate
  // (operator port), or the local administrator on the unix socket (gRPC
  // 1.51 gives no uid there). kPermissionDenied for any other certificate.
  static absl::StatusOr<Caller> Who(grpc::ServerContext* context);

  // For `kontor audit verify`: the node's signing key (checks its signed
  // heads and its receipts held by peers) and how to ask each peer.
  void SetAudit(std::shared_ptr<const EcdsaSigner> signer,
                std::vector<std::string> peers, WitnessFetch fetch) {
    signer_ = std::move(signer);
    witness_peers_ = std::move(peers);
    witness_ = std::move(fetch);
  }

  // Submissions by outcome and their latency (until durable). Optional.
  void SetMetrics(Metrics* metrics) { metrics_ = metrics; }

  // Ends open Watch streams (within about a second), so that the server can
  // shut down without waiting out its deadline.
  void Stop() { stopping_.store(true); }

 private:
  // `raw` if it is a message id; else the one id among the messages
  // `caller` may see that starts with `raw` (8 or more characters, any
  // case). kNotFound if none, kInvalidArgument if several or not an id's
  // shape.
  absl::StatusOr<std::string> ResolveId(const Caller& caller,
                                        const std::string& raw) const;
  // The deliveries of a message sent from this node; kNotFound if none.
  absl::StatusOr<std::vector<DeliveryRow>> SentDeliveries(
      const std::string& message_id) const;
  // The one accepted inbox record with this id (and origin, if given) that
  // `caller` may see (policy.h MaySee); kNotFound, as for an unknown id,
  // otherwise. kInvalidArgument if the id came from several origins.
  absl::StatusOr<InboxRecord> FindReceived(const Caller& caller,
                                           const std::string& message_id,
                                           const std::string& origin) const;
  // The stored state, or in_flight while the outbox is sending it.
  std::string ShownState(const DeliveryRow& row) const;
  grpc::Status DoSubmit(const Caller& caller, const v1::SubmitRequest*,
                        v1::SubmitResponse*);
  // A message this node sent that `caller` may see (its own; an admin's:
  // any); kNotFound / kPermissionDenied else.
  absl::StatusOr<KnownMessage> OwnSent(const Caller& caller,
                                       const std::string& message_id) const;
  // Appends a consultation record; the content is shown only after it is
  // durable.
  // Archives the certificates and CRLs the config names (at every start
  // and reload, and before an export), so that evidence of old messages
  // still verifies after a rotation.
  void ArchiveEvidence();
  // For the export of an erased message: the digest of what it was, how it
  // was erased, and the recipients' signed confirmations (receipts of the
  // erase orders that named it).
  absl::Status GatherErasureEvidence(ExportInput* in) const;
  grpc::Status AuditConsult(const Caller& caller, const std::string& message_id,
                            const std::string& origin, const v1::Payload& p,
                            const std::string& what);

  const v1::NodeConfig* config_;
  Store* store_;
  const Sealer* sealer_;
  kontor::Outbox* outbox_;
  const Clock* clock_;
  std::function<PeerCertInfo(const std::string&)> cert_info_;
  OwnCertInfo own_certs_;
  // Peers whose certificates are not trusted: id -> reason.
  const std::map<std::string, std::string> unusable_peers_;
  // Free space kept on the data directory (limits.min_free_bytes).
  const uint64_t min_free_bytes_;
  std::atomic<bool> stopping_{false};
  Metrics* metrics_ = nullptr;
  std::shared_ptr<const EcdsaSigner> signer_;
  std::vector<std::string> witness_peers_;
  WitnessFetch witness_;
};

}  // namespace kontor

#endif  // KONTOR_DAEMON_API_LOCAL_SERVICE_H_
