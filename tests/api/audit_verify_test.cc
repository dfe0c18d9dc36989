// Signed audit heads and `kontor audit verify` (daemon/app/audit_verify.h) over
// a real store, with real signing keys from TestPki: the chain, the node's own
// signed heads, and heads its peers witness in the receipts it signed.

#include "daemon/app/audit_verify.h"

#include <sqlite3.h>

#include "absl/strings/str_join.h"
#include "daemon/envelope/merkle.h"
#include "daemon/envelope/receipt.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_directory.h"
#include "tests/testing/sql.h"
#include "tests/testing/test_pki.h"

namespace kontor {
namespace {

using testing::SignerOf;
using testing::TestPki;

// What a WitnessFetch answers: serialized receipts.
absl::StatusOr<std::vector<std::string>> Receipts(
    std::vector<std::string> receipts) {
  return receipts;
}

class AuditVerifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::TempDir("auditv");
    pki_ = std::make_unique<TestPki>(dir_);
    ca_ = pki_->MakeCa("ca");
    ee_ = pki_->MakeNode(ca_, "ee");
    fi_ = pki_->MakeNode(ca_, "fi");
    signer_ = SignerOf(ee_);
    other_ = SignerOf(fi_);
    path_ = dir_ + "/ee.db";
    auto s = Store::Open(path_);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
  }

  void Append(int n, int64_t time_ms = 1000) {
    std::vector<AuditEntry> entries;
    for (int i = 0; i < n; ++i) {
      entries.push_back(AuditEntry{std::string(kAuditConsult), "user:anna",
                                   "m" + std::to_string(next_++), "ee", "",
                                   "note", "", "shown"});
    }
    ASSERT_TRUE(store_->AppendAudit(entries, time_ms).ok());
  }

  // SQL behind the store's back (tests/testing/sql.h).
  void Sql(const std::string& sql) { testing::RunSql(path_, sql); }

  AuditHead Head() { return *store_->GetAuditHead(); }
  std::string HashAt(uint64_t seq) {
    return (**store_->GetAuditRecord(seq)).hash;
  }

  v1::AuditVerifyResponse Verify(const std::vector<std::string>& peers = {},
                                 const WitnessFetch& fetch = nullptr) {
    auto r = VerifyAudit(store_.get(), "ee", *signer_, peers, fetch);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : v1::AuditVerifyResponse();
  }

  // A receipt signed by `signer` for a message of fi's, naming `recipient`
  // and carrying `head` (as ee's receipts do).
  std::string Witness(const AuditHead& head, const EcdsaSigner& signer,
                      const std::string& recipient = "ee") {
    v1::ReceiptBody b;
    b.set_version(std::string(kReceiptVersion));
    b.set_message_id("msg-" + std::to_string(head.seq));
    b.set_origin("fi");
    b.set_recipient(recipient);
    b.set_outer_digest(std::string(32, '\x01'));
    b.set_time_unix_ms(1000);
    b.set_verdict(v1::ACCEPTED);
    b.set_audit_head(EncodeAuditHead(head));
    auto r = SignReceipts(signer, {b});
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? (*r)[0].SerializeAsString() : "";
  }

  static std::string Problems(const v1::AuditVerifyResponse& r) {
    return absl::StrJoin(r.problems(), " | ");
  }
  static bool HasProblem(const v1::AuditVerifyResponse& r,
                         const std::string& word) {
    for (const std::string& p : r.problems()) {
      if (p.find(word) != std::string::npos) return true;
    }
    return false;
  }

  std::string dir_, path_;
  std::unique_ptr<TestPki> pki_;
  TestPki::Ca ca_;
  TestPki::Node ee_, fi_;
  std::shared_ptr<const EcdsaSigner> signer_, other_;
  std::unique_ptr<Store> store_;
  int next_ = 0;
};

TEST_F(AuditVerifyTest, NothingIsSignedForAnEmptyChain) {
  ASSERT_TRUE(SignAuditHead(store_.get(), *signer_, 5000).ok());
  EXPECT_TRUE(store_->ListSignedHeads()->empty());
  v1::AuditVerifyResponse r = Verify();
  EXPECT_TRUE(r.ok()) << Problems(r);
  EXPECT_EQ(r.records(), 0u);
  EXPECT_EQ(r.head_seq(), 0u);
  EXPECT_EQ(r.signed_heads(), 0u);
}

