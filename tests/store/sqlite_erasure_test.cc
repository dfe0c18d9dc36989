// Cryptographic erasure in the SQLite store (DESIGN.md §7,
// daemon/store/store.h), where the bytes land: message content is stored
// only sealed under a key of its own kept in the key file beside the store;
// erasing (retention purge, an erase order from the message's origin, an
// erase order this node sends) drops the columns and destroys the key after
// the commit, or at the next open after a crash. Content of an older store
// (schema 7) is sealed at the first open.
//
// Content is checked where it lands: the store file and its WAL read as
// bytes, the columns read with SQLite directly, the key file opened apart.
// What every backend must do is in conformance_erasure_test.cc.

#include <sqlite3.h>
#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "daemon/store/audit.h"
#include "daemon/store/content_keys.h"
#include "daemon/store/store.h"
#include "gtest/gtest.h"
#include "tests/testing/sql.h"
#include "tests/testing/test_pki.h"

namespace kontor {
namespace {

using testing::ReadAll;

// A string found nowhere but where the test put it.
std::string Marker(const std::string& what) {
  return absl::StrCat("MARKER-", what, "-9f4c2e71");
}

class SqliteErasureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = testing::TempDir("erasure") + "/kontor.db";
    Open();
  }

  void Open() {
    store_.reset();
    auto s = Store::Open(path_);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
  }
  void Close() { store_.reset(); }

  std::string KeysPath() const { return ContentKeysPath(path_); }

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

  // Content keys as the key file holds them, read with the store closed
  // (it stays closed): nullopt for a key that is not there.
  std::map<std::string, std::optional<std::string>> KeysWithStoreClosed(
      const std::vector<std::string>& ids) {
    Close();
    std::map<std::string, std::optional<std::string>> out;
    auto keys = ContentKeys::Open(KeysPath());
    EXPECT_TRUE(keys.ok()) << keys.status();
    if (!keys.ok()) return out;
    for (const std::string& id : ids) {
      auto k = (*keys)->Get(KeyIdOf(id));
      EXPECT_TRUE(k.ok()) << k.status();
      out[id] = k.ok() ? *k : std::nullopt;
    }
    return out;
  }

  // The key id the store gave the row a test names "m:<id>" (sent),
  // "i:<origin>/<id>" (received) or "u:<id>" (upload): each row has a key
  // of its own, from the store's pool. No row, or none stored: the name.
  std::string KeyIdOf(const std::string& name) {
    std::string sql, a, b;
    if (absl::StartsWith(name, "m:")) {
      sql = "SELECT key_id FROM messages WHERE id = ?1";
      a = name.substr(2);
    } else if (absl::StartsWith(name, "u:")) {
      sql = "SELECT key_id FROM uploads WHERE id = ?1";
      a = name.substr(2);
    } else if (absl::StartsWith(name, "i:") &&
               name.find('/') != std::string::npos) {
      sql = "SELECT key_id FROM inbox WHERE origin = ?1 AND message_id = ?2";
      a = name.substr(2, name.find('/') - 2);
      b = name.substr(name.find('/') + 1);
    } else {
      return name;
    }
    sqlite3* db = nullptr;
    std::string found;
    if (sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) ==
        SQLITE_OK) {
      sqlite3_stmt* st = nullptr;
      if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, a.c_str(), -1, SQLITE_TRANSIENT);
        if (!b.empty())
          sqlite3_bind_text(st, 2, b.c_str(), -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0)) {
          found = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
        }
      }
      sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return found.empty() ? name : found;
  }

  // The files of the store and of its keys, as bytes, with their WALs.
  std::string StoreBytes() const {
    return ReadAll(path_) + ReadAll(path_ + "-wal");
  }
  std::string KeyFileBytes() const {
    return ReadAll(KeysPath()) + ReadAll(KeysPath() + "-wal");
  }
  // Where `s` is found on disk ("" if nowhere).
  std::string FoundOnDisk(const std::string& s) const {
    std::string where;
    for (const std::string& f :
         {path_, path_ + "-wal", KeysPath(), KeysPath() + "-wal"}) {
      if (ReadAll(f).find(s) != std::string::npos) {
        absl::StrAppend(&where, f, " ");
      }
    }
    return where;
  }

  // SQL behind the store's back (tests/testing/sql.h).
  void Sql(const std::string& sql) { testing::RunSql(path_, sql); }
  // The first column of the first row, as bytes ("" for NULL or no row).
  std::string SqlValue(const std::string& sql) {
    sqlite3* db = nullptr;
    std::string out;
    EXPECT_EQ(
        sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr),
        SQLITE_OK);
    sqlite3_busy_timeout(db, 10000);
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr),
              SQLITE_OK)
        << sqlite3_errmsg(db) << " in " << sql;
    if (stmt != nullptr && sqlite3_step(stmt) == SQLITE_ROW) {
      const void* p = sqlite3_column_blob(stmt, 0);
      const int n = sqlite3_column_bytes(stmt, 0);
      if (p != nullptr) out.assign(static_cast<const char*>(p), n);
    }
    sqlite3_finalize(stmt);
    EXPECT_EQ(sqlite3_close(db), SQLITE_OK);
    return out;
  }

  std::string path_;
  std::unique_ptr<Store> store_;
};

constexpr char kTag[] = "\x01kc1";

// ------------------------------------------------------- sealed on disk

