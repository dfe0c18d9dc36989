// Conformance (conformance.h): erasure (DESIGN.md §7). A retention purge,
// an erase order from the message's origin, or one this node sends erases
// a message's content: payload, inner signature, subject, attachment keys.
// Erasure is cryptographic: the content key is destroyed, so nothing reads
// the content again, not after a restart, not when the message comes
// again. Metadata, digests, receipts and dedup records stay; each erasure
// is one "erase" audit record, in the same transaction. (Where the bytes
// land on disk: sqlite_erasure_test.cc.)

#include <unistd.h>

#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "daemon/store/audit.h"
#include "daemon/store/store.h"
#include "gtest/gtest.h"
#include "tests/store/backends.h"
#include "tests/store/conformance.h"

namespace kontor {
namespace {

class ErasureConformanceTest : public ErasureFixture {
 protected:
  // Whether the backend still holds the content key of the message (origin
  // empty: sent here), asked with the store closed (it stays closed).
  bool KeyHeld(const std::string& origin, const std::string& id) {
    Close();
    auto held = GetParam().content_key_exists(dir_, origin, id);
    EXPECT_TRUE(held.ok()) << origin << "/" << id << ": " << held.status();
    return held.ok() && *held;
  }
};

// ------------------------------------------------------------- key file

// The key file belongs to its store: opened without it (a new one would be
// made, empty), the store is refused, says why, and leaves no new key file
// behind; with its own key file back, it opens with its content.
TEST_P(ErasureConformanceTest, AStoreRefusesAKeyFileNotItsOwn) {
  if (!GetParam().key_file) GTEST_SKIP() << "no key_file for this backend";
  ASSERT_TRUE(store_->InsertOutgoing(Message("m1")).ok());
  Close();
  const std::string keys = GetParam().key_file(dir_);
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::rename((keys + suffix).c_str(), (keys + suffix + ".saved").c_str());
  }

  auto refused = GetParam().open(dir_);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition)
      << refused.status();
  EXPECT_TRUE(absl::StrContains(refused.status().message(), keys))
      << refused.status();
  EXPECT_NE(access(keys.c_str(), F_OK), 0) << "a new key file was left";
  auto again = GetParam().open(dir_);  // refused again, not bound anew
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition)
      << again.status();
  again = absl::InternalError("closed");

  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::rename((keys + suffix + ".saved").c_str(), (keys + suffix).c_str());
  }
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(Subject("CASE-m1"), "subject-m1");
}

// ----------------------------------------------------------------- purge

