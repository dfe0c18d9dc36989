// kontor peers, outbox, cancel, retry: the operator's view of delivery.

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "client/commands.h"
#include "daemon/common/ids.h"

namespace kontor {
namespace cli {

int Peers(const Options& o, v1::Local::Stub* stub) {
  Args a(o.args, {});
  if (auto e = a.Check({}); !e.empty()) return Fail(kUsage, e);
  v1::PeersResponse resp;
  grpc::ClientContext c;
  SetDeadline(&c);
  auto s = stub->Peers(&c, v1::PeersRequest(), &resp);
  if (!s.ok()) return RpcFail(s, o);
  if (o.json) {
    PrintJson(resp);
    return kOk;
  }
  const int64_t now = NowUnixMs();
  auto expiry = [&](const char* what, int64_t t, const char* indent) {
    if (t <= 0) return;
    const int64_t days = (t - now) / (24 * 3600 * 1000LL);
    printf("%s%s %s %s%s\n", indent, what, t < now ? "expired" : "expires",
           TimeOrDash(t).c_str(),
           t < now     ? "  WARNING: expired"
           : days < 30 ? "  WARNING: renew soon"
                       : "");
  };
  printf("node %s\n", Safe(resp.node_id(), 64).c_str());
  expiry("own TLS cert", resp.tls_cert_not_after_unix_ms(), "  ");
  expiry("own signing cert", resp.signing_cert_not_after_unix_ms(), "  ");
  expiry("own encryption cert", resp.encryption_cert_not_after_unix_ms(), "  ");
  for (const auto& p : resp.peers()) {
    std::string state = p.connected() ? "up" : "down";
    if (p.consecutive_failures() == 0 && !p.connected()) state = "idle";
    if (!p.unusable_reason().empty()) state = "UNUSABLE";
    const std::string where = p.via().empty() ? p.address() : "via " + p.via();
    printf("  %-10s %-21s %-5s queue %llu", Safe(p.id(), 64).c_str(),
           Safe(where, 200).c_str(), state.c_str(),
           static_cast<unsigned long long>(p.queue_depth()));
    if (p.oldest_queued_unix_ms() > 0) {
      printf(" (oldest %llds)",
             static_cast<long long>((now - p.oldest_queued_unix_ms()) / 1000));
    }
    if (p.consecutive_failures() > 0) {
      printf("  backoff: %u failures, next try %s", p.consecutive_failures(),
             TimeOrDash(p.next_attempt_unix_ms()).c_str());
    }
    printf("\n");
    if (!p.unusable_reason().empty()) {
      printf("             unusable: %s\n",
             Safe(p.unusable_reason(), 400).c_str());
    }
    if (!p.last_error().empty()) {
      printf("             last error: %s\n",
             Safe(p.last_error(), 400).c_str());
    }
    expiry("signing cert", p.signing_cert_not_after_unix_ms(), "             ");
    expiry("encryption cert", p.encryption_cert_not_after_unix_ms(),
           "             ");
    const int64_t crl = p.crl_next_update_unix_ms();
    if (crl > 0) {
      const int64_t days = (crl - now) / (24 * 3600 * 1000LL);
      printf("             CRL next update %s%s\n", TimeOrDash(crl).c_str(),
             crl < now  ? "  WARNING: CRL out of date, peer refused"
             : days < 7 ? "  WARNING: CRL must be renewed soon"
                        : "");
    }
  }
  return kOk;
}

int Outbox(const Options& o, v1::Local::Stub* stub) {
  Args a(o.args, {});
  if (auto e = a.Check({"state", "limit"}); !e.empty()) return Fail(kUsage, e);
  v1::OutboxRequest req;
  req.set_state(a.Get("state"));
  uint32_t limit = 1000;
  if (a.Has("limit") && !absl::SimpleAtoi(a.Get("limit"), &limit)) {
    return Fail(kUsage, "--limit: a number");
  }
  req.set_limit(limit);
  v1::OutboxResponse resp;
  grpc::ClientContext c;
  SetDeadline(&c);
  auto s = stub->Outbox(&c, req, &resp);
  if (!s.ok()) return RpcFail(s, o);
  if (o.json) {
    PrintJson(resp);
    return kOk;
  }
  if (resp.entries().empty()) {
    printf("(nothing)\n");
    return kOk;
  }
  for (const auto& e : resp.entries()) {
    printf("%s  %-6s %-10s %-8s created %s  attempts %u%s%s\n",
           Safe(e.message_id(), 40).c_str(), Safe(e.recipient(), 64).c_str(),
           Safe(e.state(), 20).c_str(), PriorityName(e.priority()).c_str(),
           FormatRfc3339Ms(e.created_unix_ms()).c_str(), e.attempts(),
           e.last_error().empty() ? "" : "  last error: ",
           Safe(e.last_error(), 400).c_str());
  }
  return kOk;
}

int Retry(const Options& o, v1::Local::Stub* stub) {
  Args a(o.args, {});
  if (auto e = a.Check({}); !e.empty()) return Fail(kUsage, e);
  if (a.positional().size() != 1) {
    return Fail(kUsage, "usage: kontor retry MSGID");
  }
  v1::RetryRequest req;
  req.set_message_id(a.positional()[0]);
  v1::RetryResponse resp;
  grpc::ClientContext c;
  SetDeadline(&c);
  auto s = stub->Retry(&c, req, &resp);
  if (!s.ok()) return RpcFail(s, o);
  if (o.json) {
    PrintJson(resp);
  } else {
    printf("%u delivery(ies) queued again\n", resp.retried());
  }
  return kOk;
}

int Cancel(const Options& o, v1::Local::Stub* stub) {
  Args a(o.args, {});
  if (auto e = a.Check({}); !e.empty()) return Fail(kUsage, e);
  if (a.positional().size() != 1) {
    return Fail(kUsage, "usage: kontor cancel MSGID");
  }
  v1::CancelRequest req;
  req.set_message_id(a.positional()[0]);
  v1::CancelResponse resp;
  grpc::ClientContext c;
  SetDeadline(&c);
  auto s = stub->Cancel(&c, req, &resp);
  if (!s.ok()) return RpcFail(s, o);
  if (o.json) {
    PrintJson(resp);
  } else {
    printf("%u delivery(ies) cancelled\n", resp.cancelled());
  }
  return kOk;
}

}  // namespace cli
}  // namespace kontor
