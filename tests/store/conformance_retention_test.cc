// Conformance (conformance.h): retention (DESIGN.md §7). PurgeCandidates
// names the messages, received and own copies, whose content is older than
// the retention of their kind (the default for kinds not listed; 0 keeps
// them); a purged one is not named again. Relayed copies and refused
// messages hold no content of this node's and are never named.

#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "daemon/store/store.h"
#include "gtest/gtest.h"
#include "tests/store/backends.h"
#include "tests/store/conformance.h"

namespace kontor {
namespace {

class RetentionConformanceTest : public ErasureFixture {
 protected:
  static constexpr int64_t kDay = 24LL * 3600 * 1000;
  static constexpr int64_t kNow = 1000 * kDay;
  const std::map<std::string, uint32_t> days_ = {
      {"note", 7}, {"referral", 30}, {"alert", 0}};
  static constexpr uint32_t kDefaultDays = 10;

  // (origin, id, sent, kind, since_ms, days) of each candidate.
  using Named = std::set<std::tuple<std::string, std::string, bool, std::string,
                                    int64_t, uint32_t>>;
  Named Candidates(size_t limit = 100) {
    auto due = store_->PurgeCandidates(days_, kDefaultDays, kNow, limit);
    EXPECT_TRUE(due.ok()) << due.status();
    Named out;
    if (!due.ok()) return out;
    for (const PurgeCandidate& c : *due) {
      out.emplace(c.origin, c.message_id, c.sent, c.kind, c.since_ms, c.days);
    }
    return out;
  }

  void Receive(const std::string& id, const std::string& kind, int64_t age,
               bool accepted = true) {
    InboxRecord r = Inbox("ee", id, kNow - age);
    r.kind = kind;
    r.accepted = accepted;
    if (!accepted) r.refusal = "policy";
    Insert({r});
  }
  void Send(const std::string& id, const std::string& kind, int64_t age) {
    OutgoingMessage m = Message(id, kNow - age);
    m.kind = kind;
    ASSERT_TRUE(store_->InsertOutgoing(m).ok());
  }
};

TEST_P(RetentionConformanceTest, CandidatesFollowTheRetentionOfEachKind) {
  Receive("note-old", "note", 8 * kDay);
  Receive("note-new", "note", 6 * kDay);
  Receive("referral-old", "referral", 31 * kDay);
  Receive("referral-new", "referral", 29 * kDay);
  Receive("alert-old", "alert", 900 * kDay);   // 0: kept
  Receive("sitrep-old", "sitrep", 11 * kDay);  // the default, 10
  Receive("sitrep-new", "sitrep", 9 * kDay);
  Receive("refused-old", "note", 900 * kDay, false);
  Send("sent-note-old", "note", 8 * kDay);
  Send("sent-note-new", "note", 6 * kDay);
  Send("sent-referral-new", "referral", 29 * kDay);
  Send("sent-alert-old", "alert", 900 * kDay);
  RelayedMessage relayed;
  relayed.origin = "ee";
  relayed.message_id = "relayed-old";
  relayed.deliver_to = "lv";
  relayed.from_peer = "ee";
  relayed.created_ms = kNow - 900 * kDay;
  relayed.expires_ms = kNow + kDay;
  relayed.envelope = "envelope";
  relayed.outer_digest = "digest";
  relayed.received_ms = relayed.created_ms;
  std::vector<std::optional<DedupEntry>> existing;
  ASSERT_TRUE(store_->InsertRelayed({relayed}, &existing).ok());

  const Named expected = {
      {"ee", "note-old", false, "note", kNow - 8 * kDay, 7},
      {"ee", "referral-old", false, "referral", kNow - 31 * kDay, 30},
      {"ee", "sitrep-old", false, "sitrep", kNow - 11 * kDay, 10},
      {"", "sent-note-old", true, "note", kNow - 8 * kDay, 7},
  };
  EXPECT_EQ(Candidates(), expected);
  EXPECT_EQ(Candidates(2).size(), 2u);
  // Nothing kept for ever: with every kind at 0 nothing is due.
  auto none = store_->PurgeCandidates({}, 0, kNow, 100);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->empty());

  // Purged, they are not named again; the rest wait for their time.
  auto due = store_->PurgeCandidates(days_, kDefaultDays, kNow, 100);
  ASSERT_TRUE(due.ok()) << due.status();
  ASSERT_TRUE(store_->Purge(*due, "kontord", kNow).ok());
  EXPECT_TRUE(Candidates().empty());
  EXPECT_EQ(Erasures().size(), 4u);
  Open();
  EXPECT_TRUE(Candidates().empty());
  auto later =
      store_->PurgeCandidates(days_, kDefaultDays, kNow + 2 * kDay, 100);
  ASSERT_TRUE(later.ok()) << later.status();
  std::set<std::string> ids;
  for (const PurgeCandidate& c : *later) ids.insert(c.message_id);
  EXPECT_EQ(ids,
            (std::set<std::string>{"note-new", "sitrep-new", "sent-note-new",
                                   "referral-new", "sent-referral-new"}));
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(Backends, RetentionConformanceTest,
                         ::testing::ValuesIn(StoreBackends()), BackendName);

}  // namespace kontor
