// The hash-chained audit log of the store (daemon/store/audit.h and the audit
// parts of store.h): what each write appends, in its own transaction; the
// chain's verification after edits made behind the store's back; heads,
// signed heads, receipts witnessed; threads and messages by id.

#include "daemon/store/audit.h"

#include <openssl/sha.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <set>
#include <thread>

#include "absl/strings/escaping.h"
#include "daemon/store/store.h"
#include "gtest/gtest.h"
#include "tests/testing/sql.h"
#include "tests/testing/test_pki.h"

namespace kontor {
namespace {

// ------------------------------------------------------------- pure helpers

// The record hash computed here, apart from the store's code, straight from
// its definition: SHA-256 of "kontor-audit-v1" || u64be(seq) ||
// u64be(time_ms) || for each field u32be(len) || bytes || prev.
std::string IndependentHash(const AuditRecord& r) {
  std::string in = "kontor-audit-v1";
  unsigned char be8[8];
  auto u64 = [&](uint64_t v) {
    for (int i = 0; i < 8; ++i)
      be8[i] = static_cast<unsigned char>(v >> (56 - 8 * i));
    in.append(reinterpret_cast<const char*>(be8), 8);
  };
  auto field = [&](const std::string& f) {
    const uint32_t n = static_cast<uint32_t>(f.size());
    const unsigned char be4[4] = {static_cast<unsigned char>(n >> 24),
                                  static_cast<unsigned char>(n >> 16),
                                  static_cast<unsigned char>(n >> 8),
                                  static_cast<unsigned char>(n)};
    in.append(reinterpret_cast<const char*>(be4), 4);
    in += f;
  };
  u64(r.seq);
  u64(static_cast<uint64_t>(r.time_ms));
  const AuditEntry& e = r.entry;
  field(e.action);
  field(e.actor);
  field(e.message_id);
  field(e.origin);
  field(e.peer);
  field(e.kind);
  field(e.purpose);
  field(e.detail);
  in += r.prev;
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(in.data()), in.size(), digest);
  return std::string(reinterpret_cast<const char*>(digest), sizeof digest);
}

AuditRecord KnownRecord() {
  AuditRecord r;
  r.seq = 7;
  r.time_ms = 1700000000123;
  r.entry = AuditEntry{"consult", "user:anna", "01HXYZ",     "ee",
                       "fi",      "referral",  "Art. 8 LED", ""};
  r.prev = std::string(32, '\x5a');
  return r;
}

TEST(AuditHashTest, KnownAnswer) {
  const AuditRecord r = KnownRecord();
  // Computed a third way too (Python hashlib, struct.pack('>Q'/'>I')).
  EXPECT_EQ(absl::BytesToHexString(AuditRecordHash(r)),
            "4cfb15554476770dc310cb3a99bfacd76c08b03976231544cc64e9efad335c22");
  EXPECT_EQ(AuditRecordHash(r), IndependentHash(r));
}

TEST(AuditHashTest, MatchesAnIndependentComputationForUnusualValues) {
  AuditRecord r;
  r.seq = 0x0102030405060708ULL;  // every byte of the u64 distinct
  r.time_ms = -1;                 // encoded as its u64 (all ones)
  r.entry = AuditEntry{"", std::string("a\0b", 3), "\xc3\xa4", "", "",
                       "", std::string(300, 'p'),  "detail"};
  r.prev = std::string(32, '\0');
  EXPECT_EQ(AuditRecordHash(r), IndependentHash(r));
  EXPECT_EQ(AuditRecordHash(r).size(), 32u);
}

TEST(AuditHashTest, EveryFieldAndFieldBoundariesCount) {
  const AuditRecord base = KnownRecord();
  const std::string h = AuditRecordHash(base);
  std::set<std::string> seen = {h};
  auto changed = [&](auto mutate) {
    AuditRecord r = base;
    mutate(r);
    return AuditRecordHash(r);
  };
  std::vector<std::string> variants = {
      changed([](AuditRecord& r) { r.seq = 8; }),
      changed([](AuditRecord& r) { r.time_ms += 1; }),
      changed([](AuditRecord& r) { r.entry.action = "collect"; }),
      changed([](AuditRecord& r) { r.entry.actor = "user:anne"; }),
      changed([](AuditRecord& r) { r.entry.message_id += "x"; }),
      changed([](AuditRecord& r) { r.entry.origin = "lv"; }),
      changed([](AuditRecord& r) { r.entry.peer = "lv"; }),
      changed([](AuditRecord& r) { r.entry.kind = "note"; }),
      changed([](AuditRecord& r) { r.entry.purpose = "Art. 9"; }),
      changed([](AuditRecord& r) { r.entry.detail = "x"; }),
      changed([](AuditRecord& r) { r.prev[31] ^= 1; }),
      // The same bytes split differently between two fields.
      changed([](AuditRecord& r) {
        r.entry.origin = "e";
        r.entry.peer = "efi";
      }),
      // The hash itself is not an input.
  };
  for (const std::string& v : variants) {
    EXPECT_TRUE(seen.insert(v).second) << absl::BytesToHexString(v);
  }
  AuditRecord with_hash = base;
  with_hash.hash = "anything";
  EXPECT_EQ(AuditRecordHash(with_hash), h);
}

TEST(AuditHeadTest, EncodeDecodeRoundTrip) {
  EXPECT_EQ(GenesisHash(), std::string(32, '\0'));
  AuditHead head{0x0102030405060708ULL, std::string(32, '\x7f')};
  head.hash[0] = '\0';
  const std::string bytes = EncodeAuditHead(head);
  ASSERT_EQ(bytes.size(), 40u);
  EXPECT_EQ(bytes.substr(0, 8),
            std::string("\x01\x02\x03\x04\x05\x06\x07\x08"));
  EXPECT_EQ(bytes.substr(8), head.hash);
  auto back = DecodeAuditHead(bytes);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->seq, head.seq);
  EXPECT_EQ(back->hash, head.hash);

