#ifndef KONTOR_DAEMON_ENVELOPE_RECEIPT_H_
#define KONTOR_DAEMON_ENVELOPE_RECEIPT_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/crypto/primitives.h"
#include "daemon/envelope/envelope.h"
#include "daemon/envelope/merkle.h"
#include "kontor/v1/envelope.pb.h"

namespace kontor {

inline constexpr absl::string_view kReceiptVersion = "kontor-rcpt-v1";
inline constexpr absl::string_view kReceiptBatchLabel = "kontor-rcpt-batch-v1";

// Signs receipt bodies in one batch (one signature over a Merkle root of
// SHA-256 of each body's exact bytes).
absl::StatusOr<std::vector<v1::Receipt>> SignReceipts(
    const EcdsaSigner& signer, const std::vector<v1::ReceiptBody>& bodies);

// Checks a receipt for an envelope this node sent: signed by a trusted
// signing key of `recipient` valid at the receipt's time, for exactly this
// message id, origin and outer digest. kUnauthenticated otherwise.
absl::StatusOr<v1::ReceiptBody> VerifyReceipt(
    const v1::Receipt& receipt, const KeyDirectory& directory,
    absl::string_view recipient, absl::string_view origin,
    absl::string_view message_id, absl::string_view outer_digest,
    VerifiedRoots* verified = nullptr);

// An end-to-end receipt for a message that may have travelled through
// relays: as VerifyReceipt (ACCEPTED or REFUSED only), and also a REFUSED
// that `recipient` signed for other bytes than ours (*altered = true): a
// relay changed the envelope, and the recipient's refusal is final all the
// same. An ACCEPTED for other bytes is never good.
// For an acceptance of a message this node sent: "" if the receipt names
// the signed content sent (its inner_digest is `inner_digest`, or nothing
// is known to compare), else what is wrong, in words. Such a receipt is
// still a delivery (the recipient signed it) but no evidence of the content.
// `body_bytes` are the signed bytes `body` was parsed from: only the
// standard encoding is evidence that reads the same byte for byte.
std::string ReceiptContentProblem(const v1::ReceiptBody& body,
                                  absl::string_view body_bytes,
                                  absl::string_view inner_digest);

absl::StatusOr<v1::ReceiptBody> VerifyEndToEndReceipt(
    const v1::Receipt& receipt, const KeyDirectory& directory,
    absl::string_view recipient, absl::string_view origin,
    absl::string_view message_id, absl::string_view outer_digest, bool* altered,
    VerifiedRoots* verified = nullptr);

}  // namespace kontor

#endif  // KONTOR_DAEMON_ENVELOPE_RECEIPT_H_