TEST_F(SqliteErasureTest, OutgoingContentIsSealedOnDiskAndReadInPlaintext) {
  OutgoingMessage m = Message("m1");
  m.payload = "payload " + Marker("out-payload");
  m.subject = "subject " + Marker("out-subject");
  m.inner_signed = "cms " + Marker("out-inner");
  ASSERT_TRUE(store_->InsertOutgoing(m).ok());

  auto found = Find("m1");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->payload, m.payload);
  EXPECT_EQ(found->inner_signed, m.inner_signed);
  EXPECT_EQ(found->purged_ms, 0);
  auto thread = store_->Thread("CASE-m1");
  ASSERT_TRUE(thread.ok()) << thread.status();
  ASSERT_EQ(thread->size(), 1u);
  EXPECT_EQ(thread->front().subject, m.subject);

  for (const char* column : {"payload", "subject", "inner_signed"}) {
    const std::string raw = SqlValue(
        absl::StrCat("SELECT ", column, " FROM messages WHERE id = 'm1'"));
    EXPECT_TRUE(absl::StartsWith(raw, kTag)) << column;
    EXPECT_GT(raw.size(), 4u + 12 + 16) << column;
  }
  // Nowhere in the store file, its WAL, or the key file: neither with the
  // store open (WAL not checkpointed) nor after it closed (checkpointed).
  const std::vector<std::string> markers = {
      Marker("out-payload"), Marker("out-subject"), Marker("out-inner")};
  EXPECT_FALSE(StoreBytes().empty());
  for (const std::string& s : markers) EXPECT_EQ(FoundOnDisk(s), "") << s;
  Close();
  for (const std::string& s : markers) EXPECT_EQ(FoundOnDisk(s), "") << s;
  Open();
  found = Find("m1");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->payload, m.payload);
  EXPECT_EQ(found->inner_signed, m.inner_signed);
}

TEST_F(SqliteErasureTest, ReceivedContentIsSealedOnDiskAndReadInPlaintext) {
  InboxRecord r = Inbox("ee", "r1");
  r.payload = "payload " + Marker("in-payload");
  r.subject = "subject " + Marker("in-subject");
  r.inner_signed = "cms " + Marker("in-inner");
  Insert({r});

  auto listed = store_->ListInbox(false, 0, 10);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->front().payload, r.payload);
  EXPECT_EQ(listed->front().subject, r.subject);
  EXPECT_EQ(listed->front().inner_signed, r.inner_signed);
  const InboxRecord got = Received("ee", "r1");
  EXPECT_EQ(got.payload, r.payload);
  EXPECT_EQ(got.subject, r.subject);
  EXPECT_EQ(got.inner_signed, r.inner_signed);
  EXPECT_EQ(got.header, r.header);
  auto found = Find("r1");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->payload, r.payload);
  EXPECT_EQ(found->inner_signed, r.inner_signed);

  for (const char* column : {"payload", "subject", "inner_signed"}) {
    EXPECT_TRUE(absl::StartsWith(
        SqlValue(absl::StrCat("SELECT ", column,
                              " FROM inbox WHERE message_id = 'r1'")),
        kTag))
        << column;
  }
  const std::vector<std::string> markers = {
      Marker("in-payload"), Marker("in-subject"), Marker("in-inner")};
  for (const std::string& s : markers) EXPECT_EQ(FoundOnDisk(s), "") << s;
  Close();
  for (const std::string& s : markers) EXPECT_EQ(FoundOnDisk(s), "") << s;
  Open();
  EXPECT_EQ(Received("ee", "r1").payload, r.payload);
}

TEST_F(SqliteErasureTest, RefusedRecordKeepsNoContentAndGetsNoKey) {
  InboxRecord r = Inbox("ee", "x1");
  r.accepted = false;
  r.refusal = "refused";
  r.payload = "payload " + Marker("refused");
  r.inner_signed = "cms " + Marker("refused-inner");
  Insert({r});
  EXPECT_EQ(FoundOnDisk(Marker("refused")), "");
  EXPECT_EQ(FoundOnDisk(Marker("refused-inner")), "");
  EXPECT_EQ(KeysWithStoreClosed({"i:ee/x1"})["i:ee/x1"], std::nullopt);
}

TEST_F(SqliteErasureTest, KeyFileIsBesideTheStoreAndPrivate) {
  ASSERT_TRUE(store_->InsertOutgoing(Message("m1")).ok());
  struct stat st;
  ASSERT_EQ(stat(KeysPath().c_str(), &st), 0) << KeysPath();
  EXPECT_EQ(st.st_mode & 07777, 0600u) << std::oct << (st.st_mode & 07777);
  auto keys = KeysWithStoreClosed({"m:m1"});
  ASSERT_TRUE(keys["m:m1"].has_value());
  EXPECT_EQ(keys["m:m1"]->size(), 32u);
}

// ---------------------------------------------------------------- purge

