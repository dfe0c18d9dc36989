// Conformance (conformance.h): envelopes this node relays. Each is stored
// once per destination under RelayKey(origin, id), answered as a duplicate
// with this node's custody receipt until the end-to-end receipt comes back,
// which then goes back towards the origin exactly once.

#include <optional>
#include <string>
#include <vector>

#include "daemon/store/store.h"
#include "gtest/gtest.h"
#include "tests/store/backends.h"
#include "tests/store/conformance.h"

namespace kontor {
namespace {

class RelayConformanceTest : public SendingFixture {};

TEST_P(RelayConformanceTest, RelayedMessagesAreStoredOncePerDestination) {
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

TEST_P(RelayConformanceTest, TwoCopiesInOneInsertAreStoredOnce) {
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

TEST_P(RelayConformanceTest,
       FindRelayedAnswersWithTheEndToEndReceiptOnceSettled) {
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

TEST_P(RelayConformanceTest, RelayedRejectionIsAnsweredWithTheEndToEndReceipt) {
  std::vector<std::optional<DedupEntry>> existing;
  ASSERT_TRUE(store_->InsertRelayed({Relayed("m1", "lv")}, &existing).ok());
  ASSERT_TRUE(store_
                  ->Settle({{"ee/m1", "lv", kStateRejected,
                             "REFUSAL_POLICY: no", "refusal", 3, "ee"}})
                  .ok());
  EXPECT_EQ((*store_->FindRelayed("ee", "m1", "lv"))->receipt, "refusal");
}

TEST_P(RelayConformanceTest, ForwardedThenDeliveredQueuesTheReturnOnce) {
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

TEST_P(RelayConformanceTest, ReturnsComeOldestFirstPerPeerUpToTheLimit) {
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

TEST_P(RelayConformanceTest, ForwardedExpiresOnlyAfterTheGrace) {
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

}  // namespace

INSTANTIATE_TEST_SUITE_P(Backends, RelayConformanceTest,
                         ::testing::ValuesIn(StoreBackends()), BackendName);

}  // namespace kontor
