#include "daemon/envelope/envelope.h"

#include <map>

#include "daemon/common/clock.h"
#include "daemon/common/ids.h"
#include "daemon/envelope/merkle.h"
#include "daemon/envelope/receipt.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_directory.h"
#include "tests/testing/test_pki.h"

namespace kontor {
namespace {

using testing::TestPki;

using testing::FakeDirectory;
using testing::SignerOf;

class EnvelopeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = std::make_unique<TestPki>(testing::TempDir("env"));
    ca_ = pki_->MakeCa("ca");
    ee_ = pki_->MakeNode(ca_, "ee");
    fi_ = pki_->MakeNode(ca_, "fi");
    lv_ = pki_->MakeNode(ca_, "lv");
    dir_.Add(ee_);
    dir_.Add(fi_);
    dir_.Add(lv_);
    ee_sealer_ = std::make_unique<Sealer>("ee", SignerOf(ee_), &dir_);
    fi_opener_ = OpenerFor(fi_);
  }

  std::unique_ptr<Opener> OpenerFor(const TestPki::Node& n) {
    auto key = PrivateKey::FromFile(n.encryption.key_path);
    std::vector<DecryptionKey> keys = {
        {std::shared_ptr<const PrivateKey>(std::move(*key)),
         n.encryption.cert}};
    return std::make_unique<Opener>(n.id, keys, &dir_, &clock_, 300000,
                                    1 << 20);
  }

  v1::Header Header(std::vector<std::string> to = {"fi"}) {
    v1::Header h;
    h.set_message_id(NewMessageId());
    h.set_origin("ee");
    for (auto& t : to) h.add_recipients(t);
    h.set_priority(v1::URGENT);
    h.set_created_unix_ms(clock_.NowUnixMs());
    h.set_expires_unix_ms(clock_.NowUnixMs() + 3600000);
    return h;
  }

  v1::Envelope Sealed(const v1::Header& h, const std::string& body = "hi") {
    v1::Payload p;
    p.set_kind("note");
    p.set_subject("subject stays inside");
    p.set_body(body);
    auto env = ee_sealer_->Seal(h, p);
    EXPECT_TRUE(env.ok()) << env.status();
    EXPECT_TRUE(ee_sealer_->SignOuter({&*env}).ok());
    return *env;
  }

  // Opens with fi's opener as the receiver does; returns the refusal code
  // (NONE if accepted).
  v1::RefusalCode OpenCode(const v1::Envelope& env,
                           std::string* reason = nullptr,
                           v1::Verdict* verdict = nullptr) {
    Refusal refusal;
    auto header = fi_opener_->ParseHeader(env, &refusal);
    if (header.ok() && fi_opener_->CheckTimes(*header, &refusal).ok()) {
      auto opened = fi_opener_->Open(env, *header, &refusal);
      if (opened.ok()) return v1::REFUSAL_NONE;
    }
    if (reason) *reason = refusal.reason;
    if (verdict) *verdict = refusal.verdict;
    return refusal.code;
  }

  FakeClock clock_{Clock::Real()->NowUnixMs()};
  std::unique_ptr<TestPki> pki_;
  TestPki::Ca ca_;
  TestPki::Node ee_, fi_, lv_;
  FakeDirectory dir_;
  std::unique_ptr<Sealer> ee_sealer_;
  std::unique_ptr<Opener> fi_opener_;
};

TEST(MerkleTest, EveryLeafOfEveryBatchSizeVerifies) {
  for (size_t n = 1; n <= 17; ++n) {
    std::vector<std::string> leaves;
    for (size_t i = 0; i < n; ++i) leaves.push_back(Sha256(std::to_string(i)));
    const std::string root = MerkleRoot(leaves);
    for (size_t i = 0; i < n; ++i) {
      auto path = MerklePath(leaves, i);
      auto got = MerkleRootFromPath(leaves[i], i, n, path);
      ASSERT_TRUE(got.ok()) << n << "/" << i;
      EXPECT_EQ(*got, root) << n << "/" << i;
      if (n > 1) {
        auto wrong = MerkleRootFromPath(leaves[i], (i + 1) % n, n, path);
        EXPECT_TRUE(!wrong.ok() || *wrong != root) << n << "/" << i;
      }
    }
  }
}

