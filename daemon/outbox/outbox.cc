#include "daemon/outbox/outbox.h"

#include <sys/stat.h>

#include <map>
#include <random>
#include <set>

#include "absl/strings/str_cat.h"
#include "daemon/attachment/files.h"
#include "daemon/common/crash_point.h"
#include "daemon/common/ids.h"
#include "daemon/common/log.h"
#include "daemon/envelope/receipt.h"
#include "daemon/outbox/backoff.h"

namespace kontor {
namespace {

// Without news, a loop still looks at its queue this often (expiry, and
// deliveries whose Notify was lost to a crash of the notifier).
constexpr int64_t kIdleRecheckMs = 5000;
// last_success_ms is persisted at most this often while all goes well.
constexpr int64_t kSuccessPersistMs = 10000;
// A message that was sent at least once (the recipient may have stored it and
// its receipt been lost) is offered again after its expiry for this long, so
// that the recipient's stored receipt can still settle it as delivered.
constexpr int64_t kFinalAttemptWindowMs = 24LL * 3600 * 1000;

double Jitter() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

}  // namespace

Outbox::Outbox(std::string node_id, std::vector<std::string> peers,
               DeliveryStore* store, PeerLink* link,
               const KeyDirectory* directory, const Clock* clock,
               OutboxOptions options)
    : node_id_(std::move(node_id)),
      store_(store),
      link_(link),
      directory_(directory),
      clock_(clock),
      options_(options),
      routes_(options.routes.value_or(Routes())),
      routed_(options.routes.has_value()) {
  for (const std::string& p : peers) {
    auto loop = std::make_unique<PeerLoop>();
    loop->peer = p;
    loop->destinations =
        routed_ ? routes_.DestinationsVia(p) : std::vector<std::string>{p};
    loops_[p] = std::move(loop);
  }
}

Outbox::PeerLoop* Outbox::LoopFor(const std::string& recipient) {
  auto it = loops_.find(routed_ ? routes_.NextHop(recipient) : recipient);
  return it == loops_.end() ? nullptr : it->second.get();
}

Outbox::~Outbox() { Stop(); }

void Outbox::Start() {
  for (auto& [peer, loop] : loops_) {
    PeerLoop* l = loop.get();
    l->thread = std::thread([this, l] { Run(l); });
    l->bulk_thread = std::thread([this, l] { RunBulk(l); });
  }
}

void Outbox::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (auto& [peer, loop] : loops_) {
    if (loop->thread.joinable()) loop->thread.join();
    if (loop->bulk_thread.joinable()) loop->bulk_thread.join();
  }
}

void Outbox::Notify(const std::string& peer, bool flash) {
  absl::MutexLock lock(&mu_);
  PeerLoop* loop = LoopFor(peer);
  if (loop == nullptr) return;
  loop->work = true;
  loop->flash = loop->flash || flash;
}

void Outbox::PeerContact(const std::string& peer) {
  absl::MutexLock lock(&mu_);
  PeerLoop* loop = LoopFor(peer);
  if (loop != nullptr) {
    loop->work = true;
    loop->contact = true;
  }
}

bool Outbox::InFlight(const std::string& message_id,
                      const std::string& peer) const {
  absl::MutexLock lock(&mu_);
  const PeerLoop* loop = const_cast<Outbox*>(this)->LoopFor(peer);
  return loop != nullptr && loop->in_flight.count(message_id) > 0;
}

PeerRuntime Outbox::Runtime(const std::string& peer) const {
  absl::MutexLock lock(&mu_);
  auto it = loops_.find(peer);
  if (it == loops_.end()) return PeerRuntime();
  PeerRuntime r = it->second->runtime;
  r.in_flight = static_cast<uint32_t>(it->second->in_flight.size());
  return r;
}

