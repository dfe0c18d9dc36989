#include "daemon/inbox/receiver.h"

#include <sys/stat.h>

#include <algorithm>
#include <optional>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "daemon/common/crash_point.h"
#include "daemon/common/ids.h"
#include "daemon/common/kinds.h"
#include "daemon/common/log.h"
#include "daemon/common/status_macros.h"
#include "daemon/envelope/receipt.h"
#include "daemon/kinds/kinds.h"

namespace kontor {
namespace {

// A refusal reason is signed into a receipt and logged: at most this many
// bytes of it (the rest is cut, see Printable).
constexpr size_t kMaxReasonBytes = 300;

}  // namespace

StagingOptions DefaultStaging(const std::string& data_dir,
                              uint64_t max_attachment_bytes) {
  StagingOptions staging;
  staging.data_dir = data_dir;
  staging.max_bytes_per_peer = 2 * max_attachment_bytes;
  staging.min_free_bytes = DefaultMinFreeBytes(data_dir);
  return staging;
}

absl::StatusOr<std::unique_ptr<Receiver>> Receiver::Create(
    ReceiverOptions options) {
  if (!IsValidNodeId(options.node_id)) {
    return absl::InvalidArgumentError("receiver: node_id is not a node id");
  }
  if (options.store == nullptr || options.opener == nullptr ||
      options.signer == nullptr || options.clock == nullptr) {
    return absl::InvalidArgumentError(
        "receiver: store, opener, signer and clock are required");
  }
  if (options.max_attachment_bytes > 0 && options.staging.data_dir.empty()) {
    return absl::InvalidArgumentError(
        "receiver: attachments need staging.data_dir");
  }
  return std::unique_ptr<Receiver>(new Receiver(std::move(options)));
}

Receiver::Receiver(ReceiverOptions options) : o_(std::move(options)) {
  if (o_.max_attachment_bytes > 0) {
    dirs_ = std::make_unique<AttachmentDirs>(o_.staging.data_dir);
    staging_ = std::make_unique<ChunkStaging>(o_.staging, o_.clock);
  }
}

// One batch from one authenticated peer, envelope by envelope through the
// stages of the receive path, then decided together: one signature over
// every new receipt, one transaction for what is accepted, one for what is
// taken into custody, and the answer.
//
//   Decide        per envelope:
//     ReadHeader      parse and check the header (a malformed one is
//                     refused, signed, with what could be read of it)
//     CheckIngress    the origin is the peer, or routed through it (else
//                     the whole batch is refused: no signed statement
//                     about anyone else's envelope)
//     for another node (routing.deliver_to): DecideRelay
//       RelayRule, Trace, RelayDuplicate, VerifyForCustody, chunks,
//       TakeCustody (FORWARDED)
//     for this node:
//       InboxDuplicate   answered with the stored receipt
//       OpenAndVerify    times, outer and inner signatures, decryption
//       CheckKind        the kind label fits the content
//       CheckPolicy      this origin may send this kind (policy.h)
//       CheckChunks      every attachment chunk here, whole
//       Accept           the inbox record; erase orders it carries
//   SignReceipts  one signature for every receipt decided in the batch,
//                 each carrying this node's audit head
//   StoreInbox    accepted and refused-for-good records, durably
//   SettleChunks  staged chunks follow their envelope's fate
//   StoreRelayed  custody, durably; the next hop is told
//   Answer        one receipt per envelope, in order; counted
class Receiver::Batch {
 public:
  Batch(Receiver* r, const std::string& peer,
        const std::vector<v1::Envelope>& envelopes)
      : r_(*r),
        peer_(peer),
        envelopes_(envelopes),
        now_(r->o_.clock->NowUnixMs()),
        items_(envelopes.size()) {}

  absl::Status Decide() {
    for (size_t i = 0; i < envelopes_.size(); ++i) {
      KONTOR_RETURN_IF_ERROR(DecideOne(i));
    }
    return absl::OkStatus();
  }
  absl::Status SignReceipts();
  absl::Status StoreInbox();
  void SettleChunks();
  absl::Status StoreRelayed();
  std::vector<std::string> Answer();

 private:
  // What happens to one envelope of a batch.
  struct Item {
    std::optional<std::string> ready_receipt;  // decided already (duplicate)
    bool needs_signature = false;
    bool store = false;  // accepted, or an authentic envelope refused for good
    v1::ReceiptBody body;
    InboxRecord record;
    bool relay = false;  // taken into custody, to pass on
    RelayedMessage relayed;
    const v1::Envelope* env = nullptr;
    bool has_chunks = false;  // the envelope lists attachment chunks
    bool replay = false;      // the same bytes were here already
    Refusal refusal;
    std::string digest;  // of the outer signed structure
  };

