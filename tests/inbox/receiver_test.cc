#include "daemon/inbox/receiver.h"

#include "daemon/common/ids.h"
#include "daemon/envelope/receipt.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_directory.h"
#include "tests/testing/test_pki.h"

namespace kontor {
namespace {

using testing::FakeDirectory;
using testing::SignerOf;
using testing::TestPki;

class ReceiverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string dir = testing::TempDir("inbox");
    pki_ = std::make_unique<TestPki>(dir);
    ca_ = pki_->MakeCa("ca");
    ee_ = pki_->MakeNode(ca_, "ee");
    fi_ = pki_->MakeNode(ca_, "fi");
    lv_ = pki_->MakeNode(ca_, "lv");
    for (auto* n : {&ee_, &fi_, &lv_}) directory_.Add(*n);
    store_ = std::move(*Store::Open(dir + "/fi.db"));
    opener_ = std::make_unique<Opener>("fi", testing::DecryptionKeysOf(fi_),
                                       &directory_, &clock_, 300000, 1 << 20);
    receiver_ = std::make_unique<Receiver>("fi", store_.get(), opener_.get(),
                                           SignerOf(fi_), &clock_);
  }

  // An envelope from ee to fi; `encrypt_with` and `signer` (ee's keys by
  // default) make it one that fi cannot open or verify.
  v1::Envelope Make(const std::string& body, const std::string& id = "",
                    const KeyDirectory* encrypt_with = nullptr,
                    const TestPki::Node* signer = nullptr) {
    Sealer sealer("ee", SignerOf(signer ? *signer : ee_),
                  encrypt_with ? encrypt_with : &directory_);
    v1::Header h;
    h.set_message_id(id.empty() ? NewMessageId() : id);
    h.set_origin("ee");
    h.add_recipients("fi");
    h.set_created_unix_ms(clock_.NowUnixMs());
    h.set_priority(v1::ROUTINE);
    h.set_expires_unix_ms(h.created_unix_ms() + 3600000);
    v1::Payload p;
    p.set_kind("note");
    p.set_body(body);
    auto env = sealer.Seal(h, p);
    EXPECT_TRUE(env.ok());
    EXPECT_TRUE(sealer.SignOuter({&*env}).ok());
    return *env;
  }

  static std::string IdOf(const v1::Envelope& e) {
    v1::Header h;
    h.ParseFromString(e.header());
    return h.message_id();
  }

  // Receives and checks every receipt is validly signed by fi for its
  // envelope.
  std::vector<v1::ReceiptBody> Receive(
      const std::string& peer, const std::vector<v1::Envelope>& envs,
      std::vector<std::string>* raw = nullptr) {
    auto receipts = receiver_->Receive(peer, envs);
    EXPECT_TRUE(receipts.ok()) << receipts.status();
    std::vector<v1::ReceiptBody> out;
    for (size_t i = 0; i < receipts->size(); ++i) {
      v1::Receipt r;
      EXPECT_TRUE(r.ParseFromString((*receipts)[i]));
      auto body = VerifyReceipt(r, directory_, "fi", "ee", IdOf(envs[i]),
                                OuterDigest(envs[i], kSuiteV1));
      EXPECT_TRUE(body.ok()) << body.status();
      out.push_back(body.ok() ? *body : v1::ReceiptBody());
      if (raw) raw->push_back((*receipts)[i]);
    }
    return out;
  }

  // The body of the one receipt for `env`, read as is: for envelopes whose
  // bytes were altered, so the sender's digest does not apply.
  v1::ReceiptBody UncheckedBody(const std::string& peer,
                                const v1::Envelope& env) {
    auto receipts = receiver_->Receive(peer, {env});
    v1::Receipt r;
    v1::ReceiptBody b;
    EXPECT_TRUE(receipts.ok() && r.ParseFromString((*receipts)[0]) &&
                b.ParseFromString(r.body()));
    return b;
  }

  size_t Stored(const std::string& id) {
    size_t n = 0;
    auto rows = store_->ListInbox(false, 0, 1000);  // keep it alive
    for (const auto& r : *rows) {
      n += r.message_id == id;
    }
    return n;
  }

  FakeClock clock_{Clock::Real()->NowUnixMs()};
  std::unique_ptr<TestPki> pki_;
  TestPki::Ca ca_;
  TestPki::Node ee_, fi_, lv_;
  FakeDirectory directory_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Opener> opener_;
  std::unique_ptr<Receiver> receiver_;
};