TEST(MerkleTest, LeafCannotPassAsInnerNode) {
  std::vector<std::string> leaves = {MerkleLeafHash("a"), MerkleLeafHash("b")};
  const std::string root = MerkleRoot(leaves);
  // The root of two leaves is not the leaf hash of their concatenation.
  EXPECT_NE(root, MerkleLeafHash(leaves[0] + leaves[1]));
}

TEST_F(EnvelopeTest, SealOpenRoundTripKeepsRoutingDataOnly) {
  v1::Header h = Header();
  v1::Envelope env = Sealed(h, "the body");
  v1::Header wire;
  ASSERT_TRUE(wire.ParseFromString(env.header()));
  EXPECT_EQ(wire.suite_id(), kSuiteV1);
  EXPECT_EQ(env.header().find("subject stays inside"), std::string::npos);
  EXPECT_EQ(env.ciphertext().find("the body"), std::string::npos);

  Refusal refusal;
  auto header = fi_opener_->ParseHeader(env, &refusal);
  ASSERT_TRUE(header.ok()) << refusal.reason;
  auto opened = fi_opener_->Open(env, *header, &refusal);
  ASSERT_TRUE(opened.ok()) << refusal.reason;
  EXPECT_EQ(opened->payload.body(), "the body");
  EXPECT_EQ(opened->payload.subject(), "subject stays inside");
  EXPECT_EQ(opened->inner.message_id(), h.message_id());
  EXPECT_EQ(opened->outer_digest, OuterDigest(env, kSuiteV1));
}

TEST_F(EnvelopeTest, BatchSignatureCoversEveryEnvelope) {
  std::vector<v1::Envelope> envs;
  v1::Payload p;
  p.set_kind("note");
  for (int i = 0; i < 5; ++i) envs.push_back(*ee_sealer_->Seal(Header(), p));
  std::vector<v1::Envelope*> ptrs;
  for (auto& e : envs) ptrs.push_back(&e);
  ASSERT_TRUE(ee_sealer_->SignOuter(ptrs).ok());
  for (auto& e : envs) {
    EXPECT_EQ(e.outer().leaf_count(), 5u);
    EXPECT_EQ(OpenCode(e), v1::REFUSAL_NONE);
  }
  // A path from another envelope of the batch does not fit.
  v1::Envelope swapped = envs[0];
  *swapped.mutable_outer() = envs[1].outer();
  EXPECT_EQ(OpenCode(swapped), v1::REFUSAL_BAD_SIGNATURE);
}

TEST_F(EnvelopeTest, TamperedHeaderIsRefused) {
  v1::Envelope env = Sealed(Header());
  v1::Header h;
  h.ParseFromString(env.header());
  h.set_priority(v1::FLASH);
  env.set_header(h.SerializeAsString());
  EXPECT_EQ(OpenCode(env), v1::REFUSAL_BAD_SIGNATURE);
}

TEST_F(EnvelopeTest, TamperedCiphertextIsRefused) {
  v1::Envelope env = Sealed(Header());
  std::string ct = env.ciphertext();
  ct[ct.size() / 2] ^= 0x01;
  env.set_ciphertext(ct);
  EXPECT_EQ(OpenCode(env), v1::REFUSAL_BAD_SIGNATURE);
}

TEST_F(EnvelopeTest, TamperedSignatureIsRefused) {
  v1::Envelope env = Sealed(Header());
  std::string sig = env.outer().signature();
  sig[sig.size() - 3] ^= 0x01;
  env.mutable_outer()->set_signature(sig);
  EXPECT_EQ(OpenCode(env), v1::REFUSAL_BAD_SIGNATURE);
}

TEST_F(EnvelopeTest, ChangedSuiteIdIsRefusedBeforeAnythingElse) {
  v1::Envelope env = Sealed(Header());
  v1::Header h;
  h.ParseFromString(env.header());
  h.set_suite_id("kontor-p256-sha1-aes128cbc");
  env.set_header(h.SerializeAsString());
  EXPECT_EQ(OpenCode(env), v1::REFUSAL_UNKNOWN_SUITE);
}