TEST_F(AuditVerifyTest, SignsTheHeadOnceUntilItMoves) {
  Append(3);
  const AuditHead before = Head();
  ASSERT_TRUE(SignAuditHead(store_.get(), *signer_, 5000).ok());
  auto heads = *store_->ListSignedHeads();
  ASSERT_EQ(heads.size(), 1u);
  EXPECT_EQ(heads[0].head.seq, 3u);
  EXPECT_EQ(heads[0].head.hash, before.hash);
  EXPECT_EQ(heads[0].time_ms, 5000);
  // The signing is itself recorded in the chain.
  auto attest = *store_->GetAuditRecord(4);
  ASSERT_TRUE(attest.has_value());
  EXPECT_EQ(attest->entry.action, kAuditAttest);
  EXPECT_EQ(attest->entry.detail, "signed head 3");

  // The signature: a batch signature under the audit head label over
  // SHA-256(u64be(seq) || hash || u64be(time)), by ee's signing key.
  v1::BatchSignature sig;
  ASSERT_TRUE(sig.ParseFromString(heads[0].signature));
  std::string in = EncodeAuditHead(heads[0].head);
  for (int i = 7; i >= 0; --i) {
    in.push_back(static_cast<char>(uint64_t{5000} >> (8 * i)));
  }
  EXPECT_TRUE(
      VerifyBatchSignature(sig, kAuditHeadLabel, Sha256(in), *ee_.signing.cert)
          .ok());
  EXPECT_FALSE(
      VerifyBatchSignature(sig, kAuditHeadLabel, Sha256(in), *fi_.signing.cert)
          .ok());

  // Not moved (but for the record of the signing): nothing new.
  ASSERT_TRUE(SignAuditHead(store_.get(), *signer_, 6000).ok());
  EXPECT_EQ(Head().seq, 4u);
  ASSERT_EQ(store_->ListSignedHeads()->size(), 1u);
  EXPECT_EQ(store_->ListSignedHeads()->front().time_ms, 5000);
  // Moved: a second one.
  Append(1);
  ASSERT_TRUE(SignAuditHead(store_.get(), *signer_, 7000).ok());
  heads = *store_->ListSignedHeads();
  ASSERT_EQ(heads.size(), 2u);
  EXPECT_EQ(heads[1].head.seq, 5u);
  EXPECT_EQ(heads[1].time_ms, 7000);
}

// Deleting the signed heads (to hide a truncation below them) shows: the
// chain records every signing.
TEST_F(AuditVerifyTest, DeletedSignedHeadsAreFound) {
  Append(3);
  ASSERT_TRUE(SignAuditHead(store_.get(), *signer_, 5000).ok());
  Append(2);
  Sql("DELETE FROM audit_heads");
  v1::AuditVerifyResponse r = Verify();
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(HasProblem(r, "signed heads were deleted")) << Problems(r);
}

TEST_F(AuditVerifyTest, IntactChainWithItsSignedHeadIsOk) {
  Append(4);
  ASSERT_TRUE(SignAuditHead(store_.get(), *signer_, 5000).ok());
  Append(2);  // records after the signed head are fine
  v1::AuditVerifyResponse r = Verify();
  EXPECT_TRUE(r.ok()) << Problems(r);
  EXPECT_EQ(r.problems_size(), 0);
  EXPECT_EQ(r.records(), 7u);  // with the record of the signing
  EXPECT_EQ(r.head_seq(), 7u);
  EXPECT_EQ(r.head_hash(), Head().hash);
  EXPECT_EQ(r.first_bad_seq(), 0u);
  EXPECT_EQ(r.signed_heads(), 1u);
  EXPECT_EQ(r.witnesses_size(), 0);
}

TEST_F(AuditVerifyTest, EditedRecordIsNotOk) {
  Append(4);
  Sql("UPDATE audit SET actor = 'user:boris' WHERE seq = 2");
  v1::AuditVerifyResponse r = Verify();
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.first_bad_seq(), 2u);
  EXPECT_TRUE(HasProblem(r, "altered")) << Problems(r);
}

