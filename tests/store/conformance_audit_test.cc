// Conformance (conformance.h): the hash-chained audit log. Every write that
// collects, discloses, relays, alters, refuses or erases appends its
// records in its own transaction, so they are there when it returns; a
// write that fails leaves none and no gap in the sequence; the chain
// verifies, records link and hash as audit_reference.h computes them, and
// it all survives a restart. (Edits behind the store's back are found by
// VerifyAuditChain: sqlite_audit_test.cc.)

#include <atomic>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "daemon/store/audit.h"
#include "daemon/store/store.h"
#include "gtest/gtest.h"
#include "tests/store/backends.h"
#include "tests/store/conformance.h"

namespace kontor {
namespace {

class AuditConformanceTest : public AuditFixture {
 protected:
  // The actions of the records appended since `*seq`, which moves on.
  std::vector<std::string> Since(uint64_t* seq) {
    auto records = store_->ListAudit(*seq, 1000);
    EXPECT_TRUE(records.ok()) << records.status();
    std::vector<std::string> actions;
    if (!records.ok()) return actions;
    for (const AuditRecord& r : *records) {
      actions.push_back(r.entry.action);
      *seq = r.seq;
    }
    return actions;
  }
};

using Actions = std::vector<std::string>;

TEST_P(AuditConformanceTest, EmptyChain) {
  auto head = store_->GetAuditHead();
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->seq, 0u);
  EXPECT_EQ(head->hash, std::string(32, '\0'));
  EXPECT_FALSE(store_->GetAuditRecord(1)->has_value());
  EXPECT_FALSE(store_->GetAuditRecord(0)->has_value());
  EXPECT_TRUE(store_->TailAudit(5)->empty());
  EXPECT_TRUE(store_->ListAudit(0, 5)->empty());
  EXPECT_TRUE(store_->ListSignedHeads()->empty());
  AuditCheck c = Verify();
  EXPECT_EQ(c.records, 0u);
  EXPECT_EQ(c.first_bad_seq, 0u);
  EXPECT_EQ(c.head.seq, 0u);
  EXPECT_EQ(c.head.hash, GenesisHash());
}

TEST_P(AuditConformanceTest, InsertOutgoingDisclosesOncePerRecipient) {
  ASSERT_TRUE(store_->InsertOutgoing(Message("m1", {"fi", "lv"}, 1234)).ok());
  auto all = All();
  ASSERT_EQ(all.size(), 2u);
  std::set<std::string> peers;
  for (const AuditRecord& r : all) {
    EXPECT_EQ(r.entry.action, kAuditDisclose);
    EXPECT_EQ(r.entry.actor, "user:anna");
    EXPECT_EQ(r.entry.message_id, "m1");
    EXPECT_EQ(r.entry.origin, "");
    EXPECT_EQ(r.entry.kind, "referral");
    EXPECT_EQ(r.entry.purpose, "purpose-m1");
    EXPECT_EQ(r.entry.detail, "submitted");
    EXPECT_EQ(r.time_ms, 1234);
    peers.insert(r.entry.peer);
  }
  EXPECT_EQ(peers, (std::set<std::string>{"fi", "lv"}));
  ExpectWellFormed(all);
  auto head = store_->GetAuditHead();
  EXPECT_EQ(head->seq, 2u);
  EXPECT_EQ(head->hash, all[1].hash);
}

TEST_P(AuditConformanceTest, InsertInboxCollectsOrRefuses) {
  std::vector<std::optional<DedupEntry>> existing;
  ASSERT_TRUE(store_
                  ->InsertInbox({Inbox("ee", "a", true, 2000),
                                 Inbox("lv", "b", false, 2100)},
                                &existing)
                  .ok());
  auto all = All();
  ASSERT_EQ(all.size(), 2u);
  const AuditEntry& collect = all[0].entry;
  EXPECT_EQ(collect.action, kAuditCollect);
  EXPECT_EQ(collect.actor, kAuditNodeActor);
  EXPECT_EQ(collect.message_id, "a");
  EXPECT_EQ(collect.origin, "ee");
  EXPECT_EQ(collect.peer, "ee");
  EXPECT_EQ(collect.kind, "note");
  EXPECT_EQ(collect.purpose, "purpose-a");
  EXPECT_EQ(collect.detail, "stored");
  EXPECT_EQ(all[0].time_ms, 2000);
  const AuditEntry& refuse = all[1].entry;
  EXPECT_EQ(refuse.action, kAuditRefuse);
  EXPECT_EQ(refuse.actor, "kontord");
  EXPECT_EQ(refuse.message_id, "b");
  EXPECT_EQ(refuse.origin, "lv");
  EXPECT_EQ(refuse.peer, "lv");
  EXPECT_EQ(refuse.detail, "refused: b");
  EXPECT_EQ(all[1].time_ms, 2100);
  ExpectWellFormed(all);
}

TEST_P(AuditConformanceTest, DuplicateInboxRecordIsNotCollectedTwice) {
  std::vector<std::optional<DedupEntry>> existing;
  ASSERT_TRUE(store_->InsertInbox({Inbox("ee", "a")}, &existing).ok());
  ASSERT_TRUE(store_->InsertInbox({Inbox("ee", "a")}, &existing).ok());
  ASSERT_EQ(existing.size(), 1u);
  EXPECT_TRUE(existing[0].has_value());
  // Twice in one batch, too.
  ASSERT_TRUE(
      store_->InsertInbox({Inbox("ee", "b"), Inbox("ee", "b")}, &existing)
          .ok());
  EXPECT_FALSE(existing[0].has_value());
  EXPECT_TRUE(existing[1].has_value());
  auto all = All();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].entry.message_id, "a");
  EXPECT_EQ(all[1].entry.message_id, "b");
  // The same id from another origin is another message.
  ASSERT_TRUE(store_->InsertInbox({Inbox("lv", "a")}, &existing).ok());
  EXPECT_EQ(All().size(), 3u);
}