TEST_F(EnvelopeTest, SuiteIdIsBoundIntoTheSignedStructure) {
  v1::Envelope env = Sealed(Header());
  EXPECT_NE(OuterDigest(env, kSuiteV1), OuterDigest(env, "another-suite"));
}

TEST_F(EnvelopeTest, ExpiredIsRefusedAndFutureIsDeferred) {
  v1::Envelope env = Sealed(Header());
  v1::Verdict verdict;
  clock_.AdvanceMs(3600000 + 300000 + 1);
  EXPECT_EQ(OpenCode(env, nullptr, &verdict), v1::REFUSAL_EXPIRED);
  EXPECT_EQ(verdict, v1::REFUSED);
  // Created beyond the skew ahead of our clock: the clocks disagree, which
  // may be ours to fix: deferred, not refused.
  clock_.AdvanceMs(-(3600000 + 300000 + 1) - 400000);
  EXPECT_EQ(OpenCode(env, nullptr, &verdict), v1::REFUSAL_MALFORMED);
  EXPECT_EQ(verdict, v1::DEFERRED);
}

TEST_F(EnvelopeTest, LifetimeAndPriorityAreBounded) {
  v1::Header h = Header();
  h.set_expires_unix_ms(h.created_unix_ms() + kMaxLifetimeMs + 400000);
  EXPECT_EQ(OpenCode(Sealed(h)), v1::REFUSAL_MALFORMED);
  h = Header();
  h.set_expires_unix_ms(h.created_unix_ms());
  EXPECT_EQ(OpenCode(Sealed(h)), v1::REFUSAL_MALFORMED);
  h = Header();
  h.set_priority(static_cast<v1::Priority>(7));  // would outrank flash
  EXPECT_EQ(OpenCode(Sealed(h)), v1::REFUSAL_MALFORMED);
}

// Every recipient must be a node id: the list is named in receipts, logs
// and evidence scripts (a quote in it would be shell syntax there).
TEST_F(EnvelopeTest, RecipientThatIsNoNodeIdIsRefused) {
  v1::Envelope env = Sealed(Header());
  v1::Header h;
  ASSERT_TRUE(h.ParseFromString(env.header()));
  h.add_recipients("x'; touch /tmp/pwned; echo '");
  env.set_header(h.SerializeAsString());
  EXPECT_EQ(OpenCode(env), v1::REFUSAL_MALFORMED);
}

TEST_F(EnvelopeTest, UnknownSigningKeyIsDeferredNotRefused) {
  // ee signs with a key fi has not been told of (a rotation in progress).
  auto new_signing =
      pki_->Issue(ca_, "ee", KeyPurpose::kSigning, -60, 86400, "-new");
  TestPki::Node rotated = ee_;
  rotated.signing = new_signing;
  Sealer sealer("ee", SignerOf(rotated), &dir_);
  v1::Payload p;
  p.set_kind("note");
  auto env = sealer.Seal(Header(), p);
  ASSERT_TRUE(sealer.SignOuter({&*env}).ok());
  v1::Verdict verdict;
  EXPECT_EQ(OpenCode(*env, nullptr, &verdict), v1::REFUSAL_BAD_SIGNATURE);
  EXPECT_EQ(verdict, v1::DEFERRED);
  // Once configured, the same envelope opens.
  dir_.AddSigning("ee", new_signing.cert);
  EXPECT_EQ(OpenCode(*env), v1::REFUSAL_NONE);
}

TEST_F(EnvelopeTest, EnvelopeForAnotherNodeIsRefused) {
  v1::Envelope env = Sealed(Header({"lv"}));
  EXPECT_EQ(OpenCode(env), v1::REFUSAL_NOT_FOR_ME);
}

