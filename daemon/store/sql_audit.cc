// AuditStore: the audit chain (chained by audit.h), signed heads, receipts,
// evidence.

#include "daemon/store/sql_store_internal.h"

namespace kontor {
namespace sql_store {

absl::Status SqlStore::AppendAudit(const std::vector<AuditEntry>& entries,
                                   int64_t now_ms) {
  return Write([&](sql::Tx* db) -> absl::Status {
    return AppendAuditOn(db, entries, now_ms);
  });
}

absl::StatusOr<std::vector<AuditRecord>> SqlStore::ListAudit(uint64_t after_seq,
                                                             size_t limit) {
  absl::MutexLock l(&read_mu_);
  Stmt s(reader_, absl::StrCat("SELECT ", kAuditCols,
                               " FROM audit WHERE seq > ? ORDER BY seq "
                               "LIMIT ?")
                      .c_str());
  s.Bind(1, static_cast<int64_t>(after_seq));
  s.Bind(2, static_cast<int64_t>(limit));
  std::vector<AuditRecord> out;
  while (s.Next()) out.push_back(ReadAudit(s));
  return out;
}

absl::StatusOr<std::vector<AuditRecord>> SqlStore::AuditOfMessage(
    const std::string& message_id, size_t limit) {
  absl::MutexLock l(&read_mu_);
  Stmt s(reader_, absl::StrCat("SELECT ", kAuditCols,
                               " FROM audit WHERE message_id = ? ORDER BY "
                               "seq LIMIT ?")
                      .c_str());
  if (auto st = s.status(); !st.ok()) return st;
  s.Bind(1, message_id);
  s.Bind(2, static_cast<int64_t>(limit));
  std::vector<AuditRecord> out;
  while (s.Next()) out.push_back(ReadAudit(s));
  return out;
}

absl::StatusOr<std::vector<AuditRecord>> SqlStore::TailAudit(size_t limit) {
  absl::MutexLock l(&read_mu_);
  Stmt s(reader_, absl::StrCat("SELECT ", kAuditCols,
                               " FROM audit ORDER BY seq DESC LIMIT ?")
                      .c_str());
  s.Bind(1, static_cast<int64_t>(limit));
  std::vector<AuditRecord> out;
  while (s.Next()) out.push_back(ReadAudit(s));
  std::reverse(out.begin(), out.end());
  return out;
}

absl::StatusOr<AuditHead> SqlStore::GetAuditHead() {
  absl::MutexLock l(&read_mu_);
  Stmt s(reader_, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1");
  if (!s.Next()) return AuditHead{0, GenesisHash()};
  return AuditHead{static_cast<uint64_t>(s.Int(0)), s.Text(1)};
}

absl::StatusOr<std::optional<AuditRecord>> SqlStore::GetAuditRecord(
    uint64_t seq) {
  absl::MutexLock l(&read_mu_);
  Stmt s(
      reader_,
      absl::StrCat("SELECT ", kAuditCols, " FROM audit WHERE seq = ?").c_str());
  s.Bind(1, static_cast<int64_t>(seq));
  if (!s.Next()) return std::optional<AuditRecord>();
  return std::optional<AuditRecord>(ReadAudit(s));
}

absl::StatusOr<AuditCheck> SqlStore::VerifyAuditChain() {
  absl::MutexLock l(&read_mu_);
  // One read transaction, so the chain is seen at one point in time.
  if (auto st = reader_->BeginRead(); !st.ok()) return st;
  AuditChainCheck chain;  // the rule: audit.h
  absl::Status read;
  {
    Stmt s(reader_,
           absl::StrCat("SELECT ", kAuditCols, " FROM audit ORDER BY seq")
               .c_str());
    while (s.Next()) {
      if (!chain.Add(ReadAudit(s))) break;
    }
    read = s.Done("audit");
  }
  reader_->Commit().IgnoreError();
  const AuditCheck& check = chain.check();
  if (check.first_bad_seq == 0 && !read.ok()) return read;
  return check;
}

absl::Status SqlStore::PutSignedHead(const SignedAuditHead& h) {
  return Write([&](sql::Tx* db) -> absl::Status {
    Stmt s(db,
           "INSERT INTO audit_heads(seq, hash, time_ms, signature) "
           "VALUES(?,?,?,?) ON CONFLICT(seq) DO UPDATE SET hash = "
           "excluded.hash, time_ms = excluded.time_ms, signature = "
           "excluded.signature");
    s.Bind(1, static_cast<int64_t>(h.head.seq)).BindBlob(2, h.head.hash);
    s.Bind(3, h.time_ms).BindBlob(4, h.signature);
    return s.Run("signed head");
  });
}

absl::StatusOr<std::vector<SignedAuditHead>> SqlStore::ListSignedHeads() {
  absl::MutexLock l(&read_mu_);
  Stmt s(reader_,
         "SELECT seq, hash, time_ms, signature FROM audit_heads ORDER BY "
         "seq");
  std::vector<SignedAuditHead> out;
  while (s.Next()) {
    out.push_back(
        SignedAuditHead{AuditHead{static_cast<uint64_t>(s.Int(0)), s.Text(1)},
                        s.Int(2), s.Text(3)});
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> SqlStore::ReceiptsFrom(
    const std::string& peer, size_t limit) {
  absl::MutexLock l(&read_mu_);
  Stmt s(reader_,
         "SELECT receipt FROM deliveries WHERE peer = ? AND receipt IS NOT "
         "NULL ORDER BY updated_ms DESC LIMIT ?");
  s.Bind(1, peer).Bind(2, static_cast<int64_t>(limit));
  std::vector<std::string> out;
  while (s.Next()) out.push_back(s.Text(0));
  return out;
}

absl::Status SqlStore::PutEvidence(const std::vector<EvidenceItem>& items,
                                   int64_t now_ms) {
  if (items.empty()) return absl::OkStatus();
  return Write([&](sql::Tx* db) -> absl::Status {
    for (const EvidenceItem& e : items) {
      Stmt ins(db,
               "INSERT INTO evidence(sha256, type, der, added_ms) "
               "VALUES(?,?,?,?) ON CONFLICT(sha256) DO NOTHING");
      ins.BindBlob(1, Sha256(e.der)).Bind(2, e.type).BindBlob(3, e.der);
      ins.Bind(4, now_ms);
      if (auto st = ins.Run("archive evidence"); !st.ok()) return st;
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<EvidenceItem>> SqlStore::ListEvidence() {
  absl::MutexLock l(&read_mu_);
  Stmt s(reader_, "SELECT type, der, added_ms FROM evidence ORDER BY added_ms");
  if (auto st = s.status(); !st.ok()) return st;
  std::vector<EvidenceItem> out;
  while (s.Next()) {
    out.push_back(EvidenceItem{s.Text(0), s.Text(1), s.Int(2)});
  }
  return out;
}

absl::Status SqlStore::AuditAlter(sql::Tx* db, const std::string& actor,
                                  const std::string& message_id,
                                  absl::string_view what, uint32_t n,
                                  int64_t now_ms) {
  if (n == 0) return absl::OkStatus();
  return AppendAuditOn(
      db,
      {AuditEntry{std::string(kAuditAlter),
                  actor.empty() ? "local-admin" : actor, message_id, "", "", "",
                  "", absl::StrCat(what, " ", n)}},
      now_ms);
}

absl::Status SqlStore::AppendAuditOn(sql::Tx* db,
                                     const std::vector<AuditEntry>& entries,
                                     int64_t time_ms) {
  std::vector<std::pair<AuditEntry, int64_t>> timed;
  timed.reserve(entries.size());
  for (const AuditEntry& e : entries) timed.emplace_back(e, time_ms);
  return AppendAuditOn(db, timed);
}

absl::Status SqlStore::AppendAuditOn(
    sql::Tx* db, const std::vector<std::pair<AuditEntry, int64_t>>& entries) {
  if (entries.empty()) return absl::OkStatus();
  AuditHead head{0, GenesisHash()};
  {
    Stmt h(db, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1");
    if (auto st = h.status(); !st.ok()) return st;
    if (h.Next()) {
      head = AuditHead{static_cast<uint64_t>(h.Int(0)), h.Text(1)};
    }
  }
  for (const AuditRecord& r : ChainAudit(head, entries)) {
    const AuditEntry& e = r.entry;
    Stmt ins(db,
             "INSERT INTO audit(seq, time_ms, action, actor, message_id, "
             "origin, peer, kind, purpose, detail, prev, hash) "
             "VALUES(?,?,?,?,?,?,?,?,?,?,?,?)");
    ins.Bind(1, static_cast<int64_t>(r.seq)).Bind(2, r.time_ms);
    ins.Bind(3, e.action).Bind(4, e.actor).Bind(5, e.message_id);
    ins.Bind(6, e.origin).Bind(7, e.peer).Bind(8, e.kind);
    ins.Bind(9, e.purpose).Bind(10, e.detail);
    ins.BindBlob(11, r.prev).BindBlob(12, r.hash);
    if (auto st = ins.Run("audit"); !st.ok()) return st;
  }
  return absl::OkStatus();
}

AuditRecord SqlStore::ReadAudit(Stmt& s) {
  AuditRecord r;
  r.seq = static_cast<uint64_t>(s.Int(0));
  r.time_ms = s.Int(1);
  r.entry = AuditEntry{s.Text(2), s.Text(3), s.Text(4), s.Text(5),
                       s.Text(6), s.Text(7), s.Text(8), s.Text(9)};
  r.prev = s.Text(10);
  r.hash = s.Text(11);
  return r;
}

}  // namespace sql_store
}  // namespace kontor