void Outbox::Run(PeerLoop* loop) {
  PeerState state;
  state.peer = loop->peer;
  if (auto s = store_->GetPeerState(loop->peer); s.ok()) state = *s;
  if (state.failures > 0) {
    KLOG(Info, "outbox") << "peer " << loop->peer << ": resuming backoff after "
                         << state.failures << " failures";
    // A flash message already waiting must not wait out a long backoff.
    auto first =
        store_->NextDeliveries(loop->destinations, 1, state.next_attempt_ms);
    if (first.ok() && !first->empty() && (*first)[0].priority == v1::FLASH) {
      absl::MutexLock lock(&mu_);
      loop->flash = true;
    }
  }
  // When a delivery the recipient deferred becomes due (0: none), so the
  // loop wakes for it rather than at the next idle recheck. This thread's.
  int64_t deferred_due_ms = 0;
  for (;;) {
    for (const std::string& d : loop->destinations) {
      ExpireOverdue(d);  // on time, also while backing off
    }
    {
      absl::MutexLock lock(&mu_);
      if (deferred_due_ms > 0 && clock_->NowUnixMs() >= deferred_due_ms) {
        loop->work = true;
        deferred_due_ms = 0;
      }
      if (loop->flash) {
        loop->flash = false;
        state.next_attempt_ms =
            std::min(state.next_attempt_ms,
                     clock_->NowUnixMs() + options_.flash_max_backoff_ms);
      }
      auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || loop->contact || loop->flash ||
               (loop->work && clock_->NowUnixMs() >= state.next_attempt_ms);
      };
      if (!ready()) {
        const int64_t now = clock_->NowUnixMs();
        int64_t wait = kIdleRecheckMs;
        if (loop->work && state.next_attempt_ms > now) {
          wait = std::min(wait, state.next_attempt_ms - now);
        }
        if (deferred_due_ms > now) {
          wait = std::min(wait, deferred_due_ms - now);
        }
        if (!clock_->AwaitWithTimeout(&mu_, absl::Condition(&ready), wait) &&
            !loop->work) {
          // Periodic recheck without news, or a deferred delivery due: look
          // at the queue.
          loop->work = clock_->NowUnixMs() >= state.next_attempt_ms;
        }
        if (!ready()) continue;  // back to the top: expiry, then wait again
      }
      if (stopping_) return;
      loop->work = false;
      loop->contact = false;
    }
    const bool returned = ReturnOnce(loop, &state);
    if (RunOnce(loop, &state) || returned) {
      absl::MutexLock lock(&mu_);
      loop->work = true;  // there may be more
    } else {
      deferred_due_ms = 0;
      for (const std::string& d : loop->destinations) {
        auto due = store_->NextDeferredDueMs(d, clock_->NowUnixMs());
        if (due.ok() && *due > 0 &&
            (deferred_due_ms == 0 || *due < deferred_due_ms)) {
          deferred_due_ms = *due;
        }
      }
    }
  }
}

void Outbox::MarkAttempted(const std::vector<const PendingDelivery*>& ds,
                           const std::string& error, int64_t at_ms,
                           int64_t not_before_ms) {
  std::map<std::string, std::vector<std::string>> by_peer;
  for (const PendingDelivery* d : ds) by_peer[d->peer].push_back(d->message_id);
  for (const auto& [peer, keys] : by_peer) {
    if (auto s = store_->MarkAttempted(peer, keys, error, at_ms, not_before_ms);
        !s.ok()) {
      KLOG(Error, "outbox") << "cannot record attempt: " << s.message();
    }
  }
}

