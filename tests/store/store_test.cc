#include "daemon/store/store.h"

#include <sqlite3.h>

#include <thread>

#include "gtest/gtest.h"
#include "tests/testing/test_pki.h"

namespace kontor {
namespace {

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = testing::TempDir("store") + "/kontor.db";
    Reopen();
  }
  void Reopen() {
    store_.reset();
    auto s = Store::Open(path_);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
  }
  OutgoingMessage Message(const std::string& id, int priority = 1,
                          int64_t created = 1000,
                          std::vector<std::string> to = {"fi"}) {
    OutgoingMessage m;
    m.id = id;
    m.recipients = to;
    m.priority = priority;
    m.created_ms = created;
    m.expires_ms = created + 100000;
    m.kind = "note";
    m.envelope = "envelope-" + id;
    m.outer_digest = "digest-" + id;
    m.submitter = "alice";
    m.request_hash = "hash-" + id;
    return m;
  }
  std::string path_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreTest, OutgoingSurvivesReopen) {
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

TEST_F(StoreTest, IdempotencyKeyIsScopedAndChecksContent) {
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

TEST_F(StoreTest, FlashFirstThenOldest) {
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

TEST_F(StoreTest, UrgentAndRoutineShareABatchSoRoutineIsNeverStarved) {
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
  StoreTest::Reopen();
  auto only_routine = *store_->NextDeliveries("lv", 10, 0);
  EXPECT_TRUE(only_routine.empty());
}

TEST_F(StoreTest, OutOfRangePrioritiesAreClampedNotStranded) {
  ASSERT_TRUE(store_->InsertOutgoing(Message("zero", 0, 1)).ok());
  ASSERT_TRUE(store_->InsertOutgoing(Message("nine", 9, 2)).ok());
  auto due = *store_->NextDeliveries("fi", 10, 0);
  ASSERT_EQ(due.size(), 2u);
  EXPECT_EQ(due[0].message_id, "nine");  // clamped to flash
  EXPECT_EQ(due[0].priority, 3);
  EXPECT_EQ(due[1].message_id, "zero");  // clamped to routine
  EXPECT_EQ(due[1].priority, 1);
}

TEST_F(StoreTest, SettleIsFinalButALateReceiptWinsOverExpired) {
  ASSERT_TRUE(store_->InsertOutgoing(Message("m1")).ok());
  ASSERT_TRUE(
      store_->Settle({{"m1", "fi", kStateExpired, "expired", "", 5}}).ok());
  EXPECT_EQ((*store_->Deliveries("m1"))[0].state, "expired");
  EXPECT_TRUE(store_->NextDeliveries("fi", 10, 0)->empty());
  ASSERT_TRUE(
      store_->Settle({{"m1", "fi", kStateDelivered, "", "receipt", 6}}).ok());
  EXPECT_EQ((*store_->Deliveries("m1"))[0].state, "delivered");
  ASSERT_TRUE(
      store_->Settle({{"m1", "fi", kStateRejected, "late", "r2", 7}}).ok());
  auto row = (*store_->Deliveries("m1"))[0];
  EXPECT_EQ(row.state, "delivered");
  EXPECT_EQ(row.receipt, "receipt");
}

TEST_F(StoreTest, DeferredDeliveryIsNotDueBeforeItsTime) {
  ASSERT_TRUE(store_->InsertOutgoing(Message("m1")).ok());
  ASSERT_TRUE(store_->MarkAttempted("fi", {"m1"}, "deferred", 100, 5000).ok());
  EXPECT_TRUE(store_->NextDeliveries("fi", 10, 4999)->empty());
  auto due = store_->NextDeliveries("fi", 10, 5000);
  ASSERT_EQ(due->size(), 1u);
  EXPECT_EQ((*due)[0].attempts, 1u);
  EXPECT_EQ((*store_->Deliveries("m1"))[0].last_error, "deferred");
}

TEST_F(StoreTest, CancelOnlyQueued) {
  ASSERT_TRUE(store_->InsertOutgoing(Message("m1", 1, 1, {"fi", "lv"})).ok());
  ASSERT_TRUE(store_->Settle({{"m1", "fi", kStateDelivered, "", "r", 2}}).ok());
  EXPECT_EQ(*store_->Cancel("m1", 3), 1u);
  auto rows = *store_->Deliveries("m1");
  EXPECT_EQ(rows[0].state, "delivered");
  EXPECT_EQ(rows[1].state, "cancelled");
}

TEST_F(StoreTest, InboxDedupsOnOriginAndId) {
  InboxRecord r;
  r.origin = "ee";
  r.message_id = "m1";
  r.outer_digest = "d1";
  r.payload = "p";
  r.receipt = "receipt-1";
  r.received_ms = 1;
  std::vector<std::optional<DedupEntry>> existing;
  ASSERT_TRUE(store_->InsertInbox({r}, &existing).ok());
  EXPECT_FALSE(existing[0].has_value());
  InboxRecord again = r;
  again.outer_digest = "d2";
  again.receipt = "receipt-2";
  ASSERT_TRUE(store_->InsertInbox({again}, &existing).ok());
  ASSERT_TRUE(existing[0].has_value());
  EXPECT_EQ(existing[0]->outer_digest, "d1");
  EXPECT_EQ(existing[0]->receipt, "receipt-1");
  InboxRecord other_origin = r;
  other_origin.origin = "lv";
  ASSERT_TRUE(store_->InsertInbox({other_origin}, &existing).ok());
  EXPECT_FALSE(existing[0].has_value());
  Reopen();
  EXPECT_EQ(store_->ListInbox(false, 0, 10)->size(), 2u);
  EXPECT_EQ((*store_->FindInbox("ee", "m1"))->receipt, "receipt-1");
  EXPECT_EQ(store_->MaxInboxSeq(), 2u);
  EXPECT_EQ(store_->GetInbox("m1", "")->size(), 2u);  // two origins, one id
  EXPECT_EQ(store_->GetInbox("m1", "lv")->size(), 1u);
}

TEST_F(StoreTest, AckAndUnread) {
  InboxRecord r;
  r.origin = "ee";
  r.message_id = "m1";
  r.outer_digest = "d";
  r.receipt = "x";
  std::vector<std::optional<DedupEntry>> existing;
  ASSERT_TRUE(store_->InsertInbox({r}, &existing).ok());
  EXPECT_EQ(store_->ListInbox(true, 0, 10)->size(), 1u);
  EXPECT_EQ(store_->Ack("lv", "m1").status().code(),
            absl::StatusCode::kNotFound);  // (origin, id), not id alone
  EXPECT_FALSE(*store_->Ack("ee", "m1"));
  EXPECT_TRUE(*store_->Ack("ee", "m1"));
  EXPECT_TRUE(store_->ListInbox(true, 0, 10)->empty());
  EXPECT_EQ(store_->Ack("ee", "nope").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(StoreTest, RefusedRecordsAreNotListedButDedup) {
  InboxRecord r;
  r.origin = "ee";
  r.message_id = "m1";
  r.outer_digest = "d";
  r.accepted = false;
  r.receipt = "refusal";
  std::vector<std::optional<DedupEntry>> existing;
  ASSERT_TRUE(store_->InsertInbox({r}, &existing).ok());
  EXPECT_TRUE(store_->ListInbox(false, 0, 10)->empty());
  EXPECT_EQ((*store_->FindInbox("ee", "m1"))->receipt, "refusal");
  EXPECT_EQ(store_->MaxInboxSeq(), 0u);
}

TEST_F(StoreTest, ConcurrentWritersShareCommits) {
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

TEST_F(StoreTest, PeerStatePersists) {
  PeerState p{"fi", 3, 12345, "connection refused", 99};
  ASSERT_TRUE(store_->PutPeerState(p).ok());
  Reopen();
  auto got = store_->GetPeerState("fi");
  EXPECT_EQ(got->failures, 3u);
  EXPECT_EQ(got->next_attempt_ms, 12345);
  EXPECT_EQ(got->last_error, "connection refused");
}

TEST_F(StoreTest, FileOfTheFirstSchemaIsMigrated) {
  store_.reset();
  const std::string old = path_ + ".v0";
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(old.c_str(), &db), SQLITE_OK);
  // deliveries as the first release made it (no not_before_ms, deferrals).
  ASSERT_EQ(sqlite3_exec(db,
                         "CREATE TABLE deliveries(message_id TEXT NOT NULL, "
                         "peer TEXT NOT NULL, state TEXT NOT NULL, priority "
                         "INTEGER NOT NULL, created_ms INTEGER NOT NULL, "
                         "expires_ms INTEGER NOT NULL, attempts INTEGER NOT "
                         "NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '', "
                         "reason TEXT NOT NULL DEFAULT '', receipt BLOB, "
                         "updated_ms INTEGER NOT NULL, PRIMARY "
                         "KEY(message_id, peer))",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto migrated = Store::Open(old);
  ASSERT_TRUE(migrated.ok()) << migrated.status();
  ASSERT_TRUE((*migrated)->InsertOutgoing(Message("m1")).ok());
  ASSERT_TRUE((*migrated)->MarkAttempted("fi", {"m1"}, "x", 1, 5).ok());
  EXPECT_EQ((*migrated)->NextDeliveries("fi", 10, 5)->at(0).deferrals, 1u);
}

// A relayed envelope from `origin` taken into custody for `deliver_to`.
RelayedMessage Relayed(const std::string& id, const std::string& deliver_to,
                       const std::string& digest = "digest",
                       const std::string& origin = "ee", int priority = 1,
                       int64_t created = 1000) {
  RelayedMessage m;
  m.origin = origin;
  m.message_id = id;
  m.deliver_to = deliver_to;
  m.from_peer = origin;
  m.priority = priority;
  m.created_ms = created;
  m.expires_ms = created + 100000;
  m.envelope = "envelope-" + id;
  m.outer_digest = digest;
  m.custody = "custody-" + id + "-" + deliver_to;
  return m;
}

TEST_F(StoreTest, RelayedMessagesAreStoredOncePerDestination) {
  std::vector<std::optional<DedupEntry>> existing;
  ASSERT_TRUE(store_->InsertRelayed({Relayed("m1", "lv")}, &existing).ok());
  ASSERT_EQ(existing.size(), 1u);
  EXPECT_FALSE(existing[0].has_value());
  const std::string key = RelayKey("ee", "m1");
  EXPECT_EQ(key, "ee/m1");
  auto facts = *store_->GetMessageFacts(key);
  ASSERT_TRUE(facts.has_value());
  EXPECT_EQ(facts->origin, "ee");
  EXPECT_EQ(facts->outer_digest, "digest");
  auto row = *store_->GetDelivery(key, "lv");
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(row->state, kStateQueued);
  EXPECT_FALSE(store_->GetDelivery(key, "fi")->has_value());
  EXPECT_FALSE(store_->GetMessageFacts("m1")->has_value());

  // The same again: left as it is, answered with the custody receipt.
  RelayedMessage again = Relayed("m1", "lv");
  again.custody = "another custody receipt";
  ASSERT_TRUE(store_->InsertRelayed({again}, &existing).ok());
  ASSERT_TRUE(existing[0].has_value());
  EXPECT_EQ(existing[0]->outer_digest, "digest");
  EXPECT_EQ(existing[0]->receipt, "custody-m1-lv");

  // Other content under the same id: the stored digest, no receipt.
  ASSERT_TRUE(
      store_->InsertRelayed({Relayed("m1", "lv", "other")}, &existing).ok());
  ASSERT_TRUE(existing[0].has_value());
  EXPECT_EQ(existing[0]->outer_digest, "digest");
  EXPECT_EQ(existing[0]->receipt, "");
  ASSERT_TRUE(
      store_->InsertRelayed({Relayed("m1", "lt", "other")}, &existing).ok());
  ASSERT_TRUE(existing[0].has_value());
  EXPECT_EQ(existing[0]->outer_digest, "digest");
  EXPECT_FALSE(store_->GetDelivery(key, "lt")->has_value());

  // A second recipient of the same message: one more delivery, one message.
  ASSERT_TRUE(store_->InsertRelayed({Relayed("m1", "lt")}, &existing).ok());
  EXPECT_FALSE(existing[0].has_value());
  EXPECT_TRUE(store_->GetDelivery(key, "lt")->has_value());
  EXPECT_EQ(store_->Deliveries(key)->size(), 2u);
  EXPECT_EQ((*store_->FindRelayed("ee", "m1", "lt"))->receipt, "custody-m1-lt");

  // Another origin with the same id is another message.
  ASSERT_TRUE(
      store_->InsertRelayed({Relayed("m1", "lv", "d-ua", "ua")}, &existing)
          .ok());
  EXPECT_FALSE(existing[0].has_value());
  EXPECT_EQ((*store_->GetMessageFacts("ua/m1"))->outer_digest, "d-ua");
  Reopen();
  EXPECT_EQ((*store_->FindRelayed("ee", "m1", "lv"))->receipt, "custody-m1-lv");
}

TEST_F(StoreTest, TwoCopiesInOneInsertAreStoredOnce) {
  std::vector<std::optional<DedupEntry>> existing;
  ASSERT_TRUE(store_
                  ->InsertRelayed({Relayed("m1", "lv"), Relayed("m1", "lv"),
                                   Relayed("m1", "lv", "other")},
                                  &existing)
                  .ok());
  ASSERT_EQ(existing.size(), 3u);
  EXPECT_FALSE(existing[0].has_value());
  ASSERT_TRUE(existing[1].has_value());
  EXPECT_EQ(existing[1]->receipt, "custody-m1-lv");
  ASSERT_TRUE(existing[2].has_value());
  EXPECT_EQ(existing[2]->receipt, "");
  EXPECT_EQ(store_->Deliveries("ee/m1")->size(), 1u);
}

TEST_F(StoreTest, FindRelayedAnswersWithTheEndToEndReceiptOnceSettled) {
  EXPECT_FALSE(store_->FindRelayed("ee", "m1", "lv")->has_value());
  std::vector<std::optional<DedupEntry>> existing;
  ASSERT_TRUE(store_->InsertRelayed({Relayed("m1", "lv")}, &existing).ok());
  EXPECT_EQ((*store_->FindRelayed("ee", "m1", "lv"))->receipt, "custody-m1-lv");
  EXPECT_FALSE(store_->FindRelayed("ee", "m1", "lt")->has_value());
  EXPECT_FALSE(store_->FindRelayed("ua", "m1", "lv")->has_value());
  // Forwarded on by this relay: still this node's custody receipt.
  ASSERT_TRUE(store_
                  ->Settle({{"ee/m1", "lv", kStateForwarded, "forwarded by pl",
                             "custody-of-pl", 2, ""}})
                  .ok());
  EXPECT_EQ((*store_->FindRelayed("ee", "m1", "lv"))->receipt, "custody-m1-lv");
  ASSERT_TRUE(store_
                  ->Settle({{"ee/m1", "lv", kStateDelivered, "", "end-to-end",
                             3, "ee"}})
                  .ok());
  auto found = *store_->FindRelayed("ee", "m1", "lv");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->outer_digest, "digest");
  EXPECT_EQ(found->receipt, "end-to-end");
}

TEST_F(StoreTest, RelayedRejectionIsAnsweredWithTheEndToEndReceipt) {
  std::vector<std::optional<DedupEntry>> existing;
  ASSERT_TRUE(store_->InsertRelayed({Relayed("m1", "lv")}, &existing).ok());
  ASSERT_TRUE(store_
                  ->Settle({{"ee/m1", "lv", kStateRejected,
                             "REFUSAL_POLICY: no", "refusal", 3, "ee"}})
                  .ok());
  EXPECT_EQ((*store_->FindRelayed("ee", "m1", "lv"))->receipt, "refusal");
}

TEST_F(StoreTest, NextDeliveriesOverSeveralPeersKeepsFlashFirst) {
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

TEST_F(StoreTest, ForwardedThenDeliveredQueuesTheReturnOnce) {
  std::vector<std::optional<DedupEntry>> existing;
  ASSERT_TRUE(store_->InsertRelayed({Relayed("m1", "lv")}, &existing).ok());
  ASSERT_TRUE(store_->InsertRelayed({Relayed("m2", "lv")}, &existing).ok());
  const Settlement forwarded{
      "ee/m1", "lv", kStateForwarded, "forwarded by pl", "custody-of-pl",
      2,       ""};
  ASSERT_TRUE(store_->Settle({forwarded}).ok());
  auto row = **store_->GetDelivery("ee/m1", "lv");
  EXPECT_EQ(row.state, kStateForwarded);
  EXPECT_EQ(row.custody, "custody-of-pl");
  EXPECT_EQ(row.receipt, "");
  EXPECT_EQ(row.attempts, 1u);
  // Not sent again while forwarded.
  auto due = *store_->NextDeliveries("lv", 10, 0);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].message_id, "ee/m2");
  // Custody again (a duplicate answer) changes nothing.
  ASSERT_TRUE(store_->Settle({forwarded}).ok());
  EXPECT_EQ((**store_->GetDelivery("ee/m1", "lv")).attempts, 1u);
  EXPECT_TRUE(store_->NextReturns("ee", 10)->empty());

  const Settlement delivered{"ee/m1", "lv", kStateDelivered, "", "end-to-end",
                             3,       "ee"};
  ASSERT_TRUE(store_->Settle({delivered}).ok());
  ASSERT_TRUE(store_->Settle({delivered}).ok());  // repeated: no second return
  ASSERT_TRUE(store_->Settle({forwarded}).ok());  // late custody: no change
  row = **store_->GetDelivery("ee/m1", "lv");
  EXPECT_EQ(row.state, kStateDelivered);
  EXPECT_EQ(row.receipt, "end-to-end");
  EXPECT_EQ(row.custody, "custody-of-pl");
  EXPECT_EQ(row.attempts, 1u);
  Reopen();
  auto returns = *store_->NextReturns("ee", 10);
  ASSERT_EQ(returns.size(), 1u);
  EXPECT_EQ(returns[0].receipt, "end-to-end");
  EXPECT_TRUE(store_->NextReturns("lv", 10)->empty());
  // A settlement without a receipt is not returned.
  ASSERT_TRUE(
      store_->Settle({{"ee/m2", "lv", kStateExpired, "expired", "", 4, "ee"}})
          .ok());
  EXPECT_EQ(store_->NextReturns("ee", 10)->size(), 1u);

  ASSERT_TRUE(store_->ReturnsDone({returns[0].id}).ok());
  EXPECT_TRUE(store_->NextReturns("ee", 10)->empty());
  ASSERT_TRUE(store_->ReturnsDone({returns[0].id}).ok());  // idempotent
}

TEST_F(StoreTest, ReturnsComeOldestFirstPerPeerUpToTheLimit) {
  std::vector<std::optional<DedupEntry>> existing;
  for (const char* id : {"a", "b", "c"}) {
    ASSERT_TRUE(store_->InsertRelayed({Relayed(id, "lv")}, &existing).ok());
  }
  ASSERT_TRUE(
      store_->InsertRelayed({Relayed("d", "lv", "x", "ua")}, &existing).ok());
  ASSERT_TRUE(store_
                  ->Settle({{"ee/b", "lv", kStateDelivered, "", "rb", 1, "ee"},
                            {"ee/a", "lv", kStateRejected, "no", "ra", 2, "ee"},
                            {"ua/d", "lv", kStateDelivered, "", "rd", 3, "pl"},
                            {"ee/c", "lv", kStateDelivered, "", "rc", 4, "ee"}})
                  .ok());
  auto two = *store_->NextReturns("ee", 2);
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[0].receipt, "rb");
  EXPECT_EQ(two[1].receipt, "ra");
  ASSERT_TRUE(store_->ReturnsDone({two[0].id, two[1].id}).ok());
  auto rest = *store_->NextReturns("ee", 10);
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_EQ(rest[0].receipt, "rc");
  ASSERT_EQ(store_->NextReturns("pl", 10)->size(), 1u);
}

TEST_F(StoreTest, ForwardedExpiresOnlyAfterTheGrace) {
  constexpr int64_t kDay = 24LL * 3600 * 1000;
  std::vector<std::optional<DedupEntry>> existing;
  ASSERT_TRUE(store_->InsertRelayed({Relayed("m1", "lv")}, &existing).ok());
  ASSERT_TRUE(store_->InsertOutgoing(Message("own", 1, 1000, {"lv"})).ok());
  ASSERT_TRUE(store_
                  ->Settle({{"ee/m1", "lv", kStateForwarded, "forwarded by pl",
                             "custody", 2, ""}})
                  .ok());
  const int64_t expires = 1000 + 100000;
  // The queued own message expires on time; the forwarded one waits.
  EXPECT_EQ(*store_->ExpireOverdue("lv", expires + 1), 1u);
  EXPECT_EQ((**store_->GetDelivery("own", "lv")).state, kStateExpired);
  EXPECT_EQ((**store_->GetDelivery("ee/m1", "lv")).state, kStateForwarded);
  EXPECT_EQ(*store_->ExpireOverdue("lv", expires + kDay), 0u);
  EXPECT_EQ((**store_->GetDelivery("ee/m1", "lv")).state, kStateForwarded);
  EXPECT_EQ(*store_->ExpireOverdue("fi", expires + kDay + 1), 0u);
  EXPECT_EQ(*store_->ExpireOverdue("lv", expires + kDay + 1), 1u);
  auto row = **store_->GetDelivery("ee/m1", "lv");
  EXPECT_EQ(row.state, kStateExpired);
  EXPECT_NE(row.reason.find("forwarded by a relay"), std::string::npos);
  // Not offered for a final attempt: the relay has it.
  EXPECT_TRUE(
      store_->FinalAttempts("lv", 10, expires + kDay + 2, kDay * 7)->empty());
  // A late end-to-end receipt still settles it as delivered.
  ASSERT_TRUE(store_
                  ->Settle({{"ee/m1", "lv", kStateDelivered, "", "late",
                             expires + kDay + 3, ""}})
                  .ok());
  EXPECT_EQ((**store_->GetDelivery("ee/m1", "lv")).state, kStateDelivered);
}

TEST_F(StoreTest, UnwritableLocationIsAClearError) {
  auto s = Store::Open("/proc/kontor-cannot-be-here/kontor.db");
  EXPECT_FALSE(s.ok());
}

}  // namespace
}  // namespace kontor