TEST_P(AuditConformanceTest, DuplicateSubmissionIsNotDisclosedTwice) {
  OutgoingMessage m = Message("m1");
  m.client_key = "k1";
  ASSERT_FALSE(store_->InsertOutgoing(m)->duplicate);
  OutgoingMessage again = Message("m2");
  again.client_key = "k1";
  again.request_hash = m.request_hash;
  auto dup = store_->InsertOutgoing(again);
  ASSERT_TRUE(dup.ok());
  EXPECT_TRUE(dup->duplicate);
  EXPECT_EQ(All().size(), 1u);
  // Other content under the same key: refused, nothing audited.
  OutgoingMessage other = Message("m3");
  other.client_key = "k1";
  EXPECT_EQ(store_->InsertOutgoing(other).status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(All().size(), 1u);
}

TEST_P(AuditConformanceTest, SettleRejectedIsARefusalByThePeer) {
  ASSERT_TRUE(store_->InsertOutgoing(Message("m1", {"fi", "lv"})).ok());
  ASSERT_TRUE(
      store_
          ->Settle({{"m1", "fi", kStateRejected, "fi refuses: policy",
                     "receipt-fi", 4000, ""},
                    {"m1", "lv", kStateDelivered, "", "receipt-lv", 4001, ""}})
          .ok());
  auto all = All();
  ASSERT_EQ(all.size(), 3u);  // two disclosures, one refusal
  const AuditRecord& r = all[2];
  EXPECT_EQ(r.entry.action, kAuditRefuse);
  EXPECT_EQ(r.entry.actor, "node:fi");
  EXPECT_EQ(r.entry.message_id, "m1");
  EXPECT_EQ(r.entry.origin, "");
  EXPECT_EQ(r.entry.peer, "fi");
  EXPECT_EQ(r.entry.detail, "fi refuses: policy");
  EXPECT_EQ(r.time_ms, 4000);
  // Settled already: a second rejection changes nothing, audits nothing.
  ASSERT_TRUE(
      store_->Settle({{"m1", "fi", kStateRejected, "again", "r2", 4100, ""}})
          .ok());
  // Expired is not a refusal.
  ASSERT_TRUE(store_->InsertOutgoing(Message("m2")).ok());
  ASSERT_TRUE(
      store_->Settle({{"m2", "fi", kStateExpired, "expired", "", 4200, ""}})
          .ok());
  EXPECT_EQ(All().size(), 4u);
  ExpectWellFormed(All());
}

TEST_P(AuditConformanceTest,
       RelayedMessageIsAuditedAndItsRefusalNamesTheOrigin) {
  std::vector<std::optional<DedupEntry>> existing;
  ASSERT_TRUE(
      store_->InsertRelayed({Relayed("ee", "x1", "lv")}, &existing).ok());
  auto all = All();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].entry.action, kAuditRelay);
  EXPECT_EQ(all[0].entry.actor, "kontord");
  EXPECT_EQ(all[0].entry.message_id, "x1");
  EXPECT_EQ(all[0].entry.origin, "ee");
  EXPECT_EQ(all[0].entry.peer, "lv");
  EXPECT_NE(all[0].entry.detail.find("ee"), std::string::npos)
      << all[0].entry.detail;
  // Taken again (a retry of the batch): not relayed twice.
  ASSERT_TRUE(
      store_->InsertRelayed({Relayed("ee", "x1", "lv")}, &existing).ok());
  EXPECT_TRUE(existing[0].has_value());
  EXPECT_EQ(All().size(), 1u);
  // The final recipient refuses it: the record is about ee's message x1.
  ASSERT_TRUE(store_
                  ->Settle({{RelayKey("ee", "x1"), "lv", kStateRejected,
                             "lv refuses", "receipt", 5000, "ee"}})
                  .ok());
  all = All();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[1].entry.action, kAuditRefuse);
  EXPECT_EQ(all[1].entry.actor, "node:lv");
  EXPECT_EQ(all[1].entry.message_id, "x1");
  EXPECT_EQ(all[1].entry.origin, "ee");
  EXPECT_EQ(all[1].entry.peer, "lv");
  ExpectWellFormed(all);
}

