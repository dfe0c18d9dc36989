#ifndef KONTOR_DAEMON_API_OPERATOR_AUTH_H_
#define KONTOR_DAEMON_API_OPERATOR_AUTH_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "daemon/common/clock.h"
#include "daemon/crypto/certificate.h"
#include "daemon/crypto/trust.h"
#include "daemon/policy/policy.h"
#include "kontor/v1/config.pb.h"

namespace grpc {
class ServerCredentials;
}  // namespace grpc

namespace kontor {

// The user of an operator certificate (already verified against the
// operator CA): the certificate names the user (URI SAN
// urn:kontor:user:<id>) and one role (urn:kontor:role:<role>). A certificate
// that names a node is never a local user.
absl::StatusOr<Caller> OperatorFromCertificate(const Certificate& cert);

// What the operator port trusts (DESIGN.md §3): the operator CA and its CRL,
// loaded and checked once. Immutable and thread-safe; a reload of the node
// loads a new one, so a re-issued CRL takes effect then.
class OperatorTrust {
 public:
  // From a validated config's operator_api (with a listen_address). Errors
  // name the field: operator_api.ca (unreadable, not exactly one CA
  // certificate, one of the federation CAs in `federation_roots_pem`),
  // operator_api.crl (unreadable, not signed by the operator CA, no
  // nextUpdate; missing without allow_missing_crl).
  static absl::StatusOr<std::shared_ptr<const OperatorTrust>> Load(
      const v1::OperatorApi& config, const std::string& federation_roots_pem);

  // The user behind the client certificate (PEM) of a call on the operator
  // port, everything judged at `now_unix_ms`. kUnauthenticated: does not
  // parse, not issued by the operator CA, revoked, expired or not yet valid,
  // not for TLS client authentication, or the CRL is out of date;
  // kPermissionDenied: it does not name one user with one role (a node
  // certificate, say).
  absl::StatusOr<Caller> Check(absl::string_view client_cert_pem,
                               int64_t now_unix_ms) const;

  // The operator CA certificate, PEM.
  const std::string& ca_pem() const { return ca_pem_; }
  // The CRL's nextUpdate; 0 without a CRL (allow_missing_crl).
  int64_t crl_next_update_ms() const {
    return store_->EarliestCrlNextUpdateMs();
  }

 private:
  OperatorTrust() = default;
  std::string ca_pem_;
  std::unique_ptr<TrustStore> store_;
};

// Server credentials of the operator port: TLS with the node's certificate
// and key, a client certificate required. The client certificate is checked
// by `trust` (OperatorTrust::Check) on every call, rather than by gRPC's TLS
// at the handshake, so that a certificate revoked, or a CRL gone out of date,
// on an open connection is refused too, and the reason reaches the caller
// (as the call's status) and the log (a SECURITY line).
std::shared_ptr<grpc::ServerCredentials> OperatorServerCredentials(
    const std::string& cert_pem, const std::string& key_pem,
    std::shared_ptr<const OperatorTrust> trust, const Clock* clock);

}  // namespace kontor

#endif  // KONTOR_DAEMON_API_OPERATOR_AUTH_H_
