// Conformance (conformance.h): how a delivery settles. A queued delivery
// ends delivered, rejected, expired or cancelled, and a settled one does
// not move again, with one exception: a late end-to-end receipt settles it
// as delivered (the recipient stored the message after all). Settling
// twice, or something unknown, changes nothing. Each change of a delivery
// of this node's own message is one event (ListEvents).

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "daemon/store/store.h"
#include "gtest/gtest.h"
#include "tests/store/backends.h"
#include "tests/store/conformance.h"

namespace kontor {
namespace {

class SettlementConformanceTest : public SendingFixture {
 protected:
  // The deliveries to fi of `ids`, by id.
  std::map<std::string, DeliveryRow> Rows(const std::vector<std::string>& ids) {
    std::map<std::string, DeliveryRow> out;
    for (const std::string& id : ids) {
      auto row = store_->GetDelivery(id, "fi");
      EXPECT_TRUE(row.ok()) << row.status();
      if (row.ok() && row->has_value()) out[id] = **row;
    }
    return out;
  }

  std::vector<DeliveryEvent> Events() {
    auto events = store_->ListEvents(0, 1000);
    EXPECT_TRUE(events.ok()) << events.status();
    return events.ok() ? *events : std::vector<DeliveryEvent>();
  }
};

TEST_P(SettlementConformanceTest, SettleIsFinalButALateReceiptWinsOverExpired) {
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

TEST_P(SettlementConformanceTest, DeferredDeliveryIsNotDueBeforeItsTime) {
  ASSERT_TRUE(store_->InsertOutgoing(Message("m1")).ok());
  ASSERT_TRUE(store_->MarkAttempted("fi", {"m1"}, "deferred", 100, 5000).ok());
  EXPECT_TRUE(store_->NextDeliveries("fi", 10, 4999)->empty());
  auto due = store_->NextDeliveries("fi", 10, 5000);
  ASSERT_EQ(due->size(), 1u);
  EXPECT_EQ((*due)[0].attempts, 1u);
  EXPECT_EQ((*store_->Deliveries("m1"))[0].last_error, "deferred");
}

TEST_P(SettlementConformanceTest, CancelOnlyQueued) {
  ASSERT_TRUE(store_->InsertOutgoing(Message("m1", 1, 1, {"fi", "lv"})).ok());
  ASSERT_TRUE(store_->Settle({{"m1", "fi", kStateDelivered, "", "r", 2}}).ok());
  EXPECT_EQ(*store_->Cancel("m1", 3), 1u);
  auto rows = *store_->Deliveries("m1");
  EXPECT_EQ(rows[0].state, "delivered");
  EXPECT_EQ(rows[1].state, "cancelled");
}

TEST_P(SettlementConformanceTest, QueuedSettlesInEachFinalState) {
  for (const char* id : {"d", "r", "e", "c"}) {
    ASSERT_TRUE(store_->InsertOutgoing(Message(id)).ok()) << id;
  }
  OutgoingMessage overdue = Message("o");
  overdue.expires_ms = 1500;
  ASSERT_TRUE(store_->InsertOutgoing(overdue).ok());

  ASSERT_TRUE(
      store_
          ->Settle(
              {{"d", "fi", kStateDelivered, "", "receipt-d", 2001, ""},
               {"r", "fi", kStateRejected, "policy", "receipt-r", 2002, ""},
               {"e", "fi", kStateExpired, "expired", "", 2003, ""}})
          .ok());
  EXPECT_EQ(*store_->ExpireOverdue("fi", 2004), 1u);  // only o is overdue
  EXPECT_EQ(*store_->Cancel("c", 2005), 1u);

  auto rows = Rows({"d", "r", "e", "o", "c"});
  ASSERT_EQ(rows.size(), 5u);
  EXPECT_EQ(rows["d"].state, kStateDelivered);
  EXPECT_EQ(rows["d"].receipt, "receipt-d");
  EXPECT_EQ(rows["d"].updated_ms, 2001);
  EXPECT_EQ(rows["r"].state, kStateRejected);
  EXPECT_EQ(rows["r"].reason, "policy");
  EXPECT_EQ(rows["r"].receipt, "receipt-r");
  EXPECT_EQ(rows["e"].state, kStateExpired);
  EXPECT_EQ(rows["e"].receipt, "");
  EXPECT_EQ(rows["o"].state, kStateExpired);
  EXPECT_EQ(rows["o"].updated_ms, 2004);
  EXPECT_EQ(rows["c"].state, kStateCancelled);
  EXPECT_EQ(rows["c"].updated_ms, 2005);
  EXPECT_TRUE(store_->NextDeliveries("fi", 10, 0)->empty());
  EXPECT_EQ(store_->PeerQueue("fi")->depth, 0u);

  auto events = Events();
  ASSERT_EQ(events.size(), 5u);
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"d", "delivered"},
      {"r", "rejected"},
      {"e", "expired"},
      {"o", "expired"},
      {"c", "cancelled"}};
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].message_id, expected[i].first) << i;
    EXPECT_EQ(events[i].state, expected[i].second) << i;
    EXPECT_EQ(events[i].peer, "fi") << i;
    if (i > 0) {
      EXPECT_GT(events[i].seq, events[i - 1].seq);
    }
  }
  EXPECT_EQ(events[1].reason, "policy");
  EXPECT_EQ(*store_->MaxEventSeq(), events.back().seq);
  Reopen();
  EXPECT_EQ(Rows({"d", "r", "e", "o", "c"}).size(), 5u);
  EXPECT_EQ((*store_->GetDelivery("c", "fi"))->state, kStateCancelled);
  EXPECT_EQ(Events().size(), 5u);
}

