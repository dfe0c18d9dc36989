#include "daemon/outbox/outbox.h"

#include <map>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "daemon/common/ids.h"
#include "daemon/envelope/receipt.h"
#include "daemon/outbox/backoff.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_directory.h"
#include "tests/testing/test_pki.h"

namespace kontor {
namespace {

using testing::TestPki;

TEST(BackoffTest, ExponentialCappedWithJitter) {
  EXPECT_EQ(BackoffDelayMs(0, 500, 3600000, 0.5), 0);
  EXPECT_EQ(BackoffDelayMs(1, 500, 3600000, 0.0), 250);
  EXPECT_EQ(BackoffDelayMs(1, 500, 3600000, 1.0), 500);
  EXPECT_EQ(BackoffDelayMs(4, 500, 3600000, 1.0), 4000);
  EXPECT_EQ(BackoffDelayMs(40, 500, 3600000, 1.0), 3600000);
  EXPECT_EQ(BackoffDelayMs(40, 500, 3600000, 0.0), 1800000);
  for (uint32_t f = 1; f < 64; ++f) {
    EXPECT_LE(BackoffDelayMs(f, 500, 3600000, 0.99), 3600000);
    EXPECT_GE(BackoffDelayMs(f + 1, 500, 3600000, 0.0),
              BackoffDelayMs(f, 500, 3600000, 0.0));
  }
}

class MapDirectory : public KeyDirectory {
 public:
  std::map<std::string, CertificatePtr> signing;
  absl::StatusOr<CertificatePtr> SigningCert(absl::string_view node_id,
                                             absl::string_view key_id,
                                             int64_t) const override {
    auto it = signing.find(std::string(node_id));
    if (it == signing.end() || it->second->key_id() != key_id) {
      return absl::NotFoundError("unknown");
    }
    return it->second;
  }
  absl::StatusOr<CertificatePtr> EncryptionCert(
      absl::string_view) const override {
    return absl::NotFoundError("unused");
  }
};

// A peer link whose peers sign receipts with real keys, and can be "down".
class FakeLink : public PeerLink {
 public:
  absl::StatusOr<std::vector<std::string>> Exchange(
      const std::string& peer,
      const std::vector<std::string>& envelopes) override {
    absl::MutexLock l(&mu);
    ++calls[peer];
    if (down.count(peer)) return absl::UnavailableError("peer down");
    if (lose_answers > 0) {  // the peer stores, the answer is lost
      --lose_answers;
      for (const std::string& e : envelopes) {
        delivered[peer].push_back(e.substr(0, 36));
      }
      return absl::DeadlineExceededError("answer lost");
    }
    std::vector<v1::ReceiptBody> bodies;
    for (const std::string& e : envelopes) {
      v1::ReceiptBody b;
      b.set_version(std::string(kReceiptVersion));
      b.set_message_id(e.substr(0, 36));
      b.set_origin("ee");
      b.set_recipient(peer);
      b.set_outer_digest("digest-" + e.substr(0, 36));
      b.set_time_unix_ms(1);
      b.set_verdict(refuse.count(b.message_id())  ? v1::REFUSED
                    : defer.count(b.message_id()) ? v1::DEFERRED
                                                  : v1::ACCEPTED);
      if (b.verdict() == v1::DEFERRED) b.set_reason("unknown signing key");
      if (auto it = inner_digest.find(b.message_id());
          it != inner_digest.end() && b.verdict() == v1::ACCEPTED) {
        b.set_inner_digest(it->second);
      }
      if (b.verdict() == v1::REFUSED) {
        b.set_refusal(v1::REFUSAL_POLICY);
        b.set_reason("not allowed");
      }
      bodies.push_back(b);
      delivered[peer].push_back(b.message_id());
    }
    auto receipts = SignReceipts(*signers.at(peer), bodies);
    std::vector<std::string> out;
    for (auto& r : *receipts) out.push_back(r.SerializeAsString());
    return out;
  }
  absl::Mutex mu;
  std::set<std::string> down;
  std::set<std::string> refuse;
  std::set<std::string> defer;
  int lose_answers = 0;
  // What the recipient's acceptance names as the signed content, by id.
  std::map<std::string, std::string> inner_digest;
  std::map<std::string, int> calls;
  std::map<std::string, std::vector<std::string>> delivered;
  std::map<std::string, std::shared_ptr<const EcdsaSigner>> signers;
};

class OutboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::TempDir("outbox");
    pki_ = std::make_unique<TestPki>(dir_);
    ca_ = pki_->MakeCa("ca");
    for (const char* id : {"fi", "lv"}) {
      auto node = pki_->MakeNode(ca_, id);
      directory_.signing[id] = node.signing.cert;
      link_.signers[id] =
          std::shared_ptr<EcdsaSigner>(std::move(*EcdsaSigner::New(
              std::move(*PrivateKey::FromFile(node.signing.key_path)),
              node.signing.cert)));
    }
    store_ = std::move(*Store::Open(dir_ + "/kontor.db"));
  }
  void StartOutbox(OutboxOptions options = DefaultOptions()) {
    outbox_ = std::make_unique<Outbox>(
        "ee", std::vector<std::string>{"fi", "lv"}, store_.get(), &link_,
        &directory_, &clock_, options);
    outbox_->Start();
  }
  static OutboxOptions DefaultOptions() {
    OutboxOptions options;
    options.initial_backoff_ms = 20;
    options.max_backoff_ms = 100;
    return options;
  }
  std::string Submit(const std::vector<std::string>& to, int priority = 1) {
    return SubmitWithId(NewMessageId(), to, priority);
  }
  // Queues a message whose fake envelope starts with its id (FakeLink reads
  // it from there).
  // `lifetime_ms` may be negative: already expired when queued.
  std::string SubmitWithId(const std::string& id,
                           const std::vector<std::string>& to, int priority = 1,
                           int64_t lifetime_ms = 3600000) {
    OutgoingMessage m;
    m.id = id;
    m.recipients = to;
    m.priority = priority;
    m.created_ms = clock_.NowUnixMs();
    m.expires_ms = m.created_ms + lifetime_ms;
    m.kind = "note";
    m.envelope = m.id + "-envelope";
    m.outer_digest = "digest-" + m.id;
    m.submitter = "t";
    EXPECT_TRUE(store_->InsertOutgoing(m).ok());
    for (auto& p : to) outbox_->Notify(p);
    return m.id;
  }
  std::string StateOf(const std::string& id, const std::string& peer) {
    auto rows = store_->Deliveries(id);  // keep the StatusOr alive
    for (auto& r : *rows) {
      if (r.peer == peer) return r.state;
    }
    return "";
  }
  // Lets fake time pass, 10 ms a step (and the outbox's threads a real
  // millisecond to act on it), until `done` holds; false if it still does
  // not after `steps` steps.
  template <typename Done>
  bool Eventually(Done done, int steps = 3000) {
    for (int i = 0; i < steps; ++i) {
      if (done()) return true;
      clock_.AdvanceMs(10);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return done();
  }
  // Until the delivery reaches `state`.
  bool WaitFor(const std::string& id, const std::string& peer,
               const std::string& state) {
    return Eventually([&] { return StateOf(id, peer) == state; });
  }
  // Backoff, expiry and deferrals run on fake time: no test sleeps them out.
  FakeClock clock_{Clock::Real()->NowUnixMs()};
  std::string dir_;
  std::unique_ptr<TestPki> pki_;
  TestPki::Ca ca_;
  MapDirectory directory_;
  FakeLink link_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Outbox> outbox_;
};

TEST_F(OutboxTest, DeliversAndStoresTheSignedReceipt) {
  StartOutbox();
  std::string id = Submit({"fi"});
  ASSERT_TRUE(WaitFor(id, "fi", "delivered"));
  auto row = (*store_->Deliveries(id))[0];
  v1::Receipt receipt;
  ASSERT_TRUE(receipt.ParseFromString(row.receipt));
  EXPECT_TRUE(
      VerifyReceipt(receipt, directory_, "fi", "ee", id, "digest-" + id).ok());
}

TEST_F(OutboxTest, DeadPeerDoesNotHoldUpOthersAndBackoffPersists) {
  {
    absl::MutexLock l(&link_.mu);
    link_.down.insert("lv");
  }
  StartOutbox();
  std::string id = Submit({"lv", "fi"});
  ASSERT_TRUE(WaitFor(id, "fi", "delivered"));
  EXPECT_EQ(StateOf(id, "lv"), "queued");
  // lv keeps failing: failures are counted and persisted.
  Eventually([&] { return store_->GetPeerState("lv")->failures >= 2; });
  auto state = *store_->GetPeerState("lv");
  EXPECT_GE(state.failures, 2u);
  EXPECT_EQ(state.last_error, "peer down");
  EXPECT_GT((*store_->Deliveries(id))[1].attempts, 0u);
  // lv comes back: delivered, and the backoff is reset.
  {
    absl::MutexLock l(&link_.mu);
    link_.down.erase("lv");
  }
  outbox_->PeerContact("lv");
  ASSERT_TRUE(WaitFor(id, "lv", "delivered"));
  Eventually([&] { return store_->GetPeerState("lv")->failures == 0; });
  EXPECT_EQ(store_->GetPeerState("lv")->failures, 0u);
}

TEST_F(OutboxTest, SignedRefusalEndsAsRejectedWithoutRetry) {
  StartOutbox();
  std::string id = NewMessageId();
  {
    absl::MutexLock l(&link_.mu);
    link_.refuse.insert(id);
  }
  SubmitWithId(id, {"fi"});
  ASSERT_TRUE(WaitFor(id, "fi", "rejected"));
  EXPECT_NE((*store_->Deliveries(id))[0].reason.find("not allowed"),
            std::string::npos);
  absl::MutexLock l(&link_.mu);
  EXPECT_EQ(std::count(link_.delivered["fi"].begin(),
                       link_.delivered["fi"].end(), id),
            1);
}

// An acceptance must name the signed content this node sent (the SHA-256 of
// its inner CMS): one naming other content is still a delivery (signed by
// the recipient) but says so, for the operator and the evidence.
TEST_F(OutboxTest, AcceptanceNamingOtherSignedContentSaysSo) {
  StartOutbox();
  std::vector<std::string> ids;
  for (const char* which : {"right", "wrong", "none"}) {
    OutgoingMessage m;
    m.id = NewMessageId();
    m.recipients = {"fi"};
    m.priority = 1;
    m.created_ms = clock_.NowUnixMs();
    m.expires_ms = m.created_ms + 3600000;
    m.kind = "note";
    m.envelope = m.id + "-envelope";
    m.outer_digest = "digest-" + m.id;
    m.submitter = "t";
    m.inner_signed = std::string("inner-") + which;
    {
      absl::MutexLock l(&link_.mu);
      if (std::string(which) == "right") {
        link_.inner_digest[m.id] = Sha256(m.inner_signed);
      } else if (std::string(which) == "wrong") {
        link_.inner_digest[m.id] = Sha256("other content");
      }
    }
    ASSERT_TRUE(store_->InsertOutgoing(m).ok());
    ids.push_back(m.id);
  }
  outbox_->Notify("fi");
  for (const std::string& id : ids) ASSERT_TRUE(WaitFor(id, "fi", "delivered"));
  EXPECT_EQ((*store_->Deliveries(ids[0]))[0].reason, "");
  EXPECT_NE((*store_->Deliveries(ids[1]))[0].reason.find(
                "names other signed content"),
            std::string::npos);
  EXPECT_NE((*store_->Deliveries(ids[2]))[0].reason.find(
                "does not name the signed content"),
            std::string::npos);
}

TEST_F(OutboxTest, ReceiptFromTheWrongSignerIsNotDelivery) {
  // lv's key signs receipts claimed to be fi's: never counted as delivered.
  link_.signers["fi"] = link_.signers["lv"];
  StartOutbox();
  std::string id = Submit({"fi"});
  Eventually([&] { return store_->GetPeerState("fi")->failures >= 2; });
  EXPECT_EQ(StateOf(id, "fi"), "queued");
  EXPECT_EQ(store_->GetPeerState("fi")->last_error, "invalid receipt");
}

// DESIGN.md §5 / issue 4: 10,000 routine messages wait for a peer that is
// down; a flash message sent last goes first when it is back, and while it
// waits the backoff toward that peer stays short.
TEST_F(OutboxTest, FlashSentLastIsDeliveredFirstAndKeepsBackoffShort) {
  {
    absl::MutexLock l(&link_.mu);
    link_.down.insert("fi");
  }
  OutboxOptions options;
  options.initial_backoff_ms = 20;
  options.max_backoff_ms = 3600 * 1000;
  options.flash_max_backoff_ms = 50;
  StartOutbox(options);
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&] {
      for (int i = 0; i < 2500; ++i) Submit({"fi"}, v1::ROUTINE);
    });
  }
  for (auto& w : writers) w.join();
  const std::string flash = Submit({"fi"}, v1::FLASH);
  // Without the flash cap, 10 failures would mean a backoff of ~10 s.
  Eventually([&] { return store_->GetPeerState("fi")->failures >= 10; });
  auto state = *store_->GetPeerState("fi");
  ASSERT_GE(state.failures, 10u);
  EXPECT_LE(state.next_attempt_ms - clock_.NowUnixMs(), 50);
  {
    absl::MutexLock l(&link_.mu);
    link_.down.erase("fi");
  }
  outbox_->PeerContact("fi");
  ASSERT_TRUE(WaitFor(flash, "fi", "delivered"));
  absl::MutexLock l(&link_.mu);
  ASSERT_FALSE(link_.delivered["fi"].empty());
  EXPECT_EQ(link_.delivered["fi"][0], flash);
}

