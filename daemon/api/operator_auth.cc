#include "daemon/api/operator_auth.h"

#include <grpc/grpc_security_constants.h>
#include <grpcpp/security/auth_metadata_processor.h>
#include <grpcpp/security/server_credentials.h>
#include <openssl/bn.h>
#include <openssl/x509.h>

#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "daemon/common/ids.h"
#include "daemon/common/log.h"
#include "daemon/crypto/tls_policy.h"

namespace kontor {
namespace {
constexpr absl::string_view kUserPrefix = "urn:kontor:user:";
constexpr absl::string_view kRolePrefix = "urn:kontor:role:";

bool ValidUserId(absl::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
          c == '-' || c == '_')) {
      return false;
    }
  }
  return true;
}

absl::Status Field(absl::string_view field, const absl::Status& s) {
  return absl::Status(s.code(), absl::StrCat(field, ": ", s.message()));
}

std::string SerialHex(const Certificate& cert) {
  BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert.x509()), nullptr);
  char* hex = bn != nullptr ? BN_bn2hex(bn) : nullptr;
  std::string out = hex != nullptr ? hex : "?";
  OPENSSL_free(hex);
  BN_free(bn);
  return out;
}

// Runs OperatorTrust::Check for every call; gRPC answers a refused call with
// the status returned here.
class OperatorAuthProcessor : public grpc::AuthMetadataProcessor {
 public:
  OperatorAuthProcessor(std::shared_ptr<const OperatorTrust> trust,
                        const Clock* clock)
      : trust_(std::move(trust)), clock_(clock) {}

  grpc::Status Process(const InputMetadata& /*auth_metadata*/,
                       grpc::AuthContext* context,
                       OutputMetadata* /*consumed_auth_metadata*/,
                       OutputMetadata* /*response_metadata*/) override {
    std::vector<grpc::string_ref> pems;
    if (context != nullptr) {
      pems = context->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
    }
    absl::StatusOr<Caller> caller =
        absl::UnauthenticatedError("no client certificate");
    if (!pems.empty()) {
      caller = trust_->Check(
          absl::string_view(pems.front().data(), pems.front().size()),
          clock_->NowUnixMs());
    }
    if (caller.ok()) return grpc::Status::OK;
    const std::string why = absl::StrCat("operator certificate refused: ",
                                         caller.status().message());
    KLOG(Security, "api") << "operator call refused: "
                          << caller.status().message();
    return grpc::Status(static_cast<grpc::StatusCode>(caller.status().code()),
                        why);
  }

 private:
  std::shared_ptr<const OperatorTrust> trust_;
  const Clock* clock_;
};

}  // namespace

absl::StatusOr<Caller> OperatorFromCertificate(const Certificate& cert) {
  if (!cert.node_id().empty()) {
    return absl::PermissionDeniedError(
        "a node certificate is not a local user");
  }
  std::string user;
  std::optional<Role> role;
  int users = 0, roles = 0;
  for (const std::string& uri : cert.uris()) {
    if (absl::StartsWith(uri, kUserPrefix)) {
      user = uri.substr(kUserPrefix.size());
      ++users;
    } else if (absl::StartsWith(uri, kRolePrefix)) {
      role = ParseRole(absl::string_view(uri).substr(kRolePrefix.size()));
      ++roles;
    } else if (absl::StartsWith(uri, "urn:kontor:")) {
      return absl::PermissionDeniedError(absl::StrCat(
          "operator certificate has an unexpected name ", Printable(uri, 80)));
    }
  }
  if (users != 1 || !ValidUserId(user)) {
    return absl::PermissionDeniedError(
        "operator certificate must name one user (urn:kontor:user:<id>, "
        "lower-case letters, digits, . - _)");
  }
  if (roles != 1 || !role.has_value()) {
    return absl::PermissionDeniedError(
        "operator certificate must name one role (urn:kontor:role: "
        "coordinator, liaison, system or admin)");
  }
  return Caller{absl::StrCat("user:", user), *role};
}