TEST_F(ReceiverTest, AcceptsStoresAndSignsReceipts) {
  v1::Envelope a = Make("a"), b = Make("b");
  auto bodies = Receive("ee", {a, b});
  EXPECT_EQ(bodies[0].verdict(), v1::ACCEPTED);
  EXPECT_EQ(bodies[1].verdict(), v1::ACCEPTED);
  EXPECT_EQ(Stored(IdOf(a)), 1u);
  auto rec = *store_->GetInbox(IdOf(b), "ee");
  ASSERT_EQ(rec.size(), 1u);
  v1::Payload p;
  ASSERT_TRUE(p.ParseFromString(rec[0].payload));
  EXPECT_EQ(p.body(), "b");
}

TEST_F(ReceiverTest, DuplicatesGetTheStoredReceiptAndAreStoredOnce) {
  v1::Envelope a = Make("a");
  std::vector<std::string> first, again;
  Receive("ee", {a}, &first);
  Receive("ee", {a, a}, &again);
  EXPECT_EQ(again[0], first[0]);
  EXPECT_EQ(again[1], first[0]);
  EXPECT_EQ(Stored(IdOf(a)), 1u);
}

TEST_F(ReceiverTest, TwoCopiesInOneBatchAreStoredOnce) {
  v1::Envelope a = Make("a");
  std::vector<std::string> raw;
  auto bodies = Receive("ee", {a, a}, &raw);
  EXPECT_EQ(bodies[0].verdict(), v1::ACCEPTED);
  EXPECT_EQ(raw[1], raw[0]);
  EXPECT_EQ(Stored(IdOf(a)), 1u);
}

TEST_F(ReceiverTest, SameIdOtherContentIsRefusedAndTheOriginalKept) {
  v1::Envelope a = Make("original");
  Receive("ee", {a});
  v1::Envelope b = Make("replacement", IdOf(a));
  auto bodies = Receive("ee", {b});
  EXPECT_EQ(bodies[0].verdict(), v1::REFUSED);
  EXPECT_EQ(bodies[0].refusal(), v1::REFUSAL_CONFLICT);
  v1::Payload p;
  p.ParseFromString((*store_->GetInbox(IdOf(a), "ee"))[0].payload);
  EXPECT_EQ(p.body(), "original");
}

TEST_F(ReceiverTest, ForgeryDoesNotOccupyTheIdOfTheRealMessage) {
  v1::Envelope real = Make("real");
  v1::Envelope forged = real;
  std::string ct = forged.ciphertext();
  ct[ct.size() / 2] ^= 1;
  forged.set_ciphertext(ct);
  auto refused = Receive("ee", {forged});
  EXPECT_EQ(refused[0].refusal(), v1::REFUSAL_BAD_SIGNATURE);
  EXPECT_FALSE(store_->FindInbox("ee", IdOf(real))->has_value());
  auto accepted = Receive("ee", {real});
  EXPECT_EQ(accepted[0].verdict(), v1::ACCEPTED);
  EXPECT_EQ(Stored(IdOf(real)), 1u);
}