  auto empty = DecodeAuditHead(EncodeAuditHead({0, GenesisHash()}));
  ASSERT_TRUE(empty.has_value());
  EXPECT_EQ(empty->seq, 0u);
  EXPECT_EQ(empty->hash, GenesisHash());

  auto max = DecodeAuditHead(EncodeAuditHead({UINT64_MAX, GenesisHash()}));
  ASSERT_TRUE(max.has_value());
  EXPECT_EQ(max->seq, UINT64_MAX);
}

TEST(AuditHeadTest, DecodeRejectsWrongLengths) {
  for (size_t n : {0, 1, 8, 32, 39, 41, 72}) {
    EXPECT_FALSE(DecodeAuditHead(std::string(n, '\x01')).has_value()) << n;
  }
  EXPECT_TRUE(DecodeAuditHead(std::string(40, '\x01')).has_value());
}

// ------------------------------------------------------------------- store

class AuditStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = testing::TempDir("audit") + "/kontor.db";
    auto s = Store::Open(path_);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
  }

  OutgoingMessage Message(const std::string& id,
                          std::vector<std::string> to = {"fi"},
                          int64_t created = 1000) {
    OutgoingMessage m;
    m.id = id;
    m.recipients = std::move(to);
    m.priority = 1;
    m.created_ms = created;
    m.expires_ms = created + 100000;
    m.kind = "referral";
    m.envelope = "envelope-" + id;
    m.outer_digest = "digest-" + id;
    m.submitter = "user:anna";
    m.request_hash = "hash-" + id;
    m.payload = "payload-" + id;
    m.purpose = "purpose-" + id;
    return m;
  }

  InboxRecord Inbox(const std::string& origin, const std::string& id,
                    bool accepted = true, int64_t received = 2000) {
    InboxRecord r;
    r.origin = origin;
    r.message_id = id;
    r.outer_digest = "digest-" + id;
    r.accepted = accepted;
    r.payload = accepted ? "payload-" + id : "";
    r.kind = "note";
    r.created_ms = received - 10;
    r.expires_ms = received + 100000;
    r.received_ms = received;
    r.receipt = "receipt-" + id;
    r.purpose = "purpose-" + id;
    r.refusal = accepted ? "" : "refused: " + id;
    return r;
  }

  RelayedMessage Relayed(const std::string& origin, const std::string& id,
                         const std::string& to) {
    RelayedMessage m;
    m.origin = origin;
    m.message_id = id;
    m.deliver_to = to;
    m.from_peer = origin;
    m.priority = 2;
    m.created_ms = 3000;
    m.expires_ms = 900000;
    m.envelope = "relayed-" + id;
    m.outer_digest = "digest-" + id;
    m.custody = "custody-" + id;
    return m;
  }

  std::vector<AuditRecord> All() {
    auto all = store_->ListAudit(0, 1000);
    EXPECT_TRUE(all.ok()) << all.status();
    return all.ok() ? *all : std::vector<AuditRecord>();
  }

  AuditCheck Verify() {
    auto c = store_->VerifyAuditChain();
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *c : AuditCheck();
  }

  // SQL behind the store's back (tests/testing/sql.h).
  void Sql(const std::string& sql) { testing::RunSql(path_, sql); }

  void Consult(int n, int64_t time_ms = 5000) {
    std::vector<AuditEntry> entries;
    for (int i = 0; i < n; ++i) {
      entries.push_back(AuditEntry{std::string(kAuditConsult), "user:anna",
                                   "m" + std::to_string(i), "ee", "", "note",
                                   "", "shown"});
    }
    ASSERT_TRUE(store_->AppendAudit(entries, time_ms).ok());
  }

  // Every record links to the one before and hashes to its hash, seqs
  // 1..n without a gap.
  void ExpectWellFormed(const std::vector<AuditRecord>& records) {
    std::string prev = GenesisHash();
    for (size_t i = 0; i < records.size(); ++i) {
      EXPECT_EQ(records[i].seq, i + 1);
      EXPECT_EQ(records[i].prev, prev) << "seq " << records[i].seq;
      EXPECT_EQ(records[i].hash, IndependentHash(records[i]))
          << "seq " << records[i].seq;
      prev = records[i].hash;
    }
  }

  std::string path_;
  std::unique_ptr<Store> store_;
};

