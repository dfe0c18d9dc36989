#include "daemon/crypto/trust.h"

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace kontor {
namespace {

int64_t AsnTimeToUnixMs(const ASN1_TIME* t) {
  struct tm tm {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return 0;
  return static_cast<int64_t>(timegm(&tm)) * 1000;
}

absl::StatusOr<ossl::Crl> LoadCrl(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read CRL ", path));
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string pem = ss.str();
  ossl::Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  ossl::Crl crl(PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr));
  if (!crl) {
    return ossl::Error(absl::StatusCode::kInvalidArgument,
                       absl::StrCat(path, ": not a PEM CRL"));
  }
  return crl;
}

}  // namespace

absl::StatusOr<std::unique_ptr<TrustStore>> TrustStore::Load(
    const std::vector<TrustedCaFiles>& cas) {
  std::unique_ptr<TrustStore> ts(new TrustStore());
  for (const TrustedCaFiles& files : cas) {
    Ca ca;
    auto cert = Certificate::FromFile(files.cert_path);
    if (!cert.ok()) return cert.status();
    ca.cert = *cert;
    if (X509_check_ca(ca.cert->x509()) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(files.cert_path, ": not a CA certificate"));
    }
    ca.allowed = files.allowed_node_ids;
    ca.allow_missing_crl = files.allow_missing_crl;
    ca.store.reset(X509_STORE_new());
    if (!ca.store ||
        X509_STORE_add_cert(ca.store.get(), ca.cert->x509()) != 1) {
      return ossl::Error(absl::StatusCode::kInternal, "X509_STORE");
    }
    if (!files.crl_path.empty()) {
      auto crl = LoadCrl(files.crl_path);
      if (!crl.ok()) return crl.status();
      EVP_PKEY* ca_key = ca.cert->public_key();
      if (X509_CRL_verify(crl->get(), ca_key) != 1) {
        return absl::InvalidArgumentError(absl::StrCat(
            files.crl_path, ": CRL is not signed by ", files.cert_path));
      }
      ca.crl_next_update_ms =
          AsnTimeToUnixMs(X509_CRL_get0_nextUpdate(crl->get()));
      if (ca.crl_next_update_ms == 0) {
        // A CRL without nextUpdate would count as current forever.
        return absl::InvalidArgumentError(
            absl::StrCat(files.crl_path, ": CRL has no nextUpdate"));
      }
      if (X509_STORE_add_crl(ca.store.get(), crl->get()) != 1) {
        return ossl::Error(absl::StatusCode::kInternal, "X509_STORE_add_crl");
      }
      ca.crl = std::move(*crl);
    }
    ts->cas_.push_back(std::move(ca));
  }
  return ts;
}

absl::StatusOr<std::string> TrustStore::VerifyNodeCertificate(
    const Certificate& cert, KeyPurpose purpose, int64_t at_unix_ms,
    int64_t now_unix_ms) const {
  const std::string& node_id = cert.node_id();
  if (node_id.empty()) {
    return absl::UnauthenticatedError(absl::StrCat(
        "certificate ", cert.subject(), " has no urn:kontor:node URI SAN"));
  }
  if (!cert.AllowsPurpose(purpose)) {
    return absl::PermissionDeniedError(absl::StrCat(
        "certificate of ", node_id, " has the wrong key usage for its use"));
  }
  const Ca* issuer = nullptr;
  bool issued_by_trusted = false;
  for (const Ca& ca : cas_) {
    if (X509_check_issued(ca.cert->x509(), cert.x509()) != X509_V_OK) continue;
    issued_by_trusted = true;
    if (std::find(ca.allowed.begin(), ca.allowed.end(), node_id) !=
            ca.allowed.end() ||
        std::find(ca.allowed.begin(), ca.allowed.end(), "*") !=
            ca.allowed.end()) {
      issuer = &ca;
      break;
    }
  }
  if (!issued_by_trusted) {
    return absl::UnauthenticatedError(absl::StrCat(
        "certificate of ", node_id, " is not issued by a trusted CA"));
  }
  if (issuer == nullptr) {
    return absl::PermissionDeniedError(absl::StrCat(
        "no trusted CA that issued this certificate may certify node id '",
        node_id, "'"));
  }
  if (auto s =
          VerifyIssuedBy(*issuer, cert, node_id, 0, at_unix_ms, now_unix_ms);
      !s.ok()) {
    return s;
  }
  return node_id;
}

