// The operator port's check of client certificates (daemon/api/
// operator_auth.h): the operator CA and its CRL as loaded from the config,
// each certificate judged by OperatorTrust::Check, and the same through a
// real gRPC server over TLS with OperatorServerCredentials. Certificates and
// CRLs are made here with OpenSSL's API (tests/testing/test_pki.h).

#include "daemon/api/operator_auth.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <atomic>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "kontor/v1/local.grpc.pb.h"
#include "tests/testing/test_pki.h"

namespace kontor {
namespace {

using ::kontor::testing::ReadAll;
using ::kontor::testing::TempDir;
using ::kontor::testing::TestPki;
using ::kontor::testing::WriteAll;

constexpr long kDay = 86400;

struct OperatorCert {
  CertificatePtr cert;
  std::string pem;
  std::string key_pem;
};

void AddExt(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  ASSERT_NE(ext, nullptr) << value;
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// An operator certificate as make-pki.sh issues it (digitalSignature,
// clientAuth, the URIs as SANs), signed by `ca`, or self-signed if `ca` is
// null; valid from now+from_s to now+to_s.
OperatorCert IssueOperator(const TestPki::Ca* ca,
                           const std::vector<std::string>& uris,
                           long from_s = -3600, long to_s = 365 * kDay,
                           const std::string& eku = "clientAuth") {
  static std::atomic<long> serial{70000};
  std::unique_ptr<PrivateKey> key = PrivateKey::GenerateP256();
  ossl::X509Ptr x(X509_new());
  X509_set_version(x.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x.get()), serial++);
  X509_gmtime_adj(X509_getm_notBefore(x.get()), from_s);
  X509_gmtime_adj(X509_getm_notAfter(x.get()), to_s);
  X509_NAME* n = X509_get_subject_name(x.get());
  X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("operator"),
                             -1, -1, 0);
  X509* issuer = ca != nullptr ? ca->cert->x509() : x.get();
  X509_set_issuer_name(x.get(), X509_get_subject_name(issuer));
  X509_set_pubkey(x.get(), key->pkey());
  AddExt(x.get(), issuer, NID_basic_constraints, "CA:FALSE");
  AddExt(x.get(), issuer, NID_key_usage, "critical,digitalSignature");
  AddExt(x.get(), issuer, NID_ext_key_usage, eku);
  std::string san;
  for (const std::string& u : uris) {
    absl::StrAppend(&san, san.empty() ? "" : ",", "URI:", u);
  }
  if (!san.empty()) AddExt(x.get(), issuer, NID_subject_alt_name, san);
  AddExt(x.get(), issuer, NID_subject_key_identifier, "hash");
  if (ca != nullptr) {
    AddExt(x.get(), issuer, NID_authority_key_identifier, "keyid");
  }
  EVP_PKEY* signer = ca != nullptr ? ca->key->pkey() : key->pkey();
  EXPECT_GT(X509_sign(x.get(), signer, EVP_sha256()), 0);
  OperatorCert out;
  ossl::Bio bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), x.get());
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  out.pem.assign(data, len);
  ossl::Bio kbio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(kbio.get(), key->pkey(), nullptr, nullptr, 0,
                           nullptr, nullptr);
  len = BIO_get_mem_data(kbio.get(), &data);
  out.key_pem.assign(data, len);
  auto cert = Certificate::FromPem(out.pem);
  EXPECT_TRUE(cert.ok()) << cert.status();
  if (cert.ok()) out.cert = *cert;
  return out;
}

std::vector<std::string> User(const std::string& user,
                              const std::string& role) {
  return {"urn:kontor:user:" + user, "urn:kontor:role:" + role};
}

v1::OperatorApi OperatorConfig(const TestPki::Ca& ca) {
  v1::OperatorApi op;
  op.set_listen_address("127.0.0.1:0");
  op.set_ca(ca.cert_path);
  op.set_crl(ca.crl_path);
  return op;
}

// True if `s` is an error of `code` whose message starts with `field` and
// contains `what`.
::testing::AssertionResult IsError(const absl::Status& s, absl::StatusCode code,
                                   const std::string& field,
                                   const std::string& what) {
  if (s.code() == code && s.message().rfind(field, 0) == 0 &&
      s.message().find(what) != absl::string_view::npos) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << s;
}

