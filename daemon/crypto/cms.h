#ifndef KONTOR_DAEMON_CRYPTO_CMS_H_
#define KONTOR_DAEMON_CRYPTO_CMS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "daemon/crypto/certificate.h"
#include "daemon/crypto/primitives.h"

namespace kontor {

// CMS (RFC 5652) with OpenSSL, so that evidence verifies with `openssl cms`.

// SignedData over `content` (attached, binary), signed by `signer` with
// ECDSA P-256 / SHA-256. The signer certificate is not embedded (peers know
// it; evidence bundles carry it). Returns DER.
absl::StatusOr<std::string> CmsSign(const EcdsaSigner& signer,
                                    absl::string_view content);

// Verifies a SignedData made by CmsSign against exactly `signer` (no
// certificate from inside the message is used, and the certificate itself is
// NOT chain-checked here: that is TrustStore's job). Returns the content.
// kUnauthenticated if the signature does not verify or has another signer.
absl::StatusOr<std::string> CmsVerify(absl::string_view der,
                                      const Certificate& signer);

// AuthEnvelopedData (AES-256-GCM; content key wrapped per recipient by ECDH
// P-256 key agreement with an X9.63 SHA-256 KDF and AES key wrap). Returns DER.
// Does NOT authenticate the sender (anyone with the recipients' public keys
// can make one): that is what the inner signature is for.
absl::StatusOr<std::string> CmsEncrypt(
    absl::string_view content, const std::vector<CertificatePtr>& recipients);

// Opens an AuthEnvelopedData for `cert`'s recipient info with `key`.
// kNotFound if `cert` is not among the recipients; kUnauthenticated if the
// tag or any structure fails (never partial output).
absl::StatusOr<std::string> CmsDecrypt(absl::string_view der,
                                       const PrivateKey& key,
                                       const Certificate& cert);

}  // namespace kontor

#endif  // KONTOR_DAEMON_CRYPTO_CMS_H_
