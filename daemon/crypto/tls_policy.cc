#include "daemon/crypto/tls_policy.h"

#include <openssl/bio.h>
#include <openssl/conf.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <stdlib.h>

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"

namespace kontor {
namespace {

// The TLS 1.2 suites allowed: ECDHE with AES-GCM or ChaCha20-Poly1305.
constexpr char kTls12Suites[] =
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305";

// An OpenSSL config (openssl.cnf syntax): ssl_conf's "system_default" is
// applied by OpenSSL to every SSL_CTX it makes (ApplyTlsPolicy).
constexpr char kTlsPolicy[] =
    "openssl_conf = kontor_openssl_init\n"
    "[kontor_openssl_init]\n"
    "ssl_conf = kontor_ssl_conf\n"
    "[kontor_ssl_conf]\n"
    "system_default = kontor_tls_policy\n"
    "[kontor_tls_policy]\n"
    "MinProtocol = TLSv1.2\n"
    "Options = ServerPreference\n"
    "CipherString = ECDHE+AESGCM:ECDHE+CHACHA20\n"
    "Ciphersuites = "
    "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"
    "\n";

// OpenSSL's queued errors, one line; clears the queue.
std::string OpenSslErrors() {
  std::string out;
  char buf[256];
  while (unsigned long e = ERR_get_error()) {
    ERR_error_string_n(e, buf, sizeof buf);
    absl::StrAppend(&out, out.empty() ? "" : "; ", buf);
  }
  return out.empty() ? "no OpenSSL error" : out;
}

absl::Status LoadTlsPolicy() {
  // openssl.cnf first: OpenSSL loads it at most once per process, so it can
  // no longer be loaded later, over this policy.
  if (OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, nullptr) != 1) {
    return absl::InternalError(absl::StrCat(
        "TLS policy: OpenSSL initialisation failed: ", OpenSslErrors()));
  }
  ERR_clear_error();
  std::unique_ptr<CONF, decltype(&NCONF_free)> conf(NCONF_new(nullptr),
                                                    &NCONF_free);
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(kTlsPolicy, -1),
                                                &BIO_free);
  long error_line = 0;
  if (conf == nullptr || bio == nullptr ||
      NCONF_load_bio(conf.get(), bio.get(), &error_line) <= 0 ||
      CONF_modules_load(conf.get(), nullptr, 0) <= 0) {
    return absl::InternalError(
        absl::StrCat("TLS policy (TLS 1.2+, server cipher order, AEAD with "
                     "forward secrecy) refused by OpenSSL: ",
                     OpenSslErrors()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ApplyTlsPolicy() {
  static const absl::Status* const status = [] {
    // gRPC reads its TLS 1.2 suite list from the environment when it makes
    // a context: ours, whatever the caller's environment said.
    setenv("GRPC_SSL_CIPHER_SUITES", kTls12Suites, 1);
    return new absl::Status(LoadTlsPolicy());
  }();
  return *status;
}

}  // namespace kontor