void Outbox::RunBulk(PeerLoop* loop) {
  uint32_t failures = 0;
  for (;;) {
    PendingDelivery d;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || !loop->bulk_queue.empty();
      };
      mu_.Await(absl::Condition(&ready));
      if (stopping_) return;
      d = std::move(loop->bulk_queue.front());
      loop->bulk_queue.pop_front();
    }
    absl::Status s = SendChunks(loop, d);
    absl::MutexLock lock(&mu_);
    loop->bulk_queued.erase(d.message_id);
    loop->work = true;  // send the envelope now (or look again)
    if (s.ok()) {
      failures = 0;
      loop->chunks_ready.insert(d.message_id);
      continue;
    }
    if (s.code() == absl::StatusCode::kCancelled) return;
    ++failures;
    const int64_t delay =
        BackoffDelayMs(failures, options_.initial_backoff_ms, 30000, Jitter());
    KLOG(Warning, "outbox")
        << "attachment chunks of " << d.message_id << " to " << loop->peer
        << ": " << s.message() << "; next try in " << delay << " ms";
    auto stop = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
    clock_->AwaitWithTimeout(&mu_, absl::Condition(&stop), delay);
    if (stopping_) return;
  }
}

absl::Status Outbox::SendChunks(PeerLoop* loop, const PendingDelivery& d) {
  v1::Envelope env;
  if (!env.ParseFromString(d.envelope)) {
    return absl::DataLossError("stored envelope does not parse");
  }
  const std::string origin = d.origin.empty() ? node_id_ : d.origin;
  const std::string wire_id = d.wire_id();
  const AttachmentDirs dirs(options_.data_dir);
  auto have = link_->ChunkStatus(loop->peer, origin, wire_id);
  if (!have.ok()) return have.status();
  std::vector<ChunkSource> missing;
  for (const v1::AttachmentChunkRef& r : env.chunks()) {
    if (have->count({r.attachment(), r.index()})) continue;
    std::string dir;
    if (d.origin.empty()) {
      if (r.attachment() >= d.uploads.size()) {
        return absl::DataLossError("attachment list and chunks disagree");
      }
      dir = dirs.Upload(d.uploads[r.attachment()]);
    } else {
      // Relayed: in custody (relay/); before, chunks were kept in in/.
      dir = dirs.Relay(origin, wire_id, r.attachment());
      struct stat st;
      if (stat(dir.c_str(), &st) != 0) {
        dir = dirs.Incoming(origin, wire_id, r.attachment());
      }
    }
    missing.push_back(ChunkSource{r.attachment(), r.index(), dir});
  }
  if (missing.empty()) return absl::OkStatus();
  KLOG(Info, "outbox") << "sending " << missing.size() << " of "
                       << env.chunks_size() << " attachment chunks of "
                       << d.message_id << " to " << loop->peer << " ("
                       << env.chunks_size() - missing.size()
                       << " there already)";
  return link_->PutChunks(loop->peer, origin, wire_id, missing);
}

void Outbox::Fail(PeerLoop* loop, PeerState* state,
                  const std::vector<const PendingDelivery*>& ds,
                  const std::string& error, bool flash_waiting) {
  const int64_t now = clock_->NowUnixMs();
  state->failures += 1;
  const int64_t delay = BackoffDelayMs(
      state->failures, options_.initial_backoff_ms,
      flash_waiting
          ? std::min(options_.max_backoff_ms, options_.flash_max_backoff_ms)
          : options_.max_backoff_ms,
      Jitter());
  state->next_attempt_ms = now + delay;
  state->last_error = error;
  if (options_.metrics != nullptr) {
    options_.metrics
        ->GetCounter("kontor_delivery_attempts_failed_total",
                     "Exchanges with a peer that failed (then it backs off)",
                     {{"peer", loop->peer}})
        .Increment();
  }
  KLOG(Warning, "outbox") << "peer " << loop->peer << ": " << error
                          << "; attempt " << state->failures << ", next in "
                          << delay << " ms";
  if (auto s = store_->PutPeerState(*state); !s.ok()) {
    KLOG(Error, "outbox") << "cannot persist backoff of " << loop->peer << ": "
                          << s.message();
  }
  MarkAttempted(ds, error, now, 0);
  absl::MutexLock lock(&mu_);
  loop->runtime.connected = false;
  loop->runtime.last_error = error;
  loop->work = true;
  loop->in_flight.clear();
}

