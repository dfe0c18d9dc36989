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
#include "daemon/policy/policy.h"
#include "daemon/store/store.h"
#include "kontor/v1/federation.pb.h"

namespace kontor {

// Everything a Receiver needs, given once (Receiver::Create checks it).
struct ReceiverOptions {
  std::string node_id;
  Store* store = nullptr;
  const Opener* opener = nullptr;
  std::shared_ptr<const EcdsaSigner> signer;  // signs the receipts
  const Clock* clock = nullptr;
  // Relaying (DESIGN.md §3): which origins a peer may hand us besides its
  // own, and which (origin, destination) pairs we pass on. An envelope whose
  // routing.deliver_to is another node is checked as far as a relay can
  // (header, origin's outer signature, times, hops), stored in the outbox
  // and answered with a signed FORWARDED custody receipt. Default: direct
  // peers only, no relaying.
  Routes routes;
  // Checks the end-to-end receipts peers return (AcceptReturns); without
  // it they are dropped.
  const KeyDirectory* directory = nullptr;
  // Called when something was queued for the next hop `hop`. Optional.
  std::function<void(const std::string& hop)> notify;
  // The kinds each origin may send us (policy.h MayAcceptFrom): a message
  // of another kind is refused for good, signed (REFUSAL_POLICY), audited.
  PeerPolicy policy;
  // Attachments: chunk files under staging.data_dir/attachments; an
  // envelope is accepted (or taken into custody) only once all its chunks
  // are there, whole, until then it is deferred. 0: this node takes no
  // attachments (an envelope with chunks is refused).
  uint64_t max_attachment_bytes = 0;
  // Chunks staged ahead of their envelopes: quota per peer, free-space
  // floor, how long they wait (DefaultStaging gives sane ones).
  StagingOptions staging;
  // Counts what arrives (by peer and outcome), refusals by reason, exact
  // replays. Optional; must outlive the Receiver.
  Metrics* metrics = nullptr;
};

// Staging for `max_attachment_bytes` in `data_dir`: a quota of two
// messages' worth per peer, the default free-space floor, 24 hours.
StagingOptions DefaultStaging(const std::string& data_dir,
                              uint64_t max_attachment_bytes);

// The receive path (DESIGN.md §2): authenticated peer → dedup on (origin, id)
// → outer signature → decrypt and inner signature → durable inbox → signed
// receipt. A receipt therefore always attests a whole, authentic message.
// Receive's stages are named in receiver.cc (class Receiver::Batch).
// Thread-safe.
class Receiver {
 public:
  // kInvalidArgument if a required option is missing.
  static absl::StatusOr<std::unique_ptr<Receiver>> Create(
      ReceiverOptions options);

  // Handles one batch from the authenticated peer `peer`. Returns one
  // serialized, signed Receipt per envelope (ACCEPTED or a permanent
  // REFUSED), in order, after everything accepted is durable. An error
  // (e.g. the store is unavailable) means nothing is promised: the sender
  // must retry the whole batch.
  absl::StatusOr<std::vector<std::string>> Receive(
      const std::string& peer, const std::vector<v1::Envelope>& envelopes);

  // End-to-end receipts returned by `peer` (ReturnReceipts): settles our
  // own deliveries, or queues the receipt one hop further back for relayed
  // ones, durably. Receipts that match nothing sent that way are logged and
  // dropped. An error means nothing is promised: the peer sends them again.
  absl::Status AcceptReturns(const std::string& peer,
                             const std::vector<v1::Receipt>& receipts);

  // At start: staged chunks of envelopes the store holds are claimed, the
  // others counted against their peers' quotas.
  absl::Status RecoverStaging();
  // The staging area (null without attachments): Collect() it now and then.
  ChunkStaging* staging() { return staging_.get(); }
  // The newest receipts `peer` signed for our messages (Witness).
  absl::StatusOr<std::vector<std::string>> Witnessed(const std::string& peer,
                                                     size_t limit) {
    return o_.store->ReceiptsFrom(peer, limit);
  }
  // A chunk sent ahead of its envelope by `peer` (PutChunks): stored.
  absl::Status PutChunk(const std::string& peer, const v1::ChunkData& chunk);
  // The chunks of (origin, message_id) stored here (ChunkStatus).
  absl::StatusOr<std::vector<std::pair<uint32_t, uint32_t>>> Chunks(
      const std::string& peer, const std::string& origin,
      const std::string& message_id);

 private:
  class Batch;

  explicit Receiver(ReceiverOptions options);

  static bool KindMatchesContent(const v1::Payload& p);
  // Whether all chunks `env` lists are here, whole; else `refusal` says
  // why: DEFERRED while some are missing, REFUSED if the list is malformed,
  // too large, or (at the recipient) does not match the signed `payload`.
  bool ChunksReady(const v1::Envelope& env, const v1::Header& header,
                   const v1::Payload* payload, Refusal* refusal);
  // Moves the chunks `env` lists from staged/ into `home`.
  void ClaimChunks(const v1::Envelope& env, const std::string& origin,
                   const std::string& id, ChunkHome home);
  // Counts one envelope from `peer` as `outcome`; a refusal also by reason.
  void Count(const std::string& peer, const char* outcome,
             const v1::ReceiptBody* refusal = nullptr) const;

  const ReceiverOptions o_;
  std::unique_ptr<AttachmentDirs> dirs_;   // null: no attachments
  std::unique_ptr<ChunkStaging> staging_;  // null: no attachments
};

}  // namespace kontor

#endif  // KONTOR_DAEMON_INBOX_RECEIVER_H_
