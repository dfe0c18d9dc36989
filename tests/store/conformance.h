#ifndef KONTOR_TESTS_STORE_CONFORMANCE_H_
#define KONTOR_TESTS_STORE_CONFORMANCE_H_

// The store conformance suite: what every Store backend must do, stated
// through the Store interface only (no SQL, no files), run once per backend
// of StoreBackends(). Its tests are in conformance_*_test.cc, by topic:
//
//   sending     submission, idempotency by client key, NextDeliveries
//               (flash first, the 3:1 urgent/routine share, nothing
//               deferred or expired handed out), peer state
//   settlement  queued -> delivered/rejected/expired/cancelled; settled
//               deliveries do not move again (but for a late receipt);
//               settling twice is harmless
//   relay       relayed envelopes once per destination, custody, returns
//   inbox       dedup on (origin, id) with the stored outer digest; exactly
//               once, also for copies arriving at once; ack, unread, queries
//   audit       one record per event, in the event's transaction; the chain
//               verifies; a failed write leaves no record and no gap
//   messages    threads, messages by id or id prefix, deliveries by
//               submitter
//   erasure     purge and erase orders: content gone (its key destroyed),
//               metadata kept
//   retention   purge candidates by the retention of each kind
//
// What only one backend can show (its files, its SQL, its migrations) is
// tested apart: sqlite_*_test.cc for SQLite. A DISABLED_ test here states a
// contract the SQLite store does not meet yet (its comment says how).
//
// Each topic's fixture below keeps the helpers of the tests it holds; a
// file declares `class XConformanceTest : public <Fixture> {};` and
// instantiates it over StoreBackends() with BackendName.

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "daemon/store/audit.h"
#include "daemon/store/store.h"
#include "tests/store/audit_reference.h"
#include "tests/store/backends.h"
#include "tests/testing/test_pki.h"

namespace kontor {

// The test name suffix: the backend's name.
inline std::string BackendName(
    const ::testing::TestParamInfo<BackendUnderTest>& info) {
  return info.param.name;
}

// A store of the backend under test, in a directory of the test's own.
class StoreConformanceTest : public ::testing::TestWithParam<BackendUnderTest> {
 protected:
  void SetUp() override {
    dir_ = testing::TempDir("store-" + GetParam().name);
    ASSERT_NO_FATAL_FAILURE(Reopen());  // no test body without a store
  }

  // Closes the store (if open) and opens it again on the same directory: a
  // restart, after which everything committed must be there.
  void Reopen() {
    store_.reset();
    auto s = GetParam().open(dir_);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
  }
  void Close() { store_.reset(); }

  std::string dir_;
  std::unique_ptr<Store> store_;
};

// ------------------------------------ sending, settlement, relay, inbox

class SendingFixture : public StoreConformanceTest {
 protected:
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

  // A relayed envelope from `origin` taken into custody for `deliver_to`.
  static RelayedMessage Relayed(const std::string& id,
                                const std::string& deliver_to,
                                const std::string& digest = "digest",
                                const std::string& origin = "ee",
                                int priority = 1, int64_t created = 1000) {
    RelayedMessage m;
    m.origin = origin;
    m.message_id = id;
    m.deliver_to = deliver_to;
    m.from_peer = origin;
    m.priority = priority;
    m.created_ms = created;
    m.expires_ms = created + 100000;
    m.envelope = "envelope-" + id;
    m.outer_digest = digest;
    m.custody = "custody-" + id + "-" + deliver_to;
    return m;
  }
};

// ------------------------------------------------------ audit, messages

class AuditFixture : public StoreConformanceTest {
 protected:
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
      EXPECT_EQ(records[i].hash, testing::IndependentHash(records[i]))
          << "seq " << records[i].seq;
      prev = records[i].hash;
    }
  }
};

// ------------------------------------------------- erasure, retention

class ErasureFixture : public StoreConformanceTest {
 protected:
  // A restart (the name erasure_test.cc gave it).
  void Open() { Reopen(); }