void Outbox::CountDelivery(const std::string& peer, absl::string_view outcome,
                           double n) const {
  if (options_.metrics == nullptr) return;
  options_.metrics
      ->GetCounter("kontor_deliveries_total",
                   "Deliveries settled or deferred, by recipient and outcome "
                   "(delivered, forwarded, rejected, expired, deferred)",
                   {{"peer", peer}, {"outcome", std::string(outcome)}})
      .Increment(n);
}

void Outbox::ExpireOverdue(const std::string& peer) {
  auto earliest = store_->EarliestQueuedExpiryMs(peer);
  if (!earliest.ok() || *earliest == 0 || *earliest >= clock_->NowUnixMs()) {
    return;
  }
  auto n = store_->ExpireOverdue(peer, clock_->NowUnixMs());
  if (n.ok() && *n > 0) {
    CountDelivery(peer, "expired", *n);
    KLOG(Info, "outbox") << *n << " message(s) to " << peer
                         << " expired undelivered";
  }
}

bool Outbox::ReturnOnce(PeerLoop* loop, PeerState* state) {
  if (!routed_) return false;
  auto pending = store_->NextReturns(loop->peer, options_.max_batch);
  if (!pending.ok() || pending->empty()) return false;
  std::vector<std::string> receipts;
  std::vector<int64_t> ids;
  for (const PendingReturn& r : *pending) {
    receipts.push_back(r.receipt);
    ids.push_back(r.id);
  }
  auto s = link_->ReturnReceipts(loop->peer, receipts);
  if (s.code() == absl::StatusCode::kCancelled) return false;
  if (!s.ok()) {
    Fail(loop, state, {}, absl::StrCat("returning receipts: ", s.message()));
    return false;
  }
  if (auto d = store_->ReturnsDone(ids); !d.ok()) {
    KLOG(Error, "outbox") << "cannot drop returned receipts: " << d.message();
    return false;
  }
  KLOG(Debug, "outbox") << "returned " << ids.size() << " receipt(s) to "
                        << loop->peer;
  return true;
}

// One round of a peer's delivery loop, stage by stage:
//
//   PickBatch     expire what is overdue; the next deliveries due (flash
//                 first, then urgent and routine 3:1), or, with nothing
//                 queued, a final offer of expired ones already sent
//   Assemble      those whose attachment chunks are at the peer (the rest
//                 go to the bulk lane first), up to the batch byte limit,
//                 with the routing block of routed and relayed copies
//   Exchange      send the batch, get one signed receipt per envelope (a
//                 failed exchange backs the peer off)
//   Judge         verify each receipt: the recipient's end-to-end answer
//                 (delivered, rejected, expired, deferred), or a relay's
//                 custody; an invalid one is no settlement
//   Settle        the settlements, durably, in one transaction; receipts
//                 of relayed messages start back towards their origin
//   Defer         a deferred delivery waits with its own backoff, or is
//                 suspended for an operator after too many
//   Succeed       the peer answered well: its backoff is reset
class Outbox::Round {
 public:
  Round(Outbox* outbox, PeerLoop* loop, PeerState* state)
      : o_(*outbox), loop_(loop), state_(state) {}

  // Each returns whether the round goes on.
  bool PickBatch();
  bool Assemble();
  bool Exchange();
  void Judge();
  bool Settle();
  void Defer();
  bool Succeed();

 private:
  struct Deferral {
    const PendingDelivery* d;
    std::string by;  // the recipient, or the relay
    std::string reason;
  };
  // A relay's own answer for `d` (custody, or a refusal of its own).
  void JudgeRelayAnswer(const PendingDelivery& d, const std::string& raw,
                        const v1::Receipt& receipt, const std::string& origin);
  // The recipient's answer for `d`.
  void JudgeRecipientAnswer(const PendingDelivery& d, const std::string& raw,
                            const v1::Receipt& receipt,
                            const v1::ReceiptBody& claimed,
                            const std::string& origin);