absl::Status TrustStore::VerifyClientCertificate(const Certificate& cert,
                                                 const std::string& who,
                                                 int64_t now_unix_ms) const {
  const Ca* issuer = nullptr;
  for (const Ca& ca : cas_) {
    if (X509_check_issued(ca.cert->x509(), cert.x509()) == X509_V_OK) {
      issuer = &ca;
      break;
    }
  }
  if (issuer == nullptr) {
    return absl::UnauthenticatedError(
        absl::StrCat("certificate of ", who, " is not issued by a trusted CA"));
  }
  // The clearer reasons first; VerifyIssuedBy checks the times again.
  if (now_unix_ms > cert.not_after_unix_ms()) {
    return absl::UnauthenticatedError(
        absl::StrCat("certificate of ", who, " has expired"));
  }
  if (now_unix_ms < cert.not_before_unix_ms()) {
    return absl::UnauthenticatedError(
        absl::StrCat("certificate of ", who, " is not valid yet"));
  }
  return VerifyIssuedBy(*issuer, cert, who, X509_PURPOSE_SSL_CLIENT,
                        now_unix_ms, now_unix_ms);
}

absl::Status TrustStore::VerifyIssuedBy(const Ca& issuer,
                                        const Certificate& cert,
                                        const std::string& who,
                                        int x509_purpose, int64_t at_unix_ms,
                                        int64_t now_unix_ms) const {
  if (!issuer.crl && !issuer.allow_missing_crl) {
    return absl::UnauthenticatedError(
        absl::StrCat("CA ", issuer.cert->subject(), " has no CRL configured"));
  }
  if (issuer.crl && issuer.crl_next_update_ms < now_unix_ms) {
    return absl::UnauthenticatedError(
        absl::StrCat("CRL of CA ", issuer.cert->subject(), " is out of date"));
  }
  // Chain signature and revocation, without time checks: times are checked
  // below against the right instants.
  ossl::StoreCtx ctx(X509_STORE_CTX_new());
  if (!ctx || X509_STORE_CTX_init(ctx.get(), issuer.store.get(), cert.x509(),
                                  nullptr) != 1) {
    return ossl::Error(absl::StatusCode::kInternal, "X509_STORE_CTX_init");
  }
  unsigned long flags = X509_V_FLAG_NO_CHECK_TIME | X509_V_FLAG_X509_STRICT;
  if (issuer.crl) flags |= X509_V_FLAG_CRL_CHECK;
  X509_STORE_CTX_set_flags(ctx.get(), flags);
  if (x509_purpose != 0 &&
      X509_STORE_CTX_set_purpose(ctx.get(), x509_purpose) != 1) {
    return ossl::Error(absl::StatusCode::kInternal,
                       "X509_STORE_CTX_set_purpose");
  }
  if (X509_verify_cert(ctx.get()) != 1) {
    int err = X509_STORE_CTX_get_error(ctx.get());
    ossl::ErrorString();
    return absl::UnauthenticatedError(absl::StrCat(
        "certificate of ", who, ": ", X509_verify_cert_error_string(err)));
  }
  if (!cert.ValidAt(at_unix_ms)) {
    return absl::UnauthenticatedError(absl::StrCat(
        "certificate of ", who, " is not valid at the time of use"));
  }
  if (!issuer.cert->ValidAt(at_unix_ms)) {
    return absl::UnauthenticatedError(absl::StrCat(
        "CA certificate for ", who, " is not valid at the time of use"));
  }
  return absl::OkStatus();
}

std::string TrustStore::RootsPem() const {
  std::string out;
  for (const Ca& ca : cas_) out += ca.cert->ToPem();
  return out;
}

int64_t TrustStore::CrlNextUpdateMsFor(const std::string& node_id) const {
  int64_t earliest = 0;
  for (const Ca& ca : cas_) {
    const bool allowed = std::find(ca.allowed.begin(), ca.allowed.end(),
                                   node_id) != ca.allowed.end() ||
                         std::find(ca.allowed.begin(), ca.allowed.end(), "*") !=
                             ca.allowed.end();
    if (allowed && ca.crl_next_update_ms != 0 &&
        (earliest == 0 || ca.crl_next_update_ms < earliest)) {
      earliest = ca.crl_next_update_ms;
    }
  }
  return earliest;
}

int64_t TrustStore::EarliestCrlNextUpdateMs() const {
  int64_t earliest = 0;
  for (const Ca& ca : cas_) {
    if (ca.crl_next_update_ms != 0 &&
        (earliest == 0 || ca.crl_next_update_ms < earliest)) {
      earliest = ca.crl_next_update_ms;
    }
  }
  return earliest;
}

}  // namespace kontor
