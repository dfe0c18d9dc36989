#ifndef KONTOR_DAEMON_SERVER_IDENTITY_H_
#define KONTOR_DAEMON_SERVER_IDENTITY_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/api/operator_auth.h"
#include "daemon/common/clock.h"
#include "daemon/crypto/trust.h"
#include "daemon/envelope/envelope.h"
#include "kontor/v1/config.pb.h"

namespace kontor {

// Peers' signing and encryption certificates from the config, each checked
// once at load (chain, CRL, node id, key usage); validity at the time of use
// is checked per lookup. Immutable, thread-safe.
class ConfigKeyDirectory : public KeyDirectory {
 public:
  struct PeerKeys {
    std::vector<CertificatePtr> signing;
    CertificatePtr encryption;
  };

  explicit ConfigKeyDirectory(std::map<std::string, PeerKeys> peers)
      : peers_(std::move(peers)) {}

  absl::StatusOr<CertificatePtr> SigningCert(absl::string_view node_id,
                                             absl::string_view key_id,
                                             int64_t at_unix_ms) const override;
  absl::StatusOr<CertificatePtr> EncryptionCert(
      absl::string_view node_id) const override;
  const PeerKeys* Find(const std::string& node_id) const;

 private:
  std::map<std::string, PeerKeys> peers_;
};

// Everything cryptographic a node is, loaded and checked from its config.
// Errors name the config field, e.g. "signing.cert: ... is for node 'fi'".
struct NodeIdentity {
  std::shared_ptr<const TrustStore> trust;
  CertificatePtr tls_cert;
  std::string tls_cert_pem;  // as loaded and checked: what TLS serves
  std::string tls_key_pem;
  std::shared_ptr<const EcdsaSigner> signer;
  std::vector<DecryptionKey> decryption_keys;  // current first
  std::unique_ptr<ConfigKeyDirectory> directory;
  // Peers whose certificates could not be trusted, with the reason. Nothing
  // is sent to them or accepted from them.
  std::map<std::string, std::string> unusable_peers;
  // The operator port's CA and CRL; null without an operator port.
  std::shared_ptr<const OperatorTrust> operator_trust;
};

// Loads and checks this node's own keys (any problem is an error) and its
// peers' certificates: with `strict` a peer problem is an error too (for
// --check-config); otherwise that peer is listed in unusable_peers and
// logged, so one revoked peer does not stop the node. An operator CRL that
// is out of date is an error with `strict` and a warning otherwise (every
// operator call is refused until a current one is in place).
absl::StatusOr<NodeIdentity> LoadIdentity(const v1::NodeConfig& config,
                                          const Clock* clock,
                                          bool strict = false);

}  // namespace kontor

#endif  // KONTOR_DAEMON_SERVER_IDENTITY_H_
