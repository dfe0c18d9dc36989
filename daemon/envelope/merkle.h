#ifndef KONTOR_DAEMON_ENVELOPE_MERKLE_H_
#define KONTOR_DAEMON_ENVELOPE_MERKLE_H_

#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "daemon/crypto/primitives.h"
#include "kontor/v1/envelope.pb.h"

namespace kontor {

// Batch signatures (X-Road style): one ECDSA signature over the Merkle root of
// many digests; each item carries its audit path. Leaves and inner nodes are
// domain-separated (0x00 / 0x01 prefixes) so a leaf can never pass as a node.
// On a level with an odd count the last node is carried up unchanged.

std::string MerkleLeafHash(absl::string_view digest);
std::string MerkleRoot(const std::vector<std::string>& leaf_hashes);
std::vector<std::string> MerklePath(const std::vector<std::string>& leaf_hashes,
                                    size_t index);
// Root implied by a leaf hash and its audit path; error if the path does not
// fit (index, count).
absl::StatusOr<std::string> MerkleRootFromPath(
    absl::string_view leaf_hash, size_t index, size_t count,
    const std::vector<std::string>& path);

// Signs `digests` in one batch: one signature over label || root; returns one
// BatchSignature per digest (same order).
absl::StatusOr<std::vector<v1::BatchSignature>> SignBatch(
    const EcdsaSigner& signer, absl::string_view label,
    const std::vector<std::string>& digests);

// Batch signatures already verified, so that the envelopes (or receipts) of
// one batch cost one ECDSA verification. Not thread-safe: one per call site.
class VerifiedRoots {
 public:
  static std::string Key(const v1::BatchSignature& sig,
                         absl::string_view label);
  bool Contains(const std::string& key) const { return seen_.count(key) > 0; }
  void Add(std::string key) { seen_.insert(std::move(key)); }

 private:
  std::set<std::string> seen_;
};

// Verifies that `sig` covers `digest` and was made by `signer` under `label`.
// Does not look at which key it should be: the caller chose `signer` from
// sig.signer_key_id() and must have trust-checked it. With `verified`, a
// root whose signature was verified before is not verified again.
absl::Status VerifyBatchSignature(const v1::BatchSignature& sig,
                                  absl::string_view label,
                                  absl::string_view digest,
                                  const Certificate& signer,
                                  VerifiedRoots* verified = nullptr);

}  // namespace kontor

#endif  // KONTOR_DAEMON_ENVELOPE_MERKLE_H_