  Outbox& o_;
  PeerLoop* const loop_;
  PeerState* const state_;
  std::vector<PendingDelivery> pending_;
  bool final_round_ = false;
  std::vector<const PendingDelivery*> batch_;
  std::vector<std::string> envelopes_;
  bool flash_ = false;
  std::vector<std::string> receipts_;
  int64_t settled_at_ = 0;
  VerifiedRoots verified_;  // one ECDSA verification per receipt batch
  std::vector<Settlement> settlements_;
  std::vector<Deferral> deferred_;
  std::vector<const PendingDelivery*> bad_;
};

bool Outbox::RunOnce(PeerLoop* loop, PeerState* state) {
  Round round(this, loop, state);
  if (!round.PickBatch() || !round.Assemble() || !round.Exchange()) {
    return false;
  }
  round.Judge();
  if (!round.Settle()) return false;
  round.Defer();
  return round.Succeed();
}

bool Outbox::Round::PickBatch() {
  for (const std::string& d : loop_->destinations) {
    o_.ExpireOverdue(d);  // nothing past its expiry is sent as new
  }
  const int64_t now = o_.clock_->NowUnixMs();
  auto pending = o_.store_->NextDeliveries(loop_->destinations,
                                           o_.options_.max_batch, now);
  if (!pending.ok()) {
    KLOG(Error, "outbox") << "cannot read queue of " << loop_->peer << ": "
                          << pending.status().message();
    return false;
  }
  if (!pending->empty()) {
    pending_ = std::move(*pending);
    return true;
  }
  // Nothing queued: offer expired deliveries that were sent before one
  // final time, so that a recipient that stored one can settle it with its
  // stored receipt (a late receipt wins over expired).
  for (const std::string& d : loop_->destinations) {
    auto f = o_.store_->FinalAttempts(
        d, o_.options_.max_batch - pending_.size(), now, kFinalAttemptWindowMs);
    if (!f.ok()) return false;
    for (PendingDelivery& p : *f) pending_.push_back(std::move(p));
    if (pending_.size() >= o_.options_.max_batch) break;
  }
  final_round_ = true;
  return !pending_.empty();
}

bool Outbox::Round::Assemble() {
  size_t bytes = 0;
  for (const PendingDelivery& d : pending_) {
    if (d.chunk_count > 0) {
      // Its attachment chunks go first, on the bulk lane.
      absl::MutexLock lock(&o_.mu_);
      if (loop_->chunks_ready.count(d.message_id) == 0) {
        if (loop_->bulk_queued.insert(d.message_id).second) {
          loop_->bulk_queue.push_back(d);
        }
        continue;
      }
    }
    if (!batch_.empty() &&
        bytes + d.envelope.size() > o_.options_.max_batch_bytes) {
      break;
    }
    bytes += d.envelope.size();
    batch_.push_back(&d);
    flash_ = flash_ || d.priority == v1::FLASH;
    if (d.peer == loop_->peer && d.origin.empty()) {
      envelopes_.push_back(d.envelope);
      continue;
    }
    // Routed or relayed: the unsigned routing block says whom this copy is
    // for (relayed ones carry their trace already).
    v1::Envelope env;
    if (!env.ParseFromString(d.envelope)) {
      KLOG(Error, "outbox")
          << "stored envelope " << d.message_id << " does not parse";
      envelopes_.push_back(d.envelope);
      continue;
    }
    env.mutable_routing()->set_deliver_to(d.peer);
    envelopes_.push_back(env.SerializeAsString());
  }
  return !batch_.empty();
}

