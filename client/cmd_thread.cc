// kontor thread, template: cases and typed messages.

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/commands.h"
#include "daemon/common/ids.h"
#include "daemon/kinds/kinds.h"

namespace kontor {
namespace cli {

int Template(const Options& o, v1::Local::Stub*) {
  Args a(o.args, {});
  if (auto e = a.Check({"case", "in-reply-to"}); !e.empty()) {
    return Fail(kUsage, e);
  }
  if (a.positional().size() != 1) {
    return Fail(kUsage,
                "usage: kontor template KIND [--case REF] [--in-reply-to ID]");
  }
  kinds::TemplateOptions opts;
  opts.case_ref = a.Get("case");
  opts.in_reply_to = a.Get("in-reply-to");
  opts.now_ms = absl::ToUnixMillis(absl::Now());
  auto text = kinds::TemplateJson(a.positional()[0], opts);
  if (!text.ok()) return Fail(kUsage, std::string(text.status().message()));
  fputs(text->c_str(), stdout);
  if (!text->empty() && text->back() != '\n') printf("\n");
  return kOk;
}

int Thread(const Options& o, v1::Local::Stub* stub) {
  Args a(o.args, {});
  if (auto e = a.Check({"message"}); !e.empty()) return Fail(kUsage, e);
  v1::ThreadRequest req;
  if (a.positional().size() == 1 && !a.Has("message")) {
    req.set_case_ref(a.positional()[0]);
  } else if (a.positional().empty() && a.Has("message")) {
    req.set_message_id(a.Get("message"));
  } else {
    return Fail(kUsage,
                "usage: kontor thread CASE | kontor thread --message ID");
  }
  v1::ThreadResponse resp;
  grpc::ClientContext c;
  SetDeadline(&c);
  auto s = stub->Thread(&c, req, &resp);
  if (!s.ok()) return RpcFail(s, o);
  if (o.json) {
    PrintJson(resp);
    return kOk;
  }
  printf("Case %s: %d message(s)\n", Safe(resp.case_ref(), 200).c_str(),
         resp.messages_size());
  for (const auto& m : resp.messages()) {
    std::string peers;
    for (const auto& p : m.peers()) peers += (peers.empty() ? "" : ",") + p;
    const std::string dir = m.sent() ? absl::StrCat("sent to ", peers)
                                     : absl::StrCat("from ", m.origin());
    const std::string subject =
        m.erased_unix_ms() != 0
            ? absl::StrCat("(erased ", FormatRfc3339Ms(m.erased_unix_ms()), ")")
            : Safe(m.subject(), 60);
    printf("%s  %-18s %-12s %s  %-10s %s%s\n",
           FormatRfc3339Ms(m.created_unix_ms()).c_str(),
           Safe(m.kind(), 18).c_str(), Safe(dir, 200).c_str(),
           Safe(m.message_id(), 40).c_str(), Safe(m.state(), 20).c_str(),
           subject.c_str(),
           m.in_reply_to().empty()
               ? ""
               : absl::StrCat("  (reply to ",
                              Safe(m.in_reply_to().substr(0, 8)), ")")
                     .c_str());
  }
  return kOk;
}

}  // namespace cli
}  // namespace kontor