TEST_F(EnvelopeTest, CiphertextMovedUnderAnotherHeaderIsRefused) {
  // Even the origin itself cannot reuse a sealed payload under new routing:
  // the inner signature names the message id.
  v1::Envelope a = Sealed(Header(), "for message a");
  v1::Envelope b = Sealed(Header(), "for message b");
  v1::Envelope mixed = b;
  mixed.set_ciphertext(a.ciphertext());
  ASSERT_TRUE(ee_sealer_->SignOuter({&mixed}).ok());
  std::string reason;
  EXPECT_EQ(OpenCode(mixed, &reason), v1::REFUSAL_BAD_SIGNATURE);
  EXPECT_NE(reason.find("does not match the header"), std::string::npos)
      << reason;
}

TEST_F(EnvelopeTest, OriginForgedByAnotherPeerIsRefused) {
  // lv signs an envelope claiming to come from ee.
  Sealer lv_as_ee("ee", SignerOf(lv_), &dir_);
  v1::Payload p;
  p.set_kind("note");
  auto env = lv_as_ee.Seal(Header(), p);
  ASSERT_TRUE(env.ok());
  ASSERT_TRUE(lv_as_ee.SignOuter({&*env}).ok());
  EXPECT_EQ(OpenCode(*env), v1::REFUSAL_BAD_SIGNATURE);
}

TEST_F(EnvelopeTest, MultiRecipientEachOpens) {
  v1::Envelope env = Sealed(Header({"fi", "lv"}), "both");
  EXPECT_EQ(OpenCode(env), v1::REFUSAL_NONE);
  auto lv_opener = OpenerFor(lv_);
  Refusal r;
  auto h = lv_opener->ParseHeader(env, &r);
  ASSERT_TRUE(h.ok());
  auto opened = lv_opener->Open(env, *h, &r);
  ASSERT_TRUE(opened.ok()) << r.reason;
  EXPECT_EQ(opened->payload.body(), "both");
}

TEST_F(EnvelopeTest, ReceiptsVerifyOnlyForTheirMessageAndSigner) {
  v1::Envelope env = Sealed(Header());
  v1::Header h;
  h.ParseFromString(env.header());
  const std::string digest = OuterDigest(env, kSuiteV1);
  std::vector<v1::ReceiptBody> bodies(3);
  for (int i = 0; i < 3; ++i) {
    bodies[i].set_version(std::string(kReceiptVersion));
    bodies[i].set_message_id(i == 1 ? h.message_id() : NewMessageId());
    bodies[i].set_origin("ee");
    bodies[i].set_recipient("fi");
    bodies[i].set_outer_digest(i == 1 ? digest : Sha256("x"));
    bodies[i].set_time_unix_ms(clock_.NowUnixMs());
    bodies[i].set_verdict(v1::ACCEPTED);
  }
  auto receipts = SignReceipts(*SignerOf(fi_), bodies);
  ASSERT_TRUE(receipts.ok());
  auto ok =
      VerifyReceipt((*receipts)[1], dir_, "fi", "ee", h.message_id(), digest);
  ASSERT_TRUE(ok.ok()) << ok.status();
  // Another receipt of the same batch is not this message's receipt.
  EXPECT_FALSE(
      VerifyReceipt((*receipts)[0], dir_, "fi", "ee", h.message_id(), digest)
          .ok());
  // The receipt must come from the recipient, not from someone else.
  EXPECT_FALSE(
      VerifyReceipt((*receipts)[1], dir_, "lv", "ee", h.message_id(), digest)
          .ok());
  auto lv_signed = SignReceipts(*SignerOf(lv_), {bodies[1]});
  EXPECT_FALSE(
      VerifyReceipt((*lv_signed)[0], dir_, "fi", "ee", h.message_id(), digest)
          .ok());
  // Tampered body.
  v1::Receipt tampered = (*receipts)[1];
  v1::ReceiptBody b;
  b.ParseFromString(tampered.body());
  b.set_verdict(v1::REFUSED);
  tampered.set_body(b.SerializeAsString());
  EXPECT_FALSE(
      VerifyReceipt(tampered, dir_, "fi", "ee", h.message_id(), digest).ok());
}

}  // namespace
}  // namespace kontor