TEST_F(ReceiverTest, AnotherPeerCannotDeliverOrBlockAnOriginsMessage) {
  v1::Envelope a = Make("a");
  // No signed statement at all about someone else's envelope.
  EXPECT_EQ(receiver_->Receive("lv", {a}).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_FALSE(store_->FindInbox("ee", IdOf(a))->has_value());
  EXPECT_EQ(Receive("ee", {a})[0].verdict(), v1::ACCEPTED);
}

TEST_F(ReceiverTest, NoSignedRefusalAboutAnotherOriginsBrokenEnvelope) {
  v1::Envelope a = Make("a");
  v1::Header h;
  h.ParseFromString(a.header());
  h.set_suite_id("not-a-suite");  // fails the structural checks
  a.set_header(h.SerializeAsString());
  EXPECT_EQ(receiver_->Receive("lv", {a}).status().code(),
            absl::StatusCode::kPermissionDenied);
  // From its own origin the same envelope gets a signed refusal (over the
  // bytes received, so its digest is that of the altered header).
  v1::ReceiptBody b = UncheckedBody("ee", a);
  EXPECT_EQ(b.verdict(), v1::REFUSED);
  EXPECT_EQ(b.refusal(), v1::REFUSAL_UNKNOWN_SUITE);
  EXPECT_EQ(b.origin(), "ee");
}

TEST_F(ReceiverTest, StoredMessageReplayedAfterExpiryGetsItsStoredReceipt) {
  // Never two contradicting signed receipts for the same envelope: dedup
  // comes before the clock checks.
  v1::Envelope a = Make("a");
  std::vector<std::string> first, later;
  Receive("ee", {a}, &first);
  clock_.AdvanceMs(2 * 3600000);
  auto bodies = Receive("ee", {a}, &later);
  EXPECT_EQ(bodies[0].verdict(), v1::ACCEPTED);
  EXPECT_EQ(later[0], first[0]);
  // A message never seen is refused as expired.
  v1::Envelope old = Make("b");
  clock_.AdvanceMs(2 * 3600000);
  EXPECT_EQ(Receive("ee", {old})[0].refusal(), v1::REFUSAL_EXPIRED);
}

TEST_F(ReceiverTest, UnknownSigningKeyIsDeferredAndNotRemembered) {
  auto rotated_key =
      pki_->Issue(ca_, "ee", KeyPurpose::kSigning, -60, 86400, "-rotated");
  TestPki::Node rotated = ee_;
  rotated.signing = rotated_key;
  const v1::Envelope env = Make("a", "", nullptr, &rotated);
  EXPECT_EQ(Receive("ee", {env})[0].verdict(), v1::DEFERRED);
  EXPECT_FALSE(store_->FindInbox("ee", IdOf(env))->has_value());
  directory_.AddSigning("ee", rotated_key.cert);  // config catches up
  EXPECT_EQ(Receive("ee", {env})[0].verdict(), v1::ACCEPTED);
}

TEST_F(ReceiverTest, EncryptedToAKeyNotConfiguredIsDeferred) {
  // ee seals for "fi" with a key fi does not have configured (as after a
  // rotation without old_encryption): the operator can fix it, so deferred.
  FakeDirectory wrong_keys;
  wrong_keys.AddSigning("ee", ee_.signing.cert);
  TestPki::Node fi_with_lv_key = lv_;
  fi_with_lv_key.id = "fi";
  wrong_keys.Add(fi_with_lv_key);
  v1::Envelope a = Make("a", "", &wrong_keys);
  auto bodies = Receive("ee", {a});
  EXPECT_EQ(bodies[0].verdict(), v1::DEFERRED);
  EXPECT_EQ(bodies[0].refusal(), v1::REFUSAL_DECRYPT_FAILED);
  EXPECT_FALSE(store_->FindInbox("ee", IdOf(a))->has_value());
}

TEST_F(ReceiverTest, AuthenticButUndecryptableIsRefusedForGoodAndRemembered) {
  // ee itself signed a ciphertext that does not decrypt (corrupted before
  // signing): authentic, and never going to open. Permanent, remembered.
  Sealer sealer("ee", SignerOf(ee_), &directory_);
  v1::Envelope a = Make("a");
  std::string ct = a.ciphertext();
  ct[ct.size() - 20] ^= 1;  // inside the GCM-protected content
  a.set_ciphertext(ct);
  ASSERT_TRUE(sealer.SignOuter({&a}).ok());
  std::vector<std::string> first, again;
  auto bodies = Receive("ee", {a}, &first);
  EXPECT_EQ(bodies[0].verdict(), v1::REFUSED);
  EXPECT_EQ(bodies[0].refusal(), v1::REFUSAL_DECRYPT_FAILED);
  Receive("ee", {a}, &again);
  EXPECT_EQ(again[0], first[0]);
  EXPECT_EQ(Stored(IdOf(a)), 0u);  // remembered, but not listed
  EXPECT_TRUE(store_->FindInbox("ee", IdOf(a))->has_value());
}

TEST_F(ReceiverTest, GarbageGetsASignedRefusalNotAnError) {
  v1::Envelope garbage;
  garbage.set_header("\xff\xff not a header");
  garbage.set_ciphertext("nothing");
  v1::ReceiptBody b = UncheckedBody("ee", garbage);
  EXPECT_EQ(b.verdict(), v1::REFUSED);
  EXPECT_EQ(b.refusal(), v1::REFUSAL_MALFORMED);
}

}  // namespace
}  // namespace kontor