absl::StatusOr<std::shared_ptr<const OperatorTrust>> OperatorTrust::Load(
    const v1::OperatorApi& config, const std::string& federation_roots_pem) {
  std::ifstream in(config.ca(), std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  const std::string pem = ss.str();
  size_t certs = 0;
  for (size_t at = pem.find("-----BEGIN CERTIFICATE-----");
       at != std::string::npos;
       at = pem.find("-----BEGIN CERTIFICATE-----", at + 1)) {
    ++certs;
  }
  if (!in || certs == 0) {
    return Field("operator_api.ca",
                 absl::InvalidArgumentError(absl::StrCat(
                     "cannot read a PEM certificate from ", config.ca())));
  }
  if (certs > 1) {
    return Field("operator_api.ca",
                 absl::InvalidArgumentError(absl::StrCat(
                     config.ca(), " holds ", certs,
                     " certificates; give the operator CA's only")));
  }
  auto ca = Certificate::FromPem(pem);
  if (!ca.ok()) return Field("operator_api.ca", ca.status());
  std::shared_ptr<OperatorTrust> trust(new OperatorTrust());
  trust->ca_pem_ = (*ca)->ToPem();
  if (federation_roots_pem.find(trust->ca_pem_) != std::string::npos) {
    return Field("operator_api.ca",
                 absl::InvalidArgumentError(
                     "is a federation CA; a peer node's certificate is never "
                     "a local user"));
  }
  // The CA alone first, so that a problem with it is named as such.
  auto alone = TrustStore::Load({TrustedCaFiles{config.ca(), "", {}, true}});
  if (!alone.ok()) return Field("operator_api.ca", alone.status());
  if (config.crl().empty()) {
    if (!config.allow_missing_crl()) {
      return Field(
          "operator_api.crl",
          absl::InvalidArgumentError("required (or allow_missing_crl: true)"));
    }
    trust->store_ = std::move(*alone);
    return std::shared_ptr<const OperatorTrust>(std::move(trust));
  }
  auto store =
      TrustStore::Load({TrustedCaFiles{config.ca(), config.crl(), {}, false}});
  if (!store.ok()) return Field("operator_api.crl", store.status());
  trust->store_ = std::move(*store);
  return std::shared_ptr<const OperatorTrust>(std::move(trust));
}

absl::StatusOr<Caller> OperatorTrust::Check(absl::string_view client_cert_pem,
                                            int64_t now_unix_ms) const {
  auto cert = Certificate::FromPem(client_cert_pem);
  if (!cert.ok()) {
    return absl::UnauthenticatedError("client certificate does not parse");
  }
  auto caller = OperatorFromCertificate(**cert);
  // Named by its user if it names one, else by its subject; with its serial
  // (what the CA revokes).
  const std::string who =
      absl::StrCat(caller.ok() ? caller->id : Printable((*cert)->subject()),
                   " (serial ", SerialHex(**cert), ")");
  if (auto s = store_->VerifyClientCertificate(**cert, who, now_unix_ms);
      !s.ok()) {
    return absl::UnauthenticatedError(s.message());
  }
  if (!caller.ok()) {
    return absl::PermissionDeniedError(
        absl::StrCat("certificate of ", who, ": ", caller.status().message()));
  }
  return caller;
}

std::shared_ptr<grpc::ServerCredentials> OperatorServerCredentials(
    const std::string& cert_pem, const std::string& key_pem,
    std::shared_ptr<const OperatorTrust> trust, const Clock* clock) {
  // A client certificate is required and must prove its key (TLS does
  // that); its chain, validity and revocation are checked per call by the
  // processor, which cannot be left out: these credentials come with it.
  if (auto s = ApplyTlsPolicy(); !s.ok()) {
    KLOG(Error, "api") << s.message();
  }
  grpc::SslServerCredentialsOptions ssl(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_BUT_DONT_VERIFY);
  ssl.pem_root_certs = trust->ca_pem();  // names the CA to clients
  ssl.pem_key_cert_pairs.push_back({key_pem, cert_pem});
  auto creds = grpc::SslServerCredentials(ssl);
  creds->SetAuthMetadataProcessor(
      std::make_shared<OperatorAuthProcessor>(std::move(trust), clock));
  return creds;
}

}  // namespace kontor
