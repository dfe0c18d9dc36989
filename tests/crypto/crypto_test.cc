#include <cstdlib>
#include <fstream>
#include <sstream>

#include "daemon/common/clock.h"
#include "daemon/common/ids.h"
#include "daemon/crypto/cms.h"
#include "daemon/crypto/primitives.h"
#include "daemon/crypto/trust.h"
#include "gtest/gtest.h"
#include "tests/testing/test_pki.h"

namespace kontor {
namespace {

using testing::ReadAll;
using testing::TestPki;
using testing::WriteAll;

int64_t NowMs() { return Clock::Real()->NowUnixMs(); }

class CryptoTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(testing::TempDir("crypto"));
    pki_ = new TestPki(*dir_);
    ca_ = new TestPki::Ca(pki_->MakeCa("fedca"));
    other_ca_ = new TestPki::Ca(pki_->MakeCa("otherca"));
    ee_ = new TestPki::Node(pki_->MakeNode(*ca_, "ee"));
    fi_ = new TestPki::Node(pki_->MakeNode(*ca_, "fi"));
  }

  std::unique_ptr<EcdsaSigner> Signer(const TestPki::KeyPair& kp) {
    auto key = PrivateKey::FromFile(kp.key_path);
    EXPECT_TRUE(key.ok());
    return *EcdsaSigner::New(std::move(*key), kp.cert);
  }

  std::unique_ptr<TrustStore> Trust(std::vector<std::string> allowed = {"ee",
                                                                        "fi"},
                                    bool with_crl = true) {
    auto ts = TrustStore::Load({TrustedCaFiles{
        ca_->cert_path, with_crl ? ca_->crl_path : "", allowed}});
    EXPECT_TRUE(ts.ok()) << ts.status();
    return std::move(*ts);
  }

  static std::string* dir_;
  static TestPki* pki_;
  static TestPki::Ca* ca_;
  static TestPki::Ca* other_ca_;
  static TestPki::Node* ee_;
  static TestPki::Node* fi_;
};
std::string* CryptoTest::dir_;
TestPki* CryptoTest::pki_;
TestPki::Ca* CryptoTest::ca_;
TestPki::Ca* CryptoTest::other_ca_;
TestPki::Node* CryptoTest::ee_;
TestPki::Node* CryptoTest::fi_;

TEST_F(CryptoTest, CertificateCarriesNodeIdAndKeyId) {
  EXPECT_EQ(ee_->tls.cert->node_id(), "ee");
  EXPECT_EQ(ee_->signing.cert->key_id().size(), 32u);
  EXPECT_NE(ee_->signing.cert->key_id(), ee_->tls.cert->key_id());
  EXPECT_TRUE(ee_->signing.cert->AllowsPurpose(KeyPurpose::kSigning));
  EXPECT_FALSE(ee_->signing.cert->AllowsPurpose(KeyPurpose::kEncryption));
  EXPECT_TRUE(ee_->encryption.cert->AllowsPurpose(KeyPurpose::kEncryption));
  EXPECT_FALSE(ee_->encryption.cert->AllowsPurpose(KeyPurpose::kSigning));
}

TEST_F(CryptoTest, SignerRefusesKeyOfAnotherCertificate) {
  auto key = PrivateKey::FromFile(fi_->signing.key_path);
  ASSERT_TRUE(key.ok());
  EXPECT_FALSE(EcdsaSigner::New(std::move(*key), ee_->signing.cert).ok());
}