class OperatorAuthTest : public ::testing::Test {
 protected:
  OperatorAuthTest()
      : dir_(TempDir("opauth")),
        pki_(dir_),
        op_ca_(pki_.MakeCa("opca")),
        fed_ca_(pki_.MakeCa("fedca")) {}

  std::shared_ptr<const OperatorTrust> Load() {
    auto t = OperatorTrust::Load(OperatorConfig(op_ca_), fed_ca_.cert->ToPem());
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? *t : nullptr;
  }

  static int64_t Now() { return Clock::Real()->NowUnixMs(); }

  std::string dir_;
  TestPki pki_;
  TestPki::Ca op_ca_;
  TestPki::Ca fed_ca_;
};

// ------------------------------------------------------------- loading

TEST_F(OperatorAuthTest, LoadsTheCaAndItsCrl) {
  auto trust = Load();
  ASSERT_NE(trust, nullptr);
  EXPECT_EQ(trust->ca_pem(), op_ca_.cert->ToPem());
  // TestPki's CRLs are good for 30 days.
  EXPECT_GT(trust->crl_next_update_ms(), Now() + 29 * kDay * 1000);
}

TEST_F(OperatorAuthTest, ACrlSignedByAnotherCaIsRefusedAtLoad) {
  v1::OperatorApi op = OperatorConfig(op_ca_);
  op.set_crl(fed_ca_.crl_path);
  auto t = OperatorTrust::Load(op, "");
  EXPECT_TRUE(IsError(t.status(), absl::StatusCode::kInvalidArgument,
                      "operator_api.crl: ", "not signed by"));
  // Another CA under the very same name, with its own key: its CRL too.
  TestPki other(TempDir("opauth-other"));
  TestPki::Ca twin = other.MakeCa("opca");
  op.set_crl(twin.crl_path);
  t = OperatorTrust::Load(op, "");
  EXPECT_TRUE(IsError(t.status(), absl::StatusCode::kInvalidArgument,
                      "operator_api.crl: ", "not signed by"));
}

TEST_F(OperatorAuthTest, BadCrlFilesAreRefusedNamingTheField) {
  v1::OperatorApi op = OperatorConfig(op_ca_);
  op.set_crl(dir_ + "/missing.crl.pem");
  EXPECT_TRUE(IsError(OperatorTrust::Load(op, "").status(),
                      absl::StatusCode::kNotFound,
                      "operator_api.crl: ", "missing.crl.pem"));
  op.set_crl(op_ca_.cert_path);  // a certificate, not a CRL
  EXPECT_TRUE(IsError(OperatorTrust::Load(op, "").status(),
                      absl::StatusCode::kInvalidArgument,
                      "operator_api.crl: ", "not a PEM CRL"));
  // A CRL without nextUpdate would count as current forever.
  X509_CRL* crl = X509_CRL_new();
  X509_CRL_set_version(crl, 1);
  X509_CRL_set_issuer_name(crl, X509_get_subject_name(op_ca_.cert->x509()));
  ASN1_TIME* now = ASN1_TIME_adj(nullptr, time(nullptr), 0, -60);
  X509_CRL_set1_lastUpdate(crl, now);
  ASSERT_GT(X509_CRL_sign(crl, op_ca_.key->pkey(), EVP_sha256()), 0);
  ossl::Bio bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509_CRL(bio.get(), crl);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  WriteAll(dir_ + "/forever.crl.pem", std::string(data, len));
  ASN1_TIME_free(now);
  X509_CRL_free(crl);
  op.set_crl(dir_ + "/forever.crl.pem");
  EXPECT_TRUE(IsError(OperatorTrust::Load(op, "").status(),
                      absl::StatusCode::kInvalidArgument,
                      "operator_api.crl: ", "no nextUpdate"));
  // No CRL at all, without allow_missing_crl.
  op.clear_crl();
  EXPECT_TRUE(IsError(OperatorTrust::Load(op, "").status(),
                      absl::StatusCode::kInvalidArgument,
                      "operator_api.crl: ", "required"));
}