TEST_P(SettlementConformanceTest, SettledDeliveryMovesOnlyForALateReceipt) {
  const std::vector<std::string> ids = {"d", "r", "e", "c"};
  for (const std::string& id : ids) {
    ASSERT_TRUE(store_->InsertOutgoing(Message(id)).ok()) << id;
  }
  ASSERT_TRUE(
      store_
          ->Settle(
              {{"d", "fi", kStateDelivered, "", "receipt-d", 2001, ""},
               {"r", "fi", kStateRejected, "policy", "receipt-r", 2002, ""},
               {"e", "fi", kStateExpired, "expired", "", 2003, ""}})
          .ok());
  ASSERT_EQ(*store_->Cancel("c", 2004), 1u);
  const auto before = Rows(ids);
  ASSERT_EQ(before.size(), 4u);
  const uint64_t events = *store_->MaxEventSeq();
  const uint64_t audited = store_->GetAuditHead()->seq;

  // Nothing but a receipt moves them: no other settlement, no operator, no
  // attempt, no expiry.
  for (const std::string& id : ids) {
    SCOPED_TRACE(id);
    EXPECT_TRUE(
        store_->Settle({{id, "fi", kStateRejected, "late", "r2", 3001, ""}})
            .ok());
    EXPECT_TRUE(
        store_->Settle({{id, "fi", kStateExpired, "late", "", 3002, ""}}).ok());
    EXPECT_TRUE(store_
                    ->Settle({{id, "fi", kStateForwarded, "by pl", "custody",
                               3003, ""}})
                    .ok());
    EXPECT_EQ(*store_->Cancel(id, 3004), 0u);
    EXPECT_TRUE(store_->Suspend(id, "fi", "operator", 3005).ok());
    EXPECT_EQ(*store_->Retry(id, 3006), 0u);
    EXPECT_TRUE(store_->MarkAttempted("fi", {id}, "late error", 3007).ok());
  }
  EXPECT_EQ(*store_->ExpireOverdue("fi", 1LL << 50), 0u);
  auto after = Rows(ids);
  for (const std::string& id : ids) {
    SCOPED_TRACE(id);
    EXPECT_EQ(after[id].state, before.at(id).state);
    EXPECT_EQ(after[id].reason, before.at(id).reason);
    EXPECT_EQ(after[id].receipt, before.at(id).receipt);
    EXPECT_EQ(after[id].custody, before.at(id).custody);
    EXPECT_EQ(after[id].updated_ms, before.at(id).updated_ms);
    EXPECT_EQ(after[id].attempts, before.at(id).attempts);
    EXPECT_EQ(after[id].last_error, before.at(id).last_error);
  }
  EXPECT_TRUE(store_->NextDeliveries("fi", 10, 0)->empty());
  EXPECT_EQ(*store_->MaxEventSeq(), events);
  EXPECT_EQ(store_->GetAuditHead()->seq, audited);

  // A late end-to-end receipt: the recipient stored the message after all.
  // Delivered stays as it was.
  for (const std::string& id : ids) {
    ASSERT_TRUE(
        store_
            ->Settle({{id, "fi", kStateDelivered, "", "late-" + id, 4000, ""}})
            .ok());
  }
  after = Rows(ids);
  EXPECT_EQ(after["d"].receipt, "receipt-d");
  EXPECT_EQ(after["d"].updated_ms, 2001);
  for (const char* id : {"r", "e", "c"}) {
    SCOPED_TRACE(id);
    EXPECT_EQ(after[id].state, kStateDelivered);
    EXPECT_EQ(after[id].receipt, std::string("late-") + id);
  }
  EXPECT_EQ(*store_->MaxEventSeq(), events + 3);
}