  absl::Status DecideOne(size_t i);
  // The header, or (not OK) the item is refused. A non-OK status in
  // `batch` refuses the whole batch.
  absl::StatusOr<v1::Header> ReadHeader(Item& item, bool relay,
                                        const std::string& deliver_to,
                                        absl::Status* batch);
  absl::Status CheckIngress(const v1::Header& header);
  absl::Status DecideRelay(Item& item, const v1::Header& header,
                           const std::string& deliver_to);
  absl::Status DecideForUs(size_t i, Item& item, const v1::Header& header);
  // The inbox record of an accepted message, and the erase orders it
  // carries (erased now if held, earlier in this batch too, else kept
  // until the target comes).
  absl::Status Accept(size_t i, Item& item, const v1::Header& header,
                      OpenedEnvelope& opened);

  void Refuse(Item& item, const Refusal& r) {
    item.body.set_verdict(r.verdict);
    item.body.set_refusal(r.code);
    // Signed and sent back: bounded, one line, whatever went into it.
    item.body.set_reason(PrintableLine(r.reason, kMaxReasonBytes));
  }
  // Refused for good, and remembered (authentic: its outer signature
  // verified), so that the same id is answered the same way.
  void RefuseAndRemember(Item& item, v1::RefusalCode code,
                         const std::string& reason) {
    item.refusal.verdict = v1::REFUSED;
    item.refusal.code = code;
    item.refusal.reason = reason;
    Refuse(item, item.refusal);
    item.store = true;
    item.record.accepted = false;
  }