TEST_P(ErasureConformanceTest, PurgeErasesContentAndKeepsMetadata) {
  ASSERT_TRUE(store_->InsertOutgoing(Message("m1")).ok());
  ASSERT_TRUE(store_->InsertOutgoing(Message("m2")).ok());
  ASSERT_TRUE(
      store_
          ->Settle({{"m1", "fi", kStateDelivered, "", "receipt-m1", 1500, ""}})
          .ok());
  Insert({Inbox("ee", "r1"), Inbox("ee", "r2")});
  const std::string inner_digest = (*store_->FindMessage("m1"))->inner_digest;
  EXPECT_FALSE(inner_digest.empty());

  ASSERT_TRUE(
      store_
          ->Purge({PurgeCandidate{"m1", "", true, "referral", 1000, 30, ""},
                   PurgeCandidate{"r1", "ee", false, "note", 2000, 7, ""}},
                  "kontord", 9000)
          .ok());

  // Read every way there is, now and after a restart.
  for (int pass = 0; pass < 2; ++pass) {
    SCOPED_TRACE(pass == 0 ? "at once" : "after a restart");
    const KnownMessage sent = Must("m1");
    EXPECT_EQ(sent.payload, "");
    EXPECT_EQ(sent.inner_signed, "");
    EXPECT_EQ(sent.purged_ms, 9000);
    EXPECT_EQ(sent.kind, "referral");
    EXPECT_EQ(sent.case_ref, "CASE-m1");
    EXPECT_EQ(sent.submitter, "user:anna");
    EXPECT_EQ(sent.created_ms, 1000);
    EXPECT_EQ(sent.inner_digest, inner_digest);
    EXPECT_EQ(Subject("CASE-m1"), "");
    EXPECT_EQ(store_->Thread("CASE-m1")->front().purged_ms, 9000);
    auto deliveries = *store_->Deliveries("m1");
    ASSERT_EQ(deliveries.size(), 1u);
    EXPECT_EQ(deliveries[0].state, kStateDelivered);
    EXPECT_EQ(deliveries[0].receipt, "receipt-m1");
    auto facts = *store_->GetMessageFacts("m1");
    ASSERT_TRUE(facts.has_value());
    EXPECT_EQ(facts->outer_digest, "digest-m1");
    EXPECT_EQ(facts->inner_digest, inner_digest);

    const InboxRecord r1 = Received("ee", "r1");
    EXPECT_EQ(r1.payload, "");
    EXPECT_EQ(r1.subject, "");
    EXPECT_EQ(r1.inner_signed, "");
    EXPECT_EQ(r1.purged_ms, 9000);
    EXPECT_EQ(r1.outer_digest, "digest-ee-r1");
    EXPECT_EQ(r1.receipt, "receipt-ee-r1");
    EXPECT_EQ(r1.case_ref, "CASE-r1");
    EXPECT_EQ(r1.kind, "note");
    EXPECT_EQ(r1.header, "header-r1");  // routing metadata, not content
    EXPECT_EQ(Must("r1").payload, "");
    EXPECT_EQ(Subject("CASE-r1"), "");
    auto listed = *store_->ListInbox(false, 0, 10);
    ASSERT_EQ(listed.size(), 2u);  // still listed, as erased
    EXPECT_EQ(listed[0].message_id, "r1");
    EXPECT_EQ(listed[0].payload, "");
    EXPECT_EQ(listed[0].purged_ms, 9000);
    auto dedup = *store_->FindInbox("ee", "r1");
    ASSERT_TRUE(dedup.has_value());
    EXPECT_EQ(dedup->outer_digest, "digest-ee-r1");
    EXPECT_EQ(dedup->receipt, "receipt-ee-r1");
    EXPECT_TRUE(*store_->HasAccepted("ee", "r1"));
    auto by_prefix = *store_->FindByIdPrefix("r1", 10);
    ASSERT_EQ(by_prefix.size(), 1u);
    EXPECT_EQ(by_prefix[0].purged_ms, 9000);

    // The others are untouched.
    EXPECT_EQ(Must("m2").payload, "payload-m2");
    EXPECT_EQ(Must("m2").inner_signed, "inner-m2");
    EXPECT_EQ(Received("ee", "r2").payload, "payload-ee-r2");
    EXPECT_EQ(Subject("CASE-r2"), "subject-ee-r2");
    Open();
  }

  auto erased = Erasures();
  ASSERT_EQ(erased.size(), 2u);
  EXPECT_EQ(erased[0].entry.message_id, "m1");
  EXPECT_EQ(erased[0].entry.origin, "");
  EXPECT_EQ(erased[0].entry.actor, "kontord");
  EXPECT_TRUE(absl::StrContains(erased[0].entry.detail, "30 days"))
      << erased[0].entry.detail;
  EXPECT_EQ(erased[1].entry.message_id, "r1");
  EXPECT_EQ(erased[1].entry.origin, "ee");
  EXPECT_EQ(erased[1].time_ms, 9000);

  // Again: nothing changes, nothing is recorded.
  ASSERT_TRUE(
      store_
          ->Purge({PurgeCandidate{"m1", "", true, "referral", 1000, 30, ""},
                   PurgeCandidate{"r1", "ee", false, "note", 2000, 7, ""}},
                  "kontord", 9900)
          .ok());
  EXPECT_EQ(Erasures().size(), 2u);
  EXPECT_EQ(Must("m1").purged_ms, 9000);
  EXPECT_EQ(Received("ee", "r1").purged_ms, 9000);
}