TEST_F(OutboxTest, RepeatedlyDeferredIsSuspendedUntilAnOperatorRetries) {
  OutboxOptions options = DefaultOptions();
  options.suspend_after_deferrals = 3;
  StartOutbox(options);
  const std::string other = Submit({"fi"});
  std::string id;
  {
    absl::MutexLock l(&link_.mu);
    id = NewMessageId();
    link_.defer.insert(id);
  }
  SubmitWithId(id, {"fi"});
  ASSERT_TRUE(WaitFor(id, "fi", "suspended"));
  auto row = (*store_->Deliveries(id))[0];
  EXPECT_NE(row.reason.find("deferred 3 times by fi: unknown signing key"),
            std::string::npos)
      << row.reason;
  EXPECT_EQ(StateOf(other, "fi"), "delivered");  // the peer itself is fine
  EXPECT_EQ(store_->GetPeerState("fi")->failures, 0u);
  {
    absl::MutexLock l(&link_.mu);
    link_.defer.clear();  // the operator fixed the cause
  }
  EXPECT_EQ(*store_->Retry(id, clock_.NowUnixMs()), 1u);
  outbox_->PeerContact("fi");
  ASSERT_TRUE(WaitFor(id, "fi", "delivered"));
}

TEST_F(OutboxTest, NewFlashMessageCutsALongBackoffShort) {
  {
    absl::MutexLock l(&link_.mu);
    link_.down.insert("fi");
  }
  OutboxOptions options;
  options.initial_backoff_ms = 600000;  // ten minutes after the first failure
  options.max_backoff_ms = 3600 * 1000;
  options.flash_max_backoff_ms = 50;
  StartOutbox(options);
  Submit({"fi"}, v1::ROUTINE);
  Eventually([&] { return store_->GetPeerState("fi")->failures >= 1; });
  ASSERT_EQ(store_->GetPeerState("fi")->failures, 1u);
  ASSERT_GT(store_->GetPeerState("fi")->next_attempt_ms,
            clock_.NowUnixMs() + 60000);
  {
    absl::MutexLock l(&link_.mu);
    link_.down.erase("fi");
  }
  const std::string flash = Submit({"fi"}, v1::FLASH);
  outbox_->Notify("fi", /*flash=*/true);
  EXPECT_TRUE(WaitFor(flash, "fi", "delivered"));
}

