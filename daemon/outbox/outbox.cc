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
               Store* store, PeerLink* link, const KeyDirectory* directory,
               const Clock* clock, OutboxOptions options)
    : node_id_(std::move(node_id)),
      store_(store),
      link_(link),
      directory_(directory),
      clock_(clock),
      options_(options) {
  for (const std::string& p : peers) {
    auto loop = std::make_unique<PeerLoop>();
    loop->peer = p;
    loop->destinations = {p};
    loops_[p] = std::move(loop);
  }
}

void Outbox::SetRoutes(Routes routes) {
  routes_ = std::move(routes);
  routed_ = true;
  for (auto& [peer, loop] : loops_) {
    loop->destinations = routes_.DestinationsVia(peer);
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

bool Outbox::RunOnce(PeerLoop* loop, PeerState* state) {
  for (const std::string& d : loop->destinations) {
    ExpireOverdue(d);  // nothing past its expiry is sent as new
  }
  const int64_t now = clock_->NowUnixMs();
  auto pending =
      store_->NextDeliveries(loop->destinations, options_.max_batch, now);
  if (!pending.ok()) {
    KLOG(Error, "outbox") << "cannot read queue of " << loop->peer << ": "
                          << pending.status().message();
    return false;
  }
  bool final_round = false;
  if (pending->empty()) {
    // Nothing queued: offer expired deliveries that were sent before one
    // final time, so that a recipient that stored one can settle it with its
    // stored receipt (a late receipt wins over expired).
    std::vector<PendingDelivery> finals;
    for (const std::string& d : loop->destinations) {
      auto f = store_->FinalAttempts(d, options_.max_batch - finals.size(), now,
                                     kFinalAttemptWindowMs);
      if (!f.ok()) return false;
      for (PendingDelivery& p : *f) finals.push_back(std::move(p));
      if (finals.size() >= options_.max_batch) break;
    }
    if (finals.empty()) return false;
    pending = std::move(finals);
    final_round = true;
  }

  std::vector<Settlement> settlements;
  std::vector<const PendingDelivery*> batch;
  std::vector<std::string> envelopes;
  size_t bytes = 0;
  for (const PendingDelivery& d : *pending) {
    if (d.chunk_count > 0) {
      // Its attachment chunks go first, on the bulk lane.
      absl::MutexLock lock(&mu_);
      if (loop->chunks_ready.count(d.message_id) == 0) {
        if (loop->bulk_queued.insert(d.message_id).second) {
          loop->bulk_queue.push_back(d);
        }
        continue;
      }
    }
    if (!batch.empty() &&
        bytes + d.envelope.size() > options_.max_batch_bytes) {
      break;
    }
    bytes += d.envelope.size();
    batch.push_back(&d);
    if (d.peer == loop->peer && d.origin.empty()) {
      envelopes.push_back(d.envelope);
    } else {
      // Routed or relayed: the unsigned routing block says whom this copy
      // is for (relayed ones carry their trace already).
      v1::Envelope env;
      if (!env.ParseFromString(d.envelope)) {
        KLOG(Error, "outbox")
            << "stored envelope " << d.message_id << " does not parse";
        envelopes.push_back(d.envelope);
        continue;
      }
      env.mutable_routing()->set_deliver_to(d.peer);
      envelopes.push_back(env.SerializeAsString());
    }
  }
  if (batch.empty()) return false;

  std::vector<std::string> ids;
  bool flash = false;
  for (const PendingDelivery* d : batch) {
    ids.push_back(d->message_id);
    flash = flash || d->priority == v1::FLASH;
  }

  {
    absl::MutexLock lock(&mu_);
    loop->in_flight.insert(ids.begin(), ids.end());
  }
  auto receipts = link_->Exchange(loop->peer, envelopes);
  CrashPoint("deliver.after_send");
  if (receipts.status().code() == absl::StatusCode::kCancelled) {
    // This node is stopping: no failure of the peer, no backoff.
    absl::MutexLock lock(&mu_);
    loop->in_flight.clear();
    return false;
  }
  if (!receipts.ok()) {
    Fail(loop, state, batch, std::string(receipts.status().message()), flash);
    return false;
  }
  if (receipts->size() != batch.size()) {
    Fail(loop, state, batch,
         absl::StrCat("peer answered ", receipts->size(), " receipts for ",
                      batch.size(), " envelopes"));
    return false;
  }

  std::vector<const PendingDelivery*> bad;
  struct Deferral {
    const PendingDelivery* d;
    std::string by;  // the recipient, or the relay
    std::string reason;
  };
  std::vector<Deferral> deferred;
  const int64_t settled_at = clock_->NowUnixMs();
  VerifiedRoots verified;  // one ECDSA verification per receipt batch
  for (size_t i = 0; i < batch.size(); ++i) {
    const PendingDelivery& d = *batch[i];
    const std::string& origin = d.origin.empty() ? node_id_ : d.origin;
    const std::string wire_id = d.wire_id();
    // Routed through a relay, or relayed by us: the settlement goes back
    // towards the origin.
    const bool via_relay = d.peer != loop->peer;
    const std::string return_to =
        d.origin.empty() ? "" : routes_.NextHop(origin);
    v1::Receipt receipt;
    v1::ReceiptBody claimed;
    if (!receipt.ParseFromString((*receipts)[i]) ||
        !claimed.ParseFromString(receipt.body())) {
      KLOG(Security, "outbox") << "receipt from " << loop->peer << " for "
                               << d.message_id << " does not parse";
      bad.push_back(&d);
      continue;
    }
    if (via_relay && claimed.recipient() == loop->peer) {
      // The relay's own answer: custody, or a refusal of its own, which is
      // never final (only the recipient's is).
      auto body = VerifyReceipt(receipt, *directory_, loop->peer, origin,
                                wire_id, d.outer_digest, &verified);
      if (!body.ok()) {
        KLOG(Security, "outbox")
            << "invalid receipt from relay " << loop->peer << " for "
            << d.message_id << ": " << body.status().message();
        bad.push_back(&d);
      } else if (body->verdict() == v1::FORWARDED &&
                 body->deliver_to() == d.peer) {
        settlements.push_back(
            Settlement{d.message_id, d.peer, kStateForwarded,
                       absl::StrCat("forwarded by ", loop->peer),
                       (*receipts)[i], settled_at, ""});
      } else {
        const std::string reason = body->verdict() == v1::FORWARDED
                                       ? "custody for another recipient"
                                       : Printable(body->reason(), 200);
        KLOG(Warning, "outbox") << "message " << d.message_id << " to "
                                << d.peer << " not taken: " << reason;
        deferred.push_back(
            Deferral{&d, absl::StrCat("relay ", loop->peer), reason});
      }
      continue;
    }
    bool altered = false;
    absl::StatusOr<v1::ReceiptBody> body =
        claimed.recipient() != d.peer
            ? absl::UnauthenticatedError(
                  absl::StrCat("receipt from ", Printable(claimed.recipient()),
                               " for ", d.peer))
        : claimed.verdict() == v1::DEFERRED
            ? VerifyReceipt(receipt, *directory_, d.peer, origin, wire_id,
                            d.outer_digest, &verified)
            : VerifyEndToEndReceipt(receipt, *directory_, d.peer, origin,
                                    wire_id, d.outer_digest, &altered,
                                    &verified);
    if (!body.ok()) {
      KLOG(Security, "outbox")
          << "invalid receipt from " << loop->peer << " for " << d.message_id
          << ": " << body.status().message();
      bad.push_back(&d);
      continue;
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
      settlements.push_back(Settlement{d.message_id, d.peer, kStateDelivered,
                                       problem, (*receipts)[i], settled_at,
                                       return_to});
    } else if (body->verdict() == v1::DEFERRED) {
      KLOG(Warning, "outbox")
          << "message " << d.message_id << " deferred by " << d.peer << ": "
          << Printable(body->reason(), 200);
      deferred.push_back(Deferral{&d, d.peer, Printable(body->reason(), 200)});
      if (d.chunk_count > 0) {
        // Maybe a chunk went missing there: ask again before resending.
        absl::MutexLock lock(&mu_);
        loop->chunks_ready.erase(d.message_id);
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
      settlements.push_back(Settlement{
          d.message_id, d.peer, expired ? kStateExpired : kStateRejected,
          reason, (*receipts)[i], settled_at, return_to});
    }
  }
  CrashPoint("deliver.before_receipt_commit");
  if (!settlements.empty()) {
    if (auto s = store_->Settle(settlements); !s.ok()) {
      KLOG(Error, "outbox")
          << "cannot store receipts from " << loop->peer << ": " << s.message();
      Fail(loop, state, {}, absl::StrCat("store: ", s.message()));
      return false;
    }
    for (size_t i = 0; i < settlements.size(); ++i) {
      CountDelivery(settlements[i].peer, settlements[i].state);
    }
    if (options_.metrics != nullptr) {
      const Histogram latency = options_.metrics->GetHistogram(
          "kontor_delivery_latency_seconds",
          "From submission to the recipient's receipt stored here (own "
          "messages delivered)",
          LatencyBuckets());
      for (const PendingDelivery* d : batch) {
        if (d->origin.empty()) {
          for (const Settlement& x : settlements) {
            if (x.message_id == d->message_id && x.peer == d->peer &&
                x.state == kStateDelivered) {
              latency.Observe(std::max<int64_t>(0, settled_at - d->created_ms) /
                              1000.0);
            }
          }
        }
      }
    }
    std::set<std::string> hops;
    for (const Settlement& x : settlements) {
      if (!x.return_to.empty()) hops.insert(x.return_to);
    }
    for (const std::string& hop : hops) Notify(hop);
    absl::MutexLock lock(&mu_);
    for (const Settlement& x : settlements) {
      if (x.state != kStateForwarded) loop->chunks_ready.erase(x.message_id);
    }
  }
  CrashPoint("deliver.after_receipt_commit");
  if (final_round) {
    std::map<std::string, std::vector<std::string>> by_peer;
    for (const PendingDelivery* d : batch) {
      by_peer[d->peer].push_back(d->message_id);
    }
    for (const auto& [peer, keys] : by_peer) {
      if (auto s = store_->FinalAttemptMade(peer, keys); !s.ok()) {
        KLOG(Error, "outbox") << "cannot record final attempt: " << s.message();
      }
    }
  }
  // A deferral concerns that message only (the peer is fine): it waits
  // with its own backoff, so it is not offered again at once.
  for (const auto& [d, by, reason] : deferred) {
    CountDelivery(d->peer, "deferred");
    if (d->deferrals + 1 >= options_.suspend_after_deferrals) {
      KLOG(Warning, "outbox")
          << "message " << d->message_id << " to " << loop->peer
          << " suspended after " << d->deferrals + 1
          << " deferrals; needs an operator: " << reason;
      if (auto s = store_->Suspend(d->message_id, d->peer,
                                   absl::StrCat("deferred ", d->deferrals + 1,
                                                " times by ", by, ": ", reason),
                                   settled_at);
          !s.ok()) {
        KLOG(Error, "outbox") << "cannot suspend: " << s.message();
      }
      continue;
    }
    const int64_t delay =
        BackoffDelayMs(d->deferrals + 1, options_.initial_backoff_ms,
                       options_.max_backoff_ms, Jitter());
    MarkAttempted({d}, absl::StrCat("deferred by ", by, ": ", reason),
                  settled_at, settled_at + delay);
  }
  if (!bad.empty()) {
    Fail(loop, state, bad, "invalid receipt");
    return false;
  }
  {
    absl::MutexLock lock(&mu_);
    loop->in_flight.clear();
    loop->runtime.connected = true;
    loop->runtime.last_error.clear();
  }
  if (state->failures != 0 ||
      settled_at - state->last_success_ms > kSuccessPersistMs) {
    if (state->failures != 0) {
      KLOG(Info, "outbox") << "peer " << loop->peer << " reachable again after "
                           << state->failures << " failed attempts";
    }
    state->failures = 0;
    state->next_attempt_ms = 0;
    state->last_error.clear();
    state->last_success_ms = settled_at;
    if (auto s = store_->PutPeerState(*state); !s.ok()) {
      KLOG(Error, "outbox") << "cannot persist peer state: " << s.message();
    }
  }
  return true;
}

absl::StatusOr<size_t> CollectSettledChunks(Store* store,
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