TEST_P(ErasureConformanceTest, ErasureDestroysTheContentKey) {
  if (!GetParam().content_key_exists) {
    GTEST_SKIP() << GetParam().name << " cannot say whether a key is held";
  }
  ASSERT_TRUE(store_->InsertOutgoing(Message("m1")).ok());
  ASSERT_TRUE(store_->InsertOutgoing(Message("m2")).ok());
  Insert({Inbox("ee", "r1"), Inbox("ee", "r2"), Inbox("ee", "r3")});
  for (const auto& [origin, id] :
       std::vector<std::pair<std::string, std::string>>{
           {"", "m1"}, {"", "m2"}, {"ee", "r1"}, {"ee", "r2"}, {"ee", "r3"}}) {
    EXPECT_TRUE(KeyHeld(origin, id)) << origin << "/" << id;
  }
  Open();
  ASSERT_TRUE(
      store_
          ->Purge({PurgeCandidate{"m1", "", true, "referral", 1000, 30, ""},
                   PurgeCandidate{"r1", "ee", false, "note", 2000, 7, ""}},
                  "kontord", 9000)
          .ok());
  // Right after the commit, not at the next open.
  EXPECT_FALSE(KeyHeld("", "m1"));
  EXPECT_FALSE(KeyHeld("ee", "r1"));
  EXPECT_TRUE(KeyHeld("", "m2"));
  EXPECT_TRUE(KeyHeld("ee", "r2"));

  // An erase order from the origin, and one this node sends.
  Open();
  Insert({Order("ee", "o1", {"r2"}, 3000)});
  OutgoingMessage order = Message("m3", 5000);
  order.kind = "erase.notice";
  order.erase_targets = {"m2"};
  ASSERT_TRUE(store_->InsertOutgoing(order).ok());
  EXPECT_FALSE(KeyHeld("ee", "r2"));
  EXPECT_FALSE(KeyHeld("", "m2"));
  EXPECT_TRUE(KeyHeld("ee", "r3"));
  EXPECT_TRUE(KeyHeld("ee", "o1"));
  EXPECT_TRUE(KeyHeld("", "m3"));
}

TEST_P(ErasureConformanceTest, PurgeOfASentMessageErasesItsAttachmentKeys) {
  UploadRecord u1 = Upload("u1", "scan of the passport.pdf", "key-u1");
  UploadRecord u2 = Upload("u2", "other.pdf", "key-u2");
  ASSERT_TRUE(store_->InsertUpload(u1).ok());
  ASSERT_TRUE(store_->InsertUpload(u2).ok());
  OutgoingMessage m1 = Message("m1");
  m1.uploads = {"u1"};
  m1.chunk_count = 1;
  OutgoingMessage m2 = Message("m2");
  m2.uploads = {"u2"};
  m2.chunk_count = 1;
  ASSERT_TRUE(store_->InsertOutgoing(m1).ok());
  ASSERT_TRUE(store_->InsertOutgoing(m2).ok());
  EXPECT_EQ((*store_->GetUpload("u1"))->key, "key-u1");
  EXPECT_EQ((*store_->GetUpload("u1"))->message_id, "m1");

  ASSERT_TRUE(store_
                  ->Purge({PurgeCandidate{"m1", "", true, "", 1000, 30, ""}},
                          "kontord", 9000)
                  .ok());
  for (int pass = 0; pass < 2; ++pass) {
    SCOPED_TRACE(pass == 0 ? "at once" : "after a restart");
    auto got = store_->GetUpload("u1");
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_TRUE(got->has_value());
    EXPECT_EQ((*got)->key, "");   // nothing opens its chunks
    EXPECT_EQ((*got)->name, "");  // a file name may say who it is about
    EXPECT_EQ((*got)->content_type, "");
    EXPECT_EQ((*got)->message_id, "m1");
    EXPECT_EQ((*got)->sha256, u1.sha256);
    EXPECT_EQ((*store_->GetUpload("u2"))->key, "key-u2");
    EXPECT_EQ((*store_->GetUpload("u2"))->name, "other.pdf");
    Open();
  }
}

// The sender resends a message erased here (its receipt was lost): it is
// answered as a duplicate and its content does not come back.
TEST_P(ErasureConformanceTest, ErasedMessageSentAgainStaysErased) {
  Insert({Inbox("ee", "r1")});
  ASSERT_TRUE(
      store_
          ->Purge({PurgeCandidate{"r1", "ee", false, "note", 2000, 1, ""}},
                  "kontord", 9000)
          .ok());
  std::vector<std::optional<DedupEntry>> existing;
  ASSERT_TRUE(store_->InsertInbox({Inbox("ee", "r1", 9500)}, &existing).ok());
  ASSERT_TRUE(existing[0].has_value());
  EXPECT_EQ(existing[0]->receipt, "receipt-ee-r1");
  EXPECT_EQ(Received("ee", "r1").payload, "");
  EXPECT_EQ(Received("ee", "r1").purged_ms, 9000);
  Open();
  EXPECT_EQ(Received("ee", "r1").payload, "");
  EXPECT_EQ(Must("r1").payload, "");
  EXPECT_EQ(Erasures().size(), 1u);
}

// --------------------------------------------------------- erase orders