bool Outbox::Round::Exchange() {
  {
    absl::MutexLock lock(&o_.mu_);
    for (const PendingDelivery* d : batch_) {
      loop_->in_flight.insert(d->message_id);
    }
  }
  auto receipts = o_.link_->Exchange(loop_->peer, envelopes_);
  CrashPoint("deliver.after_send");
  if (receipts.status().code() == absl::StatusCode::kCancelled) {
    // This node is stopping: no failure of the peer, no backoff.
    absl::MutexLock lock(&o_.mu_);
    loop_->in_flight.clear();
    return false;
  }
  if (!receipts.ok()) {
    o_.Fail(loop_, state_, batch_, std::string(receipts.status().message()),
            flash_);
    return false;
  }
  if (receipts->size() != batch_.size()) {
    o_.Fail(loop_, state_, batch_,
            absl::StrCat("peer answered ", receipts->size(), " receipts for ",
                         batch_.size(), " envelopes"));
    return false;
  }
  receipts_ = std::move(*receipts);
  settled_at_ = o_.clock_->NowUnixMs();
  return true;
}

void Outbox::Round::Judge() {
  for (size_t i = 0; i < batch_.size(); ++i) {
    const PendingDelivery& d = *batch_[i];
    const std::string& origin = d.origin.empty() ? o_.node_id_ : d.origin;
    v1::Receipt receipt;
    v1::ReceiptBody claimed;
    if (!receipt.ParseFromString(receipts_[i]) ||
        !claimed.ParseFromString(receipt.body())) {
      KLOG(Security, "outbox") << "receipt from " << loop_->peer << " for "
                               << d.message_id << " does not parse";
      bad_.push_back(&d);
      continue;
    }
    // Routed through a relay, or relayed by us: the relay answers for
    // itself when it takes custody.
    const bool via_relay = d.peer != loop_->peer;
    if (via_relay && claimed.recipient() == loop_->peer) {
      JudgeRelayAnswer(d, receipts_[i], receipt, origin);
    } else {
      JudgeRecipientAnswer(d, receipts_[i], receipt, claimed, origin);
    }
  }
}

void Outbox::Round::JudgeRelayAnswer(const PendingDelivery& d,
                                     const std::string& raw,
                                     const v1::Receipt& receipt,
                                     const std::string& origin) {
  // Custody, or a refusal of the relay's own, which is never final (only
  // the recipient's is).
  auto body = VerifyReceipt(receipt, *o_.directory_, loop_->peer, origin,
                            d.wire_id(), d.outer_digest, &verified_);
  if (!body.ok()) {
    KLOG(Security, "outbox")
        << "invalid receipt from relay " << loop_->peer << " for "
        << d.message_id << ": " << body.status().message();
    bad_.push_back(&d);
  } else if (body->verdict() == v1::FORWARDED && body->deliver_to() == d.peer) {
    settlements_.push_back(Settlement{
        d.message_id, d.peer, kStateForwarded,
        absl::StrCat("forwarded by ", loop_->peer), raw, settled_at_, ""});
  } else {
    const std::string reason = body->verdict() == v1::FORWARDED
                                   ? "custody for another recipient"
                                   : Printable(body->reason(), 200);
    KLOG(Warning, "outbox") << "message " << d.message_id << " to " << d.peer
                            << " not taken: " << reason;
    deferred_.push_back(
        Deferral{&d, absl::StrCat("relay ", loop_->peer), reason});
  }
}