TEST_F(SqliteErasureTest, PurgeErasesContentDestroysKeysAndKeepsMetadata) {
  OutgoingMessage m1 = Message("m1");
  m1.payload = "payload " + Marker("purged-sent");
  ASSERT_TRUE(store_->InsertOutgoing(m1).ok());
  ASSERT_TRUE(store_->InsertOutgoing(Message("m2")).ok());
  ASSERT_TRUE(
      store_
          ->Settle({{"m1", "fi", kStateDelivered, "", "receipt-m1", 1500, ""}})
          .ok());
  Insert({Inbox("ee", "r1"), Inbox("ee", "r2")});

  const std::vector<std::string> ids = {"m:m1", "m:m2", "i:ee/r1", "i:ee/r2"};
  auto before = KeysWithStoreClosed(ids);
  for (const std::string& id : ids) {
    ASSERT_TRUE(before[id].has_value()) << id;
    EXPECT_NE(KeyFileBytes().find(*before[id]), std::string::npos) << id;
  }
  Open();
  const size_t erasures_before = Erasures().size();
  EXPECT_EQ(erasures_before, 0u);

  ASSERT_TRUE(
      store_
          ->Purge({PurgeCandidate{"m1", "", true, "referral", 1000, 30, ""},
                   PurgeCandidate{"r1", "ee", false, "note", 2000, 7, ""}},
                  "kontord", 9000)
          .ok());

  // Content gone, metadata kept.
  auto sent = Find("m1");
  ASSERT_TRUE(sent.has_value());
  EXPECT_EQ(sent->payload, "");
  EXPECT_EQ(sent->inner_signed, "");
  EXPECT_EQ(sent->purged_ms, 9000);
  EXPECT_EQ(sent->kind, "referral");
  EXPECT_EQ(sent->case_ref, "CASE-m1");
  EXPECT_EQ(sent->submitter, "user:anna");
  auto deliveries = store_->Deliveries("m1");
  ASSERT_TRUE(deliveries.ok());
  ASSERT_EQ(deliveries->size(), 1u);
  EXPECT_EQ(deliveries->front().state, kStateDelivered);
  EXPECT_EQ(deliveries->front().receipt, "receipt-m1");
  auto facts = store_->GetMessageFacts("m1");
  ASSERT_TRUE(facts.ok() && facts->has_value());
  EXPECT_EQ((*facts)->outer_digest, "digest-m1");
  EXPECT_EQ(SqlValue("SELECT payload IS NULL AND inner_signed IS NULL AND "
                     "subject = '' FROM messages WHERE id = 'm1'"),
            "1");

  auto received = Find("r1");
  ASSERT_TRUE(received.has_value());
  EXPECT_EQ(received->payload, "");
  EXPECT_EQ(received->inner_signed, "");
  EXPECT_EQ(received->purged_ms, 9000);
  EXPECT_EQ(received->kind, "note");
  const InboxRecord r1 = Received("ee", "r1");
  EXPECT_EQ(r1.payload, "");
  EXPECT_EQ(r1.subject, "");
  EXPECT_EQ(r1.inner_signed, "");
  EXPECT_EQ(r1.purged_ms, 9000);
  EXPECT_EQ(r1.receipt, "receipt-ee-r1");
  EXPECT_EQ(r1.case_ref, "CASE-r1");
  EXPECT_EQ(SqlValue("SELECT payload IS NULL AND inner_signed IS NULL AND "
                     "subject = '' FROM inbox WHERE message_id = 'r1'"),
            "1");
  auto dedup = store_->FindInbox("ee", "r1");
  ASSERT_TRUE(dedup.ok() && dedup->has_value());
  EXPECT_EQ((*dedup)->outer_digest, "digest-ee-r1");
  EXPECT_EQ((*dedup)->receipt, "receipt-ee-r1");

  // The others are untouched.
  EXPECT_EQ(Must("m2").payload, "payload-m2");
  EXPECT_EQ(Received("ee", "r2").payload, "payload-ee-r2");

  // One erase record each.
  auto erased = Erasures();
  ASSERT_EQ(erased.size(), 2u);
  EXPECT_EQ(erased[0].entry.message_id, "m1");
  EXPECT_EQ(erased[0].entry.origin, "");
  EXPECT_EQ(erased[0].entry.actor, "kontord");
  EXPECT_EQ(erased[0].entry.kind, "referral");
  EXPECT_TRUE(absl::StrContains(erased[0].entry.detail, "30 days"))
      << erased[0].entry.detail;
  EXPECT_EQ(erased[0].time_ms, 9000);
  EXPECT_EQ(erased[1].entry.message_id, "r1");
  EXPECT_EQ(erased[1].entry.origin, "ee");
  EXPECT_EQ(erased[1].entry.kind, "note");
  EXPECT_TRUE(absl::StrContains(erased[1].entry.detail, "7 days"))
      << erased[1].entry.detail;
  auto chain = store_->VerifyAuditChain();
  ASSERT_TRUE(chain.ok());
  EXPECT_EQ(chain->first_bad_seq, 0u) << chain->problem;

  // The destroyed keys' bytes are gone from the key file and its WAL at
  // once (the store still open), the kept ones are there.
  const std::string key_file = KeyFileBytes();
  EXPECT_EQ(key_file.find(*before["m:m1"]), std::string::npos);
  EXPECT_EQ(key_file.find(*before["i:ee/r1"]), std::string::npos);
  EXPECT_NE(key_file.find(*before["m:m2"]), std::string::npos);
  EXPECT_NE(key_file.find(*before["i:ee/r2"]), std::string::npos);
  EXPECT_EQ(FoundOnDisk(Marker("purged-sent")), "");

  // Purging again changes nothing and records nothing.
  ASSERT_TRUE(
      store_
          ->Purge({PurgeCandidate{"m1", "", true, "referral", 1000, 30, ""},
                   PurgeCandidate{"r1", "ee", false, "note", 2000, 7, ""}},
                  "kontord", 9900)
          .ok());
  EXPECT_EQ(Erasures().size(), 2u);
  EXPECT_EQ(Must("m1").purged_ms, 9000);

  // Destroyed right after the commit, not only at the next open: read with
  // the store closed and not reopened.
  auto after = KeysWithStoreClosed(ids);
  EXPECT_EQ(after["m:m1"], std::nullopt);
  EXPECT_EQ(after["i:ee/r1"], std::nullopt);
  EXPECT_EQ(after["m:m2"], before["m:m2"]);
  EXPECT_EQ(after["i:ee/r2"], before["i:ee/r2"]);
  EXPECT_EQ(KeyFileBytes().find(*before["m:m1"]), std::string::npos);
  EXPECT_EQ(KeyFileBytes().find(*before["i:ee/r1"]), std::string::npos);
}