// An order reaches only messages of its own origin; a refused order, none.
TEST_P(ErasureConformanceTest, EraseOrderReachesOnlyItsOriginsMessages) {
  Insert({Inbox("ee", "t1", 2000), Inbox("fi", "t1", 2001),
          Inbox("ee", "x1", 2002)});
  Insert({Order("ee", "o1", {"t1"}, 3000)});
  const InboxRecord t1 = Received("ee", "t1");
  EXPECT_EQ(t1.purged_ms, 3000);
  EXPECT_EQ(t1.payload, "");
  EXPECT_EQ(t1.subject, "");
  EXPECT_EQ(t1.inner_signed, "");
  EXPECT_EQ(t1.receipt, "receipt-ee-t1");
  EXPECT_EQ(Received("fi", "t1").payload, "payload-fi-t1");
  EXPECT_EQ(Received("ee", "o1").payload, "payload-ee-o1");  // the order

  // fi naming ee's message, and a refused order of the right origin.
  Insert({Order("fi", "o2", {"x1"}, 3100)});
  InboxRecord refused = Order("ee", "o3", {"x1"}, 3200);
  refused.accepted = false;
  refused.refusal = "policy";
  Insert({refused});
  EXPECT_EQ(Received("ee", "x1").payload, "payload-ee-x1");
  EXPECT_TRUE(store_->ListEraseOrders("o3")->empty());

  auto erased = Erasures();
  ASSERT_EQ(erased.size(), 1u);
  EXPECT_EQ(erased[0].entry.actor, "node:ee");
  EXPECT_EQ(erased[0].entry.message_id, "t1");
  EXPECT_EQ(erased[0].entry.origin, "ee");
  EXPECT_TRUE(absl::StrContains(erased[0].entry.detail, "o1"))
      << erased[0].entry.detail;
  EXPECT_FALSE(absl::StrContains(erased[0].entry.detail, "reason-o1"))
      << erased[0].entry.detail;  // the reason is content

  auto o1 = *store_->ListEraseOrders("o1");
  ASSERT_EQ(o1.size(), 1u);
  EXPECT_EQ(o1[0].origin, "ee");
  EXPECT_EQ(o1[0].message_id, "t1");
  EXPECT_EQ(o1[0].order_kind, "erase.notice");
  EXPECT_EQ(o1[0].reason, "");
  EXPECT_NE(o1[0].applied_ms, 0);
  auto o2 = *store_->ListEraseOrders("o2");
  ASSERT_EQ(o2.size(), 1u);
  EXPECT_EQ(o2[0].applied_ms, 0);  // fi's x1 never came
}

// An order that comes before its message is kept (across a restart) and
// applied when the message arrives, also in one batch with it.
TEST_P(ErasureConformanceTest, EraseOrderBeforeItsMessageIsAppliedOnArrival) {
  Insert({Order("ee", "o1", {"later"}, 3000)});
  Open();
  ASSERT_EQ(store_->ListEraseOrders("o1")->size(), 1u);
  EXPECT_EQ(store_->ListEraseOrders("o1")->front().applied_ms, 0);
  Insert({Inbox("fi", "later", 4000)});  // another origin's: not it
  EXPECT_EQ(Received("fi", "later").payload, "payload-fi-later");
  Insert({Inbox("ee", "later", 5000)});
  EXPECT_NE(Received("ee", "later").purged_ms, 0);
  EXPECT_EQ(Received("ee", "later").payload, "");
  EXPECT_EQ(Received("ee", "later").receipt, "receipt-ee-later");
  EXPECT_NE(store_->ListEraseOrders("o1")->front().applied_ms, 0);

  Insert({Order("ee", "o2", {"b1"}, 6000), Inbox("ee", "b1", 6001)});
  Insert({Inbox("ee", "b2", 6002), Order("ee", "o3", {"b2"}, 6003)});
  EXPECT_EQ(Received("ee", "b1").payload, "");
  EXPECT_EQ(Received("ee", "b2").payload, "");
  EXPECT_EQ(Received("ee", "o2").payload, "payload-ee-o2");
  EXPECT_EQ(Received("ee", "o3").payload, "payload-ee-o3");
  Open();
  EXPECT_EQ(Received("ee", "later").payload, "");
  std::vector<std::string> ids;
  for (const AuditRecord& r : Erasures()) ids.push_back(r.entry.message_id);
  EXPECT_EQ(ids, (std::vector<std::string>{"later", "b1", "b2"}));
}