void Outbox::Round::JudgeRecipientAnswer(const PendingDelivery& d,
                                         const std::string& raw,
                                         const v1::Receipt& receipt,
                                         const v1::ReceiptBody& claimed,
                                         const std::string& origin) {
  // The settlement of a relayed message goes back towards its origin.
  const std::string return_to =
      d.origin.empty() ? "" : o_.routes_.NextHop(origin);
  const std::string wire_id = d.wire_id();
  bool altered = false;
  absl::StatusOr<v1::ReceiptBody> body =
      claimed.recipient() != d.peer
          ? absl::UnauthenticatedError(
                absl::StrCat("receipt from ", Printable(claimed.recipient()),
                             " for ", d.peer))
      : claimed.verdict() == v1::DEFERRED
          ? VerifyReceipt(receipt, *o_.directory_, d.peer, origin, wire_id,
                          d.outer_digest, &verified_)
          : VerifyEndToEndReceipt(receipt, *o_.directory_, d.peer, origin,
                                  wire_id, d.outer_digest, &altered,
                                  &verified_);
  if (!body.ok()) {
    KLOG(Security, "outbox")
        << "invalid receipt from " << loop_->peer << " for " << d.message_id
        << ": " << body.status().message();
    bad_.push_back(&d);
    return;
  }
  if (body->verdict() == v1::ACCEPTED) {
    const std::string problem =
        ReceiptContentProblem(*body, receipt.body(), d.inner_digest);
    if (!problem.empty()) {
      // A peer of an older version names no content: a warning; other
      // content named, or bytes off the standard: a security event.
      LogLine(body->inner_digest().empty() ? LogLevel::kWarning
                                           : LogLevel::kSecurity,
              "outbox")
          << "message " << d.message_id << ": " << problem;
    }
    settlements_.push_back(Settlement{d.message_id, d.peer, kStateDelivered,
                                      problem, raw, settled_at_, return_to});
  } else if (body->verdict() == v1::DEFERRED) {
    KLOG(Warning, "outbox") << "message " << d.message_id << " deferred by "
                            << d.peer << ": " << Printable(body->reason(), 200);
    deferred_.push_back(Deferral{&d, d.peer, Printable(body->reason(), 200)});
    if (d.chunk_count > 0) {
      // Maybe a chunk went missing there: ask again before resending.
      absl::MutexLock lock(&o_.mu_);
      loop_->chunks_ready.erase(d.message_id);
    }
  } else {
    const bool expired = body->refusal() == v1::REFUSAL_EXPIRED;
    std::string reason = absl::StrCat(v1::RefusalCode_Name(body->refusal()),
                                      ": ", Printable(body->reason(), 300));
    if (altered) {
      absl::StrAppend(&reason, " (what reached ", d.peer,
                      " was not the envelope sent: altered on the way)");
    }
    KLOG(Warning, "outbox")
        << "message " << d.message_id << " refused by " << d.peer << " ("
        << v1::RefusalCode_Name(body->refusal())
        << "): " << Printable(body->reason(), 200)
        << (altered ? " -- the envelope was altered on the way" : "");
    settlements_.push_back(Settlement{d.message_id, d.peer,
                                      expired ? kStateExpired : kStateRejected,
                                      reason, raw, settled_at_, return_to});
  }
}

bool Outbox::Round::Settle() {
  CrashPoint("deliver.before_receipt_commit");
  if (!settlements_.empty()) {
    if (auto s = o_.store_->Settle(settlements_); !s.ok()) {
      KLOG(Error, "outbox") << "cannot store receipts from " << loop_->peer
                            << ": " << s.message();
      o_.Fail(loop_, state_, {}, absl::StrCat("store: ", s.message()));
      return false;
    }
    for (const Settlement& x : settlements_) o_.CountDelivery(x.peer, x.state);
    if (o_.options_.metrics != nullptr) {
      const Histogram latency = o_.options_.metrics->GetHistogram(
          "kontor_delivery_latency_seconds",
          "From submission to the recipient's receipt stored here (own "
          "messages delivered)",
          LatencyBuckets());
      for (const PendingDelivery* d : batch_) {
        if (!d->origin.empty()) continue;
        for (const Settlement& x : settlements_) {
          if (x.message_id == d->message_id && x.peer == d->peer &&
              x.state == kStateDelivered) {
            latency.Observe(std::max<int64_t>(0, settled_at_ - d->created_ms) /
                            1000.0);
          }
        }
      }
    }
    std::set<std::string> hops;
    for (const Settlement& x : settlements_) {
      if (!x.return_to.empty()) hops.insert(x.return_to);
    }
    for (const std::string& hop : hops) o_.Notify(hop);
    absl::MutexLock lock(&o_.mu_);
    for (const Settlement& x : settlements_) {
      if (x.state != kStateForwarded) loop_->chunks_ready.erase(x.message_id);
    }
  }
  CrashPoint("deliver.after_receipt_commit");
  if (final_round_) {
    std::map<std::string, std::vector<std::string>> by_peer;
    for (const PendingDelivery* d : batch_) {
      by_peer[d->peer].push_back(d->message_id);
    }
    for (const auto& [peer, keys] : by_peer) {
      if (auto s = o_.store_->FinalAttemptMade(peer, keys); !s.ok()) {
        KLOG(Error, "outbox") << "cannot record final attempt: " << s.message();
      }
    }
  }
  return true;
}

