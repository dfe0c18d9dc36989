#ifndef KONTOR_DAEMON_CRYPTO_CERTIFICATE_H_
#define KONTOR_DAEMON_CRYPTO_CERTIFICATE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "daemon/crypto/ossl.h"

namespace kontor {

// What a node key may be used for (DESIGN.md §3: one key per purpose).
enum class KeyPurpose { kTls, kSigning, kEncryption };

// An X.509 certificate with a P-256 key. Immutable and thread-safe after
// construction.
class Certificate {
 public:
  static absl::StatusOr<std::shared_ptr<const Certificate>> FromPem(
      absl::string_view pem);
  static absl::StatusOr<std::shared_ptr<const Certificate>> FromDer(
      absl::string_view der);
  static absl::StatusOr<std::shared_ptr<const Certificate>> FromFile(
      const std::string& path);

  // Node id from the URI SAN urn:kontor:node:<id>; "" if there is none.
  // A certificate with two different node URIs has none.
  const std::string& node_id() const { return node_id_; }
  // Every URI SAN, as written (operator certificates carry
  // urn:kontor:user:<id> and urn:kontor:role:<role>).
  const std::vector<std::string>& uris() const { return uris_; }
  // SHA-256 of the DER SubjectPublicKeyInfo: names a key in envelopes.
  const std::string& key_id() const { return key_id_; }
  int64_t not_before_unix_ms() const { return not_before_ms_; }
  int64_t not_after_unix_ms() const { return not_after_ms_; }
  bool ValidAt(int64_t unix_ms) const {
    return unix_ms >= not_before_ms_ && unix_ms <= not_after_ms_;
  }
  // Whether the key usage extension allows the purpose. A certificate without
  // a key usage extension is allowed nothing.
  bool AllowsPurpose(KeyPurpose purpose) const;
  std::string subject() const;
  std::string ToPem() const;
  const std::string& der() const { return der_; }

  X509* x509() const { return x509_.get(); }
  EVP_PKEY* public_key() const;  // owned by the certificate

 private:
  explicit Certificate(ossl::X509Ptr x509);
  absl::Status Init();

  ossl::X509Ptr x509_;
  std::string der_;
  std::string node_id_;
  std::vector<std::string> uris_;
  std::string key_id_;
  int64_t not_before_ms_ = 0;
  int64_t not_after_ms_ = 0;
};

using CertificatePtr = std::shared_ptr<const Certificate>;

// A P-256 private key. Not copyable.
class PrivateKey {
 public:
  static absl::StatusOr<std::unique_ptr<PrivateKey>> FromPem(
      absl::string_view pem);
  static absl::StatusOr<std::unique_ptr<PrivateKey>> FromFile(
      const std::string& path);
  // A fresh key, for tests.
  static std::unique_ptr<PrivateKey> GenerateP256();

  PrivateKey(const PrivateKey&) = delete;
  PrivateKey& operator=(const PrivateKey&) = delete;

  // Whether this key is the private half of `cert`'s public key.
  bool Matches(const Certificate& cert) const;
  EVP_PKEY* pkey() const { return pkey_.get(); }

 private:
  explicit PrivateKey(ossl::PKey pkey) : pkey_(std::move(pkey)) {}
  ossl::PKey pkey_;
};

}  // namespace kontor

#endif  // KONTOR_DAEMON_CRYPTO_CERTIFICATE_H_