TEST_F(AuditVerifyTest, TruncationBelowASignedHeadIsFound) {
  Append(5);
  ASSERT_TRUE(SignAuditHead(store_.get(), *signer_, 5000).ok());
  Sql("DELETE FROM audit WHERE seq > 3");
  v1::AuditVerifyResponse r = Verify();
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.first_bad_seq(), 0u);  // what is left is a whole chain
  EXPECT_EQ(r.records(), 3u);
  EXPECT_TRUE(HasProblem(r, "truncated")) << Problems(r);
}

TEST_F(AuditVerifyTest, TruncatedAndContinuedLogIsFoundRewritten) {
  // The newest records replaced by others of the same count: the chain
  // itself is whole again, the signed head is not in it.
  Append(5);
  ASSERT_TRUE(SignAuditHead(store_.get(), *signer_, 5000).ok());
  Sql("DELETE FROM audit WHERE seq > 3");
  Append(2, 9999);
  ASSERT_EQ(Head().seq, 5u);
  // The head did not move by seq: nothing new is signed over the evidence.
  ASSERT_TRUE(SignAuditHead(store_.get(), *signer_, 6000).ok());
  v1::AuditVerifyResponse r = Verify();
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.first_bad_seq(), 0u);
  EXPECT_TRUE(HasProblem(r, "rewritten")) << Problems(r);
}

TEST_F(AuditVerifyTest, SignedHeadWhoseRecordWasDeletedIsFound) {
  Append(2);
  ASSERT_TRUE(SignAuditHead(store_.get(), *signer_, 5000).ok());
  Append(3);
  Sql("DELETE FROM audit WHERE seq = 2");
  v1::AuditVerifyResponse r = Verify();
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.first_bad_seq(), 2u);
  EXPECT_TRUE(HasProblem(r, "no longer has")) << Problems(r);
}

TEST_F(AuditVerifyTest, HeadSignedWithAnotherKeyIsAProblem) {
  Append(3);
  ASSERT_TRUE(SignAuditHead(store_.get(), *other_, 5000).ok());
  v1::AuditVerifyResponse r = Verify();
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.signed_heads(), 0u);
  EXPECT_TRUE(HasProblem(r, "does not verify")) << Problems(r);
}

TEST_F(AuditVerifyTest, EditedOrGarbledSignedHeadIsAProblem) {
  Append(3);
  ASSERT_TRUE(SignAuditHead(store_.get(), *signer_, 5000).ok());
  // Its time changed: the signature covers it.
  Sql("UPDATE audit_heads SET time_ms = 5001");
  v1::AuditVerifyResponse r = Verify();
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(HasProblem(r, "does not verify")) << Problems(r);
  // A signature that is no BatchSignature.
  Sql("UPDATE audit_heads SET time_ms = 5000, signature = x'ffffffff'");
  r = Verify();
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.signed_heads(), 0u);
  EXPECT_TRUE(HasProblem(r, "does not verify")) << Problems(r);
}

TEST_F(AuditVerifyTest, WitnessedHeadsThatTheChainHoldsAreOk) {
  Append(4);
  const std::string w2 = Witness({2, HashAt(2)}, *signer_);
  const std::string w4 = Witness({4, HashAt(4)}, *signer_);
  const std::string w0 = Witness({0, GenesisHash()}, *signer_);  // empty then
  std::vector<std::string> asked;
  v1::AuditVerifyResponse r =
      Verify({"fi", "lv"}, [&](const std::string& peer) {
        asked.push_back(peer);
        return absl::StatusOr<std::vector<std::string>>(
            peer == "fi" ? std::vector<std::string>{w4, w2, w0}
                         : std::vector<std::string>{});
      });
  EXPECT_TRUE(r.ok()) << Problems(r);
  EXPECT_EQ(asked, (std::vector<std::string>{"fi", "lv"}));
  ASSERT_EQ(r.witnesses_size(), 2);
  EXPECT_EQ(r.witnesses(0).peer(), "fi");
  EXPECT_EQ(r.witnesses(0).heads(), 3u);
  EXPECT_EQ(r.witnesses(0).newest_seq(), 4u);
  EXPECT_EQ(r.witnesses(0).error(), "");
  EXPECT_EQ(r.witnesses(1).peer(), "lv");
  EXPECT_EQ(r.witnesses(1).heads(), 0u);
}

