// Conformance (conformance.h): submitting messages. A submission is stored
// with one queued delivery per recipient, durably; a client key makes it
// idempotent; NextDeliveries hands out what is due, flash strictly first,
// then urgent and routine sharing the batch 3:1.

#include <algorithm>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "daemon/store/store.h"
#include "gtest/gtest.h"
#include "tests/store/backends.h"
#include "tests/store/conformance.h"

namespace kontor {
namespace {

class SendingConformanceTest : public SendingFixture {};

// ------------------------------------------------------------ submission

TEST_P(SendingConformanceTest, OutgoingSurvivesReopen) {
  ASSERT_TRUE(
      store_->InsertOutgoing(Message("m1", 1, 1000, {"fi", "lv"})).ok());
  Reopen();
  auto rows = store_->Deliveries("m1");
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0].state, "queued");
  auto next = store_->NextDeliveries("lv", 10, 0);
  ASSERT_EQ(next->size(), 1u);
  EXPECT_EQ((*next)[0].envelope, "envelope-m1");
}

TEST_P(SendingConformanceTest, ConcurrentWritersShareCommits) {
  constexpr int kThreads = 8, kEach = 50;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        auto r = store_->InsertOutgoing(
            Message("m" + std::to_string(t) + "-" + std::to_string(i)));
        ASSERT_TRUE(r.ok()) << r.status();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(store_->writes(), uint64_t{kThreads * kEach});
  EXPECT_LE(store_->commits(), store_->writes());
  EXPECT_EQ(store_->PeerQueue("fi")->depth, uint64_t{kThreads * kEach});
}

TEST_P(SendingConformanceTest, PeerStatePersists) {
  PeerState p{"fi", 3, 12345, "connection refused", 99};
  ASSERT_TRUE(store_->PutPeerState(p).ok());
  Reopen();
  auto got = store_->GetPeerState("fi");
  EXPECT_EQ(got->failures, 3u);
  EXPECT_EQ(got->next_attempt_ms, 12345);
  EXPECT_EQ(got->last_error, "connection refused");
}

// ----------------------------------------------------------- idempotency

TEST_P(SendingConformanceTest, IdempotencyKeyIsScopedAndChecksContent) {
  OutgoingMessage m = Message("m1");
  m.client_key = "k1";
  ASSERT_FALSE(store_->InsertOutgoing(m)->duplicate);
  OutgoingMessage again = Message("m2");
  again.client_key = "k1";
  again.request_hash = m.request_hash;
  auto dup = store_->InsertOutgoing(again);
  ASSERT_TRUE(dup.ok());
  EXPECT_TRUE(dup->duplicate);
  EXPECT_EQ(dup->message_id, "m1");
  OutgoingMessage different = Message("m3");
  different.client_key = "k1";
  EXPECT_EQ(store_->InsertOutgoing(different).status().code(),
            absl::StatusCode::kAlreadyExists);
  OutgoingMessage other_user = Message("m4");
  other_user.client_key = "k1";
  other_user.submitter = "bob";
  EXPECT_FALSE(store_->InsertOutgoing(other_user)->duplicate);
  EXPECT_TRUE(store_->Deliveries("m2")->empty());  // nothing half-written
}