TEST_F(SqliteErasureTest, PurgeOfASentMessageDestroysItsAttachmentKeys) {
  UploadRecord u =
      Upload("u1", "file.txt", "attachment-key-" + Marker("upload"));
  u.size = 3;
  ASSERT_TRUE(store_->InsertUpload(u).ok());
  EXPECT_TRUE(absl::StartsWith(
      SqlValue("SELECT key FROM uploads WHERE id = 'u1'"), kTag));
  EXPECT_EQ(FoundOnDisk(Marker("upload")), "");
  OutgoingMessage m = Message("m1");
  m.uploads = {"u1"};
  m.chunk_count = 1;
  ASSERT_TRUE(store_->InsertOutgoing(m).ok());
  auto got = store_->GetUpload("u1");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->key, u.key);

  ASSERT_TRUE(store_
                  ->Purge({PurgeCandidate{"m1", "", true, "", 1000, 30, ""}},
                          "kontord", 9000)
                  .ok());
  got = store_->GetUpload("u1");
  ASSERT_TRUE(got.ok() && got->has_value()) << got.status();
  EXPECT_EQ((*got)->key, "");  // its key destroyed: nothing opens
  auto keys = KeysWithStoreClosed({"m:m1", "u:u1"});
  EXPECT_EQ(keys["m:m1"], std::nullopt);
  EXPECT_EQ(keys["u:u1"], std::nullopt);
}

// --------------------------------------------------------- erase orders

TEST_F(SqliteErasureTest, EraseOrderErasesAnEarlierMessageOfItsOrigin) {
  InboxRecord target = Inbox("ee", "t1", 2000);
  target.payload = "payload " + Marker("order-target");
  Insert({target});
  Insert({Order("ee", "o1", {"t1"}, 3000)});

  const InboxRecord t1 = Received("ee", "t1");
  EXPECT_EQ(t1.purged_ms, 3000);
  EXPECT_EQ(t1.payload, "");
  EXPECT_EQ(t1.inner_signed, "");
  EXPECT_EQ(t1.subject, "");
  EXPECT_EQ(t1.receipt, "receipt-ee-t1");
  EXPECT_EQ(Must("t1").purged_ms, 3000);
  // The order itself is kept.
  const InboxRecord o1 = Received("ee", "o1");
  EXPECT_EQ(o1.purged_ms, 0);
  EXPECT_EQ(o1.payload, "payload-ee-o1");

  auto erased = Erasures();
  ASSERT_EQ(erased.size(), 1u);
  EXPECT_EQ(erased[0].entry.actor, "node:ee");
  EXPECT_EQ(erased[0].entry.message_id, "t1");
  EXPECT_EQ(erased[0].entry.origin, "ee");
  EXPECT_EQ(erased[0].entry.kind, "note");
  EXPECT_TRUE(absl::StrContains(erased[0].entry.detail, "o1"))
      << erased[0].entry.detail;
  // The order's reason is message content: never in the log.
  EXPECT_FALSE(absl::StrContains(erased[0].entry.detail, "reason-o1"))
      << erased[0].entry.detail;

  auto orders = store_->ListEraseOrders("o1");
  ASSERT_TRUE(orders.ok()) << orders.status();
  ASSERT_EQ(orders->size(), 1u);
  EXPECT_EQ(orders->front().origin, "ee");
  EXPECT_EQ(orders->front().message_id, "t1");
  EXPECT_EQ(orders->front().order_id, "o1");
  EXPECT_EQ(orders->front().order_kind, "erase.notice");
  EXPECT_EQ(orders->front().reason, "");  // content: not kept with it
  EXPECT_EQ(orders->front().received_ms, 3000);
  EXPECT_NE(orders->front().applied_ms, 0);
  EXPECT_EQ(store_->ListEraseOrders("")->size(), 1u);
  EXPECT_TRUE(store_->ListEraseOrders("other")->empty());

  auto keys = KeysWithStoreClosed({"i:ee/t1", "i:ee/o1"});
  EXPECT_EQ(keys["i:ee/t1"], std::nullopt);
  EXPECT_TRUE(keys["i:ee/o1"].has_value());
}

TEST_F(SqliteErasureTest, EraseOrderBeforeItsMessageIsKeptAndAppliedOnArrival) {
  Insert({Order("ee", "o1", {"later"}, 3000)});
  auto orders = store_->ListEraseOrders("o1");
  ASSERT_TRUE(orders.ok());
  ASSERT_EQ(orders->size(), 1u);
  EXPECT_EQ(orders->front().message_id, "later");
  EXPECT_EQ(orders->front().applied_ms, 0);
  EXPECT_TRUE(Erasures().empty());

  Open();  // kept durably
  ASSERT_EQ(store_->ListEraseOrders("o1")->size(), 1u);
  EXPECT_EQ(store_->ListEraseOrders("o1")->front().applied_ms, 0);

  InboxRecord later = Inbox("ee", "later", 5000);
  later.payload = "payload " + Marker("erased-on-arrival");
  Insert({later});

  const InboxRecord got = Received("ee", "later");
  EXPECT_NE(got.purged_ms, 0);
  EXPECT_EQ(got.payload, "");
  EXPECT_EQ(got.inner_signed, "");
  EXPECT_EQ(got.subject, "");
  EXPECT_EQ(got.receipt, "receipt-ee-later");  // still answered as stored
  auto found = Find("later");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->payload, "");
  EXPECT_NE(found->purged_ms, 0);

  auto erased = Erasures();
  ASSERT_EQ(erased.size(), 1u);
  EXPECT_EQ(erased[0].entry.message_id, "later");
  EXPECT_EQ(erased[0].entry.origin, "ee");
  EXPECT_EQ(erased[0].entry.actor, "node:ee");
  EXPECT_TRUE(absl::StrContains(erased[0].entry.detail, "on arrival"))
      << erased[0].entry.detail;
  EXPECT_TRUE(absl::StrContains(erased[0].entry.detail, "o1"))
      << erased[0].entry.detail;
  orders = store_->ListEraseOrders("o1");
  ASSERT_EQ(orders->size(), 1u);
  EXPECT_NE(orders->front().applied_ms, 0);

  EXPECT_EQ(FoundOnDisk(Marker("erased-on-arrival")), "");
  EXPECT_EQ(KeysWithStoreClosed({"i:ee/later"})["i:ee/later"], std::nullopt);
}

