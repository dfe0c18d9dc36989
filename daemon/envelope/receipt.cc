#include "daemon/envelope/receipt.h"

#include "absl/strings/str_cat.h"
#include "daemon/envelope/merkle.h"

namespace kontor {

absl::StatusOr<std::vector<v1::Receipt>> SignReceipts(
    const EcdsaSigner& signer, const std::vector<v1::ReceiptBody>& bodies) {
  std::vector<std::string> serialized;
  std::vector<std::string> digests;
  for (const v1::ReceiptBody& b : bodies) {
    serialized.push_back(b.SerializeAsString());
    digests.push_back(Sha256(serialized.back()));
  }
  auto sigs = SignBatch(signer, kReceiptBatchLabel, digests);
  if (!sigs.ok()) return sigs.status();
  std::vector<v1::Receipt> out(bodies.size());
  for (size_t i = 0; i < bodies.size(); ++i) {
    out[i].set_body(std::move(serialized[i]));
    *out[i].mutable_signature() = std::move((*sigs)[i]);
  }
  return out;
}

absl::StatusOr<v1::ReceiptBody> VerifyReceipt(const v1::Receipt& receipt,
                                              const KeyDirectory& directory,
                                              absl::string_view recipient,
                                              absl::string_view origin,
                                              absl::string_view message_id,
                                              absl::string_view outer_digest,
                                              VerifiedRoots* verified) {
  v1::ReceiptBody body;
  if (!body.ParseFromString(receipt.body())) {
    return absl::UnauthenticatedError("receipt body does not parse");
  }
  if (body.version() != kReceiptVersion || body.recipient() != recipient ||
      body.origin() != origin || body.message_id() != message_id ||
      !ConstantTimeEquals(body.outer_digest(), outer_digest)) {
    return absl::UnauthenticatedError(absl::StrCat(
        "receipt does not match message ", message_id, " to ", recipient));
  }
  if (body.verdict() != v1::ACCEPTED && body.verdict() != v1::REFUSED &&
      body.verdict() != v1::DEFERRED && body.verdict() != v1::FORWARDED) {
    return absl::UnauthenticatedError("receipt has no verdict");
  }
  auto cert = directory.SigningCert(
      recipient, receipt.signature().signer_key_id(), body.time_unix_ms());
  if (!cert.ok()) {
    return absl::UnauthenticatedError(
        absl::StrCat("receipt signer is not a trusted key of ", recipient, ": ",
                     cert.status().message()));
  }
  if (auto s = VerifyBatchSignature(receipt.signature(), kReceiptBatchLabel,
                                    Sha256(receipt.body()), **cert, verified);
      !s.ok()) {
    return absl::UnauthenticatedError(
        absl::StrCat("receipt signature: ", s.message()));
  }
  return body;
}

std::string ReceiptContentProblem(const v1::ReceiptBody& body,
                                  absl::string_view body_bytes,
                                  absl::string_view inner_digest) {
  if (body.verdict() != v1::ACCEPTED || inner_digest.empty()) return "";
  if (body.SerializeAsString() != body_bytes) {
    return absl::StrCat(body.recipient(),
                        "'s receipt is not in the standard encoding (no "
                        "evidence byte for byte)");
  }
  if (body.inner_digest().empty()) {
    return absl::StrCat(body.recipient(),
                        "'s receipt does not name the signed content");
  }
  if (!ConstantTimeEquals(body.inner_digest(), inner_digest)) {
    return absl::StrCat(body.recipient(),
                        "'s receipt names other signed content than this "
                        "node sent");
  }
  return "";
}

absl::StatusOr<v1::ReceiptBody> VerifyEndToEndReceipt(
    const v1::Receipt& receipt, const KeyDirectory& directory,
    absl::string_view recipient, absl::string_view origin,
    absl::string_view message_id, absl::string_view outer_digest, bool* altered,
    VerifiedRoots* verified) {
  *altered = false;
  auto body = VerifyReceipt(receipt, directory, recipient, origin, message_id,
                            outer_digest, verified);
  if (body.ok()) {
    if (body->verdict() != v1::ACCEPTED && body->verdict() != v1::REFUSED) {
      return absl::UnauthenticatedError("not an end-to-end verdict");
    }
    return body;
  }
  v1::ReceiptBody claimed;
  if (!claimed.ParseFromString(receipt.body()) ||
      claimed.verdict() != v1::REFUSED || claimed.outer_digest().empty()) {
    return body.status();
  }
  auto other = VerifyReceipt(receipt, directory, recipient, origin, message_id,
                             claimed.outer_digest(), verified);
  if (!other.ok()) return body.status();
  *altered = true;
  return other;
}

}  // namespace kontor
