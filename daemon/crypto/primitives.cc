#include "daemon/crypto/primitives.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <cstdlib>
#include <cstring>

#include "daemon/common/ids.h"
#include "daemon/crypto/ossl.h"

namespace kontor {

std::string Sha256(absl::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(),
         digest);
  return std::string(reinterpret_cast<char*>(digest), sizeof digest);
}

std::string RandomBytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&out[0]),
                 static_cast<int>(n)) != 1) {
    abort();
  }
  return out;
}

std::string NewMessageId() {
  std::string b = RandomBytes(16);
  b[6] = static_cast<char>((b[6] & 0x0f) | 0x40);  // version 4
  b[8] = static_cast<char>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
  std::string hex = HexEncode(b);
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) +
         "-" + hex.substr(16, 4) + "-" + hex.substr(20, 12);
}

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  return a.size() == b.size() &&
         CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

namespace {
constexpr size_t kGcmNonceBytes = 12;
constexpr size_t kGcmTagBytes = 16;

using CipherCtx =
    std::unique_ptr<EVP_CIPHER_CTX,
                    ossl::Deleter<EVP_CIPHER_CTX, EVP_CIPHER_CTX_free>>;

const unsigned char* U8(absl::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}
}  // namespace

absl::StatusOr<std::string> Aes256GcmSeal(absl::string_view key,
                                          absl::string_view aad,
                                          absl::string_view plaintext) {
  if (key.size() != 32) return absl::InvalidArgumentError("AES key size");
  const std::string nonce = RandomBytes(kGcmNonceBytes);
  std::string out(kGcmNonceBytes + plaintext.size() + kGcmTagBytes, '\0');
  memcpy(&out[0], nonce.data(), kGcmNonceBytes);
  unsigned char* o = reinterpret_cast<unsigned char*>(&out[kGcmNonceBytes]);
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  int len = 0, fin = 0;
  if (!ctx ||
      EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, U8(key),
                         U8(nonce)) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, U8(aad),
                        static_cast<int>(aad.size())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), o, &len, U8(plaintext),
                        static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), o + len, &fin) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kGcmTagBytes,
                          o + plaintext.size()) != 1) {
    return ossl::Error(absl::StatusCode::kInternal, "AES-256-GCM seal");
  }
  return out;
}

absl::StatusOr<std::string> Aes256GcmOpen(absl::string_view key,
                                          absl::string_view aad,
                                          absl::string_view sealed) {
  if (key.size() != 32) return absl::InvalidArgumentError("AES key size");
  if (sealed.size() < kGcmNonceBytes + kGcmTagBytes) {
    return absl::DataLossError("sealed data too short");
  }
  const absl::string_view nonce = sealed.substr(0, kGcmNonceBytes);
  const absl::string_view body = sealed.substr(
      kGcmNonceBytes, sealed.size() - kGcmNonceBytes - kGcmTagBytes);
  std::string tag(sealed.substr(sealed.size() - kGcmTagBytes));
  std::string out(body.size(), '\0');
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  int len = 0, fin = 0;
  if (!ctx ||
      EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, U8(key),
                         U8(nonce)) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, U8(aad),
                        static_cast<int>(aad.size())) != 1 ||
      EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(&out[0]),
                        &len, U8(body), static_cast<int>(body.size())) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kGcmTagBytes,
                          &tag[0]) != 1) {
    return ossl::Error(absl::StatusCode::kInternal, "AES-256-GCM open");
  }
  if (EVP_DecryptFinal_ex(ctx.get(),
                          reinterpret_cast<unsigned char*>(&out[0]) + len,
                          &fin) != 1) {
    ossl::ErrorString();
    return absl::DataLossError("sealed data does not verify");
  }
  return out;
}

absl::StatusOr<std::unique_ptr<EcdsaSigner>> EcdsaSigner::New(
    std::unique_ptr<PrivateKey> key, CertificatePtr cert) {
  if (key == nullptr || cert == nullptr) {
    return absl::InvalidArgumentError("signer needs a key and a certificate");
  }
  if (!key->Matches(*cert)) {
    return absl::InvalidArgumentError(
        "private key does not match certificate " + cert->subject());
  }
  return std::unique_ptr<EcdsaSigner>(
      new EcdsaSigner(std::move(key), std::move(cert)));
}

absl::StatusOr<std::string> EcdsaSigner::Sign(absl::string_view data) const {
  ossl::MdCtx ctx(EVP_MD_CTX_new());
  size_t len = 0;
  if (!ctx ||
      EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr,
                         key_->pkey()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len,
                     reinterpret_cast<const unsigned char*>(data.data()),
                     data.size()) != 1) {
    return ossl::Error(absl::StatusCode::kInternal, "sign init");
  }
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(&sig[0]), &len,
                     reinterpret_cast<const unsigned char*>(data.data()),
                     data.size()) != 1) {
    return ossl::Error(absl::StatusCode::kInternal, "sign");
  }
  sig.resize(len);
  return sig;
}

absl::Status EcdsaVerify(const Certificate& cert, absl::string_view data,
                         absl::string_view signature) {
  ossl::MdCtx ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr,
                                   cert.public_key()) != 1) {
    return ossl::Error(absl::StatusCode::kInternal, "verify init");
  }
  int rc = EVP_DigestVerify(
      ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
      signature.size(), reinterpret_cast<const unsigned char*>(data.data()),
      data.size());
  ossl::ErrorString();  // clear the queue; the reason is always the same
  if (rc != 1) return absl::UnauthenticatedError("bad signature");
  return absl::OkStatus();
}

}  // namespace kontor
