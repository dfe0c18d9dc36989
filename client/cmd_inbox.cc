// kontor inbox, watch, ack: received messages.

#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "client/commands.h"
#include "daemon/common/ids.h"

namespace kontor {
namespace cli {
namespace {

void PrintEntry(const v1::InboxEntry& e) {
  printf("%6llu  %s  %-4s %-18s %s%s  %s\n",
         static_cast<unsigned long long>(e.seq()),
         FormatRfc3339Ms(e.received_unix_ms()).c_str(),
         Safe(e.origin(), 64).c_str(), Safe(e.kind(), 40).c_str(),
         Safe(e.message_id(), 40).c_str(), e.acked() ? " " : "*",
         Safe(e.subject(), 200).c_str());
}

void PrintEvent(const v1::DeliveryEvent& e) {
  printf("%6llu  %s  %-10s %s  to %s%s%s\n",
         static_cast<unsigned long long>(e.seq()),
         FormatRfc3339Ms(e.time_unix_ms()).c_str(), Safe(e.state(), 20).c_str(),
         Safe(e.message_id(), 40).c_str(), Safe(e.recipient(), 64).c_str(),
         e.reason().empty() ? "" : "  ", Safe(e.reason(), 400).c_str());
}

// Streams with `open(context, req)` and prints each item with `print`; a
// node that restarts (reload, upgrade) ends the stream: resume after the
// last item printed, so nothing is missed or printed twice. Gives up only
// when the node stays away.
template <typename Item, typename Open, typename Print>
int ResumableWatch(const Options& o, v1::WatchRequest req, Open open,
                   Print print) {
  bool seen_any = false;
  for (int failures = 0;;) {
    grpc::ClientContext c;
    auto reader = open(&c, req);
    Item e;
    while (reader->Read(&e)) {
      failures = 0;
      seen_any = true;
      if (o.json) {
        PrintJson(e);
      } else {
        print(e);
      }
      fflush(stdout);
      req.set_since_seq(e.seq());
      req.set_from_now(false);  // resume after what was printed
    }
    auto s = reader->Finish();
    if (s.ok()) {  // a watch has no natural end: treat it as an interruption
      s = grpc::Status(grpc::StatusCode::UNAVAILABLE, "watch stream ended");
    }
    if (s.error_code() == grpc::StatusCode::CANCELLED) {
      // Not us (we never cancel): a node shutting down cancels the calls
      // it has not finished. It comes back; resume.
      s = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                       "watch stream cancelled by the node");
    }
    if (!ShouldRetry(s, o) || ++failures > 30) return RpcFail(s, o);
    if (failures == 1 && seen_any) {
      fprintf(stderr, "kontor: node unavailable, resuming after seq %llu\n",
              static_cast<unsigned long long>(req.since_seq()));
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

}  // namespace

int Inbox(const Options& o, v1::Local::Stub* stub) {
  Args a(o.args, {"unread", "oldest-first"});
  if (auto e =
          a.Check({"unread", "limit", "kind", "from", "case", "oldest-first"});
      !e.empty()) {
    return Fail(kUsage, e);
  }
  if (!a.positional().empty()) {
    return Fail(kUsage, "inbox takes no positional arguments (see --help)");
  }
  v1::InboxRequest req;
  req.set_unread_only(a.Has("unread"));
  req.set_kind(a.Get("kind"));
  req.set_origin(a.Get("from"));
  req.set_case_ref(a.Get("case"));
  req.set_newest_first(!a.Has("oldest-first"));
  uint32_t limit = 1000;
  if (a.Has("limit") && !absl::SimpleAtoi(a.Get("limit"), &limit)) {
    return Fail(kUsage, "--limit: a number");
  }
  req.set_limit(limit);
  v1::InboxResponse resp;
  grpc::ClientContext c;
  SetDeadline(&c);
  auto s = stub->Inbox(&c, req, &resp);
  if (!s.ok()) return RpcFail(s, o);
  if (o.json) {
    PrintJson(resp);
    return kOk;
  }
  if (resp.entries().empty()) {
    const bool filtered =
        a.Has("unread") || a.Has("kind") || a.Has("from") || a.Has("case");
    printf(filtered ? "(no messages match)\n" : "(inbox empty)\n");
    return kOk;
  }
  printf("%6s  %-24s  %-4s %-18s %-37s %s\n", "SEQ", "RECEIVED", "FROM", "KIND",
         "ID (* unread)", "SUBJECT");
  for (const auto& e : resp.entries()) PrintEntry(e);
  return kOk;
}

int Ack(const Options& o, v1::Local::Stub* stub) {
  Args a(o.args, {});
  if (auto e = a.Check({"from"}); !e.empty()) return Fail(kUsage, e);
  if (a.positional().size() != 1) {
    return Fail(kUsage, "usage: kontor ack MSGID [--from ORIGIN]");
  }
  v1::AckRequest req;
  req.set_message_id(a.positional()[0]);
  req.set_origin(a.Get("from"));
  v1::AckResponse resp;
  grpc::ClientContext c;
  SetDeadline(&c);
  auto s = stub->Ack(&c, req, &resp);
  if (!s.ok()) return RpcFail(s, o);
  if (o.json) {
    PrintJson(resp);
  } else {
    const std::string id =
        resp.message_id().empty() ? req.message_id() : resp.message_id();
    printf("%s %s\n", Safe(id, 40).c_str(),
           resp.already() ? "was already acked" : "acked");
  }
  return kOk;
}

int Watch(const Options& o, v1::Local::Stub* stub) {
  Args a(o.args, {"sent"});
  if (auto e = a.Check({"since", "sent"}); !e.empty()) return Fail(kUsage, e);
  v1::WatchRequest req;
  if (a.Has("since")) {
    uint64_t since = 0;
    if (!absl::SimpleAtoi(a.Get("since"), &since)) {
      return Fail(kUsage, "--since: a sequence number (seq of a printed line)");
    }
    req.set_since_seq(since);
  } else {
    req.set_from_now(true);
  }
  if (a.Has("sent")) {
    return ResumableWatch<v1::DeliveryEvent>(
        o, req,
        [stub](grpc::ClientContext* c, const v1::WatchRequest& r) {
          return stub->WatchSent(c, r);
        },
        PrintEvent);
  }
  return ResumableWatch<v1::InboxEntry>(
      o, req,
      [stub](grpc::ClientContext* c, const v1::WatchRequest& r) {
        return stub->Watch(c, r);
      },
      PrintEntry);
}

}  // namespace cli
}  // namespace kontor