TEST_F(SqliteErasureTest, KeptOrderWaitsForItsOwnOriginsMessage) {
  Insert({Order("ee", "o1", {"later"}, 3000)});
  // The same id from another origin is another message: not erased.
  Insert({Inbox("fi", "later", 4000)});
  const InboxRecord fi = Received("fi", "later");
  EXPECT_EQ(fi.purged_ms, 0);
  EXPECT_EQ(fi.payload, "payload-fi-later");
  EXPECT_TRUE(Erasures().empty());
  EXPECT_EQ(store_->ListEraseOrders("o1")->front().applied_ms, 0);

  Insert({Inbox("ee", "later", 5000)});
  EXPECT_NE(Received("ee", "later").purged_ms, 0);
  EXPECT_EQ(Received("fi", "later").payload, "payload-fi-later");
  EXPECT_NE(store_->ListEraseOrders("o1")->front().applied_ms, 0);
  auto keys = KeysWithStoreClosed({"i:ee/later", "i:fi/later"});
  EXPECT_EQ(keys["i:ee/later"], std::nullopt);
  EXPECT_TRUE(keys["i:fi/later"].has_value());
}

TEST_F(SqliteErasureTest, EraseOrderOfAnotherOriginErasesNothing) {
  Insert({Inbox("ee", "x1", 2000)});
  // fi names ee's message: an order reaches only its own origin's messages.
  Insert({Order("fi", "o1", {"x1"}, 3000)});
  const InboxRecord x1 = Received("ee", "x1");
  EXPECT_EQ(x1.purged_ms, 0);
  EXPECT_EQ(x1.payload, "payload-ee-x1");
  EXPECT_EQ(Must("x1").payload, "payload-ee-x1");
  EXPECT_TRUE(Erasures().empty());
  auto orders = store_->ListEraseOrders("o1");
  ASSERT_EQ(orders->size(), 1u);
  EXPECT_EQ(orders->front().origin, "fi");
  EXPECT_EQ(orders->front().applied_ms, 0);  // fi's x1 never came

  // A refused order (even from the right origin) erases nothing either.
  InboxRecord refused = Order("ee", "o2", {"x1"}, 3100);
  refused.accepted = false;
  refused.refusal = "policy";
  Insert({refused});
  EXPECT_EQ(Received("ee", "x1").purged_ms, 0);
  EXPECT_TRUE(Erasures().empty());
  EXPECT_TRUE(store_->ListEraseOrders("o2")->empty());

  // Nor does a retention purge naming the wrong origin.
  ASSERT_TRUE(store_
                  ->Purge({PurgeCandidate{"x1", "fi", false, "note", 0, 1, ""}},
                          "kontord", 4000)
                  .ok());
  EXPECT_EQ(Received("ee", "x1").payload, "payload-ee-x1");
  EXPECT_TRUE(Erasures().empty());

  auto keys = KeysWithStoreClosed({"i:ee/x1"});
  EXPECT_TRUE(keys["i:ee/x1"].has_value());
}

TEST_F(SqliteErasureTest, OrderThenItsTargetInOneBatchErasesTheTarget) {
  Insert({Order("ee", "o1", {"b1"}, 3000), Inbox("ee", "b1", 3001)});
  const InboxRecord b1 = Received("ee", "b1");
  EXPECT_NE(b1.purged_ms, 0);
  EXPECT_EQ(b1.payload, "");
  EXPECT_EQ(Received("ee", "o1").payload, "payload-ee-o1");
  auto orders = store_->ListEraseOrders("o1");
  ASSERT_EQ(orders->size(), 1u);
  EXPECT_NE(orders->front().applied_ms, 0);
  ASSERT_EQ(Erasures().size(), 1u);
  EXPECT_EQ(Erasures()[0].entry.message_id, "b1");
  EXPECT_EQ(Erasures()[0].entry.actor, "node:ee");
  EXPECT_EQ(KeysWithStoreClosed({"i:ee/b1"})["i:ee/b1"], std::nullopt);
}

TEST_F(SqliteErasureTest, TargetThenItsOrderInOneBatchErasesTheTarget) {
  Insert({Inbox("ee", "b2", 3000), Order("ee", "o2", {"b2"}, 3001)});
  const InboxRecord b2 = Received("ee", "b2");
  EXPECT_NE(b2.purged_ms, 0);
  EXPECT_EQ(b2.payload, "");
  EXPECT_EQ(Received("ee", "o2").payload, "payload-ee-o2");
  auto orders = store_->ListEraseOrders("o2");
  ASSERT_EQ(orders->size(), 1u);
  EXPECT_NE(orders->front().applied_ms, 0);
  ASSERT_EQ(Erasures().size(), 1u);
  EXPECT_EQ(Erasures()[0].entry.message_id, "b2");
  EXPECT_EQ(KeysWithStoreClosed({"i:ee/b2"})["i:ee/b2"], std::nullopt);
}

