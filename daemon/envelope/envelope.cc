#include "daemon/envelope/envelope.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "daemon/common/ids.h"
#include "daemon/crypto/cms.h"
#include "daemon/envelope/merkle.h"

namespace kontor {
namespace {

void AppendLengthPrefixed(std::string* out, absl::string_view s) {
  const uint32_t n = static_cast<uint32_t>(s.size());
  const char len[4] = {static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                       static_cast<char>(n >> 8), static_cast<char>(n)};
  out->append(len, 4);
  out->append(s.data(), s.size());
}

std::string ChunkListDigest(const v1::Envelope& envelope) {
  std::string list;
  for (const auto& c : envelope.chunks()) {
    absl::StrAppend(&list, c.attachment(), ":", c.index(), ":", c.size(), ":",
                    c.last() ? 1 : 0, ":");
    AppendLengthPrefixed(&list, c.sha256());
  }
  return Sha256(list);
}

// Sets what is refused and why; keeps what is already known (outer_verified).
void SetRefusal(Refusal* refusal, v1::RefusalCode code, std::string reason,
                v1::Verdict verdict = v1::REFUSED) {
  refusal->verdict = verdict;
  refusal->code = code;
  refusal->reason = std::move(reason);
}

}  // namespace

bool IsAllowedSuite(absl::string_view suite_id) { return suite_id == kSuiteV1; }

std::string OuterSignedBytes(const v1::Envelope& envelope,
                             absl::string_view suite_id) {
  std::string out(kEnvelopeLabel);
  out.push_back('\0');
  AppendLengthPrefixed(&out, suite_id);
  AppendLengthPrefixed(&out, envelope.header());
  out += Sha256(envelope.ciphertext());
  out += ChunkListDigest(envelope);
  return out;
}

std::string OuterDigest(const v1::Envelope& envelope,
                        absl::string_view suite_id) {
  return Sha256(OuterSignedBytes(envelope, suite_id));
}

Sealer::Sealer(std::string node_id, std::shared_ptr<const EcdsaSigner> signer,
               const KeyDirectory* directory)
    : node_id_(std::move(node_id)),
      signer_(std::move(signer)),
      directory_(directory) {}

absl::StatusOr<v1::Envelope> Sealer::Seal(v1::Header header,
                                          const v1::Payload& payload,
                                          std::string* inner_signed) const {
  if (header.origin() != node_id_) {
    return absl::InvalidArgumentError("header origin is not this node");
  }
  if (header.recipients().empty()) {
    return absl::InvalidArgumentError("no recipients");
  }
  header.set_suite_id(std::string(kSuiteV1));

  v1::InnerContent inner;
  inner.set_version(std::string(kInnerVersion));
  inner.set_suite_id(header.suite_id());
  inner.set_message_id(header.message_id());
  inner.set_origin(header.origin());
  *inner.mutable_recipients() = header.recipients();
  inner.set_created_unix_ms(header.created_unix_ms());
  inner.set_payload(payload.SerializeAsString());

  auto signed_inner = CmsSign(*signer_, inner.SerializeAsString());
  if (!signed_inner.ok()) return signed_inner.status();

  std::vector<CertificatePtr> recipient_certs;
  for (const std::string& r : header.recipients()) {
    auto cert = directory_->EncryptionCert(r);
    if (!cert.ok()) return cert.status();
    recipient_certs.push_back(*cert);
  }
  auto ciphertext = CmsEncrypt(*signed_inner, recipient_certs);
  if (!ciphertext.ok()) return ciphertext.status();
  if (inner_signed != nullptr) *inner_signed = *signed_inner;

  v1::Envelope envelope;
  envelope.set_header(header.SerializeAsString());
  envelope.set_ciphertext(std::move(*ciphertext));
  envelope.mutable_routing()->add_trace(node_id_);
  return envelope;
}

absl::Status Sealer::SignOuter(
    const std::vector<v1::Envelope*>& envelopes) const {
  std::vector<std::string> digests;
  digests.reserve(envelopes.size());
  for (const v1::Envelope* e : envelopes) {
    digests.push_back(OuterDigest(*e, kSuiteV1));
  }
  auto sigs = SignBatch(*signer_, kEnvelopeBatchLabel, digests);
  if (!sigs.ok()) return sigs.status();
  for (size_t i = 0; i < envelopes.size(); ++i) {
    *envelopes[i]->mutable_outer() = std::move((*sigs)[i]);
  }
  return absl::OkStatus();
}

Opener::Opener(std::string node_id, std::vector<DecryptionKey> decryption_keys,
               const KeyDirectory* directory, const Clock* clock,
               int64_t max_skew_ms, uint64_t max_ciphertext_bytes,
               size_t max_recipients)
    : node_id_(std::move(node_id)),
      keys_(std::move(decryption_keys)),
      directory_(directory),
      clock_(clock),
      max_skew_ms_(max_skew_ms),
      max_ciphertext_bytes_(max_ciphertext_bytes),
      max_recipients_(max_recipients) {}

absl::StatusOr<v1::Header> Opener::ParseHeader(
    const v1::Envelope& envelope, Refusal* refusal,
    absl::string_view recipient) const {
  if (recipient.empty()) recipient = node_id_;
  v1::Header header;
  if (envelope.header().empty() || !header.ParseFromString(envelope.header())) {
    SetRefusal(refusal, v1::REFUSAL_MALFORMED, "header does not parse");
    return absl::InvalidArgumentError(refusal->reason);
  }
  if (!IsAllowedSuite(header.suite_id())) {
    SetRefusal(refusal, v1::REFUSAL_UNKNOWN_SUITE,
               absl::StrCat("suite '", Printable(header.suite_id()),
                            "' is not allowed"));
    return absl::InvalidArgumentError(refusal->reason);
  }
  if (!IsValidMessageId(header.message_id()) ||
      !IsValidNodeId(header.origin())) {
    SetRefusal(refusal, v1::REFUSAL_MALFORMED, "bad message id or origin");
    return absl::InvalidArgumentError(refusal->reason);
  }
  if (header.recipients_size() == 0 ||
      static_cast<size_t>(header.recipients_size()) > max_recipients_) {
    SetRefusal(
        refusal, v1::REFUSAL_MALFORMED,
        absl::StrCat(header.recipients_size(),
                     " recipients; this node takes 1 to ", max_recipients_));
    return absl::InvalidArgumentError(refusal->reason);
  }
  if (!std::all_of(header.recipients().begin(), header.recipients().end(),
                   [](const std::string& r) { return IsValidNodeId(r); })) {
    // Node ids only: every recipient is named in receipts, logs and
    // evidence.
    SetRefusal(refusal, v1::REFUSAL_MALFORMED, "bad recipient list");
    return absl::InvalidArgumentError(refusal->reason);
  }
  if (header.priority() == v1::PRIORITY_UNSPECIFIED ||
      !v1::Priority_IsValid(header.priority())) {
    SetRefusal(refusal, v1::REFUSAL_MALFORMED, "unknown priority");
    return absl::InvalidArgumentError(refusal->reason);
  }
  if (std::find(header.recipients().begin(), header.recipients().end(),
                recipient) == header.recipients().end()) {
    SetRefusal(refusal, v1::REFUSAL_NOT_FOR_ME,
               absl::StrCat(Printable(recipient, 64), " is not a recipient"));
    return absl::InvalidArgumentError(refusal->reason);
  }
  if (envelope.ciphertext().size() > max_ciphertext_bytes_) {
    SetRefusal(refusal, v1::REFUSAL_TOO_LARGE, "envelope too large");
    return absl::InvalidArgumentError(refusal->reason);
  }
  // Both times are the peer's: compare without overflow.
  if (header.created_unix_ms() <= 0 ||
      header.expires_unix_ms() <= header.created_unix_ms() ||
      header.expires_unix_ms() - header.created_unix_ms() >
          kMaxLifetimeMs + max_skew_ms_) {
    SetRefusal(refusal, v1::REFUSAL_MALFORMED,
               "expires must be after created, within 90 days");
    return absl::InvalidArgumentError(refusal->reason);
  }
  return header;
}

absl::Status Opener::CheckTimes(const v1::Header& header,
                                Refusal* refusal) const {
  const int64_t now = clock_->NowUnixMs();
  if (now - max_skew_ms_ > header.expires_unix_ms()) {
    SetRefusal(
        refusal, v1::REFUSAL_EXPIRED,
        absl::StrCat("expired at ", FormatRfc3339Ms(header.expires_unix_ms())));
    return absl::InvalidArgumentError(refusal->reason);
  }
  if (header.created_unix_ms() > now + max_skew_ms_) {
    SetRefusal(
        refusal, v1::REFUSAL_MALFORMED,
        absl::StrCat("created ", FormatRfc3339Ms(header.created_unix_ms()),
                     ", beyond the allowed clock skew"),
        v1::DEFERRED);
    return absl::UnavailableError(refusal->reason);
  }
  return absl::OkStatus();
}

absl::Status Opener::VerifyOuter(const v1::Envelope& envelope,
                                 const v1::Header& header, Refusal* refusal,
                                 VerifiedRoots* verified) const {
  return OuterSigner(envelope, header, refusal, verified).status();
}

absl::StatusOr<CertificatePtr> Opener::OuterSigner(
    const v1::Envelope& envelope, const v1::Header& header, Refusal* refusal,
    VerifiedRoots* verified) const {
  auto signer =
      directory_->SigningCert(header.origin(), envelope.outer().signer_key_id(),
                              header.created_unix_ms());
  if (!signer.ok()) {
    // An unknown key may be a rotation this node has not been told of yet:
    // not now, maybe later. A known key outside its validity is final.
    const bool unknown = signer.status().code() == absl::StatusCode::kNotFound;
    SetRefusal(
        refusal, v1::REFUSAL_BAD_SIGNATURE,
        absl::StrCat(unknown ? "unknown" : "untrusted", " signing key of ",
                     header.origin(), ": ", signer.status().message()),
        unknown ? v1::DEFERRED : v1::REFUSED);
    return absl::UnauthenticatedError(refusal->reason);
  }
  if (auto s = VerifyBatchSignature(envelope.outer(), kEnvelopeBatchLabel,
                                    OuterDigest(envelope, header.suite_id()),
                                    **signer, verified);
      !s.ok()) {
    SetRefusal(refusal, v1::REFUSAL_BAD_SIGNATURE,
               absl::StrCat("outer signature: ", s.message()));
    return absl::UnauthenticatedError(refusal->reason);
  }
  refusal->outer_verified = true;
  return signer;
}

absl::StatusOr<OpenedEnvelope> Opener::Open(const v1::Envelope& envelope,
                                            const v1::Header& header,
                                            Refusal* refusal,
                                            VerifiedRoots* verified) const {
  OpenedEnvelope out;
  out.header = header;
  out.outer_digest = OuterDigest(envelope, header.suite_id());
  auto signer = OuterSigner(envelope, header, refusal, verified);
  if (!signer.ok()) return signer.status();

  absl::Status last = absl::NotFoundError("no decryption key");
  bool decrypted = false;
  bool key_missing = true;  // no key of ours is a recipient
  for (const DecryptionKey& k : keys_) {
    auto plain = CmsDecrypt(envelope.ciphertext(), *k.key, *k.cert);
    if (plain.ok()) {
      out.inner_signed = std::move(*plain);
      decrypted = true;
      break;
    }
    if (plain.status().code() != absl::StatusCode::kNotFound) {
      key_missing = false;
      last = plain.status();
    }
  }
  if (!decrypted) {
    // Encrypted to a key of ours that is not configured (an old_encryption
    // key left out after a rotation): the operator can fix that.
    SetRefusal(refusal, v1::REFUSAL_DECRYPT_FAILED,
               key_missing ? "encrypted to none of this node's configured "
                             "encryption keys (old_encryption missing?)"
                           : absl::StrCat("cannot decrypt: ", last.message()),
               key_missing ? v1::DEFERRED : v1::REFUSED);
    return absl::UnauthenticatedError(refusal->reason);
  }

  auto inner_bytes = CmsVerify(out.inner_signed, **signer);
  if (!inner_bytes.ok()) {
    SetRefusal(refusal, v1::REFUSAL_BAD_SIGNATURE,
               std::string(inner_bytes.status().message()));
    return absl::UnauthenticatedError(refusal->reason);
  }
  if (!out.inner.ParseFromString(*inner_bytes) ||
      out.inner.version() != kInnerVersion ||
      out.inner.suite_id() != header.suite_id() ||
      out.inner.message_id() != header.message_id() ||
      out.inner.origin() != header.origin() ||
      out.inner.created_unix_ms() != header.created_unix_ms() ||
      out.inner.recipients_size() != header.recipients_size() ||
      !std::equal(out.inner.recipients().begin(), out.inner.recipients().end(),
                  header.recipients().begin())) {
    SetRefusal(refusal, v1::REFUSAL_BAD_SIGNATURE,
               "signed inner content does not match the header");
    return absl::UnauthenticatedError(refusal->reason);
  }
  if (!out.payload.ParseFromString(out.inner.payload())) {
    SetRefusal(refusal, v1::REFUSAL_MALFORMED, "payload does not parse");
    return absl::InvalidArgumentError(refusal->reason);
  }
  return out;
}

}  // namespace kontor