TEST_F(CryptoTest, EcdsaVerifiesAndRefusesTamperingAndWrongKey) {
  auto signer = Signer(ee_->signing);
  auto sig = signer->Sign("hello");
  ASSERT_TRUE(sig.ok());
  EXPECT_TRUE(EcdsaVerify(*ee_->signing.cert, "hello", *sig).ok());
  EXPECT_EQ(EcdsaVerify(*ee_->signing.cert, "hellp", *sig).code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_FALSE(EcdsaVerify(*fi_->signing.cert, "hello", *sig).ok());
  std::string bad = *sig;
  bad[bad.size() / 2] ^= 1;
  EXPECT_FALSE(EcdsaVerify(*ee_->signing.cert, "hello", bad).ok());
  EXPECT_FALSE(EcdsaVerify(*ee_->signing.cert, "hello", "").ok());
}

TEST_F(CryptoTest, CmsSignVerifyAndWrongSigner) {
  auto signer = Signer(ee_->signing);
  auto der = CmsSign(*signer, std::string("content\0with nul", 16));
  ASSERT_TRUE(der.ok()) << der.status();
  auto content = CmsVerify(*der, *ee_->signing.cert);
  ASSERT_TRUE(content.ok()) << content.status();
  EXPECT_EQ(*content, std::string("content\0with nul", 16));
  EXPECT_EQ(CmsVerify(*der, *fi_->signing.cert).status().code(),
            absl::StatusCode::kUnauthenticated);
  std::string tampered = *der;
  tampered[tampered.size() - 40] ^= 1;
  EXPECT_FALSE(CmsVerify(tampered, *ee_->signing.cert).ok());
  EXPECT_FALSE(CmsVerify("not der", *ee_->signing.cert).ok());
}

TEST_F(CryptoTest, CmsEncryptDecryptManyRecipientsAndTampering) {
  auto der = CmsEncrypt("secret", {fi_->encryption.cert, ee_->encryption.cert});
  ASSERT_TRUE(der.ok()) << der.status();
  auto fi_key = PrivateKey::FromFile(fi_->encryption.key_path);
  auto ee_key = PrivateKey::FromFile(ee_->encryption.key_path);
  ASSERT_TRUE(fi_key.ok() && ee_key.ok());
  EXPECT_EQ(*CmsDecrypt(*der, **fi_key, *fi_->encryption.cert), "secret");
  EXPECT_EQ(*CmsDecrypt(*der, **ee_key, *ee_->encryption.cert), "secret");
  // A key that is not a recipient.
  auto only_fi = CmsEncrypt("secret", {fi_->encryption.cert});
  ASSERT_TRUE(only_fi.ok());
  EXPECT_FALSE(CmsDecrypt(*only_fi, **ee_key, *ee_->encryption.cert).ok());
  // A flipped ciphertext byte fails the GCM tag: nothing is released.
  std::string tampered = *only_fi;
  tampered[tampered.size() - 20] ^= 1;
  EXPECT_EQ(
      CmsDecrypt(tampered, **fi_key, *fi_->encryption.cert).status().code(),
      absl::StatusCode::kUnauthenticated);
}

// Independent implementation: the openssl CLI verifies our SignedData and
// opens our AuthEnvelopedData, and we open what openssl made.
TEST_F(CryptoTest, InteroperatesWithOpensslCms) {
  const std::string d = *dir_;
  auto signer = Signer(ee_->signing);
  auto signed_der = CmsSign(*signer, "evidence");
  ASSERT_TRUE(signed_der.ok());
  WriteAll(d + "/s.der", *signed_der);
  const std::string verify =
      "openssl cms -verify -binary -inform DER -in " + d + "/s.der -certfile " +
      ee_->signing.cert_path + " -CAfile " + ca_->cert_path +
      " -purpose any -out " + d + "/s.out 2>" + d + "/s.err";
  ASSERT_EQ(system(verify.c_str()), 0) << ReadAll(d + "/s.err");
  EXPECT_EQ(ReadAll(d + "/s.out"), "evidence");

  auto enc = CmsEncrypt("to fi", {fi_->encryption.cert});
  ASSERT_TRUE(enc.ok());
  WriteAll(d + "/e.der", *enc);
  const std::string decrypt = "openssl cms -decrypt -binary -inform DER -in " +
                              d + "/e.der -recip " + fi_->encryption.cert_path +
                              " -inkey " + fi_->encryption.key_path + " -out " +
                              d + "/e.out 2>" + d + "/e.err";
  ASSERT_EQ(system(decrypt.c_str()), 0) << ReadAll(d + "/e.err");
  EXPECT_EQ(ReadAll(d + "/e.out"), "to fi");
  // The KDF is SHA-256 (not OpenSSL's SHA-1 default).
  const std::string print = "openssl cms -cmsout -print -inform DER -in " + d +
                            "/e.der > " + d + "/e.txt";
  ASSERT_EQ(system(print.c_str()), 0);
  const std::string dump = ReadAll(d + "/e.txt");
  EXPECT_NE(dump.find("dhSinglePass-stdDH-sha256kdf-scheme"), std::string::npos)
      << dump;
  EXPECT_NE(dump.find("aes-256-gcm"), std::string::npos);

  WriteAll(d + "/p.txt", "from openssl");
  const std::string make = "openssl cms -encrypt -binary -aes-256-gcm -in " +
                           d + "/p.txt -outform DER -out " + d +
                           "/o.der -recip " + fi_->encryption.cert_path +
                           " -keyopt ecdh_kdf_md:sha256 2>" + d + "/o.err";
  ASSERT_EQ(system(make.c_str()), 0) << ReadAll(d + "/o.err");
  auto fi_key = PrivateKey::FromFile(fi_->encryption.key_path);
  auto opened =
      CmsDecrypt(ReadAll(d + "/o.der"), **fi_key, *fi_->encryption.cert);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, "from openssl");
}

TEST_F(CryptoTest, TrustAcceptsFederationCertificate) {
  auto ts = Trust();
  auto id = ts->VerifyNodeCertificate(*ee_->tls.cert, KeyPurpose::kTls, NowMs(),
                                      NowMs());
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(*id, "ee");
}

