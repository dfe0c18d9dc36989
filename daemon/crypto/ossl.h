#ifndef KONTOR_DAEMON_CRYPTO_OSSL_H_
#define KONTOR_DAEMON_CRYPTO_OSSL_H_

// RAII owners for OpenSSL objects. Internal to the crypto module's users.

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>
#include <string>

#include "absl/status/status.h"

namespace kontor {
namespace ossl {

template <typename T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};

using Bio = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using PKey = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using Crl = std::unique_ptr<X509_CRL, Deleter<X509_CRL, X509_CRL_free>>;
using Store = std::unique_ptr<X509_STORE, Deleter<X509_STORE, X509_STORE_free>>;
using StoreCtx = std::unique_ptr<X509_STORE_CTX,
                                 Deleter<X509_STORE_CTX, X509_STORE_CTX_free>>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX, EVP_MD_CTX_free>>;
using Asn1Time = std::unique_ptr<ASN1_TIME, Deleter<ASN1_TIME, ASN1_TIME_free>>;
using Cms = std::unique_ptr<CMS_ContentInfo,
                            Deleter<CMS_ContentInfo, CMS_ContentInfo_free>>;

inline void FreeX509Stack(STACK_OF(X509) * s) { sk_X509_free(s); }
using X509Stack =
    std::unique_ptr<STACK_OF(X509), Deleter<STACK_OF(X509), FreeX509Stack>>;

// The OpenSSL error queue as text (and cleared), for error messages.
std::string ErrorString();

// Status with `what` and the drained OpenSSL error queue.
absl::Status Error(absl::StatusCode code, const std::string& what);

}  // namespace ossl
}  // namespace kontor

#endif  // KONTOR_DAEMON_CRYPTO_OSSL_H_
