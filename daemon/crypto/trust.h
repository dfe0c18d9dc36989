#ifndef KONTOR_DAEMON_CRYPTO_TRUST_H_
#define KONTOR_DAEMON_CRYPTO_TRUST_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/crypto/certificate.h"
#include "daemon/crypto/ossl.h"

namespace kontor {

struct TrustedCaFiles {
  std::string cert_path;
  std::string crl_path;  // may be empty: then certificates of this CA are
                         // refused unless allow_missing_crl
  std::vector<std::string> allowed_node_ids;  // "*" = any node id
  bool allow_missing_crl = false;
};

// Decides whether a node certificate is trusted: issued by a configured CA
// that may certify the node id in its URI SAN, not revoked by that CA's CRL,
// the CRL current, the key usage fitting the purpose, and valid at the given
// time. Immutable and thread-safe; a reload builds a new TrustStore.
class TrustStore {
 public:
  static absl::StatusOr<std::unique_ptr<TrustStore>> Load(
      const std::vector<TrustedCaFiles>& cas);

  // Returns the certified node id. `at_unix_ms` is the time at which the
  // certificate must be valid (the envelope's creation time for signers, now
  // for TLS); revocation and CRL freshness are judged at `now_unix_ms`.
  // kUnauthenticated: not issued by a trusted CA, revoked, expired, bad
  // signature; kPermissionDenied: the CA may not certify this node id or the
  // key usage does not fit.
  absl::StatusOr<std::string> VerifyNodeCertificate(const Certificate& cert,
                                                    KeyPurpose purpose,
                                                    int64_t at_unix_ms,
                                                    int64_t now_unix_ms) const;

  // A TLS client certificate that names no node (an operator user's),
  // everything judged at `now_unix_ms`: issued by one of the CAs (its
  // allowed_node_ids play no part), usable for TLS client authentication,
  // not revoked, the CA's CRL current (a CA without one refuses unless
  // allow_missing_crl), the certificate and its CA valid. `who` names the
  // certificate in errors. kUnauthenticated otherwise.
  absl::Status VerifyClientCertificate(const Certificate& cert,
                                       const std::string& who,
                                       int64_t now_unix_ms) const;

  // CA certificates in PEM, concatenated (the TLS root bundle).
  std::string RootsPem() const;
  // Earliest CRL nextUpdate over the CAs that may certify `node_id` (0 if
  // none), for `kontor peers`.
  int64_t CrlNextUpdateMsFor(const std::string& node_id) const;
  // Earliest CRL nextUpdate over all CAs (0 if none has a CRL).
  int64_t EarliestCrlNextUpdateMs() const;

 private:
  struct Ca {
    CertificatePtr cert;
    ossl::Crl crl;
    int64_t crl_next_update_ms = 0;
    std::vector<std::string> allowed;
    bool allow_missing_crl = false;
    ossl::Store store;
  };
  TrustStore() = default;
  // CRL presence and freshness (at `now`), chain signature and revocation
  // (with `x509_purpose` if not 0), then validity of the certificate and of
  // the CA at `at`. Errors say "certificate of <who>...".
  absl::Status VerifyIssuedBy(const Ca& issuer, const Certificate& cert,
                              const std::string& who, int x509_purpose,
                              int64_t at_unix_ms, int64_t now_unix_ms) const;
  std::vector<Ca> cas_;
};

}  // namespace kontor

#endif  // KONTOR_DAEMON_CRYPTO_TRUST_H_
