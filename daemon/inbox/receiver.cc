#include "daemon/inbox/receiver.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "daemon/common/crash_point.h"
#include "daemon/common/ids.h"
#include "daemon/common/log.h"
#include "daemon/envelope/receipt.h"

namespace kontor {
namespace {

// What happens to one envelope of a batch.
struct Item {
  std::optional<std::string> ready_receipt;  // decided already (duplicate)
  bool needs_signature = false;
  bool store = false;  // accepted, or an authentic envelope refused for good
  v1::ReceiptBody body;
  InboxRecord record;
};

}  // namespace

Receiver::Receiver(std::string node_id, Store* store, const Opener* opener,
                   std::shared_ptr<const EcdsaSigner> signer,
                   const Clock* clock)
    : node_id_(std::move(node_id)),
      store_(store),
      opener_(opener),
      signer_(std::move(signer)),
      clock_(clock) {}

absl::StatusOr<std::vector<std::string>> Receiver::Receive(
    const std::string& peer, const std::vector<v1::Envelope>& envelopes) {
  const int64_t now = clock_->NowUnixMs();
  std::vector<Item> items(envelopes.size());
  VerifiedRoots verified;  // one ECDSA verification per signed batch

  for (size_t i = 0; i < envelopes.size(); ++i) {
    const v1::Envelope& env = envelopes[i];
    Item& item = items[i];
    item.body.set_version(std::string(kReceiptVersion));
    item.body.set_recipient(node_id_);
    item.body.set_time_unix_ms(now);
    item.needs_signature = true;

    Refusal refusal;
    auto refuse = [&](const Refusal& r) {
      item.body.set_verdict(r.verdict);
      item.body.set_refusal(r.code);
      item.body.set_reason(r.reason);
    };
    auto header = opener_->ParseHeader(env, &refusal);
    if (!header.ok()) {
      // Fill in what can be read, so that the sender can match the refusal.
      // (Depends on the bytes only: the same bytes are always refused.)
      v1::Header partial;
      if (partial.ParseFromString(env.header())) {
        if (!partial.origin().empty() && partial.origin() != peer) {
          KLOG(Security, "inbox")
              << "peer " << peer << " sent an envelope claiming origin "
              << Printable(partial.origin()) << ": batch refused";
          return absl::PermissionDeniedError(
              "an envelope names another origin than the authenticated peer");
        }
        item.body.set_message_id(partial.message_id());
        item.body.set_origin(partial.origin());
        item.body.set_outer_digest(OuterDigest(env, partial.suite_id()));
      }
      KLOG(Warning, "inbox")
          << "refused envelope " << Printable(item.body.message_id())
          << " from peer " << peer << ": " << refusal.reason;
      refuse(refusal);
      continue;
    }
    if (header->origin() != peer) {
      // Relaying comes later; until then a peer sends only its own
      // messages. No signed statement about someone else's envelope.
      KLOG(Security, "inbox")
          << "peer " << peer << " sent envelope " << header->message_id()
          << " with origin " << header->origin() << ": batch refused";
      return absl::PermissionDeniedError(
          absl::StrCat("origin ", header->origin(),
                       " is not the authenticated peer ", peer));
    }
    item.body.set_message_id(header->message_id());
    item.body.set_origin(header->origin());
    const std::string digest = OuterDigest(env, header->suite_id());
    item.body.set_outer_digest(digest);

    // Dedup before any expensive or clock-dependent check: what was stored
    // is answered with its stored receipt, whatever the time now.
    auto seen = store_->FindInbox(header->origin(), header->message_id());
    if (!seen.ok()) return seen.status();
    if (seen->has_value()) {
      if ((*seen)->outer_digest == digest) {
        item.ready_receipt = (*seen)->receipt;  // resent unchanged
        item.needs_signature = false;
      } else {
        KLOG(Security, "inbox")
            << "message " << header->message_id() << " from "
            << header->origin()
            << " arrived again with a different digest: refused";
        refusal.code = v1::REFUSAL_CONFLICT;
        refusal.reason =
            "this message id was already received with other content";
        refuse(refusal);
      }
      continue;
    }

    const absl::Status times = opener_->CheckTimes(*header, &refusal);
    absl::StatusOr<OpenedEnvelope> opened =
        times.ok() ? opener_->Open(env, *header, &refusal, &verified)
                   : absl::StatusOr<OpenedEnvelope>(times);
    if (!opened.ok()) {
      const bool deferred = refusal.verdict == v1::DEFERRED;
      KLOG(Security, "inbox")
          << (deferred ? "deferred" : "refused") << " message "
          << header->message_id() << " from " << peer << ": " << refusal.reason;
      refuse(refusal);
      // Only a permanent refusal of an envelope whose outer signature
      // verified is remembered: a forgery must not occupy the id of the real
      // message, and a deferral may turn out differently later.
      if (refusal.outer_verified && !deferred) {
        item.store = true;
        item.record.accepted = false;
      }
    } else {
      item.body.set_verdict(v1::ACCEPTED);
      item.store = true;
      InboxRecord& r = item.record;
      r.accepted = true;
      r.header = env.header();
      r.inner_signed = std::move(opened->inner_signed);
      r.payload = opened->inner.payload();
      r.kind = opened->payload.kind();
      r.subject = opened->payload.subject();
      r.case_ref = opened->payload.case_ref();
      r.priority = header->priority();
      r.created_ms = header->created_unix_ms();
      r.expires_ms = header->expires_unix_ms();
    }
    item.record.origin = header->origin();
    item.record.message_id = header->message_id();
    item.record.outer_digest = digest;
    item.record.received_ms = now;
  }

  // One signature for every receipt decided in this batch.
  std::vector<v1::ReceiptBody> bodies;
  std::vector<size_t> index;
  for (size_t i = 0; i < items.size(); ++i) {
    if (items[i].needs_signature) {
      bodies.push_back(items[i].body);
      index.push_back(i);
    }
  }
  if (!bodies.empty()) {
    auto signed_receipts = SignReceipts(*signer_, bodies);
    if (!signed_receipts.ok()) return signed_receipts.status();
    for (size_t k = 0; k < index.size(); ++k) {
      items[index[k]].ready_receipt = (*signed_receipts)[k].SerializeAsString();
    }
  }

  std::vector<InboxRecord> records;
  std::vector<size_t> record_item;
  for (size_t i = 0; i < items.size(); ++i) {
    if (!items[i].store) continue;
    items[i].record.receipt = *items[i].ready_receipt;
    records.push_back(std::move(items[i].record));
    record_item.push_back(i);
  }
  if (!records.empty()) {
    std::vector<std::optional<DedupEntry>> existing;
    if (auto s = store_->InsertInbox(records, &existing); !s.ok()) {
      KLOG(Error, "inbox") << "cannot store " << records.size()
                           << " message(s) from " << peer << ": "
                           << s.message();
      return absl::UnavailableError(
          absl::StrCat("recipient cannot store now: ", s.message()));
    }
    // The same (origin, id) may have been stored meanwhile (another stream,
    // or twice in this batch): answer as for a duplicate.
    for (size_t k = 0; k < records.size(); ++k) {
      if (!existing[k].has_value()) continue;
      Item& item = items[record_item[k]];
      if (existing[k]->outer_digest == records[k].outer_digest) {
        item.ready_receipt = existing[k]->receipt;
      } else {
        return absl::AbortedError("conflicting duplicate in flight; retry");
      }
    }
    CrashPoint("receive.after_inbox_commit");
    KLOG(Debug, "inbox") << "stored " << records.size() << " from " << peer;
  }

  std::vector<std::string> out;
  out.reserve(items.size());
  for (Item& item : items) out.push_back(std::move(*item.ready_receipt));
  return out;
}

}  // namespace kontor
