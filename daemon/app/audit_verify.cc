#include "daemon/app/audit_verify.h"

#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "daemon/envelope/merkle.h"
#include "daemon/envelope/receipt.h"
#include "kontor/v1/envelope.pb.h"

namespace kontor {
namespace {

std::string HeadDigest(const AuditHead& head, int64_t time_ms) {
  std::string in = EncodeAuditHead(head);
  for (int i = 7; i >= 0; --i) {
    in.push_back(static_cast<char>(static_cast<uint64_t>(time_ms) >> (8 * i)));
  }
  return Sha256(in);
}

std::string Short(const std::string& hash) {
  return absl::BytesToHexString(hash).substr(0, 16);
}

// Whether the chain holds `head` (its record seq has that hash); a problem
// in words else.
std::string CheckHead(Store* store, const AuditHead& head, uint64_t chain_max,
                      absl::string_view source) {
  if (head.seq == 0) return "";
  if (head.seq > chain_max) {
    return absl::StrCat(source, " holds head ", head.seq, " (",
                        Short(head.hash), "...) but the log ends at ",
                        chain_max, ": the log was truncated");
  }
  auto record = store->GetAuditRecord(head.seq);
  if (!record.ok()) return std::string(record.status().message());
  if (!record->has_value()) {
    return absl::StrCat(source, " holds head ", head.seq,
                        ", which the log no longer has");
  }
  if ((*record)->hash != head.hash) {
    return absl::StrCat(source, " holds head ", head.seq, " (",
                        Short(head.hash), "...) but the log has ",
                        Short((*record)->hash),
                        "... there: the log was rewritten");
  }
  return "";
}

}  // namespace

absl::Status SignAuditHead(Store* store, const EcdsaSigner& signer,
                           int64_t now_ms) {
  auto head = store->GetAuditHead();
  if (!head.ok()) return head.status();
  if (head->seq == 0) return absl::OkStatus();
  auto signed_heads = store->ListSignedHeads();
  if (!signed_heads.ok()) return signed_heads.status();
  if (!signed_heads->empty() && signed_heads->back().head.seq >= head->seq) {
    if (signed_heads->back().head.seq > head->seq) {
      // The log is shorter than a head this node signed: never sign over
      // that (kontor audit verify reports it).
      return absl::DataLossError(absl::StrCat(
          "the audit log ends at ", head->seq, " but head ",
          signed_heads->back().head.seq, " was signed: truncated?"));
    }
    return absl::OkStatus();
  }
  if (!signed_heads->empty() &&
      head->seq == signed_heads->back().head.seq + 1) {
    // Nothing new but the record of the last signing.
    auto last = store->GetAuditRecord(head->seq);
    if (!last.ok()) return last.status();
    if (last->has_value() && (*last)->entry.action == kAuditAttest) {
      return absl::OkStatus();
    }
  }
  auto sig = SignBatch(signer, kAuditHeadLabel, {HeadDigest(*head, now_ms)});
  if (!sig.ok()) return sig.status();
  if (auto s = store->PutSignedHead(
          SignedAuditHead{*head, now_ms, (*sig)[0].SerializeAsString()});
      !s.ok()) {
    return s;
  }
  return store->AppendAudit(
      {AuditEntry{std::string(kAuditAttest), std::string(kAuditNodeActor), "",
                  "", "", "", "", absl::StrCat("signed head ", head->seq)}},
      now_ms);
}

absl::StatusOr<v1::AuditVerifyResponse> VerifyAudit(
    Store* store, const std::string& node_id, const EcdsaSigner& signer,
    const std::vector<std::string>& peers, const WitnessFetch& fetch) {
  v1::AuditVerifyResponse out;
  auto check = store->VerifyAuditChain();
  if (!check.ok()) return check.status();
  out.set_records(check->records);
  out.set_head_seq(check->head.seq);
  out.set_head_hash(check->head.hash);
  if (check->first_bad_seq != 0) {
    out.set_first_bad_seq(check->first_bad_seq);
    out.add_problems(
        absl::StrCat("record ", check->first_bad_seq, ": ", check->problem));
  }
  auto last = store->TailAudit(1);
  if (!last.ok()) return last.status();
  const uint64_t chain_max = last->empty() ? 0 : last->back().seq;

  // The node's own signed heads.
  auto signed_heads = store->ListSignedHeads();
  if (!signed_heads.ok()) return signed_heads.status();
  for (const SignedAuditHead& h : *signed_heads) {
    v1::BatchSignature sig;
    const bool parsed = sig.ParseFromString(h.signature);
    absl::Status s = parsed
                         ? VerifyBatchSignature(sig, kAuditHeadLabel,
                                                HeadDigest(h.head, h.time_ms),
                                                *signer.certificate())
                         : absl::DataLossError("does not parse");
    if (!s.ok()) {
      // Signed with a key since rotated, or forged: say which.
      out.add_problems(absl::StrCat("signed head ", h.head.seq,
                                    ": signature does not verify with the "
                                    "current signing key (",
                                    s.message(), ")"));
      continue;
    }
    out.set_signed_heads(out.signed_heads() + 1);
    out.set_covered_seq(std::max(out.covered_seq(), h.head.seq));
    if (std::string p = CheckHead(store, h.head, chain_max, "signed head");
        !p.empty()) {
      out.add_problems(p);
    }
  }

  // The chain records each signing: every head it says was signed must
  // still be kept (signed heads deleted to hide a truncation show here).
  {
    std::set<uint64_t> kept;
    for (const SignedAuditHead& h : *signed_heads) kept.insert(h.head.seq);
    uint64_t after = 0;
    for (;;) {
      auto page = store->ListAudit(after, 1000);
      if (!page.ok()) return page.status();
      if (page->empty()) break;
      for (const AuditRecord& r : *page) {
        after = r.seq;
        uint64_t signed_seq = 0;
        if (r.entry.action == kAuditAttest &&
            absl::SimpleAtoi(absl::StripPrefix(r.entry.detail, "signed head "),
                             &signed_seq) &&
            !kept.count(signed_seq)) {
          out.add_problems(
              absl::StrCat("record ", r.seq, " says head ", signed_seq,
                           " was signed, but no signed head ", signed_seq,
                           " is kept: signed heads were deleted"));
        }
      }
    }
  }

  // Witnesses: heads this node put in receipts its peers keep.
  if (fetch) {
    for (const std::string& peer : peers) {
      v1::AuditWitness* w = out.add_witnesses();
      w->set_peer(peer);
      auto receipts = fetch(peer);
      if (!receipts.ok()) {
        w->set_error(std::string(receipts.status().message()));
        continue;
      }
      for (const std::string& bytes : *receipts) {
        v1::Receipt receipt;
        v1::ReceiptBody body;
        if (!receipt.ParseFromString(bytes) ||
            !body.ParseFromString(receipt.body()) ||
            body.recipient() != node_id) {
          continue;  // not ours: nothing it witnesses
        }
        if (!VerifyBatchSignature(receipt.signature(), kReceiptBatchLabel,
                                  Sha256(receipt.body()), *signer.certificate())
                 .ok()) {
          continue;  // an older key's (rotated), or not ours
        }
        auto head = DecodeAuditHead(body.audit_head());
        if (!head.has_value()) continue;
        w->set_heads(w->heads() + 1);
        w->set_newest_seq(std::max(w->newest_seq(), head->seq));
        out.set_covered_seq(std::max(out.covered_seq(), head->seq));
        if (std::string p =
                CheckHead(store, *head, chain_max, absl::StrCat("peer ", peer));
            !p.empty()) {
          w->set_error(p);
          out.add_problems(p);
          break;
        }
      }
    }
  }
  out.set_ok(out.problems_size() == 0);
  return out;
}

}  // namespace kontor
