#ifndef KONTOR_DAEMON_OUTBOX_OUTBOX_H_
#define KONTOR_DAEMON_OUTBOX_OUTBOX_H_

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "daemon/common/clock.h"
#include "daemon/common/routes.h"
#include "daemon/envelope/envelope.h"
#include "daemon/metrics/metrics.h"
#include "daemon/store/store.h"

namespace kontor {

// One attachment chunk file to send: ChunkPath(dir, index).
struct ChunkSource {
  uint32_t attachment = 0;
  uint32_t index = 0;
  std::string dir;
};

// How the outbox reaches a peer; implemented by the transport (gRPC), and by
// in-file fakes in tests.
class PeerLink {
 public:
  virtual ~PeerLink() = default;
  // Sends serialized envelopes to `peer` as one batch and returns one
  // serialized Receipt per envelope, in order. Any error means "nothing was
  // settled, try again later" (kUnavailable, kDeadlineExceeded, ...);
  // kCancelled means this node is stopping (not the peer's fault).
  virtual absl::StatusOr<std::vector<std::string>> Exchange(
      const std::string& peer, const std::vector<std::string>& envelopes) = 0;
  // Hands serialized end-to-end receipts of relayed messages back to
  // `peer`. OK means it stored them durably.
  virtual absl::Status ReturnReceipts(
      const std::string& peer, const std::vector<std::string>& receipts) {
    return absl::UnimplementedError("this link does not return receipts");
  }
  // The attachment chunks of (origin, message_id) that `peer` holds.
  virtual absl::StatusOr<std::set<std::pair<uint32_t, uint32_t>>> ChunkStatus(
      const std::string& peer, const std::string& origin,
      const std::string& message_id) {
    return absl::UnimplementedError("this link does not carry attachments");
  }
  // Sends chunk files to `peer`, one at a time (never all in memory).
  virtual absl::Status PutChunks(const std::string& peer,
                                 const std::string& origin,
                                 const std::string& message_id,
                                 const std::vector<ChunkSource>& chunks) {
    return absl::UnimplementedError("this link does not carry attachments");
  }
};

struct OutboxOptions {
  int64_t initial_backoff_ms = 500;
  int64_t max_backoff_ms = 3600 * 1000;
  size_t max_batch = 64;
  size_t max_batch_bytes = 8 << 20;
  // The node's data_dir: attachment chunk files are under it.
  std::string data_dir;
  // While a flash message waits for a peer, retry it at least this often.
  int64_t flash_max_backoff_ms = 5000;
  // A delivery the recipient deferred this many times is suspended: it
  // needs an operator (`kontor retry` once the cause is fixed).
  uint32_t suspend_after_deferrals = 8;
  // Deliveries by peer and outcome, failed attempts, and the latency from
  // submission to the stored receipt. Optional; must outlive the Outbox.
  Metrics* metrics = nullptr;
  // Routed recipients (config routes) and relayed messages: a recipient
  // without its own loop is served by the loop of its next hop. Without,
  // every recipient is a direct peer.
  std::optional<Routes> routes;
};

struct PeerRuntime {
  bool connected = false;  // last exchange succeeded
  uint32_t in_flight = 0;
  std::string last_error;
};

// One delivery loop (thread) per peer: takes queued deliveries in priority
// order, sends them in batches over the PeerLink, verifies the signed
// receipts and settles the deliveries durably. A failure backs off that peer
// only (persisted exponential backoff with jitter, reset only by a successful
// exchange). Thread-safe.
class Outbox {
 public:
  Outbox(std::string node_id, std::vector<std::string> peers,
         DeliveryStore* store, PeerLink* link, const KeyDirectory* directory,
         const Clock* clock, OutboxOptions options);
  ~Outbox();
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;

  void Start();
  void Stop();

  // New work for `peer` (a recipient: its next hop's loop wakes): try soon,
  // but respect its backoff; a flash message shortens that backoff to at
  // most flash_max_backoff_ms.
  void Notify(const std::string& peer, bool flash = false);
  // `peer` contacted us: it is alive, so try now even if backing off.
  void PeerContact(const std::string& peer);

  bool InFlight(const std::string& message_id, const std::string& peer) const;
  PeerRuntime Runtime(const std::string& peer) const;

 private:
  struct PeerLoop {
    std::string peer;
    // Recipients reached through this peer: itself (if direct) and those
    // routed via it. Fixed before Start().
    std::vector<std::string> destinations;
    std::thread thread;
    bool work = true;      // guarded by Outbox::mu_
    bool contact = false;  // guarded by Outbox::mu_
    bool flash = false;    // a flash message was queued; guarded by mu_
    PeerRuntime runtime;   // guarded by Outbox::mu_
    std::set<std::string> in_flight;  // guarded by Outbox::mu_
    // Attachments travel on their own lane (thread), so that nothing waits
    // behind a large file: a delivery with chunks is sent once they are all
    // at the peer. All guarded by Outbox::mu_.
    std::thread bulk_thread;
    std::deque<PendingDelivery> bulk_queue;  // chunks to send, in order
    std::set<std::string> bulk_queued;       // their keys
    std::set<std::string> chunks_ready;      // keys whose chunks are there
  };

  void Run(PeerLoop* loop);
  // The bulk lane of `loop`: sends the chunks of queued deliveries.
  void RunBulk(PeerLoop* loop);
  // Sends the chunks of `d` the peer does not have yet.
  absl::Status SendChunks(PeerLoop* loop, const PendingDelivery& d);
  // Marks queued deliveries to `peer` past their expiry as expired (a cheap
  // read first; a write only when something expired).
  void ExpireOverdue(const std::string& peer);
  // One round: returns true if it delivered something (so go again at once).
  // Its stages are named in outbox.cc (class Outbox::Round).
  bool RunOnce(PeerLoop* loop, PeerState* state);
  class Round;
  // Hands queued end-to-end receipts back through this peer; true if it
  // returned some (so go again), false if none or on failure (backoff).
  bool ReturnOnce(PeerLoop* loop, PeerState* state);
  // The loop serving `recipient` (its own, or its next hop's); null if none.
  PeerLoop* LoopFor(const std::string& recipient)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // `flash_waiting`: a flash message is among those that failed, so the
  // backoff is capped at flash_max_backoff_ms.
  void Fail(PeerLoop* loop, PeerState* state,
            const std::vector<const PendingDelivery*>& ds,
            const std::string& error, bool flash_waiting = false);
  // Counts a failed attempt (a deferral if not_before_ms > 0) of each.
  void MarkAttempted(const std::vector<const PendingDelivery*>& ds,
                     const std::string& error, int64_t at_ms,
                     int64_t not_before_ms);

  // Counts one settlement (or deferral) of a delivery to `peer`.
  void CountDelivery(const std::string& peer, absl::string_view outcome,
                     double n = 1) const;

  const std::string node_id_;
  DeliveryStore* const store_;
  PeerLink* const link_;
  const KeyDirectory* const directory_;
  const Clock* const clock_;
  const OutboxOptions options_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, std::unique_ptr<PeerLoop>> loops_;  // fixed after ctor
  const Routes routes_;
  const bool routed_;
};

// Removes the attachment chunk files of messages sent or relayed from here
// once every delivery of theirs settled (an expired one after its final
// attempt window), and records that they went. Returns how many messages'
// files went.
absl::StatusOr<size_t> CollectSettledChunks(DeliveryStore* store,
                                            const std::string& data_dir,
                                            int64_t now_ms);

}  // namespace kontor

#endif  // KONTOR_DAEMON_OUTBOX_OUTBOX_H_