TEST_F(SqliteErasureTest, OutgoingEraseOrderErasesTheOwnEarlierCopy) {
  OutgoingMessage first = Message("m1", 1000);
  first.payload = "payload " + Marker("own-copy");
  ASSERT_TRUE(store_->InsertOutgoing(first).ok());
  Insert({Inbox("ee", "r1", 1500)});  // a received message is not own
  OutgoingMessage order = Message("m2", 5000);
  order.kind = "erase.notice";
  order.erase_targets = {"m1", "r1", "unknown"};
  ASSERT_TRUE(store_->InsertOutgoing(order).ok());

  auto m1 = Find("m1");
  ASSERT_TRUE(m1.has_value());
  EXPECT_NE(m1->purged_ms, 0);
  EXPECT_EQ(m1->payload, "");
  EXPECT_EQ(m1->inner_signed, "");
  EXPECT_EQ(m1->kind, "referral");
  EXPECT_EQ(Must("m2").payload, "payload-m2");  // the order is kept
  EXPECT_EQ(Must("m2").purged_ms, 0);
  EXPECT_EQ(Received("ee", "r1").payload, "payload-ee-r1");
  auto thread = store_->Thread("CASE-m1");
  ASSERT_TRUE(thread.ok());
  ASSERT_EQ(thread->size(), 1u);
  EXPECT_EQ(thread->front().subject, "");

  auto erased = Erasures();
  ASSERT_EQ(erased.size(), 1u);
  EXPECT_EQ(erased[0].entry.message_id, "m1");
  EXPECT_EQ(erased[0].entry.origin, "");
  EXPECT_EQ(erased[0].entry.actor, "user:anna");
  EXPECT_TRUE(absl::StrContains(erased[0].entry.detail, "m2"))
      << erased[0].entry.detail;

  EXPECT_EQ(FoundOnDisk(Marker("own-copy")), "");
  auto keys = KeysWithStoreClosed({"m:m1", "m:m2", "i:ee/r1"});
  EXPECT_EQ(keys["m:m1"], std::nullopt);
  EXPECT_TRUE(keys["m:m2"].has_value());
  EXPECT_TRUE(keys["i:ee/r1"].has_value());
}

TEST_F(SqliteErasureTest, FailedEraseOrderSubmissionErasesNothing) {
  ASSERT_TRUE(store_->InsertOutgoing(Message("m1")).ok());
  OutgoingMessage order = Message("m2", 5000);
  order.erase_targets = {"m1"};
  order.uploads = {"no-such-upload"};  // fails the whole submission
  EXPECT_FALSE(store_->InsertOutgoing(order).ok());
  EXPECT_EQ(Must("m1").purged_ms, 0);
  EXPECT_EQ(Must("m1").payload, "payload-m1");
  EXPECT_TRUE(Erasures().empty());
  EXPECT_TRUE(KeysWithStoreClosed({"m:m1"})["m:m1"].has_value());
}

// PRODUCT BUG (minor): a duplicate of an erased received message (the
// sender resending it, e.g. after a lost receipt) makes a fresh content key
// for it: InsertInbox ensures keys for all accepted records before it knows
// which are duplicates, and only a duplicate InsertOutgoing destroys the key
// it made. The erased content stays unreadable (the new key is not the old
// one), but the key file holds a key for an erased message until the next
// Store::Open sweeps it (DestroyErasedKeys).
TEST_F(SqliteErasureTest, DuplicateOfAnErasedMessageDoesNotBringItsKeyBack) {
  Insert({Inbox("ee", "r1")});
  ASSERT_TRUE(
      store_
          ->Purge({PurgeCandidate{"r1", "ee", false, "note", 2000, 1, ""}},
                  "kontord", 9000)
          .ok());
  ASSERT_EQ(KeysWithStoreClosed({"i:ee/r1"})["i:ee/r1"], std::nullopt);
  Open();  // (the sweep at open finds nothing to do)
  std::vector<std::optional<DedupEntry>> existing;
  ASSERT_TRUE(store_->InsertInbox({Inbox("ee", "r1")}, &existing).ok());
  ASSERT_TRUE(existing[0].has_value());  // answered as a duplicate
  EXPECT_EQ(Received("ee", "r1").payload, "");
  EXPECT_EQ(KeysWithStoreClosed({"i:ee/r1"})["i:ee/r1"], std::nullopt);
}

// ------------------------------------------------- migration and crashes