TEST_F(OutboxTest, ExpiresOnTimeWhileThePeerIsDown) {
  {
    absl::MutexLock l(&link_.mu);
    link_.down.insert("fi");
  }
  OutboxOptions options = DefaultOptions();
  options.initial_backoff_ms = 600000;  // the peer will not be retried soon
  options.max_backoff_ms = 3600 * 1000;
  StartOutbox(options);
  const std::string id = SubmitWithId(NewMessageId(), {"fi"}, 1, 300);
  EXPECT_TRUE(WaitFor(id, "fi", "expired"));
  EXPECT_EQ(store_->GetPeerState("fi")->failures, 1u);  // no more tries
}

TEST_F(OutboxTest, LostReceiptIsRecoveredByAFinalAttemptAfterExpiry) {
  {
    absl::MutexLock l(&link_.mu);
    link_.lose_answers = 1;
  }
  StartOutbox();
  const std::string id = SubmitWithId(NewMessageId(), {"fi"}, 1, 300);
  // The peer stored it but its answer was lost; the message then expired
  // here. The final attempt gets the peer's receipt: delivered after all.
  EXPECT_TRUE(WaitFor(id, "fi", "delivered"));
}

TEST_F(OutboxTest, ExpiredMessagesAreNotSent) {
  StartOutbox();
  const std::string id = SubmitWithId(NewMessageId(), {"fi"}, 1, -1000);
  ASSERT_TRUE(WaitFor(id, "fi", "expired"));
  absl::MutexLock l(&link_.mu);
  EXPECT_EQ(link_.calls["fi"], 0);
}

}  // namespace
}  // namespace kontor
