#ifndef KONTOR_DAEMON_INBOX_RECEIVER_H_
#define KONTOR_DAEMON_INBOX_RECEIVER_H_

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/attachment/files.h"
#include "daemon/common/clock.h"
#include "daemon/common/routes.h"
#include "daemon/envelope/envelope.h"
#include "daemon/inbox/staging.h"
#include "daemon/metrics/metrics.h"
#include "daemon/store/store.h"
#include "kontor/v1/federation.pb.h"

namespace kontor {

// The receive path (DESIGN.md §2): authenticated peer → dedup on (origin, id)
// → outer signature → decrypt and inner signature → durable inbox → signed
// receipt. A receipt therefore always attests a whole, authentic message.
// Thread-safe.
class Receiver {
 public:
  Receiver(std::string node_id, Store* store, const Opener* opener,
           std::shared_ptr<const EcdsaSigner> signer, const Clock* clock);

  // Handles one batch from the authenticated peer `peer`. Returns one
  // serialized, signed Receipt per envelope (ACCEPTED or a permanent
  // REFUSED), in order, after everything accepted is durable. An error
  // (e.g. the store is unavailable) means nothing is promised: the sender
  // must retry the whole batch.
  absl::StatusOr<std::vector<std::string>> Receive(
      const std::string& peer, const std::vector<v1::Envelope>& envelopes);

  // Relaying (DESIGN.md §3). `routes` says which origins a peer may hand us
  // besides its own and which (origin, destination) pairs we pass on; an
  // envelope whose routing.deliver_to is another node is checked as far as
  // a relay can (header, origin's outer signature, times, hops), stored in
  // the outbox and answered with a signed FORWARDED custody receipt.
  // `directory` checks returned receipts; `notify(hop)` is called when
  // something was queued for the next hop `hop`. Call before use.
  void SetRouting(Routes routes, const KeyDirectory* directory,
                  std::function<void(const std::string&)> notify);

  // End-to-end receipts returned by `peer` (ReturnReceipts): settles our
  // own deliveries, or queues the receipt one hop further back for relayed
  // ones, durably. Receipts that match nothing sent that way are logged and
  // dropped. An error means nothing is promised: the peer sends them again.
  absl::Status AcceptReturns(const std::string& peer,
                             const std::vector<v1::Receipt>& receipts);

  // Attachments: chunk files are kept under `data_dir`/attachments, and an
  // envelope is accepted (or taken into custody) only once all its chunks
  // are there, whole; until then it is deferred. Without this call, an
  // envelope with chunks is refused.
  void SetAttachments(const std::string& data_dir, uint64_t max_bytes);
  // The same, with the limits of chunks staged ahead of their envelopes
  // (quota per peer, free-space floor, how long they wait).
  void SetAttachments(uint64_t max_bytes, const StagingOptions& staging);
  // At start, after SetRouting: staged chunks of envelopes the store holds
  // are claimed, the others counted against their peers' quotas.
  absl::Status RecoverStaging();
  // The staging area (null without attachments): Collect() it now and then.
  ChunkStaging* staging() { return staging_.get(); }
  // Counts what arrives (by peer and outcome), refusals by reason, and
  // exact replays. Optional; `metrics` must outlive this.
  void SetMetrics(Metrics* metrics) { metrics_ = metrics; }
  // Per-peer policy: the kinds each origin may send us (an origin not in
  // the map may send every kind). A message of another kind is refused for
  // good, signed (REFUSAL_POLICY), and the refusal is audited.
  void SetPolicy(std::map<std::string, std::set<std::string>> accept_kinds);
  // The newest receipts `peer` signed for our messages (Witness).
  absl::StatusOr<std::vector<std::string>> Witnessed(const std::string& peer,
                                                     size_t limit) {
    return store_->ReceiptsFrom(peer, limit);
  }
  // A chunk sent ahead of its envelope by `peer` (PutChunks): stored.
  absl::Status PutChunk(const std::string& peer, const v1::ChunkData& chunk);
  // The chunks of (origin, message_id) stored here (ChunkStatus).
  absl::StatusOr<std::vector<std::pair<uint32_t, uint32_t>>> Chunks(
      const std::string& peer, const std::string& origin,
      const std::string& message_id);

 private:
  std::string node_id_;
  Store* store_;
  const Opener* opener_;
  std::shared_ptr<const EcdsaSigner> signer_;
  const Clock* clock_;
  Routes routes_;
  std::map<std::string, std::set<std::string>> accept_kinds_;
  const KeyDirectory* directory_ = nullptr;
  std::function<void(const std::string&)> notify_;
  // Whether all chunks `env` lists are here, whole; else `refusal` says
  // why: DEFERRED while some are missing, REFUSED if the list is malformed,
  // too large, or (at the recipient) does not match the signed `payload`.
  bool KindAllowed(const std::string& origin, const std::string& kind) const;
  static bool KindMatchesContent(const v1::Payload& p);
  bool ChunksReady(const v1::Envelope& env, const v1::Header& header,
                   const v1::Payload* payload, Refusal* refusal);

  // Moves the chunks `env` lists from staged/ into `home`.
  void ClaimChunks(const v1::Envelope& env, const std::string& origin,
                   const std::string& id, ChunkHome home);
  // Counts one envelope from `peer` as `outcome`; a refusal also by reason.
  void Count(const std::string& peer, const char* outcome,
             const v1::ReceiptBody* refusal = nullptr) const;
  Metrics* metrics_ = nullptr;
  std::unique_ptr<AttachmentDirs> dirs_;
  std::unique_ptr<ChunkStaging> staging_;
  uint64_t max_attachment_bytes_ = 0;
};

}  // namespace kontor

#endif  // KONTOR_DAEMON_INBOX_RECEIVER_H_