TEST_F(CryptoTest, TrustRefusesCertificateFromAnotherCa) {
  auto ts = Trust();
  auto foreign = pki_->Issue(*other_ca_, "ee", KeyPurpose::kTls);
  auto id = ts->VerifyNodeCertificate(*foreign.cert, KeyPurpose::kTls, NowMs(),
                                      NowMs());
  EXPECT_EQ(id.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_NE(id.status().message().find("not issued by a trusted CA"),
            std::string::npos);
}

TEST_F(CryptoTest, TrustRefusesNodeIdTheCaMayNotCertify) {
  auto ts = Trust({"fi"});
  auto id = ts->VerifyNodeCertificate(*ee_->tls.cert, KeyPurpose::kTls, NowMs(),
                                      NowMs());
  EXPECT_EQ(id.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(id.status().message().find("may certify node id 'ee'"),
            std::string::npos)
      << id.status();
}

TEST_F(CryptoTest, TrustRefusesWrongPurposeAndMissingUri) {
  auto ts = Trust();
  EXPECT_EQ(ts->VerifyNodeCertificate(*ee_->encryption.cert,
                                      KeyPurpose::kSigning, NowMs(), NowMs())
                .status()
                .code(),
            absl::StatusCode::kPermissionDenied);
  auto anonymous = pki_->Issue(*ca_, "", KeyPurpose::kTls);
  EXPECT_FALSE(ts->VerifyNodeCertificate(*anonymous.cert, KeyPurpose::kTls,
                                         NowMs(), NowMs())
                   .ok());
}

TEST_F(CryptoTest, OneKeyPerPurposeIsEnforcedByUsageAndExtendedUsage) {
  auto ts = Trust();
  // A signing certificate is no TLS certificate (no serverAuth/clientAuth).
  EXPECT_EQ(ts->VerifyNodeCertificate(*ee_->signing.cert, KeyPurpose::kTls,
                                      NowMs(), NowMs())
                .status()
                .code(),
            absl::StatusCode::kPermissionDenied);
  // A TLS certificate is no signing certificate (it has TLS usages).
  EXPECT_EQ(ts->VerifyNodeCertificate(*ee_->tls.cert, KeyPurpose::kSigning,
                                      NowMs(), NowMs())
                .status()
                .code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_FALSE(ee_->tls.cert->AllowsPurpose(KeyPurpose::kEncryption));
}

TEST_F(CryptoTest, TrustChecksValidityAtTheGivenTime) {
  auto ts = Trust();
  auto expired = pki_->Issue(*ca_, "ee", KeyPurpose::kSigning, -10 * 86400,
                             -86400, "-old");
  EXPECT_EQ(ts->VerifyNodeCertificate(*expired.cert, KeyPurpose::kSigning,
                                      NowMs(), NowMs())
                .status()
                .code(),
            absl::StatusCode::kUnauthenticated);
  // Still fine for something made while it was valid (a queued backlog).
  EXPECT_TRUE(ts->VerifyNodeCertificate(*expired.cert, KeyPurpose::kSigning,
                                        NowMs() - 5 * 86400 * 1000LL, NowMs())
                  .ok());
}

TEST_F(CryptoTest, TrustRefusesRevokedCertificateAndStaleOrMissingCrl) {
  TestPki pki(*dir_);
  auto ca = pki.MakeCa("revca");
  auto node = pki.MakeNode(ca, "lv");
  auto load = [&](bool crl, bool allow_missing = false) {
    return std::move(*TrustStore::Load({TrustedCaFiles{
        ca.cert_path, crl ? ca.crl_path : "", {"lv"}, allow_missing}}));
  };
  EXPECT_TRUE(load(true)
                  ->VerifyNodeCertificate(*node.tls.cert, KeyPurpose::kTls,
                                          NowMs(), NowMs())
                  .ok());
  // No CRL configured: refused (a CA without revocation data is not trusted)
  // unless that is explicitly allowed for this CA.
  EXPECT_FALSE(load(false)
                   ->VerifyNodeCertificate(*node.tls.cert, KeyPurpose::kTls,
                                           NowMs(), NowMs())
                   .ok());
  EXPECT_TRUE(load(false, /*allow_missing=*/true)
                  ->VerifyNodeCertificate(*node.tls.cert, KeyPurpose::kTls,
                                          NowMs(), NowMs())
                  .ok());
  pki.Revoke(ca, *node.tls.cert);
  auto revoked = load(true)->VerifyNodeCertificate(
      *node.tls.cert, KeyPurpose::kTls, NowMs(), NowMs());
  EXPECT_FALSE(revoked.ok());
  EXPECT_NE(revoked.status().message().find("revoked"), std::string::npos)
      << revoked.status();
  EXPECT_TRUE(load(true)
                  ->VerifyNodeCertificate(*node.signing.cert,
                                          KeyPurpose::kSigning, NowMs(),
                                          NowMs())
                  .ok());
  pki.WriteCrl(ca, -60);  // next update already passed
  EXPECT_FALSE(load(true)
                   ->VerifyNodeCertificate(*node.signing.cert,
                                           KeyPurpose::kSigning, NowMs(),
                                           NowMs())
                   .ok());
}

TEST_F(CryptoTest, MessageIdsAreRandomUuidV4) {
  const std::string a = NewMessageId();
  EXPECT_TRUE(IsValidMessageId(a));
  EXPECT_EQ(a[14], '4');
  EXPECT_NE(a, NewMessageId());
}

}  // namespace
}  // namespace kontor
