#include "daemon/crypto/certificate.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "daemon/common/ids.h"

namespace kontor {
namespace ossl {

std::string ErrorString() {
  std::string out;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

absl::Status Error(absl::StatusCode code, const std::string& what) {
  std::string detail = ErrorString();
  return absl::Status(code, detail.empty() ? what : what + ": " + detail);
}

}  // namespace ossl

namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot read ", path));
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int64_t AsnTimeToUnixMs(const ASN1_TIME* t) {
  struct tm tm {};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return 0;
  return static_cast<int64_t>(timegm(&tm)) * 1000;
}

bool IsP256(EVP_PKEY* pkey) {
  if (pkey == nullptr || EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC)
    return false;
  char name[64] = {0};
  size_t len = 0;
  if (EVP_PKEY_get_group_name(pkey, name, sizeof name, &len) != 1) return false;
  return std::string(name) == "prime256v1";
}

}  // namespace

Certificate::Certificate(ossl::X509Ptr x509) : x509_(std::move(x509)) {}

absl::StatusOr<std::shared_ptr<const Certificate>> Certificate::FromPem(
    absl::string_view pem) {
  ossl::Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  ossl::X509Ptr x(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!x) {
    return ossl::Error(absl::StatusCode::kInvalidArgument,
                       "not a PEM certificate");
  }
  std::shared_ptr<Certificate> cert(new Certificate(std::move(x)));
  if (auto s = cert->Init(); !s.ok()) return s;
  return std::shared_ptr<const Certificate>(cert);
}

absl::StatusOr<std::shared_ptr<const Certificate>> Certificate::FromDer(
    absl::string_view der) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  ossl::X509Ptr x(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (!x) {
    return ossl::Error(absl::StatusCode::kInvalidArgument,
                       "not a DER certificate");
  }
  std::shared_ptr<Certificate> cert(new Certificate(std::move(x)));
  if (auto s = cert->Init(); !s.ok()) return s;
  return std::shared_ptr<const Certificate>(cert);
}

absl::StatusOr<std::shared_ptr<const Certificate>> Certificate::FromFile(
    const std::string& path) {
  auto pem = ReadFile(path);
  if (!pem.ok()) return pem.status();
  auto cert = FromPem(*pem);
  if (!cert.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", cert.status().message()));
  }
  return cert;
}

absl::Status Certificate::Init() {
  unsigned char* der = nullptr;
  int len = i2d_X509(x509_.get(), &der);
  if (len <= 0) return ossl::Error(absl::StatusCode::kInvalidArgument, "i2d");
  der_.assign(reinterpret_cast<char*>(der), len);
  OPENSSL_free(der);

  EVP_PKEY* pub = X509_get0_pubkey(x509_.get());
  if (!IsP256(pub)) {
    return absl::InvalidArgumentError(
        absl::StrCat("certificate ", subject(), " has no P-256 key"));
  }
  unsigned char* spki = nullptr;
  int spki_len = i2d_PUBKEY(pub, &spki);
  if (spki_len <= 0) return ossl::Error(absl::StatusCode::kInternal, "spki");
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(spki, spki_len, digest);
  OPENSSL_free(spki);
  key_id_.assign(reinterpret_cast<char*>(digest), sizeof digest);

  not_before_ms_ = AsnTimeToUnixMs(X509_get0_notBefore(x509_.get()));
  not_after_ms_ = AsnTimeToUnixMs(X509_get0_notAfter(x509_.get()));

  GENERAL_NAMES* names = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(x509_.get(), NID_subject_alt_name, nullptr, nullptr));
  std::string found;
  bool ambiguous = false;
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type != GEN_URI) continue;
    const ASN1_IA5STRING* uri = name->d.uniformResourceIdentifier;
    const absl::string_view text(
        reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
        ASN1_STRING_length(uri));
    uris_.emplace_back(text);
    std::string id = NodeIdFromUri(text);
    if (id.empty()) continue;
    if (!found.empty() && found != id) ambiguous = true;
    found = id;
  }
  GENERAL_NAMES_free(names);
  node_id_ = ambiguous ? "" : found;
  return absl::OkStatus();
}

bool Certificate::AllowsPurpose(KeyPurpose purpose) const {
  const uint32_t usage = X509_get_key_usage(x509_.get());
  if (usage == UINT32_MAX) return false;  // no keyUsage extension
  // Extended key usage: TLS certificates must say client and server auth;
  // signing and encryption certificates must not be usable for TLS.
  const bool has_eku =
      (X509_get_extension_flags(x509_.get()) & EXFLAG_XKUSAGE) != 0;
  const uint32_t eku = X509_get_extended_key_usage(x509_.get());
  const bool tls_eku =
      has_eku && (eku & XKU_SSL_CLIENT) != 0 && (eku & XKU_SSL_SERVER) != 0;
  const bool any_tls_eku =
      has_eku && (eku & (XKU_SSL_CLIENT | XKU_SSL_SERVER)) != 0;
  switch (purpose) {
    case KeyPurpose::kTls:
      return (usage & KU_DIGITAL_SIGNATURE) != 0 && tls_eku;
    case KeyPurpose::kSigning:
      return (usage & KU_DIGITAL_SIGNATURE) != 0 &&
             (usage & KU_KEY_AGREEMENT) == 0 && !any_tls_eku;
    case KeyPurpose::kEncryption:
      return (usage & KU_KEY_AGREEMENT) != 0 &&
             (usage & KU_DIGITAL_SIGNATURE) == 0 && !any_tls_eku;
  }
  return false;
}

std::string Certificate::subject() const {
  char buf[512];
  X509_NAME_oneline(X509_get_subject_name(x509_.get()), buf, sizeof buf);
  return buf;
}

std::string Certificate::ToPem() const {
  ossl::Bio bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), x509_.get());
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, len);
}

EVP_PKEY* Certificate::public_key() const {
  return X509_get0_pubkey(x509_.get());
}

absl::StatusOr<std::unique_ptr<PrivateKey>> PrivateKey::FromPem(
    absl::string_view pem) {
  ossl::Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  ossl::PKey pkey(
      PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!pkey) {
    return ossl::Error(absl::StatusCode::kInvalidArgument,
                       "not a PEM private key");
  }
  if (!IsP256(pkey.get())) {
    return absl::InvalidArgumentError("private key is not P-256");
  }
  return std::unique_ptr<PrivateKey>(new PrivateKey(std::move(pkey)));
}

absl::StatusOr<std::unique_ptr<PrivateKey>> PrivateKey::FromFile(
    const std::string& path) {
  auto pem = ReadFile(path);
  if (!pem.ok()) return pem.status();
  auto key = FromPem(*pem);
  if (!key.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", key.status().message()));
  }
  return key;
}

std::unique_ptr<PrivateKey> PrivateKey::GenerateP256() {
  ossl::PKey pkey(EVP_EC_gen("P-256"));
  return std::unique_ptr<PrivateKey>(new PrivateKey(std::move(pkey)));
}

bool PrivateKey::Matches(const Certificate& cert) const {
  return EVP_PKEY_eq(pkey_.get(), cert.public_key()) == 1;
}

}  // namespace kontor