TEST_P(AuditConformanceTest,
       CancelAndRetryAreAlterationsOnlyWhenSomethingChanged) {
  ASSERT_TRUE(store_->InsertOutgoing(Message("m1", {"fi", "lv"})).ok());
  auto cancelled = store_->Cancel("m1", 6000, "user:boris");
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(*cancelled, 2u);
  auto all = All();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[2].entry.action, kAuditAlter);
  EXPECT_EQ(all[2].entry.actor, "user:boris");
  EXPECT_EQ(all[2].entry.message_id, "m1");
  EXPECT_EQ(all[2].entry.detail, "cancelled 2");
  EXPECT_EQ(all[2].time_ms, 6000);
  // Nothing left to cancel or retry: nothing audited.
  EXPECT_EQ(*store_->Cancel("m1", 6100, "user:boris"), 0u);
  EXPECT_EQ(*store_->Retry("m1", 6200, "user:boris"), 0u);
  EXPECT_EQ(*store_->Cancel("unknown", 6300, "user:boris"), 0u);
  EXPECT_EQ(All().size(), 3u);

  // A suspended delivery retried; no actor given: the local admin.
  ASSERT_TRUE(store_->InsertOutgoing(Message("m2")).ok());
  ASSERT_TRUE(store_->Suspend("m2", "fi", "needs an operator", 6400).ok());
  EXPECT_EQ(All().size(), 4u);  // suspending is not an alteration
  EXPECT_EQ(*store_->Retry("m2", 6500), 1u);
  all = All();
  ASSERT_EQ(all.size(), 5u);
  EXPECT_EQ(all[4].entry.action, kAuditAlter);
  EXPECT_EQ(all[4].entry.actor, "local-admin");
  EXPECT_EQ(all[4].entry.message_id, "m2");
  EXPECT_EQ(all[4].entry.detail, "retried 1");
  EXPECT_EQ(*store_->Cancel("m2", 6600), 1u);
  all = All();
  ASSERT_EQ(all.size(), 6u);
  EXPECT_EQ(all[5].entry.actor, "local-admin");
  ExpectWellFormed(all);
}

TEST_P(AuditConformanceTest, AppendAuditChainsAnyEntries) {
  Consult(3, 7000);
  ASSERT_TRUE(store_
                  ->AppendAudit({AuditEntry{"erase", "local-admin", "m9", "",
                                            "", "", "", "purged"}},
                                7100)
                  .ok());
  ASSERT_TRUE(store_->AppendAudit({}, 7200).ok());  // nothing, no error
  auto all = All();
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all[0].entry.action, kAuditConsult);
  EXPECT_EQ(all[0].entry.message_id, "m0");
  EXPECT_EQ(all[2].entry.message_id, "m2");
  EXPECT_EQ(all[2].time_ms, 7000);
  EXPECT_EQ(all[3].entry.action, "erase");
  EXPECT_EQ(all[3].time_ms, 7100);
  ExpectWellFormed(all);
}

