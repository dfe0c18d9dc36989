#include "daemon/transport/tls.h"

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>

#include <fstream>
#include <memory>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "daemon/common/ids.h"
#include "daemon/common/log.h"
#include "daemon/crypto/certificate.h"
#include "daemon/crypto/tls_policy.h"

namespace kontor {
namespace {

class NodeCertificateVerifier
    : public grpc::experimental::ExternalCertificateVerifier {
 public:
  NodeCertificateVerifier(std::shared_ptr<const TrustStore> trust,
                          std::set<std::string> allowed, std::string role,
                          const Clock* clock)
      : trust_(std::move(trust)),
        allowed_(std::move(allowed)),
        role_(std::move(role)),
        clock_(clock) {}

  bool Verify(grpc::experimental::TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)> /*callback*/,
              grpc::Status* sync_status) override {
    *sync_status = Check(request);
    return true;  // synchronous
  }

  void Cancel(grpc::experimental::TlsCustomVerificationCheckRequest*) override {
  }

 private:
  grpc::Status Check(
      grpc::experimental::TlsCustomVerificationCheckRequest* request) {
    grpc::string_ref pem = request->peer_cert();
    auto refuse = [&](const std::string& why) {
      KLOG(Security, "transport") << role_ << ": refused TLS peer: " << why;
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, why);
    };
    if (pem.empty()) return refuse("no certificate presented");
    auto cert = Certificate::FromPem(absl::string_view(pem.data(), pem.size()));
    if (!cert.ok()) return refuse(std::string(cert.status().message()));
    const int64_t now = clock_->NowUnixMs();
    auto id = trust_->VerifyNodeCertificate(**cert, KeyPurpose::kTls, now, now);
    if (!id.ok()) return refuse(std::string(id.status().message()));
    if (allowed_.count(*id) == 0) {
      return refuse(
          allowed_.size() == 1
              ? absl::StrCat("certificate is for node '", *id, "', expected '",
                             *allowed_.begin(), "'")
              : absl::StrCat("node '", *id, "' is not a configured peer"));
    }
    return grpc::Status::OK;
  }

  std::shared_ptr<const TrustStore> trust_;
  std::set<std::string> allowed_;
  std::string role_;
  const Clock* clock_;
};

std::shared_ptr<grpc::experimental::StaticDataCertificateProvider> Provider(
    const TlsMaterial& tls) {
  return std::make_shared<grpc::experimental::StaticDataCertificateProvider>(
      tls.roots_pem, std::vector<grpc::experimental::IdentityKeyCertPair>{
                         {tls.key_pem, tls.cert_pem}});
}

// For the credential functions: the policy, or an error in the log.
void EnsureTlsPolicy() {
  if (auto s = ApplyTlsPolicy(); !s.ok()) {
    KLOG(Error, "transport") << s.message();
  }
}

}  // namespace

std::shared_ptr<grpc::ServerCredentials> FederationServerCredentials(
    const TlsMaterial& tls, std::shared_ptr<const TrustStore> trust,
    std::set<std::string> allowed_peers, const Clock* clock) {
  EnsureTlsPolicy();
  grpc::experimental::TlsServerCredentialsOptions options(Provider(tls));
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  // A client certificate is required; the chain is verified by Kontor's
  // verifier (chain, CRL, CA-to-node-id mapping, peer list) rather than by
  // gRPC's built-in check, which would refuse e.g. a foreign CA before our
  // verifier runs, so the reason would never reach the log.
  options.set_cert_request_type(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_BUT_DONT_VERIFY);
  options.set_certificate_verifier(
      grpc::experimental::ExternalCertificateVerifier::Create<
          NodeCertificateVerifier>(std::move(trust), std::move(allowed_peers),
                                   std::string("server"), clock));
  return grpc::experimental::TlsServerCredentials(options);
}

std::shared_ptr<grpc::ChannelCredentials> FederationChannelCredentials(
    const TlsMaterial& tls, std::shared_ptr<const TrustStore> trust,
    const std::string& expected_peer, const Clock* clock) {
  EnsureTlsPolicy();
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(Provider(tls));
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  options.set_verify_server_certs(true);
  options.set_check_call_host(false);
  options.set_certificate_verifier(
      grpc::experimental::ExternalCertificateVerifier::Create<
          NodeCertificateVerifier>(
          std::move(trust), std::set<std::string>{expected_peer},
          absl::StrCat("client to ", expected_peer), clock));
  return grpc::experimental::TlsCredentials(options);
}

absl::StatusOr<std::string> AuthenticatedNodeId(
    const grpc::AuthContext& context) {
  if (!context.IsPeerAuthenticated()) {
    return absl::UnauthenticatedError("peer is not authenticated");
  }
  auto pems = context.FindPropertyValues("x509_pem_cert");
  if (pems.empty()) {
    return absl::UnauthenticatedError("peer presented no certificate");
  }
  auto cert = Certificate::FromPem(
      absl::string_view(pems.front().data(), pems.front().size()));
  if (!cert.ok()) return cert.status();
  if ((*cert)->node_id().empty()) {
    return absl::UnauthenticatedError("peer certificate names no node");
  }
  return (*cert)->node_id();
}

TlsMaterial ReadTlsMaterial(const std::string& cert_path,
                            const std::string& key_path,
                            const std::string& roots_path) {
  auto read = [](const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  return TlsMaterial{read(cert_path), read(key_path), read(roots_path)};
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  // Goes to a peer: one line, bounded.
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      PrintableLine(status.message(), 1000));
}

}  // namespace kontor
