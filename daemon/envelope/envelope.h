#ifndef KONTOR_DAEMON_ENVELOPE_ENVELOPE_H_
#define KONTOR_DAEMON_ENVELOPE_ENVELOPE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "daemon/common/clock.h"
#include "daemon/crypto/certificate.h"
#include "daemon/crypto/primitives.h"
#include "daemon/envelope/merkle.h"
#include "kontor/v1/envelope.pb.h"

namespace kontor {

// The one cipher suite of v1 (DESIGN.md §4): ECDSA P-256/SHA-256 signatures,
// ECDH P-256 with a SHA-256 KDF, AES-256-GCM, all as CMS.
inline constexpr absl::string_view kSuiteV1 = "kontor-p256-sha256-a256gcm";
inline constexpr absl::string_view kEnvelopeLabel = "kontor-env-v1";
inline constexpr absl::string_view kInnerVersion = "kontor-inner-v1";
inline constexpr absl::string_view kEnvelopeBatchLabel = "kontor-env-batch-v1";
bool IsAllowedSuite(absl::string_view suite_id);
// Longest allowed time from created to expires (a backdated or everlasting
// envelope is refused).
inline constexpr int64_t kMaxLifetimeMs = 90LL * 24 * 3600 * 1000;
// Recipients of one envelope, unless configured (limits.max_recipients).
inline constexpr size_t kDefaultMaxRecipients = 32;

// The labelled structure the outer signature covers (through a Merkle root):
//   "kontor-env-v1" 0x00 | u32 len | suite | u32 len | header bytes |
//   SHA-256(ciphertext) | SHA-256(chunk list)
std::string OuterSignedBytes(const v1::Envelope& envelope,
                             absl::string_view suite_id);
// SHA-256 of OuterSignedBytes: what receipts acknowledge and what dedup
// compares. Never a digest of signature bytes (ECDSA is malleable).
std::string OuterDigest(const v1::Envelope& envelope,
                        absl::string_view suite_id);

// Where peers' trust-checked certificates come from. Implementations check
// the chain, the node id and revocation; Sealer/Opener check validity times.
class KeyDirectory {
 public:
  virtual ~KeyDirectory() = default;
  // The signing certificate of `node_id` with key id `key_id`, trusted, and
  // valid at `at_unix_ms`. kNotFound / kUnauthenticated otherwise.
  virtual absl::StatusOr<CertificatePtr> SigningCert(
      absl::string_view node_id, absl::string_view key_id,
      int64_t at_unix_ms) const = 0;
  // The current encryption certificate of `node_id`.
  virtual absl::StatusOr<CertificatePtr> EncryptionCert(
      absl::string_view node_id) const = 0;
};

struct DecryptionKey {
  std::shared_ptr<const PrivateKey> key;
  CertificatePtr cert;
};

// Makes envelopes: inner CMS signature, CMS encryption to every recipient,
// then (in batches) the outer signature. Thread-safe.
class Sealer {
 public:
  Sealer(std::string node_id, std::shared_ptr<const EcdsaSigner> signer,
         const KeyDirectory* directory);

  // Seals `payload` under `header` (whose origin must be this node and whose
  // suite is set here). The envelope has no outer signature yet.
  // `inner_signed` (optional) gets the inner CMS SignedData (DER), which the
  // sender keeps as evidence (`kontor export`).
  absl::StatusOr<v1::Envelope> Seal(v1::Header header,
                                    const v1::Payload& payload,
                                    std::string* inner_signed = nullptr) const;
  // Signs the outer structures of `envelopes` with one batch signature.
  absl::Status SignOuter(const std::vector<v1::Envelope*>& envelopes) const;

 private:
  std::string node_id_;
  std::shared_ptr<const EcdsaSigner> signer_;
  const KeyDirectory* directory_;
};

// Why an envelope was refused, in wire terms. verdict REFUSED is permanent
// (the same bytes will always be refused); DEFERRED may change (a key not
// known yet, clocks apart): the sender retries later.
struct Refusal {
  v1::Verdict verdict = v1::REFUSED;
  v1::RefusalCode code = v1::REFUSAL_NONE;
  std::string reason;
  // The origin's outer signature verified: the envelope is authentic even
  // though it is refused, so its (origin, id) may be remembered for dedup.
  bool outer_verified = false;
};

struct OpenedEnvelope {
  v1::Header header;
  std::string outer_digest;
  std::string inner_signed;  // CMS SignedData DER: the evidence
  v1::InnerContent inner;
  v1::Payload payload;
};

// Checks and opens envelopes addressed to this node. Thread-safe.
class Opener {
 public:
  // `max_recipients`: an envelope naming more is refused (malformed) before
  // anything else is looked at.
  Opener(std::string node_id, std::vector<DecryptionKey> decryption_keys,
         const KeyDirectory* directory, const Clock* clock, int64_t max_skew_ms,
         uint64_t max_ciphertext_bytes,
         size_t max_recipients = kDefaultMaxRecipients);

  // Parses and checks the header without any signature check: suite, ids,
  // priority, that this node is a recipient, size, lifetime. Depends on the
  // bytes only, so its refusals are permanent. Cheap; comes before dedup.
  // `recipient` (default: this node) must be among the recipients; a
  // relay passes the recipient it relays the envelope for.
  absl::StatusOr<v1::Header> ParseHeader(
      const v1::Envelope& envelope, Refusal* refusal,
      absl::string_view recipient = absl::string_view()) const;
  // Expired (refused) or created in the future beyond the skew (deferred).
  // Depends on the clock: comes after dedup, so a stored message is always
  // answered with its stored receipt.
  absl::Status CheckTimes(const v1::Header& header, Refusal* refusal) const;
  // Outer signature (origin's key, valid at header.created), then decryption
  // and the inner signature, and that the inner content matches the header.
  // `verified` (optional) remembers batch signatures already checked.
  // The origin's outer signature only (what a relay can check: it cannot
  // decrypt). Sets refusal->outer_verified on success.
  absl::Status VerifyOuter(const v1::Envelope& envelope,
                           const v1::Header& header, Refusal* refusal,
                           VerifiedRoots* verified = nullptr) const;
  absl::StatusOr<OpenedEnvelope> Open(const v1::Envelope& envelope,
                                      const v1::Header& header,
                                      Refusal* refusal,
                                      VerifiedRoots* verified = nullptr) const;

 private:
  absl::StatusOr<CertificatePtr> OuterSigner(const v1::Envelope& envelope,
                                             const v1::Header& header,
                                             Refusal* refusal,
                                             VerifiedRoots* verified) const;

  std::string node_id_;
  std::vector<DecryptionKey> keys_;
  const KeyDirectory* directory_;
  const Clock* clock_;
  int64_t max_skew_ms_;
  uint64_t max_ciphertext_bytes_;
  size_t max_recipients_;
};

}  // namespace kontor

#endif  // KONTOR_DAEMON_ENVELOPE_ENVELOPE_H_