TEST_P(AuditConformanceTest, ChainSurvivesReopen) {
  Consult(2);
  const AuditHead before = *store_->GetAuditHead();
  Reopen();
  const AuditHead after = *store_->GetAuditHead();
  EXPECT_EQ(after.seq, before.seq);
  EXPECT_EQ(after.hash, before.hash);
  Consult(1);
  ExpectWellFormed(All());
  EXPECT_EQ(Verify().first_bad_seq, 0u);
}

TEST_P(AuditConformanceTest, ReadsHeadRecordTailAndPages) {
  Consult(5);
  auto all = All();
  ASSERT_EQ(all.size(), 5u);
  auto head = store_->GetAuditHead();
  EXPECT_EQ(head->seq, 5u);
  EXPECT_EQ(head->hash, all[4].hash);

  auto r2 = store_->GetAuditRecord(2);
  ASSERT_TRUE(r2.ok());
  ASSERT_TRUE(r2->has_value());
  EXPECT_EQ((*r2)->seq, 2u);
  EXPECT_EQ((*r2)->hash, all[1].hash);
  EXPECT_EQ((*r2)->prev, all[0].hash);
  EXPECT_EQ((*r2)->entry.message_id, "m1");
  EXPECT_FALSE(store_->GetAuditRecord(6)->has_value());

  auto tail = *store_->TailAudit(2);
  ASSERT_EQ(tail.size(), 2u);
  EXPECT_EQ(tail[0].seq, 4u);  // newest two, oldest first
  EXPECT_EQ(tail[1].seq, 5u);
  EXPECT_EQ(store_->TailAudit(10)->size(), 5u);
  EXPECT_EQ(store_->TailAudit(10)->front().seq, 1u);
  EXPECT_TRUE(store_->TailAudit(0)->empty());

  auto page = *store_->ListAudit(2, 2);
  ASSERT_EQ(page.size(), 2u);
  EXPECT_EQ(page[0].seq, 3u);
  EXPECT_EQ(page[1].seq, 4u);
  EXPECT_EQ(store_->ListAudit(4, 10)->size(), 1u);
  EXPECT_TRUE(store_->ListAudit(5, 10)->empty());
  EXPECT_EQ(store_->ListAudit(0, 1)->front().seq, 1u);
}

TEST_P(AuditConformanceTest, IntactChainVerifies) {
  ASSERT_TRUE(store_->InsertOutgoing(Message("m1", {"fi", "lv"})).ok());
  std::vector<std::optional<DedupEntry>> existing;
  ASSERT_TRUE(store_->InsertInbox({Inbox("ee", "a")}, &existing).ok());
  Consult(2);
  AuditCheck c = Verify();
  EXPECT_EQ(c.first_bad_seq, 0u);
  EXPECT_EQ(c.problem, "");
  EXPECT_EQ(c.records, 5u);
  EXPECT_EQ(c.head.seq, 5u);
  EXPECT_EQ(c.head.hash, store_->GetAuditHead()->hash);
}

TEST_P(AuditConformanceTest, FailedWriteLeavesNoRecordAndNoGap) {
  Consult(1);
  // An unknown attachment: the write fails in its savepoint.
  OutgoingMessage m = Message("m1", {"fi", "lv"});
  m.uploads = {"no-such-upload"};
  EXPECT_EQ(store_->InsertOutgoing(m).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // A recipient twice: the first delivery and its disclosure were written
  // before the second insert fails; the savepoint takes both back.
  EXPECT_FALSE(store_->InsertOutgoing(Message("m2", {"fi", "fi"})).ok());
  EXPECT_TRUE(store_->Deliveries("m2")->empty());
  EXPECT_EQ(All().size(), 1u);
  EXPECT_EQ(store_->GetAuditHead()->seq, 1u);
  ASSERT_TRUE(store_->InsertOutgoing(Message("m3")).ok());
  auto all = All();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[1].seq, 2u);
  EXPECT_EQ(all[1].entry.message_id, "m3");
  ExpectWellFormed(all);
  EXPECT_EQ(Verify().first_bad_seq, 0u);
}