// FindByClientKey answers what a submission would, without writing; the
// key holds across a restart; no key, no idempotency.
TEST_P(SendingConformanceTest, ClientKeyLookupAnswersLikeASubmission) {
  auto none = store_->FindByClientKey("alice", "k1", "hash-m1");
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_FALSE(none->has_value());
  OutgoingMessage m = Message("m1", 1, 1000, {"fi", "lv"});
  m.client_key = "k1";
  auto first = store_->InsertOutgoing(m);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->duplicate);
  EXPECT_EQ(first->message_id, "m1");
  Reopen();

  auto found = store_->FindByClientKey("alice", "k1", "hash-m1");
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->message_id, "m1");
  EXPECT_TRUE((*found)->duplicate);
  EXPECT_EQ(store_->FindByClientKey("alice", "k1", "other").status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_FALSE(store_->FindByClientKey("bob", "k1", "hash-m1")->has_value());
  EXPECT_FALSE(store_->FindByClientKey("alice", "k2", "hash-m1")->has_value());

  // The client retries after the restart: the original, nothing new.
  OutgoingMessage retry = Message("m2", 1, 2000, {"fi", "lv"});
  retry.client_key = "k1";
  retry.request_hash = "hash-m1";
  auto dup = store_->InsertOutgoing(retry);
  ASSERT_TRUE(dup.ok()) << dup.status();
  EXPECT_TRUE(dup->duplicate);
  EXPECT_EQ(dup->message_id, "m1");
  EXPECT_TRUE(store_->Deliveries("m2")->empty());
  EXPECT_EQ(store_->Deliveries("m1")->size(), 2u);
  EXPECT_EQ(store_->PeerQueue("fi")->depth, 1u);

  // Without a client key the same request is another message.
  OutgoingMessage a = Message("n1");
  OutgoingMessage b = Message("n2");
  b.request_hash = a.request_hash;
  EXPECT_FALSE(store_->InsertOutgoing(a)->duplicate);
  auto second = store_->InsertOutgoing(b);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_FALSE(second->duplicate);
  EXPECT_EQ(second->message_id, "n2");
  EXPECT_EQ(store_->PeerQueue("fi")->depth, 3u);
}

// Clients retrying at once with one key: one message, every retry told
// its id.
TEST_P(SendingConformanceTest,
       ConcurrentRetriesWithOneClientKeyMakeOneMessage) {
  constexpr int kThreads = 8;
  std::vector<absl::StatusOr<SubmitOutcome>> outcomes(
      kThreads, absl::UnknownError("not run"));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      OutgoingMessage m = Message("c" + std::to_string(t));
      m.client_key = "k";
      m.request_hash = "same request";
      outcomes[t] = store_->InsertOutgoing(m);
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> ids;
  int originals = 0;
  for (const auto& o : outcomes) {
    ASSERT_TRUE(o.ok()) << o.status();
    ids.insert(o->message_id);
    originals += o->duplicate ? 0 : 1;
  }
  EXPECT_EQ(originals, 1);
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_EQ(store_->PeerQueue("fi")->depth, 1u);
  EXPECT_EQ(store_->Deliveries(*ids.begin())->size(), 1u);
  auto audit = store_->ListAudit(0, 100);
  ASSERT_TRUE(audit.ok()) << audit.status();
  EXPECT_EQ(audit->size(), 1u);  // disclosed once
}

// ------------------------------------------------------- NextDeliveries

TEST_P(SendingConformanceTest, FlashFirstThenOldest) {
  ASSERT_TRUE(store_->InsertOutgoing(Message("routine-old", 1, 1)).ok());
  ASSERT_TRUE(store_->InsertOutgoing(Message("routine-new", 1, 5)).ok());
  ASSERT_TRUE(store_->InsertOutgoing(Message("flash", 3, 9)).ok());
  ASSERT_TRUE(store_->InsertOutgoing(Message("urgent", 2, 7)).ok());
  auto next = store_->NextDeliveries("fi", 10, 0);
  ASSERT_EQ(next->size(), 4u);
  EXPECT_EQ((*next)[0].message_id, "flash");
  EXPECT_EQ((*next)[1].message_id, "urgent");
  EXPECT_EQ((*next)[2].message_id, "routine-old");
}

