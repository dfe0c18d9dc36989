#ifndef KONTOR_DAEMON_APP_APP_H_
#define KONTOR_DAEMON_APP_APP_H_

// The use cases every front end calls (DESIGN.md §11): the gRPC local API
// (api/), the console (web/). Plain C++ over absl::Status and the
// kontor.v1 messages, no gRPC types: a front end maps its caller to a
// Caller (policy.h), calls, and maps the status. What a caller may do and
// see is decided here, by the rules of policy/, for every front end alike;
// every consultation is audited here.
//
// Where a message is ...
//   authorized   Submitter::CheckRequest / Policy stages (submit.cc), and
//                policy::MaySee for everything that names a message
//   sealed       Submitter::Seal (envelope/ signs and encrypts)
//   stored       Submitter::Persist (store/ InsertOutgoing, with its audit
//                record in the same transaction)
//   sent         outbox/ (the delivery loops), received: inbox/ (Receiver)
//   audited      store/ (with each event), AuditConsult here (reads)

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "daemon/app/audit_verify.h"
#include "daemon/app/evidence.h"
#include "daemon/common/clock.h"
#include "daemon/crypto/primitives.h"
#include "daemon/envelope/envelope.h"
#include "daemon/metrics/metrics.h"
#include "daemon/outbox/outbox.h"
#include "daemon/policy/policy.h"
#include "daemon/store/store.h"
#include "kontor/v1/config.pb.h"
#include "kontor/v1/local.pb.h"

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

// Everything the use cases need, given once (validated by the constructor's
// caller: the composition root). Pointers must outlive the App.
struct AppOptions {
  const v1::NodeConfig* config = nullptr;  // validated (config/)
  Store* store = nullptr;
  const Sealer* sealer = nullptr;
  Outbox* outbox = nullptr;  // Notify, InFlight, Runtime, PeerContact
  const Clock* clock = nullptr;
  Metrics* metrics = nullptr;  // optional
  std::function<PeerCertInfo(const std::string&)> cert_info;
  OwnCertInfo own_certs;
  // Peers whose certificates are not trusted: id -> reason.
  std::map<std::string, std::string> unusable_peers;
  // `kontor audit verify`: the node's signing key (checks its signed heads
  // and its receipts held by peers) and how to ask each peer.
  std::shared_ptr<const EcdsaSigner> signer;
  std::vector<std::string> witness_peers;
  WitnessFetch witness;
};

// The per-peer policy the config states (peers accept_kinds, send_kinds).
PeerPolicy PeerPolicyOf(const v1::NodeConfig& config);

// One node's use cases. Thread-safe.
class App {
 public:
  explicit App(AppOptions options);
  App(const App&) = delete;
  App& operator=(const App&) = delete;

  // --- sending (submit.cc)
  absl::StatusOr<v1::SubmitResponse> Submit(const Caller& caller,
                                            const v1::SubmitRequest& request);

  // An attachment upload: fed message by message, then finished (or
  // abandoned: its files go). The first message names the file and may
  // declare its size.
  class Upload {
   public:
    virtual ~Upload() = default;
    virtual absl::Status Add(const v1::AttachmentUpload& part) = 0;
    virtual absl::StatusOr<v1::UploadedAttachment> Finish() = 0;
  };
  absl::StatusOr<std::unique_ptr<Upload>> StartUpload(const Caller& caller);

  // --- reading (queries.cc)
  absl::StatusOr<v1::StatusResponse> Status(const Caller& caller,
                                            const v1::StatusRequest& request);
  absl::StatusOr<v1::InboxResponse> Inbox(const Caller& caller,
                                          const v1::InboxRequest& request);
  absl::StatusOr<v1::ShowResponse> Show(const Caller& caller,
                                        const v1::ShowRequest& request);
  absl::StatusOr<v1::ThreadResponse> Thread(const Caller& caller,
                                            const v1::ThreadRequest& request);
  absl::StatusOr<v1::OutboxResponse> Outbox(const Caller& caller,
                                            const v1::OutboxRequest& request);
  absl::StatusOr<v1::PeersResponse> Peers(const Caller& caller);
  // The verified plaintext of an attachment, chunk by chunk, to `sink`; an
  // error from `sink` stops it. Audited before the first byte.
  absl::Status FetchAttachment(
      const Caller& caller, const v1::FetchAttachmentRequest& request,
      const std::function<absl::Status(absl::string_view)>& sink);

