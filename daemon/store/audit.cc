#include "daemon/store/audit.h"

#include "absl/strings/str_cat.h"
#include "daemon/crypto/primitives.h"

namespace kontor {
namespace {

void PutU64(std::string* out, uint64_t v) {
  for (int i = 7; i >= 0; --i) out->push_back(static_cast<char>(v >> (8 * i)));
}

void PutField(std::string* out, absl::string_view v) {
  const uint32_t n = static_cast<uint32_t>(v.size());
  for (int i = 3; i >= 0; --i) out->push_back(static_cast<char>(n >> (8 * i)));
  out->append(v.data(), v.size());
}

}  // namespace

std::string AuditRecordHash(const AuditRecord& r) {
  std::string in = "kontor-audit-v1";
  PutU64(&in, r.seq);
  PutU64(&in, static_cast<uint64_t>(r.time_ms));
  const AuditEntry& e = r.entry;
  for (const std::string* f : {&e.action, &e.actor, &e.message_id, &e.origin,
                               &e.peer, &e.kind, &e.purpose, &e.detail}) {
    PutField(&in, *f);
  }
  in += r.prev;
  return Sha256(in);
}

std::string GenesisHash() { return std::string(32, '\0'); }

std::string EncodeAuditHead(const AuditHead& head) {
  std::string out;
  PutU64(&out, head.seq);
  return out + head.hash;
}

std::optional<AuditHead> DecodeAuditHead(absl::string_view bytes) {
  if (bytes.size() != 40) return std::nullopt;
  AuditHead h;
  for (int i = 0; i < 8; ++i) {
    h.seq = (h.seq << 8) | static_cast<unsigned char>(bytes[i]);
  }
  h.hash = std::string(bytes.substr(8));
  return h;
}

std::vector<AuditRecord> ChainAudit(
    const AuditHead& head,
    const std::vector<std::pair<AuditEntry, int64_t>>& entries) {
  std::vector<AuditRecord> out;
  out.reserve(entries.size());
  AuditRecord r;
  r.seq = head.seq;
  r.prev = head.hash;
  for (const auto& [entry, time_ms] : entries) {
    r.seq += 1;
    r.time_ms = time_ms;
    r.entry = entry;
    r.hash = AuditRecordHash(r);
    out.push_back(r);
    r.prev = r.hash;
  }
  return out;
}

AuditChainCheck::AuditChainCheck() {
  check_.head = AuditHead{0, GenesisHash()};
}

bool AuditChainCheck::Add(const AuditRecord& r) {
  if (check_.first_bad_seq != 0) return false;
  ++check_.records;
  std::string problem;
  if (r.seq != check_.head.seq + 1) {
    check_.first_bad_seq = check_.head.seq + 1;
    check_.problem = absl::StrCat("record ", check_.head.seq + 1,
                                  " is missing (the next one is ", r.seq, ")");
    return false;
  }
  if (r.prev != check_.head.hash) {
    problem = "does not link to the record before it";
  } else if (AuditRecordHash(r) != r.hash) {
    problem = "its content does not match its hash (altered)";
  }
  if (!problem.empty()) {
    check_.first_bad_seq = r.seq;
    check_.problem = std::move(problem);
    return false;
  }
  check_.head = AuditHead{r.seq, r.hash};
  return true;
}

}  // namespace kontor
