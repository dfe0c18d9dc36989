// kontor audit, purge: the audit log and retention.

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "client/commands.h"
#include "daemon/common/ids.h"

namespace kontor {
namespace cli {

int Audit(const Options& o, v1::Local::Stub* stub) {
  Args a(o.args, {"local"});
  if (auto e = a.Check({"local", "limit"}); !e.empty()) return Fail(kUsage, e);
  const std::string what = a.positional().empty() ? "" : a.positional()[0];
  if (a.positional().size() != 1 || (what != "verify" && what != "tail")) {
    return Fail(kUsage,
                "usage: kontor audit verify [--local] | kontor audit tail "
                "[--limit N]");
  }
  if (what == "tail") {
    v1::AuditTailRequest req;
    if (a.Has("limit")) {
      uint32_t n = 0;
      if (!absl::SimpleAtoi(a.Get("limit"), &n) || n == 0) {
        return Fail(kUsage, "--limit: a positive number");
      }
      req.set_limit(n);
    }
    v1::AuditTailResponse resp;
    grpc::ClientContext c;
    SetDeadline(&c);
    auto s = stub->AuditTail(&c, req, &resp);
    if (!s.ok()) return RpcFail(s, o);
    if (o.json) {
      PrintJson(resp);
      return kOk;
    }
    for (const auto& r : resp.records()) {
      printf("%6llu  %s  %-8s %-16s %s%s%s  %s%s%s%s\n",
             static_cast<unsigned long long>(r.seq()),
             FormatRfc3339Ms(r.time_unix_ms()).c_str(),
             Safe(r.action(), 20).c_str(), Safe(r.actor(), 40).c_str(),
             r.origin().empty() ? "" : (Safe(r.origin(), 64) + "/").c_str(),
             Safe(r.message_id(), 40).c_str(),
             r.peer().empty() ? "" : (" peer " + Safe(r.peer(), 64)).c_str(),
             Safe(r.kind(), 20).c_str(),
             r.purpose().empty()
                 ? ""
                 : ("  purpose: " + Safe(r.purpose(), 60)).c_str(),
             r.detail().empty() ? "" : "  ", Safe(r.detail(), 120).c_str());
    }
    return kOk;
  }
  v1::AuditVerifyRequest req;
  req.set_local_only(a.Has("local"));
  v1::AuditVerifyResponse resp;
  grpc::ClientContext c;
  SetDeadline(&c);
  auto s = stub->AuditVerify(&c, req, &resp);
  if (!s.ok()) return RpcFail(s, o);
  if (o.json) {
    PrintJson(resp);
  } else {
    printf("%s: %llu record(s), head %llu %s\n",
           resp.ok() ? "audit log intact" : "AUDIT LOG BROKEN",
           static_cast<unsigned long long>(resp.records()),
           static_cast<unsigned long long>(resp.head_seq()),
           HexEncode(resp.head_hash()).substr(0, 16).c_str());
    printf("  signed heads checked: %u\n", resp.signed_heads());
    for (const auto& w : resp.witnesses()) {
      printf("  witness %-6s %u head(s), newest %llu%s%s\n",
             Safe(w.peer(), 64).c_str(), w.heads(),
             static_cast<unsigned long long>(w.newest_seq()),
             w.error().empty() ? "" : "  ", Safe(w.error(), 400).c_str());
    }
    if (resp.head_seq() > resp.covered_seq()) {
      printf(
          "  note: records %llu..%llu are not yet confirmed by a signed head "
          "or a peer's witness; only their chain was checked\n",
          static_cast<unsigned long long>(resp.covered_seq() + 1),
          static_cast<unsigned long long>(resp.head_seq()));
    }
    if (resp.first_bad_seq() != 0) {
      printf("  first broken record: %llu\n",
             static_cast<unsigned long long>(resp.first_bad_seq()));
    }
    for (const auto& p : resp.problems()) {
      printf("  problem: %s\n", Safe(p, 400).c_str());
    }
  }
  if (!resp.ok()) {
    return Fail(kFailed, absl::StrCat("audit log verification failed: ",
                                      resp.problems(0)));
  }
  return kOk;
}

int Purge(const Options& o, v1::Local::Stub* stub) {
  Args a(o.args, {"dry-run"});
  if (auto e = a.Check({"dry-run"}); !e.empty()) return Fail(kUsage, e);
  if (!a.positional().empty()) {
    return Fail(kUsage, "usage: kontor purge [--dry-run]");
  }
  v1::PurgeRequest req;
  req.set_dry_run(a.Has("dry-run"));
  v1::PurgeResponse resp;
  grpc::ClientContext c;
  SetDeadline(&c);
  auto s = stub->Purge(&c, req, &resp);
  if (!s.ok()) return RpcFail(s, o);
  if (o.json) {
    PrintJson(resp);
    return kOk;
  }
  for (const auto& m : resp.messages()) {
    printf("%s  %-4s %-18s %s  %s since %s (retention %u days)\n",
           resp.dry_run() ? "would purge" : "purged",
           Safe(m.origin(), 64).c_str(), Safe(m.kind(), 40).c_str(),
           Safe(m.message_id(), 40).c_str(), m.sent() ? "sent" : "received",
           FormatRfc3339Ms(m.kept_since_unix_ms()).c_str(), m.retention_days());
  }
  printf("%d message(s) %s\n", resp.messages_size(),
         resp.dry_run() ? "past their retention (nothing changed)" : "purged");
  return kOk;
}

}  // namespace cli
}  // namespace kontor