TEST_F(SqliteErasureTest, LegacyPlaintextIsSealedAtTheFirstOpen) {
  ASSERT_TRUE(store_->InsertOutgoing(Message("m1")).ok());
  Insert({Inbox("ee", "r1")});
  UploadRecord u = Upload("u1", "f", "k");
  ASSERT_TRUE(store_->InsertUpload(u).ok());
  Close();
  const std::string sealed_r1_payload =
      SqlValue("SELECT payload FROM inbox WHERE message_id = 'r1'");
  ASSERT_TRUE(absl::StartsWith(sealed_r1_payload, kTag));

  // As schema 7 stored content: plaintext. m1 (its key exists), a message
  // and an inbox record that never had a key, r1 with one column plaintext
  // and the others already sealed, and an upload key.
  const std::string upload_key = "LEGACY-UPLOAD-KEY-" + Marker("uk");
  Sql(absl::StrCat(
      "UPDATE messages SET payload = CAST('", Marker("legacy-m1-payload"),
      "' AS BLOB), subject = '", Marker("legacy-m1-subject"),
      "', inner_signed = CAST('", Marker("legacy-m1-inner"),
      "' AS BLOB) WHERE id = 'm1';"
      "INSERT INTO messages(id, priority, created_ms, expires_ms, kind, "
      "envelope, outer_digest, submitter, payload, subject, case_ref, "
      "inner_signed) VALUES('m3', 1, 1000, 999999, 'note', X'00', X'01', "
      "'user:anna', CAST('",
      Marker("legacy-m3-payload"), "' AS BLOB), '", Marker("legacy-m3-subject"),
      "', 'CASE-m3', NULL);"
      "INSERT INTO inbox(origin, message_id, outer_digest, accepted, header, "
      "inner_signed, payload, kind, subject, case_ref, received_ms, receipt) "
      "VALUES('lv', 'r3', X'02', 1, X'', CAST('",
      Marker("legacy-r3-inner"), "' AS BLOB), CAST('",
      Marker("legacy-r3-payload"), "' AS BLOB), 'note', '",
      Marker("legacy-r3-subject"), "', 'CASE-r3', 2500, X'03');",
      "UPDATE inbox SET subject = '", Marker("legacy-r1-subject"),
      "' WHERE message_id = 'r1';"
      "UPDATE uploads SET key = CAST('",
      upload_key,
      "' AS BLOB) WHERE id = 'u1';"
      "PRAGMA user_version = 7;"));
  ASSERT_EQ(SqlValue("PRAGMA user_version"), "7");
  ASSERT_NE(FoundOnDisk(Marker("legacy-m1-payload")), "");  // it is there

  Open();
  EXPECT_EQ(SqlValue("PRAGMA user_version"), "10");
  for (const std::string& q :
       {std::string("SELECT payload FROM messages WHERE id = 'm1'"),
        std::string("SELECT subject FROM messages WHERE id = 'm1'"),
        std::string("SELECT inner_signed FROM messages WHERE id = 'm1'"),
        std::string("SELECT payload FROM messages WHERE id = 'm3'"),
        std::string("SELECT subject FROM messages WHERE id = 'm3'"),
        std::string("SELECT payload FROM inbox WHERE message_id = 'r3'"),
        std::string("SELECT subject FROM inbox WHERE message_id = 'r3'"),
        std::string("SELECT inner_signed FROM inbox WHERE message_id = 'r3'"),
        std::string("SELECT subject FROM inbox WHERE message_id = 'r1'"),
        std::string("SELECT key FROM uploads WHERE id = 'u1'")}) {
    EXPECT_TRUE(absl::StartsWith(SqlValue(q), kTag)) << q;
  }
  EXPECT_EQ(SqlValue("SELECT inner_signed IS NULL FROM messages WHERE id = "
                     "'m3'"),
            "1");  // nothing to seal stays nothing
  // Already sealed: left as it was (not sealed twice).
  EXPECT_EQ(SqlValue("SELECT payload FROM inbox WHERE message_id = 'r1'"),
            sealed_r1_payload);

  // Read in plaintext.
  EXPECT_EQ(Must("m1").payload, Marker("legacy-m1-payload"));
  EXPECT_EQ(Must("m1").inner_signed, Marker("legacy-m1-inner"));
  EXPECT_EQ(Subject("CASE-m1"), Marker("legacy-m1-subject"));
  EXPECT_EQ(Must("m3").payload, Marker("legacy-m3-payload"));
  EXPECT_EQ(Subject("CASE-m3"), Marker("legacy-m3-subject"));
  const InboxRecord r3 = Received("lv", "r3");
  EXPECT_EQ(r3.payload, Marker("legacy-r3-payload"));
  EXPECT_EQ(r3.subject, Marker("legacy-r3-subject"));
  EXPECT_EQ(r3.inner_signed, Marker("legacy-r3-inner"));
  const InboxRecord r1 = Received("ee", "r1");
  EXPECT_EQ(r1.payload, "payload-ee-r1");
  EXPECT_EQ(r1.subject, Marker("legacy-r1-subject"));
  EXPECT_EQ((*store_->GetUpload("u1"))->key, upload_key);

  // Once checkpointed, no plaintext is left in the store file. (The old
  // cells are overwritten because this SQLite zeroes deleted content:
  // Debian builds it with SQLITE_SECURE_DELETE; the store does not set
  // PRAGMA secure_delete itself.)
  Close();
  for (const char* what :
       {"legacy-m1-payload", "legacy-m1-subject", "legacy-m1-inner",
        "legacy-m3-payload", "legacy-m3-subject", "legacy-r3-payload",
        "legacy-r3-subject", "legacy-r3-inner", "legacy-r1-subject", "uk"}) {
    EXPECT_EQ(FoundOnDisk(Marker(what)), "") << what;
  }

  // And erasable like any other content.
  Open();
  EXPECT_EQ(Must("m3").payload, Marker("legacy-m3-payload"));  // reopened
  ASSERT_TRUE(store_
                  ->Purge({PurgeCandidate{"m3", "", true, "", 0, 1, ""},
                           PurgeCandidate{"r3", "lv", false, "", 0, 1, ""}},
                          "kontord", 9000)
                  .ok());
  EXPECT_EQ(Must("m3").payload, "");
  auto keys = KeysWithStoreClosed({"m:m3", "i:lv/r3", "m:m1"});
  EXPECT_EQ(keys["m:m3"], std::nullopt);
  EXPECT_EQ(keys["i:lv/r3"], std::nullopt);
  EXPECT_TRUE(keys["m:m1"].has_value());
}