TEST_F(AuditStoreTest, EmptyChain) {
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

TEST_F(AuditStoreTest, InsertOutgoingDisclosesOncePerRecipient) {
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

TEST_F(AuditStoreTest, InsertInboxCollectsOrRefuses) {
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

TEST_F(AuditStoreTest, DuplicateInboxRecordIsNotCollectedTwice) {
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

TEST_F(AuditStoreTest, DuplicateSubmissionIsNotDisclosedTwice) {
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

TEST_F(AuditStoreTest, SettleRejectedIsARefusalByThePeer) {
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

TEST_F(AuditStoreTest, RelayedMessageIsAuditedAndItsRefusalNamesTheOrigin) {
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

TEST_F(AuditStoreTest, CancelAndRetryAreAlterationsOnlyWhenSomethingChanged) {
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

TEST_F(AuditStoreTest, AppendAuditChainsAnyEntries) {
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

TEST_F(AuditStoreTest, ChainSurvivesReopen) {
  Consult(2);
  const AuditHead before = *store_->GetAuditHead();
  store_.reset();
  store_ = std::move(*Store::Open(path_));
  const AuditHead after = *store_->GetAuditHead();
  EXPECT_EQ(after.seq, before.seq);
  EXPECT_EQ(after.hash, before.hash);
  Consult(1);
  ExpectWellFormed(All());
  EXPECT_EQ(Verify().first_bad_seq, 0u);
}

TEST_F(AuditStoreTest, ReadsHeadRecordTailAndPages) {
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

TEST_F(AuditStoreTest, IntactChainVerifies) {
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

TEST_F(AuditStoreTest, EditedColumnIsFoundAtItsRecord) {
  Consult(5);
  for (const char* column : {"action", "actor", "message_id", "origin", "peer",
                             "kind", "purpose", "detail"}) {
    SCOPED_TRACE(column);
    Sql(std::string("UPDATE audit SET ") + column + " = " + column +
        " || 'x' WHERE seq = 3");
    AuditCheck c = Verify();
    EXPECT_EQ(c.first_bad_seq, 3u);
    EXPECT_NE(c.problem.find("altered"), std::string::npos) << c.problem;
    EXPECT_EQ(c.head.seq, 2u);  // the last good record
    Sql(std::string("UPDATE audit SET ") + column + " = substr(" + column +
        ", 1, length(" + column + ") - 1) WHERE seq = 3");
    EXPECT_EQ(Verify().first_bad_seq, 0u);
  }
  Sql("UPDATE audit SET time_ms = time_ms + 1 WHERE seq = 5");
  AuditCheck c = Verify();
  EXPECT_EQ(c.first_bad_seq, 5u);
  EXPECT_NE(c.problem.find("altered"), std::string::npos) << c.problem;
  Sql("UPDATE audit SET time_ms = time_ms - 1 WHERE seq = 5");
  // The stored hash itself replaced.
  Sql("UPDATE audit SET hash = zeroblob(32) WHERE seq = 1");
  c = Verify();
  EXPECT_EQ(c.first_bad_seq, 1u);
}

TEST_F(AuditStoreTest, DeletedMiddleRecordIsNamed) {
  Consult(5);
  Sql("DELETE FROM audit WHERE seq = 3");
  AuditCheck c = Verify();
  EXPECT_EQ(c.first_bad_seq, 3u);
  EXPECT_NE(c.problem.find("missing"), std::string::npos) << c.problem;
  EXPECT_EQ(c.head.seq, 2u);
  // The first one deleted.
  Sql("DELETE FROM audit WHERE seq = 1");
  EXPECT_EQ(Verify().first_bad_seq, 1u);
}

TEST_F(AuditStoreTest, ChangedLinkIsNamed) {
  Consult(4);
  Sql("UPDATE audit SET prev = zeroblob(32) WHERE seq = 3");
  AuditCheck c = Verify();
  EXPECT_EQ(c.first_bad_seq, 3u);
  EXPECT_FALSE(c.problem.empty());
  EXPECT_NE(c.problem.find("link"), std::string::npos) << c.problem;
}

TEST_F(AuditStoreTest, RewrittenRecordWithItsOwnHashRecomputedBreaksTheNext) {
  // Someone who edits a record and recomputes its hash still breaks the
  // link of the record after it.
  Consult(4);
  AuditRecord r = **store_->GetAuditRecord(2);
  r.entry.detail = "forged";
  const std::string forged = AuditRecordHash(r);
  Sql("UPDATE audit SET detail = 'forged', hash = x'" +
      absl::BytesToHexString(forged) + "' WHERE seq = 2");
  AuditCheck c = Verify();
  EXPECT_EQ(c.first_bad_seq, 3u);
  EXPECT_EQ(c.head.seq, 2u);
  EXPECT_EQ(c.head.hash, forged);
}

TEST_F(AuditStoreTest, FailedWriteLeavesNoRecordAndNoGap) {
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

TEST_F(AuditStoreTest, ConcurrentWritesWithFailuresKeepOneUnbrokenChain) {
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

TEST_F(AuditStoreTest, SignedHeadsAreKeptInSeqOrder) {
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

TEST_F(AuditStoreTest, ReceiptsFromAPeerNewestFirst) {
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

TEST_F(AuditStoreTest, ThreadHasSentAndReceivedInOrder) {
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

TEST_F(AuditStoreTest, RelayedCopiesAreNotFoundAsMessagesOfThisNode) {
  std::vector<std::optional<DedupEntry>> existing;
  ASSERT_TRUE(
      store_->InsertRelayed({Relayed("ee", "x1", "lv")}, &existing).ok());
  EXPECT_FALSE(store_->FindMessage("x1")->has_value());
  EXPECT_FALSE(store_->FindMessage(RelayKey("ee", "x1"))->has_value());
}

TEST_F(AuditStoreTest, FindMessageSentOrReceived) {
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

TEST_F(AuditStoreTest, ListDeliveriesBySubmitter) {
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

}  // namespace
}  // namespace kontor
