#ifndef KONTOR_DAEMON_TRANSPORT_TLS_H_
#define KONTOR_DAEMON_TRANSPORT_TLS_H_

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <memory>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "daemon/common/clock.h"
#include "daemon/crypto/tls_policy.h"
#include "daemon/crypto/trust.h"

namespace kontor {

// This node's TLS identity and the trusted roots, in PEM, as checked by the
// node when it loaded them. They change only by a (validated) reload, never
// behind the node's back.
struct TlsMaterial {
  std::string cert_pem;   // this node's TLS certificate
  std::string key_pem;    // its private key
  std::string roots_pem;  // trusted CA certificates
};

// ApplyTlsPolicy() (crypto/tls_policy.h) is applied by the credential
// functions below.

// Reads the three PEM files (for tests and tools); empty strings on error.
TlsMaterial ReadTlsMaterial(const std::string& cert_path,
                            const std::string& key_path,
                            const std::string& roots_path);

// Mutual TLS for the federation. Kontor's verifier checks the peer's chain
// against the configured CAs, the node id in the URI SAN, that the issuing CA
// may certify that id, the CRL (a CA without one is refused), the key usage,
// and that the node id is the one expected (client) or a configured peer
// (server). On the client side gRPC also checks the chain against the roots
// first. Refusals are logged with the reason, since the refused side only
// sees "Socket closed".
std::shared_ptr<grpc::ServerCredentials> FederationServerCredentials(
    const TlsMaterial& tls, std::shared_ptr<const TrustStore> trust,
    std::set<std::string> allowed_peers, const Clock* clock);

// Credentials for dialing `expected_peer`: the server must present a
// certificate for exactly that node id. Host name checking is off
// (set_check_call_host(false)) because the URI SAN check replaces it;
// verification itself is never off.
std::shared_ptr<grpc::ChannelCredentials> FederationChannelCredentials(
    const TlsMaterial& tls, std::shared_ptr<const TrustStore> trust,
    const std::string& expected_peer, const Clock* clock);

// The node id of the authenticated TLS peer of a call, from its certificate.
absl::StatusOr<std::string> AuthenticatedNodeId(
    const grpc::AuthContext& context);

// gRPC status for an absl status (same codes).
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace kontor

#endif  // KONTOR_DAEMON_TRANSPORT_TLS_H_