TEST_P(SendingConformanceTest,
       UrgentAndRoutineShareABatchSoRoutineIsNeverStarved) {
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(
        store_->InsertOutgoing(Message("u" + std::to_string(i), 2, i)).ok());
    ASSERT_TRUE(
        store_->InsertOutgoing(Message("r" + std::to_string(i), 1, i)).ok());
  }
  ASSERT_TRUE(store_->InsertOutgoing(Message("f", 3, 1000)).ok());
  auto batch = *store_->NextDeliveries("fi", 65, 0);
  ASSERT_EQ(batch.size(), 65u);
  EXPECT_EQ(batch[0].message_id, "f");
  // Interleaved, so a batch cut short by its byte limit keeps the share.
  EXPECT_EQ(batch[1].priority, 2);
  EXPECT_EQ(batch[2].priority, 2);
  EXPECT_EQ(batch[3].priority, 2);
  EXPECT_EQ(batch[4].priority, 1);
  int urgent = 0, routine = 0;
  for (const auto& d : batch) {
    urgent += d.priority == 2;
    routine += d.priority == 1;
  }
  EXPECT_EQ(urgent, 48);
  EXPECT_EQ(routine, 16);
  // With no urgent traffic, routine fills the batch.
  Reopen();
  auto only_routine = *store_->NextDeliveries("lv", 10, 0);
  EXPECT_TRUE(only_routine.empty());
}

// The share holds in any full batch: a quarter routine, the rest urgent,
// each oldest first.
TEST_P(SendingConformanceTest, FullBatchesAreSharedThreeToOne) {
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(
        store_->InsertOutgoing(Message("u" + std::to_string(i), 2, 100 + i))
            .ok());
    ASSERT_TRUE(
        store_->InsertOutgoing(Message("r" + std::to_string(i), 1, 100 + i))
            .ok());
  }
  for (size_t limit : {4u, 8u, 40u}) {
    SCOPED_TRACE(limit);
    auto batch = store_->NextDeliveries("fi", limit, 0);
    ASSERT_TRUE(batch.ok()) << batch.status();
    ASSERT_EQ(batch->size(), limit);
    std::vector<std::string> urgent, routine;
    for (const PendingDelivery& d : *batch) {
      (d.priority == 2 ? urgent : routine).push_back(d.message_id);
    }
    EXPECT_EQ(urgent.size(), limit * 3 / 4);
    EXPECT_EQ(routine.size(), limit / 4);
    for (size_t i = 0; i < urgent.size(); ++i) {
      EXPECT_EQ(urgent[i], "u" + std::to_string(i));
    }
    for (size_t i = 0; i < routine.size(); ++i) {
      EXPECT_EQ(routine[i], "r" + std::to_string(i));
    }
  }
}

// Either class takes what the other leaves; flash can fill a whole batch.
TEST_P(SendingConformanceTest, AClassRunningShortLeavesItsShareToTheOther) {
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(
        store_
            ->InsertOutgoing(Message("fi-u" + std::to_string(i), 2, i, {"fi"}))
            .ok());
    ASSERT_TRUE(
        store_
            ->InsertOutgoing(Message("lv-r" + std::to_string(i), 1, i, {"lv"}))
            .ok());
    ASSERT_TRUE(
        store_
            ->InsertOutgoing(Message("lt-f" + std::to_string(i), 3, i, {"lt"}))
            .ok());
  }
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(
        store_
            ->InsertOutgoing(Message("fi-r" + std::to_string(i), 1, i, {"fi"}))
            .ok());
    ASSERT_TRUE(
        store_
            ->InsertOutgoing(Message("lv-u" + std::to_string(i), 2, i, {"lv"}))
            .ok());
    ASSERT_TRUE(
        store_
            ->InsertOutgoing(Message("lt-u" + std::to_string(i), 2, i, {"lt"}))
            .ok());
  }
  auto count = [](const std::vector<PendingDelivery>& batch, int priority) {
    return std::count_if(
        batch.begin(), batch.end(),
        [&](const PendingDelivery& d) { return d.priority == priority; });
  };
  // Two routine for fi: the urgent take the rest.
  auto fi = *store_->NextDeliveries("fi", 12, 0);
  ASSERT_EQ(fi.size(), 12u);
  EXPECT_EQ(count(fi, 1), 2);
  EXPECT_EQ(count(fi, 2), 10);
  // Two urgent for lv: routine takes the rest.
  auto lv = *store_->NextDeliveries("lv", 12, 0);
  ASSERT_EQ(lv.size(), 12u);
  EXPECT_EQ(count(lv, 2), 2);
  EXPECT_EQ(count(lv, 1), 10);
  // Twenty flash for lt: the whole batch.
  auto lt = *store_->NextDeliveries("lt", 12, 0);
  ASSERT_EQ(lt.size(), 12u);
  EXPECT_EQ(count(lt, 3), 12);
  EXPECT_EQ(lt[0].message_id, "lt-f0");
  EXPECT_EQ(lt[11].message_id, "lt-f11");
}

