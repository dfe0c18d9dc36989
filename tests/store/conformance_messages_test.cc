// Conformance (conformance.h): messages this node holds, as the local API
// and `kontor thread` see them: a case's thread of sent and received
// messages, a message by id, deliveries by who sent them.

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "daemon/store/store.h"
#include "gtest/gtest.h"
#include "tests/store/backends.h"
#include "tests/store/conformance.h"

namespace kontor {
namespace {

class MessagesConformanceTest : public AuditFixture {};

TEST_P(MessagesConformanceTest, ThreadHasSentAndReceivedInOrder) {
  OutgoingMessage m1 = Message("m1", {"fi", "lv"}, 1000);
  m1.case_ref = "CASE-1";
  m1.subject = "first";
  OutgoingMessage m2 = Message("m2", {"fi"}, 3000);
  m2.case_ref = "CASE-1";
  m2.in_reply_to = "r1";
  OutgoingMessage other = Message("m3", {"fi"}, 1500);
  other.case_ref = "CASE-2";
  for (const auto& m : {m1, m2, other}) {
    ASSERT_TRUE(store_->InsertOutgoing(m).ok());
  }
  InboxRecord r1 = Inbox("fi", "r1", true, 2010);
  r1.case_ref = "CASE-1";
  r1.subject = "reply";
  r1.created_ms = 2000;
  r1.kind = "referral.response";
  InboxRecord refused = Inbox("lv", "r2", false, 2510);
  refused.case_ref = "CASE-1";
  refused.created_ms = 2500;
  std::vector<std::optional<DedupEntry>> existing;
  ASSERT_TRUE(store_->InsertInbox({r1, refused}, &existing).ok());

  auto thread = store_->Thread("CASE-1");
  ASSERT_TRUE(thread.ok()) << thread.status();
  ASSERT_EQ(thread->size(), 3u);
  const ThreadEntry& a = (*thread)[0];
  EXPECT_EQ(a.message_id, "m1");
  EXPECT_TRUE(a.sent);
  EXPECT_EQ(a.origin, "");
  EXPECT_EQ(a.kind, "referral");
  EXPECT_EQ(a.subject, "first");
  EXPECT_EQ(a.case_ref, "CASE-1");
  EXPECT_EQ(a.created_ms, 1000);
  EXPECT_EQ(std::set<std::string>(a.peers.begin(), a.peers.end()),
            (std::set<std::string>{"fi", "lv"}));
  const ThreadEntry& b = (*thread)[1];
  EXPECT_EQ(b.message_id, "r1");
  EXPECT_FALSE(b.sent);
  EXPECT_EQ(b.origin, "fi");
  EXPECT_EQ(b.kind, "referral.response");
  EXPECT_EQ(b.subject, "reply");
  EXPECT_EQ(b.created_ms, 2000);
  EXPECT_TRUE(b.peers.empty());
  const ThreadEntry& c = (*thread)[2];
  EXPECT_EQ(c.message_id, "m2");
  EXPECT_TRUE(c.sent);
  EXPECT_EQ(c.in_reply_to, "r1");
  EXPECT_EQ(c.peers, std::vector<std::string>{"fi"});

  EXPECT_EQ(store_->Thread("CASE-2")->size(), 1u);
  EXPECT_TRUE(store_->Thread("CASE-3")->empty());
}

TEST_P(MessagesConformanceTest, RelayedCopiesAreNotFoundAsMessagesOfThisNode) {
  std::vector<std::optional<DedupEntry>> existing;
  ASSERT_TRUE(
      store_->InsertRelayed({Relayed("ee", "x1", "lv")}, &existing).ok());
  EXPECT_FALSE(store_->FindMessage("x1")->has_value());
  EXPECT_FALSE(store_->FindMessage(RelayKey("ee", "x1"))->has_value());
}

TEST_P(MessagesConformanceTest, FindMessageSentOrReceived) {
  OutgoingMessage m = Message("m1", {"fi"}, 1111);
  m.case_ref = "CASE-1";
  ASSERT_TRUE(store_->InsertOutgoing(m).ok());
  InboxRecord in = Inbox("ee", "r1", true, 2222);
  in.kind = "alert";
  in.case_ref = "CASE-9";
  InboxRecord refused = Inbox("ee", "r2", false);
  std::vector<std::optional<DedupEntry>> existing;
  ASSERT_TRUE(store_->InsertInbox({in, refused}, &existing).ok());

  auto sent = store_->FindMessage("m1");
  ASSERT_TRUE(sent.ok());
  ASSERT_TRUE(sent->has_value());
  EXPECT_EQ((*sent)->message_id, "m1");
  EXPECT_TRUE((*sent)->sent);
  EXPECT_EQ((*sent)->origin, "");
  EXPECT_EQ((*sent)->submitter, "user:anna");
  EXPECT_EQ((*sent)->kind, "referral");
  EXPECT_EQ((*sent)->case_ref, "CASE-1");
  EXPECT_EQ((*sent)->payload, "payload-m1");
  EXPECT_EQ((*sent)->created_ms, 1111);

  auto got = store_->FindMessage("r1");
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got->has_value());
  EXPECT_FALSE((*got)->sent);
  EXPECT_EQ((*got)->origin, "ee");
  EXPECT_EQ((*got)->kind, "alert");
  EXPECT_EQ((*got)->case_ref, "CASE-9");
  EXPECT_EQ((*got)->payload, "payload-r1");
  EXPECT_EQ((*got)->created_ms, 2222 - 10);
  EXPECT_EQ((*got)->submitter, "");