TEST_F(AuditVerifyTest, WitnessedHeadWithAnotherHashShowsARewrittenLog) {
  Append(4);
  std::string wrong = HashAt(3);
  wrong[0] ^= 1;
  const std::string w = Witness({3, wrong}, *signer_);
  v1::AuditVerifyResponse r =
      Verify({"fi"}, [&](const std::string&) { return Receipts({w}); });
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(HasProblem(r, "rewritten")) << Problems(r);
  ASSERT_EQ(r.witnesses_size(), 1);
  EXPECT_NE(r.witnesses(0).error().find("rewritten"), std::string::npos);
  EXPECT_EQ(r.witnesses(0).heads(), 1u);
}

TEST_F(AuditVerifyTest, WitnessedHeadBeyondTheChainShowsATruncatedLog) {
  Append(4);
  const std::string w = Witness({9, std::string(32, '\x09')}, *signer_);
  v1::AuditVerifyResponse r =
      Verify({"fi"}, [&](const std::string&) { return Receipts({w}); });
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(HasProblem(r, "truncated")) << Problems(r);
  EXPECT_EQ(r.witnesses(0).newest_seq(), 9u);
  // The same against a real chain that was then truncated.
  const std::string w4 = Witness({4, HashAt(4)}, *signer_);
  Sql("DELETE FROM audit WHERE seq = 4");
  r = Verify({"fi"}, [&](const std::string&) { return Receipts({w4}); });
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.first_bad_seq(), 0u);
  EXPECT_TRUE(HasProblem(r, "truncated")) << Problems(r);
}

TEST_F(AuditVerifyTest, ReceiptsNotSignedByThisNodeForItAreIgnored) {
  Append(2);
  std::string wrong = HashAt(2);
  wrong[5] ^= 1;
  // Bad heads, but signed by fi, or by ee for another recipient: nothing
  // they say is ee's.
  const std::string by_fi = Witness({2, wrong}, *other_);
  const std::string for_fi = Witness({2, wrong}, *signer_, "fi");
  const std::string beyond_by_fi = Witness({99, wrong}, *other_);
  // Not a receipt; a receipt with a head of the wrong length.
  v1::ReceiptBody short_head;
  short_head.set_recipient("ee");
  short_head.set_audit_head(std::string(39, '\0'));
  const std::string bad_head =
      (*SignReceipts(*signer_, {short_head}))[0].SerializeAsString();
  v1::AuditVerifyResponse r = Verify({"fi"}, [&](const std::string&) {
    return Receipts(
        {by_fi, for_fi, beyond_by_fi, "\xff\xff garbage", bad_head});
  });
  EXPECT_TRUE(r.ok()) << Problems(r);
  ASSERT_EQ(r.witnesses_size(), 1);
  EXPECT_EQ(r.witnesses(0).heads(), 0u);
  EXPECT_EQ(r.witnesses(0).error(), "");
}

TEST_F(AuditVerifyTest, UnreachableWitnessIsReportedNotAProblem) {
  Append(2);
  v1::AuditVerifyResponse r = Verify({"fi"}, [](const std::string&) {
    return absl::StatusOr<std::vector<std::string>>(
        absl::UnavailableError("fi is unreachable"));
  });
  EXPECT_TRUE(r.ok()) << Problems(r);
  ASSERT_EQ(r.witnesses_size(), 1);
  EXPECT_EQ(r.witnesses(0).peer(), "fi");
  EXPECT_NE(r.witnesses(0).error().find("unreachable"), std::string::npos);
  EXPECT_EQ(r.witnesses(0).heads(), 0u);
}

TEST_F(AuditVerifyTest, WithoutAFetchNoWitnessIsAsked) {
  Append(2);
  v1::AuditVerifyResponse r = Verify({"fi", "lv"}, nullptr);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.witnesses_size(), 0);
}

}  // namespace
}  // namespace kontor