TEST_P(AuditConformanceTest, ConcurrentWritesWithFailuresKeepOneUnbrokenChain) {
  // Writes from several threads share group-commit transactions; failing
  // ones roll back their savepoint only.
  constexpr int kThreads = 4, kRounds = 15;
  std::atomic<int> appended{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRounds; ++i) {
        const std::string id =
            "t" + std::to_string(t) + "-" + std::to_string(i);
        if (store_->InsertOutgoing(Message(id + "-ok", {"fi", "lv"})).ok()) {
          appended += 2;
        }
        EXPECT_FALSE(
            store_->InsertOutgoing(Message(id + "-bad", {"lv", "lv"})).ok());
        if (store_
                ->AppendAudit({AuditEntry{"consult", "user:anna", id, "", "",
                                          "", "", ""}},
                              i)
                .ok()) {
          appended += 1;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(appended.load(), kThreads * kRounds * 3);
  auto all = All();
  EXPECT_EQ(all.size(), static_cast<size_t>(appended.load()));
  ExpectWellFormed(all);
  AuditCheck c = Verify();
  EXPECT_EQ(c.first_bad_seq, 0u);
  EXPECT_EQ(c.records, all.size());
  for (const AuditRecord& r : all) {
    EXPECT_EQ(r.entry.message_id.find("-bad"), std::string::npos);
  }
}

TEST_P(AuditConformanceTest, SignedHeadsAreKeptInSeqOrder) {
  const std::string sig1("sig\0one", 7), sig3("sig-three");
  const std::string h1(32, '\x11'), h3(32, '\x33');
  ASSERT_TRUE(store_->PutSignedHead({{3, h3}, 3000, sig3}).ok());
  ASSERT_TRUE(store_->PutSignedHead({{1, h1}, 1000, sig1}).ok());
  auto heads = *store_->ListSignedHeads();
  ASSERT_EQ(heads.size(), 2u);
  EXPECT_EQ(heads[0].head.seq, 1u);
  EXPECT_EQ(heads[0].head.hash, h1);
  EXPECT_EQ(heads[0].time_ms, 1000);
  EXPECT_EQ(heads[0].signature, sig1);
  EXPECT_EQ(heads[1].head.seq, 3u);
  EXPECT_EQ(heads[1].signature, sig3);
  // The same seq again replaces it.
  ASSERT_TRUE(store_->PutSignedHead({{3, h3}, 3500, "newer"}).ok());
  heads = *store_->ListSignedHeads();
  ASSERT_EQ(heads.size(), 2u);
  EXPECT_EQ(heads[1].time_ms, 3500);
  EXPECT_EQ(heads[1].signature, "newer");
}

TEST_P(AuditConformanceTest, ReceiptsFromAPeerNewestFirst) {
  for (const char* id : {"m1", "m2", "m3", "m4", "m5"}) {
    ASSERT_TRUE(store_->InsertOutgoing(Message(id, {"fi", "lv"})).ok());
  }
  ASSERT_TRUE(store_
                  ->Settle({{"m1", "fi", kStateDelivered, "", "r1-fi", 10, ""},
                            {"m2", "fi", kStateDelivered, "", "r2-fi", 30, ""},
                            {"m3", "fi", kStateRejected, "no", "r3-fi", 20, ""},
                            {"m4", "fi", kStateExpired, "expired", "", 40, ""},
                            {"m1", "lv", kStateDelivered, "", "r1-lv", 50, ""}})
                  .ok());
  auto fi = store_->ReceiptsFrom("fi", 10);
  ASSERT_TRUE(fi.ok());
  EXPECT_EQ(*fi, (std::vector<std::string>{"r2-fi", "r3-fi", "r1-fi"}));
  EXPECT_EQ(*store_->ReceiptsFrom("fi", 2),
            (std::vector<std::string>{"r2-fi", "r3-fi"}));
  EXPECT_EQ(*store_->ReceiptsFrom("lv", 10),
            (std::vector<std::string>{"r1-lv"}));
  EXPECT_TRUE(store_->ReceiptsFrom("pl", 10)->empty());
}

// Each write's records are there when it returns, and only its own: what
// is not an event of the log (a delivery, a suspension, a duplicate)
// appends nothing.
TEST_P(AuditConformanceTest, EachWriteAppendsItsRecordsBeforeItReturns) {
  uint64_t seq = 0;
  ASSERT_TRUE(store_->InsertOutgoing(Message("m1", {"fi", "lv"})).ok());
  EXPECT_EQ(Since(&seq), (Actions{"disclose", "disclose"}));
  OutgoingMessage again = Message("m1b", {"fi", "lv"});
  again.client_key = "k";
  ASSERT_TRUE(store_->InsertOutgoing(again).ok());
  EXPECT_EQ(Since(&seq), (Actions{"disclose", "disclose"}));
  again.id = "m1c";  // the same request retried
  ASSERT_TRUE(store_->InsertOutgoing(again)->duplicate);
  EXPECT_EQ(Since(&seq), Actions{});

  std::vector<std::optional<DedupEntry>> existing;
  ASSERT_TRUE(
      store_
          ->InsertInbox({Inbox("ee", "a"), Inbox("lv", "b", false)}, &existing)
          .ok());
  EXPECT_EQ(Since(&seq), (Actions{"collect", "refuse"}));
  ASSERT_TRUE(store_->InsertInbox({Inbox("ee", "a")}, &existing).ok());
  EXPECT_EQ(Since(&seq), Actions{});

  ASSERT_TRUE(
      store_->InsertRelayed({Relayed("ee", "x1", "lv")}, &existing).ok());
  EXPECT_EQ(Since(&seq), Actions{"relay"});

  ASSERT_TRUE(
      store_->Settle({{"m1", "fi", kStateRejected, "no", "r", 4000, ""}}).ok());
  EXPECT_EQ(Since(&seq), Actions{"refuse"});
  ASSERT_TRUE(
      store_->Settle({{"m1", "lv", kStateDelivered, "", "r", 4001, ""}}).ok());
  EXPECT_EQ(Since(&seq), Actions{});

  ASSERT_TRUE(store_->Suspend("m1b", "fi", "operator", 4100).ok());
  EXPECT_EQ(Since(&seq), Actions{});
  EXPECT_EQ(*store_->Retry("m1b", 4200), 2u);  // and the queued one made due
  EXPECT_EQ(Since(&seq), Actions{"alter"});
  EXPECT_EQ(*store_->Cancel("m1b", 4300), 2u);
  EXPECT_EQ(Since(&seq), Actions{"alter"});

  ASSERT_TRUE(
      store_
          ->Purge({PurgeCandidate{"a", "ee", false, "note", 2000, 7, ""}},
                  "kontord", 5000)
          .ok());
  EXPECT_EQ(Since(&seq), Actions{"erase"});
  Consult(1);
  EXPECT_EQ(Since(&seq), Actions{"consult"});

  // A message's records, in order.
  auto of_m1 = store_->AuditOfMessage("m1", 10);
  ASSERT_TRUE(of_m1.ok()) << of_m1.status();
  ASSERT_EQ(of_m1->size(), 3u);
  EXPECT_EQ((*of_m1)[0].entry.action, kAuditDisclose);
  EXPECT_EQ((*of_m1)[1].entry.action, kAuditDisclose);
  EXPECT_EQ((*of_m1)[2].entry.action, kAuditRefuse);
  EXPECT_LT((*of_m1)[0].seq, (*of_m1)[2].seq);
  EXPECT_EQ(store_->AuditOfMessage("m1", 2)->size(), 2u);
  auto of_a = *store_->AuditOfMessage("a", 10);
  ASSERT_EQ(of_a.size(), 2u);
  EXPECT_EQ(of_a[0].entry.action, kAuditCollect);
  EXPECT_EQ(of_a[1].entry.action, kAuditErase);
  EXPECT_TRUE(store_->AuditOfMessage("nothing", 10)->empty());

  const auto all = All();
  ExpectWellFormed(all);
  AuditCheck c = Verify();
  EXPECT_EQ(c.first_bad_seq, 0u) << c.problem;
  EXPECT_EQ(c.records, all.size());
  EXPECT_EQ(c.head.seq, seq);
  Reopen();
  ExpectWellFormed(All());
  EXPECT_EQ(store_->GetAuditHead()->seq, seq);
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(Backends, AuditConformanceTest,
                         ::testing::ValuesIn(StoreBackends()), BackendName);

}  // namespace kontor