TEST_P(SendingConformanceTest, OutOfRangePrioritiesAreClampedNotStranded) {
  ASSERT_TRUE(store_->InsertOutgoing(Message("zero", 0, 1)).ok());
  ASSERT_TRUE(store_->InsertOutgoing(Message("nine", 9, 2)).ok());
  auto due = *store_->NextDeliveries("fi", 10, 0);
  ASSERT_EQ(due.size(), 2u);
  EXPECT_EQ(due[0].message_id, "nine");  // clamped to flash
  EXPECT_EQ(due[0].priority, 3);
  EXPECT_EQ(due[1].message_id, "zero");  // clamped to routine
  EXPECT_EQ(due[1].priority, 1);
}

TEST_P(SendingConformanceTest, NextDeliveriesOverSeveralPeersKeepsFlashFirst) {
  // Own messages to fi (direct) and lv (routed through fi), and one relayed
  // for ee to lv.
  ASSERT_TRUE(store_->InsertOutgoing(Message("r-fi", 1, 1, {"fi"})).ok());
  ASSERT_TRUE(store_->InsertOutgoing(Message("u-lv", 2, 2, {"lv"})).ok());
  ASSERT_TRUE(store_->InsertOutgoing(Message("r-lv", 1, 3, {"lv"})).ok());
  ASSERT_TRUE(store_->InsertOutgoing(Message("u-fi", 2, 4, {"fi"})).ok());
  ASSERT_TRUE(store_->InsertOutgoing(Message("other", 3, 0, {"lt"})).ok());
  std::vector<std::optional<DedupEntry>> existing;
  ASSERT_TRUE(
      store_->InsertRelayed({Relayed("f-ee", "lv", "d", "ee", 3, 5)}, &existing)
          .ok());
  auto next =
      store_->NextDeliveries(std::vector<std::string>{"fi", "lv"}, 10, 0);
  ASSERT_TRUE(next.ok()) << next.status();
  ASSERT_EQ(next->size(), 5u);
  EXPECT_EQ((*next)[0].message_id, "ee/f-ee");  // flash first
  EXPECT_EQ((*next)[0].peer, "lv");
  EXPECT_EQ((*next)[0].origin, "ee");
  EXPECT_EQ((*next)[0].envelope, "envelope-f-ee");
  EXPECT_EQ((*next)[0].priority, 3);
  EXPECT_EQ((*next)[1].message_id, "u-lv");  // then urgent, oldest first
  EXPECT_EQ((*next)[1].peer, "lv");
  EXPECT_EQ((*next)[1].origin, "");
  EXPECT_EQ((*next)[2].message_id, "u-fi");
  EXPECT_EQ((*next)[2].peer, "fi");
  EXPECT_EQ((*next)[3].message_id, "r-fi");  // routine, oldest first
  EXPECT_EQ((*next)[3].peer, "fi");
  EXPECT_EQ((*next)[4].message_id, "r-lv");
  // One peer of the two, and the single-peer form, agree.
  auto lv = *store_->NextDeliveries(std::vector<std::string>{"lv"}, 10, 0);
  ASSERT_EQ(lv.size(), 3u);
  EXPECT_EQ(lv[0].message_id, "ee/f-ee");
  EXPECT_EQ(store_->NextDeliveries("lv", 10, 0)->size(), 3u);
  EXPECT_TRUE(
      store_->NextDeliveries(std::vector<std::string>{}, 10, 0)->empty());
}