TEST_F(OperatorAuthTest, BadCaFilesAreRefusedNamingTheField) {
  v1::OperatorApi op = OperatorConfig(op_ca_);
  op.set_ca(dir_ + "/missing.crt");
  EXPECT_TRUE(IsError(OperatorTrust::Load(op, "").status(),
                      absl::StatusCode::kInvalidArgument,
                      "operator_api.ca: ", "cannot read a PEM certificate"));
  // Two certificates in the file: which one would be the CA?
  WriteAll(dir_ + "/two.crt",
           ReadAll(op_ca_.cert_path) + ReadAll(fed_ca_.cert_path));
  op.set_ca(dir_ + "/two.crt");
  EXPECT_TRUE(IsError(OperatorTrust::Load(op, "").status(),
                      absl::StatusCode::kInvalidArgument,
                      "operator_api.ca: ", "holds 2 certificates"));
  // Not a CA.
  TestPki::KeyPair leaf = pki_.Issue(op_ca_, "", KeyPurpose::kTls);
  op.set_ca(leaf.cert_path);
  EXPECT_TRUE(IsError(OperatorTrust::Load(op, "").status(),
                      absl::StatusCode::kInvalidArgument,
                      "operator_api.ca: ", "not a CA certificate"));
  // One of the federation's CAs.
  op = OperatorConfig(op_ca_);
  EXPECT_TRUE(IsError(
      OperatorTrust::Load(op, fed_ca_.cert->ToPem() + op_ca_.cert->ToPem())
          .status(),
      absl::StatusCode::kInvalidArgument,
      "operator_api.ca: ", "federation CA"));
}

// ------------------------------------------------------------ checking

TEST_F(OperatorAuthTest, AGoodCertificateNamesItsUser) {
  auto trust = Load();
  ASSERT_NE(trust, nullptr);
  auto anna = IssueOperator(&op_ca_, User("anna", "coordinator"));
  auto caller = trust->Check(anna.pem, Now());
  ASSERT_TRUE(caller.ok()) << caller.status();
  EXPECT_EQ(caller->id, "user:anna");
  EXPECT_EQ(caller->role, Role::kCoordinator);
}

TEST_F(OperatorAuthTest, ARevokedCertificateIsRefusedOthersStillWork) {
  auto anna = IssueOperator(&op_ca_, User("anna", "coordinator"));
  auto lars = IssueOperator(&op_ca_, User("lars", "liaison"));
  auto before = Load();
  ASSERT_NE(before, nullptr);
  ASSERT_TRUE(before->Check(anna.pem, Now()).ok());

  pki_.Revoke(op_ca_, *anna.cert);  // re-issues the CRL file
  auto after = Load();              // as a reload does
  ASSERT_NE(after, nullptr);
  auto refused = after->Check(anna.pem, Now());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_NE(refused.status().message().find("user:anna"), std::string::npos)
      << refused.status();
  EXPECT_NE(refused.status().message().find("revoked"), std::string::npos)
      << refused.status();
  auto still = after->Check(lars.pem, Now());
  ASSERT_TRUE(still.ok()) << still.status();
  EXPECT_EQ(still->id, "user:lars");
}

TEST_F(OperatorAuthTest, AnOutOfDateCrlRefusesEveryone) {
  auto anna = IssueOperator(&op_ca_, User("anna", "admin"));
  auto trust = Load();
  ASSERT_NE(trust, nullptr);
  // The loaded CRL goes out of date while the node runs.
  const int64_t later = trust->crl_next_update_ms() + 1000;
  auto refused = trust->Check(anna.pem, later);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_NE(refused.status().message().find("out of date"), std::string::npos)
      << refused.status();
  // A CRL file that is out of date already loads (the node runs and says
  // so) but refuses.
  pki_.WriteCrl(op_ca_, -3600);
  auto stale = Load();
  ASSERT_NE(stale, nullptr);
  refused = stale->Check(anna.pem, Now());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_NE(refused.status().message().find("out of date"), std::string::npos)
      << refused.status();
}

TEST_F(OperatorAuthTest, ExpiredAndNotYetValidCertificatesAreRefused) {
  auto trust = Load();
  ASSERT_NE(trust, nullptr);
  auto expired =
      IssueOperator(&op_ca_, User("anna", "coordinator"), -2 * kDay, -kDay);
  auto s = trust->Check(expired.pem, Now()).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_NE(s.message().find("expired"), std::string::npos) << s;
  auto early =
      IssueOperator(&op_ca_, User("anna", "coordinator"), kDay, 2 * kDay);
  s = trust->Check(early.pem, Now()).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_NE(s.message().find("not valid yet"), std::string::npos) << s;
  // The same good certificate, judged at a time outside its validity.
  auto anna = IssueOperator(&op_ca_, User("anna", "coordinator"));
  EXPECT_EQ(trust->Check(anna.pem, anna.cert->not_after_unix_ms() + 1000)
                .status()
                .code(),
            absl::StatusCode::kUnauthenticated);
}