TEST_F(SqliteErasureTest, KeysOfContentErasedBeforeACrashAreDestroyedAtOpen) {
  Insert({Inbox("ee", "c1"), Inbox("ee", "c2")});
  UploadRecord u = Upload("u1", "f", "k");
  ASSERT_TRUE(store_->InsertUpload(u).ok());
  OutgoingMessage m1 = Message("m1");
  m1.uploads = {"u1"};
  ASSERT_TRUE(store_->InsertOutgoing(m1).ok());
  ASSERT_TRUE(store_->InsertOutgoing(Message("m2")).ok());

  const std::vector<std::string> ids = {"i:ee/c1", "i:ee/c2", "m:m1", "m:m2",
                                        "u:u1"};
  auto before = KeysWithStoreClosed(ids);
  for (const std::string& id : ids) ASSERT_TRUE(before[id].has_value()) << id;

  // The erasures committed; the process died before destroying the keys.
  Sql("UPDATE inbox SET purged_ms = 1, payload = NULL, inner_signed = NULL, "
      "subject = '' WHERE message_id = 'c1';"
      "UPDATE messages SET purged_ms = 1, payload = NULL, inner_signed = "
      "NULL, subject = '' WHERE id = 'm1';");
  auto still = KeysWithStoreClosed(ids);
  ASSERT_TRUE(still["i:ee/c1"].has_value());
  ASSERT_TRUE(still["m:m1"].has_value());

  Open();
  EXPECT_EQ(Received("ee", "c2").payload, "payload-ee-c2");
  auto after = KeysWithStoreClosed(ids);
  EXPECT_EQ(after["i:ee/c1"], std::nullopt);
  EXPECT_EQ(after["m:m1"], std::nullopt);
  EXPECT_EQ(after["u:u1"], std::nullopt);
  EXPECT_EQ(after["i:ee/c2"], before["i:ee/c2"]);
  EXPECT_EQ(after["m:m2"], before["m:m2"]);
  const std::string key_file = KeyFileBytes();
  EXPECT_EQ(key_file.find(*before["i:ee/c1"]), std::string::npos);
  EXPECT_EQ(key_file.find(*before["m:m1"]), std::string::npos);
  EXPECT_EQ(key_file.find(*before["u:u1"]), std::string::npos);
}

}  // namespace

// A store whose key file is missing (made anew) or from another backup is
// refused, rather than showing every message empty.
TEST_F(SqliteErasureTest, AKeyFileThatIsNotTheStoresIsRefused) {
  ASSERT_TRUE(store_->InsertOutgoing(Message("m1")).ok());
  Close();
  for (const std::string& f :
       {KeysPath(), KeysPath() + "-wal", KeysPath() + "-shm"}) {
    std::remove(f.c_str());
  }
  auto s = Store::Open(path_);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(s.status().message(), "is not the key file"))
      << s.status();
}

// A store from before the binding (schema 8) whose key file is missing is
// refused too: rows name keys, the new key file has none.
TEST_F(SqliteErasureTest, AMissingKeyFileBeforeTheBindingIsRefused) {
  ASSERT_TRUE(store_->InsertOutgoing(Message("m1")).ok());
  Close();
  Sql("DELETE FROM meta");
  for (const std::string& f :
       {KeysPath(), KeysPath() + "-wal", KeysPath() + "-shm"}) {
    std::remove(f.c_str());
  }
  auto s = Store::Open(path_);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(absl::StrContains(s.status().message(), "is empty"))
      << s.status();
}

// Only keys the store names as erased are destroyed at open: a store file
// older than its key file (a restore gone wrong) costs newer rows nothing.
TEST_F(SqliteErasureTest, AnOlderStoreFileNextToItsKeyFileDestroysNoKeys) {
  ASSERT_TRUE(store_->InsertOutgoing(Message("m1")).ok());
  Close();
  const std::string older = ReadAll(path_);
  const std::string backup = path_ + ".older";
  {
    std::ofstream f(backup, std::ios::binary);
    f << older;
  }
  Open();
  ASSERT_TRUE(store_->InsertOutgoing(Message("m2")).ok());
  Close();
  const std::string newer = ReadAll(path_);
  std::rename(backup.c_str(), path_.c_str());  // the older file, opened
  Open();
  Close();
  {
    std::ofstream f(path_, std::ios::binary | std::ios::trunc);
    f << newer;  // and the right one back
  }
  Open();
  EXPECT_EQ(Must("m1").payload, "payload-m1");
  EXPECT_EQ(Must("m2").payload, "payload-m2");
}

// Every row has a key of its own: erasing one message never touches
// another's content.
TEST_F(SqliteErasureTest, EachRowHasAKeyOfItsOwn) {
  ASSERT_TRUE(store_->InsertOutgoing(Message("m1")).ok());
  ASSERT_TRUE(store_->InsertOutgoing(Message("m2")).ok());
  Insert({Inbox("ee", "r1"), Inbox("ee", "r2")});
  EXPECT_NE(KeyIdOf("m:m1"), KeyIdOf("m:m2"));
  EXPECT_NE(KeyIdOf("i:ee/r1"), KeyIdOf("i:ee/r2"));
  EXPECT_NE(KeyIdOf("m:m1"), KeyIdOf("i:ee/r1"));
}

// After the upgrade everything is sealed: plaintext written into the store
// behind its back is never shown as the message's content.
TEST_F(SqliteErasureTest, PlaintextPutBehindTheStoresBackIsNotShown) {
  ASSERT_TRUE(store_->InsertOutgoing(Message("m1")).ok());
  Close();
  Sql("UPDATE messages SET payload = CAST('planted' AS BLOB) WHERE id = 'm1'");
  Open();
  EXPECT_EQ(Must("m1").payload, "");
}

}  // namespace kontor