// A settlement only ends in delivered, rejected or expired (forwarded is
// custody): anything else is refused, and the batch it came in changes
// nothing.
TEST_P(SettlementConformanceTest, SettlingIntoAnotherStateIsRefused) {
  ASSERT_TRUE(store_->InsertOutgoing(Message("m1")).ok());
  const uint64_t events = *store_->MaxEventSeq();
  for (absl::string_view state :
       {kStateCancelled, kStateQueued, kStateSuspended, kStateInFlight,
        absl::string_view("")}) {
    const Settlement bad{"m1", "fi", state, "", "", 5, ""};
    const Settlement good{"m1", "fi", kStateDelivered, "", "r", 5, ""};
    EXPECT_EQ(store_->Settle({good, bad}).code(),
              absl::StatusCode::kInvalidArgument)
        << state;
    EXPECT_EQ((*store_->Deliveries("m1"))[0].state, "queued") << state;
  }
  EXPECT_EQ(*store_->MaxEventSeq(), events);
}

TEST_P(SettlementConformanceTest, SettlingTwiceChangesNothing) {
  ASSERT_TRUE(
      store_->InsertOutgoing(Message("m1", 1, 1000, {"fi", "lv"})).ok());
  const Settlement delivered{"m1", "fi", kStateDelivered, "", "receipt-fi",
                             2000, ""};
  const Settlement rejected{"m1", "lv", kStateRejected, "policy", "receipt-lv",
                            2001, ""};
  ASSERT_TRUE(store_->Settle({delivered, rejected}).ok());
  const auto rows = *store_->Deliveries("m1");
  ASSERT_EQ(rows.size(), 2u);
  const uint64_t events = *store_->MaxEventSeq();
  const AuditHead audited = *store_->GetAuditHead();

  auto expect_unchanged = [&] {
    const auto now = *store_->Deliveries("m1");
    ASSERT_EQ(now.size(), rows.size());
    for (size_t i = 0; i < rows.size(); ++i) {
      EXPECT_EQ(now[i].peer, rows[i].peer);
      EXPECT_EQ(now[i].state, rows[i].state);
      EXPECT_EQ(now[i].reason, rows[i].reason);
      EXPECT_EQ(now[i].receipt, rows[i].receipt);
      EXPECT_EQ(now[i].updated_ms, rows[i].updated_ms);
      EXPECT_EQ(now[i].attempts, rows[i].attempts);
    }
    EXPECT_EQ(*store_->MaxEventSeq(), events);
    EXPECT_EQ(store_->GetAuditHead()->seq, audited.seq);  // one refusal
    EXPECT_EQ(*store_->ReceiptsFrom("fi", 10),
              std::vector<std::string>{"receipt-fi"});
  };
  ASSERT_TRUE(store_->Settle({delivered, rejected}).ok());
  ASSERT_TRUE(store_->Settle({rejected, rejected, delivered}).ok());
  expect_unchanged();
  Reopen();
  ASSERT_TRUE(store_->Settle({delivered, rejected}).ok());
  expect_unchanged();

  // Settling what is not there creates nothing.
  ASSERT_TRUE(
      store_
          ->Settle({{"m1", "lt", kStateDelivered, "", "x", 3000, ""},
                    {"unknown", "fi", kStateDelivered, "", "x", 3000, ""}})
          .ok());
  EXPECT_FALSE(store_->GetDelivery("m1", "lt")->has_value());
  EXPECT_FALSE(store_->GetDelivery("unknown", "fi")->has_value());
  expect_unchanged();
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(Backends, SettlementConformanceTest,
                         ::testing::ValuesIn(StoreBackends()), BackendName);

}  // namespace kontor