TEST_P(ErasureConformanceTest,
       OneOrderNamingSeveralMessagesErasesThoseHereKeepsTheRest) {
  Insert({Inbox("ee", "a", 2000), Inbox("ee", "b", 2001)});
  Insert({Order("ee", "o1", {"a", "b", "c"}, 3000)});
  EXPECT_NE(Received("ee", "a").purged_ms, 0);
  EXPECT_NE(Received("ee", "b").purged_ms, 0);
  auto orders = store_->ListEraseOrders("o1");
  ASSERT_EQ(orders->size(), 3u);
  std::map<std::string, int64_t> applied;
  for (const EraseOrder& o : *orders) applied[o.message_id] = o.applied_ms;
  EXPECT_NE(applied["a"], 0);
  EXPECT_NE(applied["b"], 0);
  EXPECT_EQ(applied["c"], 0);
  EXPECT_EQ(Erasures().size(), 2u);
  Insert({Inbox("ee", "c", 4000)});
  EXPECT_NE(Received("ee", "c").purged_ms, 0);
  EXPECT_EQ(Erasures().size(), 3u);
}

// An erase order this node sends erases its own copies with it; a
// submission that fails erases nothing.
TEST_P(ErasureConformanceTest, OutgoingEraseOrderErasesOwnCopiesOnlyIfStored) {
  ASSERT_TRUE(store_->InsertOutgoing(Message("m1", 1000)).ok());
  Insert({Inbox("ee", "r1", 1500)});  // received: not this node's own
  const uint64_t audited = store_->GetAuditHead()->seq;
  OutgoingMessage failing = Message("m2", 5000);
  failing.kind = "erase.notice";
  failing.erase_targets = {"m1"};
  failing.uploads = {"no-such-upload"};
  EXPECT_FALSE(store_->InsertOutgoing(failing).ok());
  EXPECT_EQ(Must("m1").payload, "payload-m1");
  EXPECT_EQ(Must("m1").purged_ms, 0);
  EXPECT_FALSE(Find("m2").has_value());
  EXPECT_EQ(store_->GetAuditHead()->seq, audited);

  OutgoingMessage order = Message("m3", 6000);
  order.kind = "erase.notice";
  order.erase_targets = {"m1", "r1", "unknown"};
  ASSERT_TRUE(store_->InsertOutgoing(order).ok());
  EXPECT_EQ(Must("m1").payload, "");
  EXPECT_EQ(Must("m1").purged_ms, 6000);
  EXPECT_EQ(Subject("CASE-m1"), "");
  EXPECT_EQ(Must("m3").payload, "payload-m3");
  EXPECT_EQ(Received("ee", "r1").payload, "payload-ee-r1");
  auto erased = Erasures();
  ASSERT_EQ(erased.size(), 1u);
  EXPECT_EQ(erased[0].entry.message_id, "m1");
  EXPECT_EQ(erased[0].entry.actor, "user:anna");
  EXPECT_TRUE(absl::StrContains(erased[0].entry.detail, "m3"))
      << erased[0].entry.detail;
  Open();
  EXPECT_EQ(Must("m1").payload, "");
}

// ------------------------------------------------------ evidence archive

TEST_P(ErasureConformanceTest, EvidenceIsArchivedOncePerContent) {
  const std::string der1(
      "\x30\x82\x00\x01"
      "cert-one",
      12);
  const std::string der2(
      "\x30\x82\x00\x02"
      "crl-two\0x",
      13);
  ASSERT_TRUE(store_->PutEvidence({{"cert", der1, 0}}, 100).ok());
  ASSERT_TRUE(store_->PutEvidence({{"cert", der1, 0}}, 200).ok());
  auto list = store_->ListEvidence();
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ(list->front().type, "cert");
  EXPECT_EQ(list->front().der, der1);
  EXPECT_EQ(list->front().added_ms, 100);  // the first archiving stays

  ASSERT_TRUE(
      store_->PutEvidence({{"crl", der2, 0}, {"crl", der2, 0}}, 300).ok());
  ASSERT_TRUE(store_->PutEvidence({}, 400).ok());
  Open();
  list = store_->ListEvidence();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[1].type, "crl");
  EXPECT_EQ((*list)[1].der, der2);
  EXPECT_EQ((*list)[1].added_ms, 300);
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(Backends, ErasureConformanceTest,
                         ::testing::ValuesIn(StoreBackends()), BackendName);

}  // namespace kontor
