#ifndef KONTOR_DAEMON_CRYPTO_PRIMITIVES_H_
#define KONTOR_DAEMON_CRYPTO_PRIMITIVES_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "daemon/crypto/certificate.h"

namespace kontor {

// SHA-256 of `data`, 32 raw bytes.
std::string Sha256(absl::string_view data);

// `n` bytes from OpenSSL's CSPRNG. Aborts if the CSPRNG fails: there is no
// safe way on from there.
std::string RandomBytes(size_t n);

// A random (version 4) UUID in canonical lowercase text form.
std::string NewMessageId();

// Constant-time equality of two byte strings (length is not secret).
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

// AES-256-GCM with a fresh random 96-bit nonce: returns nonce || ciphertext
// || 16-byte tag. `key` must be 32 bytes.
absl::StatusOr<std::string> Aes256GcmSeal(absl::string_view key,
                                          absl::string_view aad,
                                          absl::string_view plaintext);
// Opens what Aes256GcmSeal made with the same key and aad; kDataLoss if the
// tag does not verify (wrong key, wrong aad, altered bytes).
absl::StatusOr<std::string> Aes256GcmOpen(absl::string_view key,
                                          absl::string_view aad,
                                          absl::string_view sealed);

// ECDSA P-256 / SHA-256 signatures (DER encoded). Thread-safe; const.
// Does NOT check anything about the certificate but that the key matches it:
// trust decisions belong to TrustStore.
class EcdsaSigner {
 public:
  static absl::StatusOr<std::unique_ptr<EcdsaSigner>> New(
      std::unique_ptr<PrivateKey> key, CertificatePtr cert);

  absl::StatusOr<std::string> Sign(absl::string_view data) const;
  const CertificatePtr& certificate() const { return cert_; }
  const PrivateKey& key() const { return *key_; }

 private:
  EcdsaSigner(std::unique_ptr<PrivateKey> key, CertificatePtr cert)
      : key_(std::move(key)), cert_(std::move(cert)) {}
  std::unique_ptr<PrivateKey> key_;
  CertificatePtr cert_;
};

// OK if `signature` is a valid ECDSA/SHA-256 signature of `data` by the key
// of `cert`; kUnauthenticated otherwise.
absl::Status EcdsaVerify(const Certificate& cert, absl::string_view data,
                         absl::string_view signature);

}  // namespace kontor

#endif  // KONTOR_DAEMON_CRYPTO_PRIMITIVES_H_