void Outbox::Round::Defer() {
  // A deferral concerns that message only (the peer is fine): it waits
  // with its own backoff, so it is not offered again at once.
  for (const auto& [d, by, reason] : deferred_) {
    o_.CountDelivery(d->peer, "deferred");
    if (d->deferrals + 1 >= o_.options_.suspend_after_deferrals) {
      KLOG(Warning, "outbox")
          << "message " << d->message_id << " to " << loop_->peer
          << " suspended after " << d->deferrals + 1
          << " deferrals; needs an operator: " << reason;
      if (auto s =
              o_.store_->Suspend(d->message_id, d->peer,
                                 absl::StrCat("deferred ", d->deferrals + 1,
                                              " times by ", by, ": ", reason),
                                 settled_at_);
          !s.ok()) {
        KLOG(Error, "outbox") << "cannot suspend: " << s.message();
      }
      continue;
    }
    const int64_t delay =
        BackoffDelayMs(d->deferrals + 1, o_.options_.initial_backoff_ms,
                       o_.options_.max_backoff_ms, Jitter());
    o_.MarkAttempted({d}, absl::StrCat("deferred by ", by, ": ", reason),
                     settled_at_, settled_at_ + delay);
  }
}

bool Outbox::Round::Succeed() {
  if (!bad_.empty()) {
    o_.Fail(loop_, state_, bad_, "invalid receipt");
    return false;
  }
  {
    absl::MutexLock lock(&o_.mu_);
    loop_->in_flight.clear();
    loop_->runtime.connected = true;
    loop_->runtime.last_error.clear();
  }
  if (state_->failures != 0 ||
      settled_at_ - state_->last_success_ms > kSuccessPersistMs) {
    if (state_->failures != 0) {
      KLOG(Info, "outbox") << "peer " << loop_->peer
                           << " reachable again after " << state_->failures
                           << " failed attempts";
    }
    state_->failures = 0;
    state_->next_attempt_ms = 0;
    state_->last_error.clear();
    state_->last_success_ms = settled_at_;
    if (auto s = o_.store_->PutPeerState(*state_); !s.ok()) {
      KLOG(Error, "outbox") << "cannot persist peer state: " << s.message();
    }
  }
  return true;
}

absl::StatusOr<size_t> CollectSettledChunks(DeliveryStore* store,
                                            const std::string& data_dir,
                                            int64_t now_ms) {
  const AttachmentDirs dirs(data_dir);
  size_t removed = 0;
  for (;;) {
    auto holders =
        store->SettledChunkHolders(now_ms - kFinalAttemptWindowMs, 256);
    if (!holders.ok()) return holders.status();
    if (holders->empty()) break;
    std::vector<std::string> keys;
    for (const ChunkHolder& h : *holders) {
      if (h.origin.empty()) {
        for (const std::string& u : h.uploads) RemoveTree(dirs.Upload(u));
      } else {
        // A relayed message's key is "origin/id"; its chunks are in
        // relay/ (this node's own copy, if it is also a recipient, in in/).
        RemoveTree(
            dirs.RelayMessage(h.origin, h.key.substr(h.origin.size() + 1)));
      }
      keys.push_back(h.key);
    }
    if (auto s = store->MarkChunksRemoved(keys, now_ms); !s.ok()) return s;
    removed += keys.size();
    if (holders->size() < 256) break;
  }
  if (removed > 0) {
    KLOG(Info, "outbox") << "removed the attachment chunks of " << removed
                         << " message(s) whose deliveries are all settled";
  }
  return removed;
}

}  // namespace kontor
