// Conformance (conformance.h): what this node receives. A message is kept
// once per (origin, id): whatever comes again under that pair, even other
// bytes, is answered with the stored outer digest and receipt and leaves
// the stored record as it is, also when copies arrive at once.

#include <atomic>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "daemon/store/audit.h"
#include "daemon/store/store.h"
#include "gtest/gtest.h"
#include "tests/store/backends.h"
#include "tests/store/conformance.h"

namespace kontor {
namespace {

class InboxConformanceTest : public SendingFixture {
 protected:
  static InboxRecord Record(const std::string& origin, const std::string& id,
                            const std::string& digest) {
    InboxRecord r;
    r.origin = origin;
    r.message_id = id;
    r.outer_digest = digest;
    r.payload = "payload of " + digest;
    r.subject = "subject of " + digest;
    r.kind = "note";
    r.receipt = "receipt for " + digest;
    r.received_ms = 1000;
    return r;
  }
};

TEST_P(InboxConformanceTest, InboxDedupsOnOriginAndId) {
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

TEST_P(InboxConformanceTest, AckAndUnread) {
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

TEST_P(InboxConformanceTest, RefusedRecordsAreNotListedButDedup) {
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

TEST_P(InboxConformanceTest, DuplicateLeavesTheStoredRecordAsItIs) {
  std::vector<std::optional<DedupEntry>> existing;
  ASSERT_TRUE(store_->InsertInbox({Record("ee", "m1", "d1")}, &existing).ok());
  ASSERT_EQ(existing.size(), 1u);
  EXPECT_FALSE(existing[0].has_value());
  EXPECT_TRUE(*store_->HasAccepted("ee", "m1"));
  EXPECT_FALSE(*store_->HasAccepted("lv", "m1"));

  auto expect_first = [&] {
    auto found = store_->FindInbox("ee", "m1");
    ASSERT_TRUE(found.ok()) << found.status();
    ASSERT_TRUE(found->has_value());
    EXPECT_EQ((*found)->outer_digest, "d1");
    EXPECT_EQ((*found)->receipt, "receipt for d1");
    auto got = store_->GetInbox("m1", "ee");
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(got->size(), 1u);
    EXPECT_EQ(got->front().outer_digest, "d1");
    EXPECT_EQ(got->front().payload, "payload of d1");
    EXPECT_EQ(got->front().subject, "subject of d1");
    EXPECT_EQ(got->front().kind, "note");
    EXPECT_EQ(got->front().receipt, "receipt for d1");
    EXPECT_EQ(store_->ListInbox(false, 0, 10)->size(), 1u);
    EXPECT_EQ(store_->MaxInboxSeq(), got->front().seq);
  };
  // The same envelope again, and other bytes under the same (origin, id),
  // twice in one batch: each answered with what is stored.
  InboxRecord other = Record("ee", "m1", "d2");
  other.kind = "alert";
  ASSERT_TRUE(
      store_->InsertInbox({Record("ee", "m1", "d1"), other}, &existing).ok());
  ASSERT_EQ(existing.size(), 2u);
  for (const auto& e : existing) {
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->outer_digest, "d1");
    EXPECT_EQ(e->receipt, "receipt for d1");
  }
  expect_first();
  Reopen();
  expect_first();
  ASSERT_TRUE(store_->InsertInbox({other}, &existing).ok());
  ASSERT_TRUE(existing[0].has_value());
  EXPECT_EQ(existing[0]->outer_digest, "d1");
  expect_first();
}

TEST_P(InboxConformanceTest, CopiesArrivingAtOnceAreAcceptedOnce) {
  constexpr int kThreads = 8;
  std::atomic<int> stored{0}, answered{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // The shared message, with one of the thread's own in the batch.
      std::vector<std::optional<DedupEntry>> existing;
      absl::Status s = store_->InsertInbox(
          {Record("ee", "shared", "d"),
           Record("lv", "own-" + std::to_string(t), "d" + std::to_string(t))},
          &existing);
      EXPECT_TRUE(s.ok()) << s;
      if (!s.ok() || existing.size() != 2) return;
      if (existing[0].has_value()) {
        EXPECT_EQ(existing[0]->outer_digest, "d");
        ++answered;
      } else {
        ++stored;
      }
      EXPECT_FALSE(existing[1].has_value());
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(stored.load(), 1);
  EXPECT_EQ(answered.load(), kThreads - 1);
  EXPECT_EQ(store_->GetInbox("shared", "")->size(), 1u);
  EXPECT_EQ(store_->ListInbox(false, 0, 100)->size(), size_t{kThreads + 1});
  auto audit = store_->AuditOfMessage("shared", 100);
  ASSERT_TRUE(audit.ok()) << audit.status();
  ASSERT_EQ(audit->size(), 1u);  // collected once
  EXPECT_EQ(audit->front().entry.action, kAuditCollect);
}

// A refused message sent again gets the stored refusal: it is not accepted
// the second time.
TEST_P(InboxConformanceTest, ResentRefusedMessageIsAnsweredWithTheRefusal) {
  InboxRecord refused = Record("ee", "m1", "d1");
  refused.accepted = false;
  refused.payload.clear();
  refused.receipt = "signed refusal";
  std::vector<std::optional<DedupEntry>> existing;
  ASSERT_TRUE(store_->InsertInbox({refused}, &existing).ok());
  ASSERT_TRUE(store_->InsertInbox({Record("ee", "m1", "d1")}, &existing).ok());
  ASSERT_TRUE(existing[0].has_value());
  EXPECT_EQ(existing[0]->receipt, "signed refusal");
  EXPECT_FALSE(*store_->HasAccepted("ee", "m1"));
  EXPECT_TRUE(store_->GetInbox("m1", "ee")->empty());
  EXPECT_TRUE(store_->ListInbox(false, 0, 10)->empty());
  EXPECT_EQ(store_->MaxInboxSeq(), 0u);
}

// ListInbox: accepted records only, each filter narrowing, case references
// compared ignoring ASCII case, paged forwards or backwards by seq.
TEST_P(InboxConformanceTest, QueriesFilterAndPage) {
  struct In {
    const char* origin;
    const char* id;
    const char* kind;
    const char* case_ref;
    bool accepted;
  };
  const std::vector<In> records = {
      {"ee", "a", "note", "EE-TRM-1", true},
      {"fi", "b", "referral", "ee-trm-1", true},
      {"ee", "c", "referral", "EE-TRM-2", true},
      {"ee", "x", "referral", "EE-TRM-1", false},
      {"lv", "d", "note", "Ee-Trm-1", true},
      {"ee", "e", "alert", "", true},
  };
  std::vector<uint64_t> seqs;
  for (const In& in : records) {
    InboxRecord r = Record(in.origin, in.id, std::string("d-") + in.id);
    r.kind = in.kind;
    r.case_ref = in.case_ref;
    r.accepted = in.accepted;
    std::vector<std::optional<DedupEntry>> existing;
    ASSERT_TRUE(store_->InsertInbox({r}, &existing).ok());
    if (in.accepted) seqs.push_back(store_->MaxInboxSeq());
  }
  ASSERT_EQ(seqs.size(), 5u);
  for (size_t i = 1; i < seqs.size(); ++i) EXPECT_GT(seqs[i], seqs[i - 1]);
  ASSERT_FALSE(*store_->Ack("fi", "b"));

  auto ids = [&](const InboxQuery& q) {
    std::string out;
    auto got = store_->ListInbox(q);
    EXPECT_TRUE(got.ok()) << got.status();
    if (got.ok()) {
      for (const InboxRecord& r : *got) out += r.message_id;
    }
    return out;
  };
  InboxQuery q;
  EXPECT_EQ(ids(q), "abcde");
  q.unread_only = true;
  EXPECT_EQ(ids(q), "acde");
  q = InboxQuery();
  q.kind = "referral";
  EXPECT_EQ(ids(q), "bc");
  q = InboxQuery();
  q.origin = "ee";
  EXPECT_EQ(ids(q), "ace");
  q = InboxQuery();
  q.case_ref = "ee-TRM-1";
  EXPECT_EQ(ids(q), "abd");
  q.origin = "ee";
  EXPECT_EQ(ids(q), "a");
  q = InboxQuery();
  q.case_ref = "EE-TRM";  // the whole reference, not a prefix
  EXPECT_EQ(ids(q), "");

  // Paging: forwards after a seq, backwards before one, newest first.
  q = InboxQuery();
  q.after_seq = seqs[1];
  EXPECT_EQ(ids(q), "cde");
  q.limit = 2;
  EXPECT_EQ(ids(q), "cd");
  q = InboxQuery();
  q.newest_first = true;
  EXPECT_EQ(ids(q), "edcba");
  q.limit = 2;
  EXPECT_EQ(ids(q), "ed");
  q.before_seq = seqs[3];  // before d
  EXPECT_EQ(ids(q), "cb");
  q.case_ref = "EE-TRM-1";
  EXPECT_EQ(ids(q), "ba");
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(Backends, InboxConformanceTest,
                         ::testing::ValuesIn(StoreBackends()), BackendName);

}  // namespace kontor
