#ifndef KONTOR_DAEMON_CRYPTO_TLS_POLICY_H_
#define KONTOR_DAEMON_CRYPTO_TLS_POLICY_H_

#include "absl/status/status.h"

namespace kontor {

// The process-wide TLS policy of every TLS context OpenSSL makes from now on
// (gRPC makes one per listening port and per channel): at least TLS 1.2,
// the server's own cipher order (SSL_OP_CIPHER_SERVER_PREFERENCE), and only
// AEAD suites with forward secrecy (ECDHE with AES-GCM or ChaCha20-Poly1305;
// the TLS 1.3 suites). gRPC 1.51 has no API for the version floor or the
// server preference, so this loads an OpenSSL config whose ssl_conf
// "system_default" section OpenSSL applies in every SSL_CTX_new (it replaces
// such a section from openssl.cnf, which is loaded first so that it cannot
// come later). gRPC still sets its own TLS 1.2 suite list, an AEAD+ECDHE
// one. Runs once per process (later calls return the first result);
// thread-safe. Call it at start-up before any gRPC server or channel with
// TLS exists; the TLS credential functions of transport/ and api/ call it too,
// as a safety net. It also sets GRPC_SSL_CIPHER_SUITES (gRPC's TLS 1.2 suite
// list) to the same suites, so that the environment cannot widen them.
absl::Status ApplyTlsPolicy();

}  // namespace kontor

#endif  // KONTOR_DAEMON_CRYPTO_TLS_POLICY_H_
