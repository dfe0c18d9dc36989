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

TEST_F(StoreTest, UnwritableLocationIsAClearError) {
  auto s = Store::Open("/proc/kontor-cannot-be-here/kontor.db");
  EXPECT_FALSE(s.ok());
}

}  // namespace
}  // namespace kontor