  EXPECT_FALSE(store_->FindMessage("r2")->has_value());  // refused
  EXPECT_FALSE(store_->FindMessage("nope")->has_value());
}

TEST_P(MessagesConformanceTest, ListDeliveriesBySubmitter) {
  OutgoingMessage a = Message("a1", {"fi", "lv"});
  OutgoingMessage b = Message("b1");
  b.submitter = "user:boris";
  ASSERT_TRUE(store_->InsertOutgoing(a).ok());
  ASSERT_TRUE(store_->InsertOutgoing(b).ok());
  auto ids = [](const std::vector<DeliveryRow>& rows) {
    std::multiset<std::string> out;
    for (const auto& r : rows) out.insert(r.message_id + ">" + r.peer);
    return out;
  };
  EXPECT_EQ(ids(*store_->ListDeliveries("", 10, "")),
            (std::multiset<std::string>{"a1>fi", "a1>lv", "b1>fi"}));
  EXPECT_EQ(ids(*store_->ListDeliveries("", 10)),
            (std::multiset<std::string>{"a1>fi", "a1>lv", "b1>fi"}));
  EXPECT_EQ(ids(*store_->ListDeliveries("", 10, "user:anna")),
            (std::multiset<std::string>{"a1>fi", "a1>lv"}));
  EXPECT_EQ(ids(*store_->ListDeliveries("queued", 10, "user:boris")),
            (std::multiset<std::string>{"b1>fi"}));
  EXPECT_TRUE(store_->ListDeliveries("", 10, "user:carla")->empty());
  EXPECT_EQ(store_->ListDeliveries("", 1, "user:anna")->size(), 1u);
  ASSERT_TRUE(
      store_->Settle({{"a1", "fi", kStateDelivered, "", "r", 9, ""}}).ok());
  EXPECT_EQ(ids(*store_->ListDeliveries("delivered", 10, "user:anna")),
            (std::multiset<std::string>{"a1>fi"}));
  EXPECT_TRUE(store_->ListDeliveries("delivered", 10, "user:boris")->empty());
  EXPECT_EQ(ids(*store_->ListDeliveries("", 10, "user:anna")),
            (std::multiset<std::string>{"a1>lv"}));
}

// Case references are compared ignoring ASCII case; id prefixes (lower
// case) find messages sent or accepted here, without their content.
TEST_P(MessagesConformanceTest, CaseAndIdPrefixLookups) {
  OutgoingMessage sent = Message("01abc1", {"fi"}, 1000);
  sent.case_ref = "EE-TRM-2026-0042";
  ASSERT_TRUE(store_->InsertOutgoing(sent).ok());
  InboxRecord received = Inbox("fi", "01abc2", true, 2000);
  received.case_ref = "ee-trm-2026-0042";
  InboxRecord refused = Inbox("fi", "01abc3", false, 2100);
  refused.case_ref = "EE-TRM-2026-0042";
  InboxRecord other = Inbox("lv", "01abd4", true, 2200);
  std::vector<std::optional<DedupEntry>> existing;
  ASSERT_TRUE(store_->InsertInbox({received, refused, other}, &existing).ok());
  ASSERT_TRUE(
      store_->InsertRelayed({Relayed("ee", "01abc5", "lv")}, &existing).ok());

  for (const char* ref :
       {"EE-TRM-2026-0042", "ee-trm-2026-0042", "Ee-TrM-2026-0042"}) {
    SCOPED_TRACE(ref);
    auto thread = store_->Thread(ref);
    ASSERT_TRUE(thread.ok()) << thread.status();
    ASSERT_EQ(thread->size(), 2u);
    EXPECT_EQ((*thread)[0].message_id, "01abc1");
    EXPECT_EQ((*thread)[1].message_id, "01abc2");
  }
  EXPECT_TRUE(store_->Thread("EE-TRM-2026-004")->empty());

  auto found = store_->FindByIdPrefix("01abc", 10);
  ASSERT_TRUE(found.ok()) << found.status();
  std::set<std::string> ids;
  for (const KnownMessage& k : *found) {
    ids.insert(k.message_id);
    EXPECT_EQ(k.payload, "");  // content is not read
    EXPECT_EQ(k.inner_signed, "");
    if (k.message_id == "01abc1") {
      EXPECT_TRUE(k.sent);
      EXPECT_EQ(k.origin, "");
      EXPECT_EQ(k.submitter, "user:anna");
    } else {
      EXPECT_FALSE(k.sent);
      EXPECT_EQ(k.origin, "fi");
    }
  }
  EXPECT_EQ(ids, (std::set<std::string>{"01abc1", "01abc2"}));
  EXPECT_EQ(store_->FindByIdPrefix("01ab", 10)->size(), 3u);
  EXPECT_EQ(store_->FindByIdPrefix("01abc2", 10)->size(), 1u);
  EXPECT_TRUE(store_->FindByIdPrefix("01abe", 10)->empty());
  EXPECT_TRUE(store_->FindByIdPrefix("1abc", 10)->empty());
}

// At most `limit` in all (once, the limit applied to sent and received
// messages apart).
TEST_P(MessagesConformanceTest, IdPrefixLookupReturnsAtMostLimit) {
  ASSERT_TRUE(store_->InsertOutgoing(Message("01abc1")).ok());
  std::vector<std::optional<DedupEntry>> existing;
  ASSERT_TRUE(store_->InsertInbox({Inbox("fi", "01abc2")}, &existing).ok());
  auto found = store_->FindByIdPrefix("01abc", 1);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->size(), 1u);
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(Backends, MessagesConformanceTest,
                         ::testing::ValuesIn(StoreBackends()), BackendName);

}  // namespace kontor