  OutgoingMessage Message(const std::string& id, int64_t created = 1000) {
    OutgoingMessage m;
    m.id = id;
    m.recipients = {"fi"};
    m.priority = 1;
    m.created_ms = created;
    m.expires_ms = created + 100000;
    m.kind = "referral";
    m.envelope = "envelope-" + id;
    m.outer_digest = "digest-" + id;
    m.submitter = "user:anna";
    m.request_hash = "hash-" + id;
    m.payload = "payload-" + id;
    m.inner_signed = "inner-" + id;
    m.subject = "subject-" + id;
    m.case_ref = "CASE-" + id;
    m.purpose = "purpose-" + id;
    return m;
  }

  InboxRecord Inbox(const std::string& origin, const std::string& id,
                    int64_t received = 2000) {
    InboxRecord r;
    r.origin = origin;
    r.message_id = id;
    r.outer_digest = "digest-" + origin + "-" + id;
    r.accepted = true;
    r.header = "header-" + id;
    r.inner_signed = "inner-" + origin + "-" + id;
    r.payload = "payload-" + origin + "-" + id;
    r.kind = "note";
    r.subject = "subject-" + origin + "-" + id;
    r.case_ref = "CASE-" + id;
    r.created_ms = received - 10;
    r.expires_ms = received + 100000;
    r.received_ms = received;
    r.receipt = "receipt-" + origin + "-" + id;
    r.purpose = "purpose-" + id;
    return r;
  }

  // An upload by anna, not yet taken by a message.
  UploadRecord Upload(const std::string& id, const std::string& name,
                      const std::string& key) {
    UploadRecord u;
    u.id = id;
    u.submitter = "user:anna";
    u.name = name;
    u.content_type = "text/plain";
    u.sha256 = std::string(32, 's');
    u.key = key;
    u.chunk_refs = "refs";
    u.created_ms = 900;
    return u;
  }

  // An erase order (erase.notice) from `origin` naming `targets`.
  InboxRecord Order(const std::string& origin, const std::string& id,
                    std::vector<std::string> targets, int64_t received) {
    InboxRecord r = Inbox(origin, id, received);
    r.kind = "erase.notice";
    r.erase_targets = std::move(targets);
    r.erase_reason = "reason-" + id;
    return r;
  }

  void Insert(const std::vector<InboxRecord>& records) {
    std::vector<std::optional<DedupEntry>> existing;
    auto s = store_->InsertInbox(records, &existing);
    ASSERT_TRUE(s.ok()) << s;
  }

  std::optional<KnownMessage> Find(const std::string& id) {
    auto k = store_->FindMessage(id);
    EXPECT_TRUE(k.ok()) << k.status();
    return k.ok() ? *k : std::nullopt;
  }

  // A message that must be there.
  KnownMessage Must(const std::string& id) {
    auto k = Find(id);
    if (!k.has_value()) {
      ADD_FAILURE() << "no message " << id;
      return KnownMessage();
    }
    return *k;
  }

  // The subject of the one message of a case, as Thread shows it.
  std::string Subject(const std::string& case_ref) {
    auto thread = store_->Thread(case_ref);
    EXPECT_TRUE(thread.ok()) << thread.status();
    if (!thread.ok() || thread->size() != 1) {
      ADD_FAILURE() << "no single message in " << case_ref;
      return "";
    }
    return thread->front().subject;
  }

  // The accepted inbox record (origin, id); an empty one if there is none.
  InboxRecord Received(const std::string& origin, const std::string& id) {
    auto got = store_->GetInbox(id, origin);
    EXPECT_TRUE(got.ok()) << got.status();
    if (!got.ok() || got->size() != 1) {
      ADD_FAILURE() << "no single record " << origin << "/" << id;
      return InboxRecord();
    }
    return got->front();
  }

  std::vector<AuditRecord> Erasures() {
    auto all = store_->ListAudit(0, 10000);
    EXPECT_TRUE(all.ok()) << all.status();
    std::vector<AuditRecord> out;
    if (!all.ok()) return out;
    for (const AuditRecord& r : *all) {
      if (r.entry.action == kAuditErase) out.push_back(r);
    }
    return out;
  }
};

}  // namespace kontor

#endif  // KONTOR_TESTS_STORE_CONFORMANCE_H_
