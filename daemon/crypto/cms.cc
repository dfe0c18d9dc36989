#include "daemon/crypto/cms.h"

#include <openssl/cms.h>
#include <openssl/ec.h>
#include <openssl/err.h>

#include "absl/strings/str_cat.h"
#include "daemon/crypto/ossl.h"

namespace kontor {
namespace {

ossl::Bio MemIn(absl::string_view data) {
  return ossl::Bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

std::string MemContents(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  return std::string(data, len > 0 ? len : 0);
}

absl::StatusOr<ossl::Cms> ParseDer(absl::string_view der) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  ossl::Cms cms(
      d2i_CMS_ContentInfo(nullptr, &p, static_cast<long>(der.size())));
  if (!cms ||
      p != reinterpret_cast<const unsigned char*>(der.data()) + der.size()) {
    ossl::ErrorString();
    return absl::InvalidArgumentError("not a DER CMS structure");
  }
  return cms;
}

absl::StatusOr<std::string> ToDer(CMS_ContentInfo* cms) {
  unsigned char* der = nullptr;
  int len = i2d_CMS_ContentInfo(cms, &der);
  if (len <= 0) return ossl::Error(absl::StatusCode::kInternal, "i2d CMS");
  std::string out(reinterpret_cast<char*>(der), len);
  OPENSSL_free(der);
  return out;
}

}  // namespace

absl::StatusOr<std::string> CmsSign(const EcdsaSigner& signer,
                                    absl::string_view content) {
  ossl::Bio in = MemIn(content);
  ossl::Cms cms(CMS_sign(signer.certificate()->x509(), signer.key().pkey(),
                         nullptr, in.get(),
                         CMS_BINARY | CMS_NOCERTS | CMS_NOSMIMECAP));
  if (!cms) return ossl::Error(absl::StatusCode::kInternal, "CMS_sign");
  return ToDer(cms.get());
}

absl::StatusOr<std::string> CmsVerify(absl::string_view der,
                                      const Certificate& signer) {
  auto cms = ParseDer(der);
  if (!cms.ok()) return cms.status();
  if (OBJ_obj2nid(CMS_get0_type(cms->get())) != NID_pkcs7_signed) {
    return absl::InvalidArgumentError("CMS structure is not SignedData");
  }
  STACK_OF(CMS_SignerInfo)* infos = CMS_get0_SignerInfos(cms->get());
  if (infos == nullptr || sk_CMS_SignerInfo_num(infos) != 1) {
    return absl::UnauthenticatedError(
        "SignedData must have exactly one signer");
  }
  ossl::X509Stack certs(sk_X509_new_null());
  sk_X509_push(certs.get(), signer.x509());
  ossl::Bio out(BIO_new(BIO_s_mem()));
  if (CMS_verify(cms->get(), certs.get(), nullptr, nullptr, out.get(),
                 CMS_BINARY | CMS_NOINTERN | CMS_NO_SIGNER_CERT_VERIFY) != 1) {
    std::string detail = ossl::ErrorString();
    return absl::UnauthenticatedError(
        absl::StrCat("inner signature does not verify: ", detail));
  }
  return MemContents(out.get());
}

absl::StatusOr<std::string> CmsEncrypt(
    absl::string_view content, const std::vector<CertificatePtr>& recipients) {
  if (recipients.empty()) {
    return absl::InvalidArgumentError("no recipients to encrypt to");
  }
  ossl::Bio in = MemIn(content);
  ossl::Cms cms(CMS_encrypt(nullptr, nullptr, EVP_aes_256_gcm(),
                            CMS_BINARY | CMS_PARTIAL));
  if (!cms) return ossl::Error(absl::StatusCode::kInternal, "CMS_encrypt");
  for (const CertificatePtr& cert : recipients) {
    CMS_RecipientInfo* ri =
        CMS_add1_recipient_cert(cms.get(), cert->x509(), CMS_KEY_PARAM);
    if (ri == nullptr) {
      return ossl::Error(absl::StatusCode::kInvalidArgument,
                         "cannot add recipient " + cert->subject());
    }
    // OpenSSL defaults the ECDH KDF digest to SHA-1; the suite says SHA-256.
    // (The KDF type must stay unset: CMS sets X9.63 itself and refuses any
    // preset type.)
    EVP_PKEY_CTX* pctx = CMS_RecipientInfo_get0_pkey_ctx(ri);
    if (pctx == nullptr ||
        EVP_PKEY_CTX_set_ecdh_kdf_md(pctx, EVP_sha256()) <= 0) {
      return ossl::Error(absl::StatusCode::kInternal, "ECDH KDF parameters");
    }
  }
  if (CMS_final(cms.get(), in.get(), nullptr, CMS_BINARY) != 1) {
    return ossl::Error(absl::StatusCode::kInternal, "CMS_final (encrypt)");
  }
  return ToDer(cms.get());
}

absl::StatusOr<std::string> CmsDecrypt(absl::string_view der,
                                       const PrivateKey& key,
                                       const Certificate& cert) {
  auto cms = ParseDer(der);
  if (!cms.ok()) return cms.status();
  if (OBJ_obj2nid(CMS_get0_type(cms->get())) !=
      NID_id_smime_ct_authEnvelopedData) {
    return absl::InvalidArgumentError(
        "ciphertext is not CMS AuthEnvelopedData");
  }
  // Is `cert` a recipient at all? (CMS_decrypt does not say so reliably:
  // its error queue may be empty.)
  bool recipient = false;
  STACK_OF(CMS_RecipientInfo)* infos = CMS_get0_RecipientInfos(cms->get());
  for (int i = 0; infos != nullptr && i < sk_CMS_RecipientInfo_num(infos);
       ++i) {
    CMS_RecipientInfo* ri = sk_CMS_RecipientInfo_value(infos, i);
    if (CMS_RecipientInfo_type(ri) != CMS_RECIPINFO_AGREE) continue;
    STACK_OF(CMS_RecipientEncryptedKey)* reks =
        CMS_RecipientInfo_kari_get0_reks(ri);
    for (int k = 0;
         reks != nullptr && k < sk_CMS_RecipientEncryptedKey_num(reks); ++k) {
      if (CMS_RecipientEncryptedKey_cert_cmp(
              sk_CMS_RecipientEncryptedKey_value(reks, k), cert.x509()) == 0) {
        recipient = true;
      }
    }
  }
  if (!recipient) return absl::NotFoundError("not encrypted to this key");
  ossl::Bio out(BIO_new(BIO_s_mem()));
  if (CMS_decrypt(cms->get(), key.pkey(), cert.x509(), nullptr, out.get(),
                  CMS_BINARY) != 1) {
    std::string detail = ossl::ErrorString();
    return absl::UnauthenticatedError(absl::StrCat("cannot decrypt: ", detail));
  }
  return MemContents(out.get());
}

}  // namespace kontor