TEST_F(OperatorAuthTest, CertificatesNotChainedToTheOperatorCaAreRefused) {
  auto trust = Load();
  ASSERT_NE(trust, nullptr);
  // Self-signed, naming an admin.
  auto self = IssueOperator(nullptr, User("mallory", "admin"));
  auto s = trust->Check(self.pem, Now()).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated) << s;
  EXPECT_NE(s.message().find("not issued by a trusted CA"), std::string::npos)
      << s;
  // From the federation CA.
  auto fed = IssueOperator(&fed_ca_, User("mallory", "admin"));
  EXPECT_EQ(trust->Check(fed.pem, Now()).status().code(),
            absl::StatusCode::kUnauthenticated);
  // From another CA under the operator CA's very name.
  TestPki other(TempDir("opauth-twin"));
  TestPki::Ca twin = other.MakeCa("opca");
  auto forged = IssueOperator(&twin, User("mallory", "admin"));
  EXPECT_EQ(trust->Check(forged.pem, Now()).status().code(),
            absl::StatusCode::kUnauthenticated);
  // Not a certificate at all.
  EXPECT_EQ(trust->Check("-----BEGIN CERTIFICATE-----\nAAAA\n", Now())
                .status()
                .code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(trust->Check("", Now()).status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST_F(OperatorAuthTest, NotForClientAuthenticationIsRefused) {
  auto trust = Load();
  ASSERT_NE(trust, nullptr);
  auto server_only = IssueOperator(&op_ca_, User("anna", "coordinator"), -3600,
                                   365 * kDay, "serverAuth");
  EXPECT_EQ(trust->Check(server_only.pem, Now()).status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST_F(OperatorAuthTest, WhatIsNotOneUserWithOneRoleIsDenied) {
  auto trust = Load();
  ASSERT_NE(trust, nullptr);
  for (const auto& uris : std::vector<std::vector<std::string>>{
           {},
           {"urn:kontor:user:anna"},
           {"urn:kontor:user:anna", "urn:kontor:role:root"},
           {"urn:kontor:user:anna", "urn:kontor:role:admin",
            "urn:kontor:node:ee"},
       }) {
    auto c = IssueOperator(&op_ca_, uris);
    auto s = trust->Check(c.pem, Now()).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
  }
  // The operator CA's own node-like TLS certificate is no user either.
  TestPki::KeyPair node = pki_.Issue(op_ca_, "ee", KeyPurpose::kTls);
  auto s = trust->Check(node.cert->ToPem(), Now()).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
  // Revocation comes first: a revoked certificate is unauthenticated
  // whatever it names.
  auto odd = IssueOperator(&op_ca_, {"urn:kontor:user:anna"});
  pki_.Revoke(op_ca_, *odd.cert);
  EXPECT_EQ(Load()->Check(odd.pem, Now()).status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST_F(OperatorAuthTest, AllowMissingCrlAcceptsWithoutRevocationChecks) {
  auto anna = IssueOperator(&op_ca_, User("anna", "coordinator"));
  pki_.Revoke(op_ca_, *anna.cert);
  v1::OperatorApi op = OperatorConfig(op_ca_);
  op.clear_crl();
  op.set_allow_missing_crl(true);
  auto trust = OperatorTrust::Load(op, "");
  ASSERT_TRUE(trust.ok()) << trust.status();
  EXPECT_EQ((*trust)->crl_next_update_ms(), 0);
  EXPECT_TRUE((*trust)->Check(anna.pem, Now()).ok());
  // Still only from the operator CA.
  auto self = IssueOperator(nullptr, User("mallory", "admin"));
  EXPECT_EQ((*trust)->Check(self.pem, Now()).status().code(),
            absl::StatusCode::kUnauthenticated);
  // A CRL given wins over allow_missing_crl.
  op.set_crl(op_ca_.crl_path);
  trust = OperatorTrust::Load(op, "");
  ASSERT_TRUE(trust.ok()) << trust.status();
  EXPECT_EQ((*trust)->Check(anna.pem, Now()).status().code(),
            absl::StatusCode::kUnauthenticated);
}

// ------------------------------------------------------- over real TLS

// A gRPC server with the operator port's credentials, the health service and
// an unimplemented local API (a synchronous service, which the health
// service needs); calls are made with each operator's certificate.
class OperatorPortTest : public OperatorAuthTest {
 protected:
  void StartServer(std::shared_ptr<const OperatorTrust> trust) {
    server_tls_ = pki_.Issue(fed_ca_, "ee", KeyPurpose::kTls);
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0",
                       OperatorServerCredentials(ReadAll(server_tls_.cert_path),
                                                 ReadAll(server_tls_.key_path),
                                                 std::move(trust), &clock_),
                       &port_);
    b.RegisterService(&unimplemented_);
    server_ = b.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_NE(port_, 0);
  }

  ~OperatorPortTest() override {
    if (server_) server_->Shutdown();
  }

  std::shared_ptr<grpc::Channel> Channel(const std::string& cert_pem,
                                         const std::string& key_pem) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = fed_ca_.cert->ToPem();
    ssl.pem_cert_chain = cert_pem;
    ssl.pem_private_key = key_pem;
    grpc::ChannelArguments args;
    args.SetSslTargetNameOverride("localhost");
    return grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port_),
                                     grpc::SslCredentials(ssl), args);
  }

  // grpc.health.v1.Health/Check (an empty request: the whole server).
  static grpc::Status Call(const std::shared_ptr<grpc::Channel>& ch) {
    grpc::GenericStub stub(ch);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(10));
    grpc::Slice empty("");
    grpc::ByteBuffer request(&empty, 1);
    grpc::ByteBuffer response;
    grpc::Status status;
    absl::Notification done;
    stub.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(),
                   &request, &response, [&](grpc::Status s) {
                     status = std::move(s);
                     done.Notify();
                   });
    done.WaitForNotification();
    return status;
  }

  FakeClock clock_{Clock::Real()->NowUnixMs()};
  TestPki::KeyPair server_tls_;
  v1::Local::Service unimplemented_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

TEST_F(OperatorPortTest, EveryCallIsCheckedAndRefusalsSayWhy) {
  auto anna = IssueOperator(&op_ca_, User("anna", "coordinator"));
  auto lars = IssueOperator(&op_ca_, User("lars", "liaison"));
  pki_.Revoke(op_ca_, *anna.cert);
  ASSERT_NO_FATAL_FAILURE(StartServer(Load()));

  auto lars_channel = Channel(lars.pem, lars.key_pem);
  grpc::Status s = Call(lars_channel);
  EXPECT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();

  ::testing::internal::CaptureStderr();
  s = Call(Channel(anna.pem, anna.key_pem));
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_NE(s.error_message().find("operator certificate refused"),
            std::string::npos)
      << s.error_message();
  EXPECT_NE(s.error_message().find("revoked"), std::string::npos)
      << s.error_message();
  EXPECT_NE(log.find("SECURITY api: operator call refused"), std::string::npos)
      << log;
  EXPECT_NE(log.find("user:anna"), std::string::npos) << log;

  // Not from the operator CA: a self-signed admin, a federation node.
  auto self = IssueOperator(nullptr, User("mallory", "admin"));
  s = Call(Channel(self.pem, self.key_pem));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED)
      << s.error_message();
  s = Call(
      Channel(ReadAll(server_tls_.cert_path), ReadAll(server_tls_.key_path)));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED)
      << s.error_message();
  // An expired certificate: refused with the reason (not at the handshake).
  auto expired =
      IssueOperator(&op_ca_, User("olga", "admin"), -2 * kDay, -kDay);
  s = Call(Channel(expired.pem, expired.key_pem));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_NE(s.error_message().find("expired"), std::string::npos)
      << s.error_message();
  // No user in it: denied.
  auto nobody = IssueOperator(&op_ca_, {"urn:kontor:role:admin"});
  s = Call(Channel(nobody.pem, nobody.key_pem));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED)
      << s.error_message();

  // On lars's open connection, once the CRL is out of date: refused.
  clock_.SetMs(Load()->crl_next_update_ms() + 1000);
  s = Call(lars_channel);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_NE(s.error_message().find("out of date"), std::string::npos)
      << s.error_message();
}

TEST_F(OperatorPortTest, NoClientCertificateNoConnection) {
  ASSERT_NO_FATAL_FAILURE(StartServer(Load()));
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = fed_ca_.cert->ToPem();
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("localhost");
  auto ch = grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port_),
                                      grpc::SslCredentials(ssl), args);
  grpc::Status s = Call(ch);
  EXPECT_FALSE(s.ok());
}

}  // namespace
}  // namespace kontor