// A batch under four cannot keep the 3:1 share: urgent goes first there
// (once, the routine share was at least one per batch, so with
// limits.max_batch 1 urgent waited behind the whole routine backlog).
TEST_P(SendingConformanceTest, BatchOfOneGoesToUrgentBeforeRoutine) {
  ASSERT_TRUE(store_->InsertOutgoing(Message("routine", 1, 1)).ok());
  ASSERT_TRUE(store_->InsertOutgoing(Message("urgent", 2, 2)).ok());
  auto batch = store_->NextDeliveries("fi", 1, 0);
  ASSERT_TRUE(batch.ok()) << batch.status();
  ASSERT_EQ(batch->size(), 1u);
  EXPECT_EQ(batch->front().message_id, "urgent");
  EXPECT_EQ(store_->NextDeliveries("fi", 2, 0)->front().message_id, "urgent");
}

// Only queued deliveries that are due go out: not deferred ones before
// their time, not expired ones, nor suspended, cancelled, settled or
// forwarded ones.
TEST_P(SendingConformanceTest, OnlyDueQueuedDeliveriesAreHandedOut) {
  constexpr int64_t kNow = 10000;
  int64_t created = 1000;  // one apart: the order within a class is defined
  for (const char* id : {"due", "deferred", "suspended", "cancelled",
                         "delivered", "rejected", "settled-expired"}) {
    ASSERT_TRUE(store_->InsertOutgoing(Message(id, 1, created++)).ok()) << id;
  }
  OutgoingMessage expired = Message("expired", 1, created++);
  expired.expires_ms = kNow - 1;
  ASSERT_TRUE(store_->InsertOutgoing(expired).ok());
  ASSERT_TRUE(store_->InsertOutgoing(Message("to-lv", 3, 1000, {"lv"})).ok());
  std::vector<std::optional<DedupEntry>> existing;
  ASSERT_TRUE(store_->InsertRelayed({Relayed("fwd", "fi")}, &existing).ok());
  ASSERT_TRUE(store_
                  ->Settle({{"ee/fwd", "fi", kStateForwarded, "by pl",
                             "custody", 1500, ""}})
                  .ok());

  ASSERT_TRUE(
      store_->MarkAttempted("fi", {"deferred"}, "deferred", 2000, 50000).ok());
  ASSERT_TRUE(store_->Suspend("suspended", "fi", "operator", 2000).ok());
  ASSERT_EQ(*store_->Cancel("cancelled", 2000), 1u);
  ASSERT_TRUE(
      store_
          ->Settle(
              {{"delivered", "fi", kStateDelivered, "", "r", 2000, ""},
               {"rejected", "fi", kStateRejected, "no", "r", 2000, ""},
               {"settled-expired", "fi", kStateExpired, "x", "", 2000, ""}})
          .ok());

  auto ids = [&](int64_t now) {
    std::vector<std::string> out;
    auto next = store_->NextDeliveries("fi", 100, now);
    EXPECT_TRUE(next.ok()) << next.status();
    if (next.ok()) {
      for (const PendingDelivery& d : *next) out.push_back(d.message_id);
    }
    return out;
  };
  EXPECT_EQ(ids(kNow), std::vector<std::string>{"due"});
  EXPECT_EQ(*store_->NextDeferredDueMs("fi", kNow), 50000);
  EXPECT_EQ(ids(50000), (std::vector<std::string>{"due", "deferred"}));
  // Queued again by an operator: due again.
  EXPECT_EQ(*store_->Retry("suspended", kNow), 1u);
  EXPECT_EQ(ids(kNow), (std::vector<std::string>{"due", "suspended"}));
  Reopen();
  EXPECT_EQ(ids(kNow), (std::vector<std::string>{"due", "suspended"}));
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(Backends, SendingConformanceTest,
                         ::testing::ValuesIn(StoreBackends()), BackendName);

}  // namespace kontor
