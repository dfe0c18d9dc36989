// kontor status: the delivery state of a message sent from this node.

#include "absl/strings/str_join.h"
#include "client/commands.h"

namespace kontor {
namespace cli {

int Status(const Options& o, v1::Local::Stub* stub) {
  Args a(o.args, {});
  if (auto e = a.Check({}); !e.empty()) return Fail(kUsage, e);
  if (a.positional().size() != 1) {
    return Fail(kUsage, "usage: kontor status MSGID");
  }
  v1::StatusRequest req;
  req.set_message_id(a.positional()[0]);
  v1::StatusResponse resp;
  grpc::ClientContext c;
  SetDeadline(&c);
  auto s = stub->Status(&c, req, &resp);
  if (!s.ok()) return RpcFail(s, o);
  if (o.json) {
    PrintJson(resp);
    return kOk;
  }
  printf("%s  %s  %s  created %s  expires %s\n", resp.message_id().c_str(),
         Safe(resp.state(), 20).c_str(), PriorityName(resp.priority()).c_str(),
         TimeOrDash(resp.created_unix_ms()).c_str(),
         TimeOrDash(resp.expires_unix_ms()).c_str());
  for (const auto& d : resp.deliveries()) {
    printf("  %-10s %-10s attempts %u", Safe(d.recipient(), 64).c_str(),
           Safe(d.state(), 20).c_str(), d.attempts());
    if (!d.receipt().empty()) {
      printf("  receipt signed by %s at %s",
             Safe(d.receipt_signer(), 64).c_str(),
             TimeOrDash(d.receipt_time_unix_ms()).c_str());
    }
    if (!d.reason().empty()) {
      printf("  reason: %s", Safe(d.reason(), 400).c_str());
    }
    if (!d.last_error().empty()) {
      printf("  last error: %s", Safe(d.last_error(), 400).c_str());
    }
    printf("\n");
    if (d.erased_size() > 0) {
      printf("    erased (confirmed, signed): %s\n",
             Safe(absl::StrJoin(d.erased(), " "), 2000).c_str());
    }
    if (d.erase_kept_size() > 0) {
      printf("    not there yet, erased on arrival: %s\n",
             Safe(absl::StrJoin(d.erase_kept(), " "), 2000).c_str());
    }
  }
  return kOk;
}

}  // namespace cli
}  // namespace kontor