  Receiver& r_;
  const std::string& peer_;
  const std::vector<v1::Envelope>& envelopes_;
  const int64_t now_;
  std::vector<Item> items_;
  VerifiedRoots verified_;  // one ECDSA verification per signed batch
};

absl::StatusOr<std::vector<std::string>> Receiver::Receive(
    const std::string& peer, const std::vector<v1::Envelope>& envelopes) {
  Batch batch(this, peer, envelopes);
  KONTOR_RETURN_IF_ERROR(batch.Decide());
  KONTOR_RETURN_IF_ERROR(batch.SignReceipts());
  KONTOR_RETURN_IF_ERROR(batch.StoreInbox());
  batch.SettleChunks();
  KONTOR_RETURN_IF_ERROR(batch.StoreRelayed());
  return batch.Answer();
}

absl::Status Receiver::Batch::DecideOne(size_t i) {
  const v1::Envelope& env = envelopes_[i];
  Item& item = items_[i];
  item.body.set_version(std::string(kReceiptVersion));
  item.body.set_recipient(r_.o_.node_id);
  item.body.set_time_unix_ms(now_);
  item.needs_signature = true;
  item.env = &env;
  item.has_chunks = env.chunks_size() > 0;
  // A copy for another node is relayed (if this node relays it at all).
  // The routing block is not signed: a node id or nothing.
  const std::string& deliver_to = env.routing().deliver_to();
  const bool relay = !deliver_to.empty() && deliver_to != r_.o_.node_id;
  absl::Status batch;
  absl::StatusOr<v1::Header> header =
      ReadHeader(item, relay, deliver_to, &batch);
  if (!batch.ok()) return batch;
  if (!header.ok()) return absl::OkStatus();  // refused, signed
  KONTOR_RETURN_IF_ERROR(CheckIngress(*header));
  item.body.set_message_id(header->message_id());
  item.body.set_origin(header->origin());
  item.digest = OuterDigest(env, header->suite_id());
  item.body.set_outer_digest(item.digest);
  if (relay) return DecideRelay(item, *header, deliver_to);
  return DecideForUs(i, item, *header);
}

absl::StatusOr<v1::Header> Receiver::Batch::ReadHeader(
    Item& item, bool relay, const std::string& deliver_to,
    absl::Status* batch) {
  const v1::Envelope& env = *item.env;
  Refusal& refusal = item.refusal;
  absl::StatusOr<v1::Header> header =
      relay && !IsValidNodeId(deliver_to)
          ? absl::InvalidArgumentError("routing.deliver_to is not a node id")
          : r_.o_.opener->ParseHeader(env, &refusal,
                                      relay ? deliver_to : std::string());
  if (header.ok()) return header;
  if (refusal.reason.empty()) {
    refusal.code = v1::REFUSAL_MALFORMED;
    refusal.reason = std::string(header.status().message());
  }
  // Fill in what can be read, so that the sender can match the refusal.
  // (Depends on the bytes only: the same bytes are always refused.)
  v1::Header partial;
  if (partial.ParseFromString(env.header())) {
    if (!partial.origin().empty() &&
        !r_.o_.routes.IngressAllowed(partial.origin(), peer_)) {
      KLOG(Security, "inbox")
          << "peer " << peer_ << " sent an envelope claiming origin "
          << Printable(partial.origin()) << ": batch refused";
      *batch = absl::PermissionDeniedError(
          "an envelope names another origin than the authenticated peer");
      return header.status();
    }  // Only values of the right shape go into the signed refusal.
    if (IsValidMessageId(partial.message_id())) {
      item.body.set_message_id(partial.message_id());
    }
    if (IsValidNodeId(partial.origin())) {
      item.body.set_origin(partial.origin());
    }
    item.body.set_outer_digest(OuterDigest(
        env, IsAllowedSuite(partial.suite_id()) ? partial.suite_id()
                                                : std::string(kSuiteV1)));
  }
  KLOG(Warning, "inbox") << "refused envelope "
                         << Printable(item.body.message_id()) << " from peer "
                         << peer_ << ": "
                         << PrintableLine(refusal.reason, kMaxReasonBytes);
  Refuse(item, refusal);
  return header.status();
}

absl::Status Receiver::Batch::CheckIngress(const v1::Header& header) {
  if (r_.o_.routes.IngressAllowed(header.origin(), peer_)) {
    return absl::OkStatus();
  }
  // A peer sends its own messages, and those of origins routed through it
  // by our config. No signed statement about anyone else's envelope.
  KLOG(Security, "inbox") << "peer " << peer_ << " sent envelope "
                          << header.message_id() << " with origin "
                          << header.origin() << ": batch refused";
  return absl::PermissionDeniedError(absl::StrCat(
      "origin ", header.origin(), " is not the authenticated peer ", peer_));
}

absl::Status Receiver::Batch::DecideRelay(Item& item, const v1::Header& header,
                                          const std::string& deliver_to) {
  // Custody only: a relay cannot decrypt, so it checks what it can and
  // signs FORWARDED. Its refusals are not final for the origin (only the
  // recipient's are); a deferral is what most of them are.
  const v1::Envelope& env = *item.env;
  const Routes& routes = r_.o_.routes;
  const std::string& self = r_.o_.node_id;
  Refusal& refusal = item.refusal;
  std::vector<std::string> trace(env.routing().trace().begin(),
                                 env.routing().trace().end());
  // The origin lists itself; each relay adds the peer it got it from.
  if (trace.empty() || trace.back() != peer_) trace.push_back(peer_);
  auto defer = [&](const std::string& why) {
    refusal.verdict = v1::DEFERRED;
    refusal.code = v1::REFUSAL_POLICY;
    refusal.reason = why;
    Refuse(item, refusal);
    return absl::OkStatus();
  };
  // RelayRule
  if (!routes.RelayAllowed(header.origin(), deliver_to) ||
      routes.NextHop(deliver_to).empty()) {
    KLOG(Security, "relay")
        << "peer " << peer_ << " asked to relay " << header.message_id()
        << " from " << header.origin() << " to " << Printable(deliver_to)
        << ": no such relay rule";
    return defer(absl::StrCat(self, " does not relay ", header.origin(), " to ",
                              Printable(deliver_to)));
  }
  // Trace
  if (trace.front() != header.origin() ||
      std::count(trace.begin(), trace.end(), self) > 0 ||
      std::count(trace.begin(), trace.end(), deliver_to) > 0 ||
      trace.size() >= kMaxHops) {
    KLOG(Security, "relay")
        << "message " << header.message_id() << " from " << header.origin()
        << " via " << peer_ << ": routing loop or too many hops (trace "
        << Printable(absl::StrJoin(trace, ">"), 200) << ")";
    return defer(absl::StrCat("routing loop or more than ", kMaxHops,
                              " hops at ", self));
  }
  // RelayDuplicate
  Store* store = r_.o_.store;
  auto seen =
      store->FindRelayed(header.origin(), header.message_id(), deliver_to);
  if (!seen.ok()) return seen.status();
  if (!seen->has_value()) {
    // The same id relayed to another destination with other content:
    // refused alone (never failing the batch for the others).
    auto facts =
        store->GetMessageFacts(RelayKey(header.origin(), header.message_id()));
    if (!facts.ok()) return facts.status();
    if (facts->has_value() && (*facts)->outer_digest != item.digest) {
      seen = std::optional<DedupEntry>(DedupEntry{(*facts)->outer_digest, ""});
    }
  }
  if (seen->has_value()) {
    if ((*seen)->outer_digest == item.digest && !(*seen)->receipt.empty()) {
      // The end-to-end receipt if it came back, else our custody one.
      item.ready_receipt = (*seen)->receipt;
      item.needs_signature = false;
      item.replay = true;
    } else {
      KLOG(Security, "relay")
          << "message " << header.message_id() << " from " << header.origin()
          << " arrived again with a different digest: refused";
      refusal.code = v1::REFUSAL_CONFLICT;
      refusal.reason = "this message id was already relayed with other content";
      Refuse(item, refusal);
    }
    return absl::OkStatus();
  }
  // VerifyForCustody
  if (!r_.o_.opener->CheckTimes(header, &refusal).ok() ||
      !r_.o_.opener->VerifyOuter(env, header, &refusal, &verified_).ok()) {
    KLOG(Security, "relay")
        << "not relaying " << header.message_id() << " from " << header.origin()
        << " to " << deliver_to << ": " << refusal.reason;
    Refuse(item, refusal);
    return absl::OkStatus();
  }
  if (!r_.ChunksReady(env, header, nullptr, &refusal)) {
    Refuse(item, refusal);
    return absl::OkStatus();
  }
  // TakeCustody
  item.body.set_verdict(v1::FORWARDED);
  item.body.set_deliver_to(deliver_to);
  item.relay = true;
  v1::Envelope onward = env;
  v1::Routing* routing = onward.mutable_routing();
  routing->clear_trace();
  for (const std::string& hop : trace) routing->add_trace(hop);
  routing->set_hop_count(static_cast<uint32_t>(trace.size()));
  routing->set_deliver_to(deliver_to);
  RelayedMessage& m = item.relayed;
  m.origin = header.origin();
  m.message_id = header.message_id();
  m.deliver_to = deliver_to;
  m.from_peer = peer_;
  m.received_ms = now_;
  m.priority = header.priority();
  m.created_ms = header.created_unix_ms();
  m.expires_ms = header.expires_unix_ms();
  m.envelope = onward.SerializeAsString();
  m.outer_digest = item.digest;
  m.chunk_count = static_cast<uint32_t>(env.chunks_size());
  return absl::OkStatus();
}

absl::Status Receiver::Batch::DecideForUs(size_t i, Item& item,
                                          const v1::Header& header) {
  const v1::Envelope& env = *item.env;
  Refusal& refusal = item.refusal;
  // InboxDuplicate: before any expensive or clock-dependent check, what
  // was stored is answered with its stored receipt, whatever the time now.
  auto seen = r_.o_.store->FindInbox(header.origin(), header.message_id());
  if (!seen.ok()) return seen.status();
  if (seen->has_value()) {
    if ((*seen)->outer_digest == item.digest) {
      item.ready_receipt = (*seen)->receipt;  // resent unchanged
      item.needs_signature = false;
      item.replay = true;
    } else {
      KLOG(Security, "inbox")
          << "message " << header.message_id() << " from " << header.origin()
          << " arrived again with a different digest: refused";
      refusal.code = v1::REFUSAL_CONFLICT;
      refusal.reason =
          "this message id was already received with other content";
      Refuse(item, refusal);
    }
    return absl::OkStatus();
  }

  // OpenAndVerify
  const absl::Status times = r_.o_.opener->CheckTimes(header, &refusal);
  absl::StatusOr<OpenedEnvelope> opened =
      times.ok() ? r_.o_.opener->Open(env, header, &refusal, &verified_)
                 : absl::StatusOr<OpenedEnvelope>(times);
  if (!opened.ok()) {
    const bool deferred = refusal.verdict == v1::DEFERRED;
    KLOG(Security, "inbox")
        << (deferred ? "deferred" : "refused") << " message "
        << header.message_id() << " from " << peer_ << ": " << refusal.reason;
    Refuse(item, refusal);
    // Only a permanent refusal of an envelope whose outer signature
    // verified is remembered: a forgery must not occupy the id of the real
    // message, and a deferral may turn out differently later.
    if (refusal.outer_verified && !deferred) {
      item.store = true;
      item.record.accepted = false;
    }
  } else if (!KindMatchesContent(opened->payload)) {
    // CheckKind: a kind label that does not fit the content would get
    // round roles and policy (both decide by kind): refused for good.
    RefuseAndRemember(
        item, v1::REFUSAL_MALFORMED,
        absl::StrCat("kind '", Printable(opened->payload.kind(), 40),
                     "' is unknown or does not match the content section"));
    KLOG(Security, "inbox")
        << "refused message " << header.message_id() << " from "
        << header.origin() << ": " << refusal.reason;
  } else if (!r_.o_.policy.MayAcceptFrom(header.origin(),
                                         opened->payload.kind())) {
    // CheckPolicy
    RefuseAndRemember(item, v1::REFUSAL_POLICY,
                      absl::StrCat(r_.o_.node_id, " does not accept ",
                                   Printable(opened->payload.kind(), 40),
                                   " from ", header.origin(), " (policy)"));
    KLOG(Warning, "inbox") << "refused message " << header.message_id()
                           << " from " << header.origin() << ": "
                           << refusal.reason;
    item.record.kind = opened->payload.kind();
    item.record.purpose = opened->payload.markings().purpose();
  } else if (!r_.ChunksReady(env, header, &opened->payload, &refusal)) {
    // CheckChunks
    Refuse(item, refusal);
    if (refusal.verdict == v1::REFUSED) {
      item.store = true;  // authentic, refused for good
      item.record.accepted = false;
    }
  } else {
    KONTOR_RETURN_IF_ERROR(Accept(i, item, header, *opened));
  }
  if (!item.record.accepted) {
    item.record.refusal = PrintableLine(refusal.reason, kMaxReasonBytes);
  }
  item.record.origin = header.origin();
  item.record.message_id = header.message_id();
  item.record.outer_digest = item.digest;
  item.record.received_ms = now_;
  return absl::OkStatus();
}

absl::Status Receiver::Batch::Accept(size_t i, Item& item,
                                     const v1::Header& header,
                                     OpenedEnvelope& opened) {
  const v1::Envelope& env = *item.env;
  item.body.set_verdict(v1::ACCEPTED);
  item.store = true;
  InboxRecord& r = item.record;
  if (env.chunks_size() > 0) {
    v1::Envelope refs;
    *refs.mutable_chunks() = env.chunks();
    r.chunk_refs = refs.SerializeAsString();
  }
  r.accepted = true;
  r.header = env.header();
  // The receipt names the signed content itself (evidence).
  item.body.set_inner_digest(Sha256(opened.inner_signed));
  r.erase_targets = kinds::EraseTargets(opened.payload, &r.erase_reason);
  for (const std::string& target : r.erase_targets) {
    // Erased now if held (or earlier in this batch), else kept until it
    // comes: the store applies the order either way, in one transaction.
    bool held = false;
    for (size_t j = 0; j < i && !held; ++j) {
      held = items_[j].store && items_[j].record.accepted &&
             items_[j].record.origin == header.origin() &&
             items_[j].record.message_id == target;
    }
    if (!held) {
      auto found = r_.o_.store->HasAccepted(header.origin(), target);
      if (!found.ok()) return found.status();
      held = *found;
    }
    if (held) {
      item.body.add_erased(target);
    } else {
      item.body.add_erase_kept(target);
    }
  }
  r.inner_signed = std::move(opened.inner_signed);
  r.payload = opened.inner.payload();
  r.kind = opened.payload.kind();
  r.subject = opened.payload.subject();
  r.case_ref = opened.payload.case_ref();
  r.in_reply_to = opened.payload.in_reply_to();
  r.purpose = opened.payload.markings().purpose();
  r.priority = header.priority();
  r.created_ms = header.created_unix_ms();
  r.expires_ms = header.expires_unix_ms();
  return absl::OkStatus();
}

absl::Status Receiver::Batch::SignReceipts() {
  std::vector<v1::ReceiptBody> bodies;
  std::vector<size_t> index;
  for (size_t i = 0; i < items_.size(); ++i) {
    if (items_[i].needs_signature) {
      bodies.push_back(items_[i].body);
      index.push_back(i);
    }
  }
  if (bodies.empty()) return absl::OkStatus();
  // Every receipt carries this node's audit chain head: the peers keep it,
  // witnesses against a rewritten or truncated log.
  auto head = r_.o_.store->GetAuditHead();
  if (!head.ok()) return head.status();
  const std::string encoded = EncodeAuditHead(*head);
  for (auto& b : bodies) b.set_audit_head(encoded);
  auto signed_receipts = kontor::SignReceipts(*r_.o_.signer, bodies);
  if (!signed_receipts.ok()) return signed_receipts.status();
  for (size_t k = 0; k < index.size(); ++k) {
    items_[index[k]].ready_receipt = (*signed_receipts)[k].SerializeAsString();
  }
  return absl::OkStatus();
}

absl::Status Receiver::Batch::StoreInbox() {
  std::vector<InboxRecord> records;
  std::vector<size_t> record_item;
  for (size_t i = 0; i < items_.size(); ++i) {
    if (!items_[i].store) continue;
    items_[i].record.receipt = *items_[i].ready_receipt;
    records.push_back(std::move(items_[i].record));
    record_item.push_back(i);
  }
  if (records.empty()) return absl::OkStatus();
  std::vector<std::optional<DedupEntry>> existing;
  if (auto s = r_.o_.store->InsertInbox(records, &existing); !s.ok()) {
    KLOG(Error, "inbox") << "cannot store " << records.size()
                         << " message(s) from " << peer_ << ": " << s.message();
    return absl::UnavailableError(
        absl::StrCat("recipient cannot store now: ", s.message()));
  }
  // The same (origin, id) may have been stored meanwhile (another stream,
  // or twice in this batch): answer as for a duplicate.
  for (size_t k = 0; k < records.size(); ++k) {
    if (!existing[k].has_value()) continue;
    Item& item = items_[record_item[k]];
    if (existing[k]->outer_digest == records[k].outer_digest) {
      item.ready_receipt = existing[k]->receipt;
    } else {
      return absl::AbortedError("conflicting duplicate in flight; retry");
    }
  }
  CrashPoint("receive.after_inbox_commit");
  KLOG(Debug, "inbox") << "stored " << records.size() << " from " << peer_;
  return absl::OkStatus();
}

void Receiver::Batch::SettleChunks() {
  // Staged chunks follow their envelope's fate: into in/ with an accepted
  // one, gone with one refused for good (a crash before this is repaired
  // at the next start: ChunkStaging::Recover).
  if (!r_.staging_) return;
  for (const Item& item : items_) {
    if (!item.has_chunks || item.relay) continue;
    const std::string& origin = item.body.origin();
    const std::string& id = item.body.message_id();
    if (!IsValidNodeId(origin) || !IsValidMessageId(id)) continue;
    if (item.store && item.record.accepted) {
      r_.ClaimChunks(*item.env, origin, id, ChunkHome::kInbox);
    } else if (item.body.verdict() == v1::REFUSED) {
      r_.staging_->Drop(origin, id);
    }
  }
}

absl::Status Receiver::Batch::StoreRelayed() {
  std::vector<RelayedMessage> relayed;
  std::vector<size_t> relayed_item;
  for (size_t i = 0; i < items_.size(); ++i) {
    if (!items_[i].relay) continue;
    items_[i].relayed.custody = *items_[i].ready_receipt;
    relayed.push_back(std::move(items_[i].relayed));
    relayed_item.push_back(i);
  }
  if (relayed.empty()) return absl::OkStatus();
  std::vector<std::optional<DedupEntry>> existing;
  if (auto s = r_.o_.store->InsertRelayed(relayed, &existing); !s.ok()) {
    KLOG(Error, "relay") << "cannot store " << relayed.size()
                         << " envelope(s) to relay from " << peer_ << ": "
                         << s.message();
    return absl::UnavailableError(
        absl::StrCat("relay cannot store now: ", s.message()));
  }
  std::set<std::string> hops;
  for (size_t k = 0; k < relayed.size(); ++k) {
    hops.insert(r_.o_.routes.NextHop(relayed[k].deliver_to));
    if (!existing[k].has_value()) continue;
    if (existing[k]->outer_digest == relayed[k].outer_digest &&
        !existing[k]->receipt.empty()) {
      items_[relayed_item[k]].ready_receipt = existing[k]->receipt;
    } else {
      return absl::AbortedError("conflicting duplicate in flight; retry");
    }
  }
  CrashPoint("relay.after_custody_commit");
  for (size_t k = 0; k < relayed.size(); ++k) {
    const Item& item = items_[relayed_item[k]];
    if (r_.staging_ && item.has_chunks) {
      r_.ClaimChunks(*item.env, relayed[k].origin, relayed[k].message_id,
                     ChunkHome::kRelay);
    }
  }
  KLOG(Debug, "relay") << "took " << relayed.size() << " from " << peer_;
  if (r_.o_.notify) {
    for (const std::string& hop : hops) r_.o_.notify(hop);
  }
  return absl::OkStatus();
}

std::vector<std::string> Receiver::Batch::Answer() {
  std::vector<std::string> out;
  out.reserve(items_.size());
  for (Item& item : items_) {
    if (item.replay) {
      r_.Count(peer_, "replay");
    } else if (item.relay) {
      r_.Count(peer_, "relayed");
    } else if (item.body.verdict() == v1::ACCEPTED) {
      r_.Count(peer_, "accepted");
    } else {
      r_.Count(peer_,
               item.body.verdict() == v1::DEFERRED ? "deferred" : "refused",
               &item.body);
    }
    out.push_back(std::move(*item.ready_receipt));
  }
  return out;
}

void Receiver::ClaimChunks(const v1::Envelope& env, const std::string& origin,
                           const std::string& id, ChunkHome home) {
  // The list was checked before the envelope was taken (ChunksReady).
  auto lists = ChunkLists(env.chunks(), o_.max_attachment_bytes);
  absl::Status s =
      lists.ok() ? staging_->Claim(origin, id, *lists, home) : lists.status();
  if (!s.ok()) {
    KLOG(Error, "inbox") << "attachment chunks of " << id << " from " << origin
                         << ": " << s.message();
  }
}

void Receiver::Count(const std::string& peer, const char* outcome,
                     const v1::ReceiptBody* refusal) const {
  if (o_.metrics == nullptr) return;
  o_.metrics
      ->GetCounter("kontor_envelopes_received_total",
                   "Envelopes received from peers, by outcome (accepted, "
                   "relayed, refused, deferred, replay)",
                   {{"peer", peer}, {"outcome", outcome}})
      .Increment();
  if (std::string(outcome) == "replay") {
    // An exact copy of what is stored: answered with the stored receipt.
    o_.metrics
        ->GetCounter("kontor_federation_replays_total",
                     "Envelopes received again, byte for byte (answered "
                     "with the stored receipt)",
                     {{"peer", peer}})
        .Increment();
  }
  if (refusal != nullptr) {
    std::string reason = v1::RefusalCode_Name(refusal->refusal());
    if (reason.rfind("REFUSAL_", 0) == 0) reason = reason.substr(8);
    o_.metrics
        ->GetCounter("kontor_refusals_total",
                     "Envelopes this node refused or deferred, by reason",
                     {{"reason", absl::AsciiStrToLower(reason)},
                      {"verdict", v1::Verdict_Name(refusal->verdict())}})
        .Increment();
  }
}

bool Receiver::KindMatchesContent(const v1::Payload& p) {
  if (!IsMessageKind(p.kind())) return false;
  if (p.kind() == "note")
    return p.content_case() == v1::Payload::CONTENT_NOT_SET;
  const auto* field = p.GetDescriptor()->FindFieldByName(
      std::string(kinds::ContentField(p.kind())));
  return field != nullptr && p.GetReflection()->HasField(p, field);
}

bool Receiver::ChunksReady(const v1::Envelope& env, const v1::Header& header,
                           const v1::Payload* payload, Refusal* refusal) {
  const bool wants = env.chunks_size() > 0 ||
                     (payload != nullptr && payload->attachments_size() > 0);
  if (!wants) return true;
  auto set = [&](v1::Verdict verdict, v1::RefusalCode code, std::string why) {
    refusal->verdict = verdict;
    refusal->code = code;
    refusal->reason = std::move(why);
    KLOG(Warning, "inbox") << (verdict == v1::DEFERRED ? "deferred" : "refused")
                           << " message " << header.message_id() << " from "
                           << header.origin() << ": " << refusal->reason;
    return false;
  };
  if (!dirs_) {
    return set(v1::REFUSED, v1::REFUSAL_POLICY,
               "this node does not take attachments");
  }
  auto lists = ChunkLists(env.chunks(), o_.max_attachment_bytes);
  if (!lists.ok()) {
    return set(v1::REFUSED,
               lists.status().code() == absl::StatusCode::kResourceExhausted
                   ? v1::REFUSAL_TOO_LARGE
                   : v1::REFUSAL_MALFORMED,
               absl::StrCat("attachments: ", lists.status().message()));
  }
  if (payload != nullptr) {
    bool match =
        lists->size() == static_cast<size_t>(payload->attachments_size());
    for (size_t a = 0; match && a < lists->size(); ++a) {
      const v1::Attachment& att = payload->attachments(static_cast<int>(a));
      match = att.chunk_count() == (*lists)[a].size() &&
              att.key().size() == kChunkKeyBytes && att.sha256().size() == 32;
    }
    if (!match) {
      return set(v1::REFUSED, v1::REFUSAL_MALFORMED,
                 "the signed attachment list does not match the chunks");
    }
  }
  auto missing =
      MissingChunks(*dirs_, header.origin(), header.message_id(), *lists);
  if (!missing.ok()) {
    return set(v1::DEFERRED, v1::REFUSAL_NONE,
               absl::StrCat("cannot read attachment chunks: ",
                            missing.status().message()));
  }
  if (*missing > 0) {
    return set(v1::DEFERRED, v1::REFUSAL_NONE,
               absl::StrCat("waiting for ", *missing, " of ", env.chunks_size(),
                            " attachment chunks"));
  }
  return true;
}

absl::Status Receiver::RecoverStaging() {
  if (!staging_) return absl::OkStatus();
  return staging_->Recover(
      [this](const std::string& origin, const std::string& id)
          -> absl::StatusOr<std::optional<ChunkHome>> {
        auto accepted = o_.store->HasAccepted(origin, id);
        if (!accepted.ok()) return accepted.status();
        if (*accepted) return std::optional<ChunkHome>(ChunkHome::kInbox);
        auto relayed = o_.store->GetMessageFacts(RelayKey(origin, id));
        if (!relayed.ok()) return relayed.status();
        if (relayed->has_value()) {
          return std::optional<ChunkHome>(ChunkHome::kRelay);
        }
        return std::optional<ChunkHome>();
      },
      [this](const std::string& origin) {
        const std::string hop = o_.routes.NextHop(origin);
        return hop.empty() ? origin : hop;
      });
}

absl::Status Receiver::PutChunk(const std::string& peer,
                                const v1::ChunkData& chunk) {
  if (!dirs_) {
    return absl::FailedPreconditionError("this node does not take attachments");
  }
  if (!IsValidNodeId(chunk.origin()) || !IsValidMessageId(chunk.message_id())) {
    return absl::InvalidArgumentError("bad origin or message id");
  }
  if (!o_.routes.IngressAllowed(chunk.origin(), peer)) {
    KLOG(Security, "inbox") << "peer " << peer << " sent a chunk of origin "
                            << chunk.origin() << ": refused";
    return absl::PermissionDeniedError(
        absl::StrCat("origin ", chunk.origin(), " is not the peer ", peer));
  }
  const uint64_t max_chunks = o_.max_attachment_bytes / kChunkPlainBytes + 1;
  if (chunk.attachment() >= kMaxAttachments || chunk.index() >= max_chunks ||
      chunk.data().size() < kChunkTagBytes ||
      chunk.data().size() > kMaxChunkFileBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("chunk ", chunk.attachment(), "/", chunk.index(), " of ",
                     chunk.data().size(), " bytes is out of bounds"));
  }
  // Write once: what is stored stays (a wrong file is removed when its
  // envelope comes, so that it can be sent again), and nothing is written
  // for a message already received. Staged until its envelope is accepted.
  auto received = o_.store->FindInbox(chunk.origin(), chunk.message_id());
  if (!received.ok()) return received.status();
  if (received->has_value()) return absl::OkStatus();
  return staging_->Put(peer, chunk.origin(), chunk.message_id(),
                       chunk.attachment(), chunk.index(), chunk.data());
}