  // --- acting on messages (actions.cc)
  absl::StatusOr<v1::AckResponse> Ack(const Caller& caller,
                                      const v1::AckRequest& request);
  absl::StatusOr<v1::CancelResponse> Cancel(const Caller& caller,
                                            const v1::CancelRequest& request);
  absl::StatusOr<v1::RetryResponse> Retry(const Caller& caller,
                                          const v1::RetryRequest& request);

  // --- watching (watch.cc): what came after `*cursor` that `caller` may
  // see, at most `limit`, waiting up to `wait` when there is nothing yet;
  // `*cursor` moves past everything looked at. Empty after `wait`: nothing.
  absl::StatusOr<std::vector<v1::InboxEntry>> InboxAfter(const Caller& caller,
                                                         uint64_t* cursor,
                                                         size_t limit,
                                                         absl::Duration wait);
  absl::StatusOr<std::vector<v1::DeliveryEvent>> SentAfter(const Caller& caller,
                                                           uint64_t* cursor,
                                                           size_t limit,
                                                           absl::Duration wait);
  // Where a watch "from now" starts.
  absl::StatusOr<uint64_t> InboxNow() const;
  absl::StatusOr<uint64_t> SentNow() const;

  // --- retention (retention.cc)
  // Purges what is past its retention (config `retention`) as `actor`;
  // with dry_run only lists it. Also run by the node, hourly.
  absl::StatusOr<std::vector<PurgeCandidate>> PurgeExpired(
      const std::string& actor, bool dry_run);
  absl::StatusOr<v1::PurgeResponse> Purge(const Caller& caller,
                                          const v1::PurgeRequest& request);

  // --- audit and evidence (audit.cc)
  absl::StatusOr<v1::AuditTailResponse> AuditTail(
      const Caller& caller, const v1::AuditTailRequest& request);
  absl::StatusOr<v1::AuditVerifyResponse> AuditVerify(
      const Caller& caller, const v1::AuditVerifyRequest& request);
  absl::StatusOr<v1::ExportResponse> Export(const Caller& caller,
                                            const v1::ExportRequest& request);
  // Archives the certificates and CRLs the config names (at every start
  // and reload, and before an export), so that evidence of old messages
  // still verifies after a rotation.
  void ArchiveEvidence();

  const v1::NodeConfig& config() const { return *o_.config; }

 private:
  class UploadSession;
  class Submission;

  // `raw` if it is a message id; else the one id among the messages
  // `caller` may see that starts with `raw` (8 or more characters, any
  // case). kNotFound if none, kInvalidArgument if several or not an id's
  // shape.
  absl::StatusOr<std::string> ResolveId(const Caller& caller,
                                        const std::string& raw) const;
  // A message this node sent that `caller` may see; kNotFound otherwise.
  absl::StatusOr<KnownMessage> OwnSent(const Caller& caller,
                                       const std::string& message_id) const;
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
  // Appends a consultation record; the content is shown only after it is
  // durable.
  absl::Status AuditConsult(const Caller& caller, const std::string& message_id,
                            const std::string& origin, const v1::Payload& p,
                            const std::string& what);
  // For the export of an erased message: the digest of what it was, how it
  // was erased, and the recipients' signed confirmations.
  absl::Status GatherErasureEvidence(ExportInput* in) const;

  const AppOptions o_;
  // Free space kept on the data directory (limits.min_free_bytes).
  const uint64_t min_free_bytes_;
  // What each peer takes from this node (config peers send_kinds).
  const PeerPolicy peer_policy_;
};

}  // namespace kontor

#endif  // KONTOR_DAEMON_APP_APP_H_
