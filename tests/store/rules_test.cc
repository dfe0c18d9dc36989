// The backend-neutral rules of the store (store/rules.h), by themselves: the
// delivery state machine as a whole table, the priority share of a batch,
// retention cutoffs, the refusal audit record. The conformance suite checks
// that a backend applies them.

#include "daemon/store/rules.h"

#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace kontor {
namespace {

std::string Moves() {
  // Every (from, move, to) the rules allow, one per line, in a fixed order.
  const std::vector<std::pair<DeliveryMove, const char*>> moves = {
      {DeliveryMove::kSettle, "settle"},
      {DeliveryMove::kForward, "forward"},
      {DeliveryMove::kSuspend, "suspend"},
      {DeliveryMove::kCancel, "cancel"},
      {DeliveryMove::kRetry, "retry"}};
  std::string out;
  for (const auto& [move, name] : moves) {
    for (absl::string_view to : StoredDeliveryStates()) {
      for (absl::string_view from : StoredDeliveryStates()) {
        if (MayMove(from, move, to)) {
          absl::StrAppend(&out, from, " -", name, "-> ", to, "\n");
        }
      }
    }
  }
  return out;
}

TEST(DeliveryRulesTest, TheWholeStateMachine) {
  // A change to this table is a change to DESIGN.md §5: deliberate.
  EXPECT_EQ(Moves(),
            "queued -settle-> delivered\n"
            "forwarded -settle-> delivered\n"
            "rejected -settle-> delivered\n"
            "expired -settle-> delivered\n"
            "cancelled -settle-> delivered\n"
            "queued -settle-> rejected\n"
            "forwarded -settle-> rejected\n"
            "queued -settle-> expired\n"
            "forwarded -settle-> expired\n"
            "queued -forward-> forwarded\n"
            "queued -suspend-> suspended\n"
            "queued -cancel-> cancelled\n"
            "suspended -cancel-> cancelled\n"
            "queued -retry-> queued\n"
            "suspended -retry-> queued\n");
}

TEST(DeliveryRulesTest, DeliveredIsFinalAndSuspendedWaitsForAnOperator) {
  for (absl::string_view to : StoredDeliveryStates()) {
    for (DeliveryMove move :
         {DeliveryMove::kSettle, DeliveryMove::kForward, DeliveryMove::kSuspend,
          DeliveryMove::kCancel, DeliveryMove::kRetry}) {
      EXPECT_FALSE(MayMove(kStateDelivered, move, to)) << to;
      // Only an operator (cancel, retry) moves a suspended delivery.
      if (move != DeliveryMove::kCancel && move != DeliveryMove::kRetry) {
        EXPECT_FALSE(MayMove(kStateSuspended, move, to)) << to;
      }
    }
  }
  // A state that is no state leads nowhere.
  EXPECT_TRUE(StatesBefore(DeliveryMove::kSettle, "in_flight").empty());
  EXPECT_TRUE(StatesBefore(DeliveryMove::kSettle, "queued").empty());
  EXPECT_FALSE(MayMove("", DeliveryMove::kSettle, kStateDelivered));
}

std::vector<PendingDelivery> Class(const std::string& tag, size_t n) {
  std::vector<PendingDelivery> out(n);
  for (size_t i = 0; i < n; ++i) out[i].message_id = absl::StrCat(tag, i);
  return out;
}

std::string Ids(const std::vector<PendingDelivery>& batch) {
  std::string out;
  for (const PendingDelivery& d : batch)
    absl::StrAppend(&out, d.message_id, " ");
  return out;
}

TEST(BatchRulesTest, FlashFirstThenThreeUrgentToOneRoutine) {
  EXPECT_EQ(Ids(ComposeBatch(Class("f", 1), Class("u", 10), Class("r", 10), 9)),
            "f0 u0 u1 u2 r0 u3 u4 u5 r1 ");
}

TEST(BatchRulesTest, EitherClassTakesWhatTheOtherLeaves) {
  EXPECT_EQ(Ids(ComposeBatch({}, Class("u", 1), Class("r", 10), 8)),
            "u0 r0 r1 r2 r3 r4 r5 r6 ");
  EXPECT_EQ(Ids(ComposeBatch({}, Class("u", 10), {}, 5)), "u0 u1 u2 u3 u4 ");
}

TEST(BatchRulesTest, UnderFourPlacesUrgentGoesFirst) {
  EXPECT_EQ(Ids(ComposeBatch({}, Class("u", 5), Class("r", 5), 3)),
            "u0 u1 u2 ");
  EXPECT_EQ(Ids(ComposeBatch({}, Class("u", 1), Class("r", 5), 3)),
            "u0 r0 r1 ");
}

TEST(BatchRulesTest, FlashAloneMayFillTheBatchAndNeverExceedsIt) {
  EXPECT_EQ(Ids(ComposeBatch(Class("f", 5), Class("u", 5), Class("r", 5), 3)),
            "f0 f1 f2 ");
  EXPECT_TRUE(ComposeBatch(Class("f", 2), {}, {}, 0).empty());
}

TEST(RetentionRulesTest, PerKindDaysElseTheDefaultAndZeroKeeps) {
  const int64_t now = 100LL * 24 * 3600 * 1000;
  const auto cutoffs = RetentionCutoffs(
      {"note", "referral", "alert"}, {{"referral", 30}, {"alert", 0}}, 7, now);
  ASSERT_EQ(cutoffs.size(), 2u);
  EXPECT_EQ(cutoffs[0].kind, "note");
  EXPECT_EQ(cutoffs[0].days, 7u);
  EXPECT_EQ(cutoffs[0].cutoff_ms, now - 7LL * 24 * 3600 * 1000);
  EXPECT_EQ(cutoffs[1].kind, "referral");
  EXPECT_EQ(cutoffs[1].cutoff_ms, now - 30LL * 24 * 3600 * 1000);
  EXPECT_TRUE(RetentionCutoffs({"note"}, {}, 0, now).empty());
}

TEST(RefusalRulesTest, TheRecordNamesThePeerAndSplitsARelayKey) {
  Settlement own{"m1", "fi", kStateRejected, "INVALID: bad", "r", 5, ""};
  AuditEntry e = RefusalAuditEntry(own);
  EXPECT_EQ(e.action, kAuditRefuse);
  EXPECT_EQ(e.actor, "node:fi");
  EXPECT_EQ(e.message_id, "m1");
  EXPECT_EQ(e.origin, "");
  EXPECT_EQ(e.peer, "fi");
  EXPECT_EQ(e.detail, "INVALID: bad");
  Settlement relayed{"ee/m2", "lv", kStateRejected, "x", "r", 5, ""};
  e = RefusalAuditEntry(relayed);
  EXPECT_EQ(e.origin, "ee");
  EXPECT_EQ(e.message_id, "m2");
}

}  // namespace
}  // namespace kontor