absl::StatusOr<std::vector<std::pair<uint32_t, uint32_t>>> Receiver::Chunks(
    const std::string& peer, const std::string& origin,
    const std::string& message_id) {
  if (!dirs_) {
    return absl::FailedPreconditionError("this node does not take attachments");
  }
  if (!IsValidNodeId(origin) || !IsValidMessageId(message_id)) {
    return absl::InvalidArgumentError("bad origin or message id");
  }
  if (!o_.routes.IngressAllowed(origin, peer)) {
    return absl::PermissionDeniedError(
        absl::StrCat("origin ", origin, " is not the peer ", peer));
  }
  return PresentChunks(*dirs_, origin, message_id);
}

absl::Status Receiver::AcceptReturns(const std::string& peer,
                                     const std::vector<v1::Receipt>& receipts) {
  const int64_t now = o_.clock->NowUnixMs();
  std::vector<Settlement> settlements;
  std::set<std::string> hops;
  VerifiedRoots verified;
  for (const v1::Receipt& receipt : receipts) {
    v1::ReceiptBody claimed;
    if (!claimed.ParseFromString(receipt.body())) {
      KLOG(Security, "relay")
          << "peer " << peer << " returned a receipt that does not parse";
      continue;
    }
    const bool mine = claimed.origin() == o_.node_id;
    if (!IsValidMessageId(claimed.message_id()) ||
        !IsValidNodeId(claimed.origin())) {
      KLOG(Security, "relay")
          << "peer " << peer << " returned a receipt with a bad id or origin";
      continue;
    }
    const std::string key =
        mine ? claimed.message_id()
             : RelayKey(claimed.origin(), claimed.message_id());
    auto facts = o_.store->GetMessageFacts(key);
    if (!facts.ok()) return facts.status();
    auto row = o_.store->GetDelivery(key, claimed.recipient());
    if (!row.ok()) return row.status();
    if (!facts->has_value() || !row->has_value() ||
        (*facts)->origin != (mine ? "" : claimed.origin()) ||
        o_.routes.NextHop(claimed.recipient()) != peer ||
        o_.directory == nullptr) {
      KLOG(Security, "relay")
          << "peer " << peer << " returned a receipt for "
          << Printable(claimed.message_id()) << " from "
          << Printable(claimed.origin()) << " to "
          << Printable(claimed.recipient())
          << " that this node did not send that way: dropped";
      continue;
    }
    const std::string& state = (*row)->state;
    // Settled for good; a rejection only by the recipient's ACCEPTED for
    // exactly these bytes (a relay may have had other bytes refused first).
    if (state == kStateDelivered ||
        (state == kStateRejected && claimed.verdict() != v1::ACCEPTED)) {
      continue;
    }
    bool altered = false;
    auto body = VerifyEndToEndReceipt(
        receipt, *o_.directory, claimed.recipient(), claimed.origin(),
        claimed.message_id(), (*facts)->outer_digest, &altered, &verified);
    if (!body.ok()) {
      KLOG(Security, "relay")
          << "peer " << peer << " returned an invalid receipt for "
          << claimed.message_id() << ": " << body.status().message();
      continue;
    }
    Settlement x;
    x.message_id = key;
    x.peer = claimed.recipient();
    x.receipt = receipt.SerializeAsString();
    x.time_ms = now;
    if (body->verdict() == v1::ACCEPTED) {
      x.state = kStateDelivered;
      x.reason =
          ReceiptContentProblem(*body, receipt.body(), (*facts)->inner_digest);
      if (!x.reason.empty()) {
        LogLine(body->inner_digest().empty() ? LogLevel::kWarning
                                             : LogLevel::kSecurity,
                "relay")
            << "message " << claimed.message_id() << ": " << x.reason;
      }
    } else {
      x.state = body->refusal() == v1::REFUSAL_EXPIRED ? kStateExpired
                                                       : kStateRejected;
      x.reason = absl::StrCat(v1::RefusalCode_Name(body->refusal()), ": ",
                              Printable(body->reason(), kMaxReasonBytes));
      if (altered) {
        absl::StrAppend(&x.reason, " (what reached ", claimed.recipient(),
                        " was not the envelope sent: altered on the way)");
        KLOG(Security, "relay")
            << "message " << claimed.message_id() << " reached "
            << claimed.recipient() << " altered on the way";
      }
    }
    if (!mine) {
      x.return_to = o_.routes.NextHop(claimed.origin());
      if (x.return_to.empty()) {
        KLOG(Error, "relay")
            << "no route back to " << claimed.origin() << ": receipt for "
            << claimed.message_id() << " kept only here";
      } else {
        hops.insert(x.return_to);
      }
    }
    settlements.push_back(std::move(x));
  }
  if (!settlements.empty()) {
    if (auto s = o_.store->Settle(settlements); !s.ok()) return s;
    CrashPoint("return.after_settle");
  }
  if (o_.notify) {
    for (const std::string& hop : hops) o_.notify(hop);
  }
  return absl::OkStatus();
}

}  // namespace kontor
