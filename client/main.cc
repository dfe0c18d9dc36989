// kontor: the command-line client of a Kontor node (DESIGN.md §10).
//
// Exit codes: 0 ok, 1 failed, 2 usage or invalid input, 3 not found,
// 75 transient (retry later). Errors: one line on stderr.

#include <cstdio>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "client/commands.h"

#ifndef KONTOR_VERSION
#define KONTOR_VERSION "unknown"
#endif

namespace kontor {
namespace cli {
namespace {

const char kGlobalHelp[] =
    R"(Options (before or after the command):
  --node N    the node: a unix socket path (or unix:PATH), or host:port with
              --cert/--key/--ca (an operator certificate); default
              $KONTOR_NODE
  --json      machine-readable output: one JSON document (watch: one object
              per line)
  --help      help; `kontor COMMAND --help` for one command
  --version   the version of this kontor

Message ids: a unique prefix of 8 or more characters (as `kontor thread`
prints them) is taken wherever an id is.

Kinds: note, referral.consult, referral, referral.response, case.update,
consent.update, intel.report, intel.request, intel.response,
incident.report, sitrep, alert, restriction.update, erase.notice.
A note takes --subject and --body-file; every other kind takes
--payload-json F (see `kontor template KIND`).

Exit codes: 0 ok, 1 failed, 2 usage or invalid input (a refused
certificate too), 3 not found, 75 transient (retry later). Times are UTC,
RFC 3339. Text from other nodes is shown with control characters escaped;
`kontor show ID > FILE` writes the body as sent; --json keeps every string.
)";

void PrintUsage(FILE* out) {
  fprintf(out, "usage: kontor [--node N] [--json] COMMAND [ARGS]\n\n");
  fprintf(out, "Commands:\n");
  for (const Command& c : Commands()) {
    fprintf(out, "  %s\n", c.usage);
  }
  fprintf(out, "\n%s", kGlobalHelp);
}

void PrintCommandHelp(const Command& c) {
  printf("usage: kontor [--node N] [--json] %s\n\n%s\n", c.usage, c.help);
  printf(
      "Exit codes: 0 ok, 1 failed, 2 usage or invalid input, 3 not found, "
      "75 transient.\n");
}

}  // namespace

const std::vector<Command>& Commands() {
  static const std::vector<Command> kCommands = {
      {"send", Send, true,
       "send --to ID[,ID] --kind K (--body-file F | --payload-json F) ...",
       R"(Submits a message; prints its id once it is durable at this node.

  --to ID[,ID]          recipients (node ids of configured peers)
  --kind K              a note, or the kind of --payload-json
  --subject S           a note's subject
  --body-file F         a note's text (- for standard input)
  --payload-json F      a typed message (start from `kontor template KIND`)
  --priority P          routine (default), urgent or flash (alert: flash)
  --case REF            case reference (threads the message)
  --in-reply-to ID      the message this answers
  --expires-in SECONDS  default: the node's for the kind
  --client-key KEY      idempotency key (default: a new one; retries reuse
                        it, so a retry can never send twice)
  --attach FILE         an attachment (repeatable); streamed, any size up to
                        the node's limits.max_attachment_bytes)"},
      {"status", Status, true, "status MSGID",
       "Delivery state per recipient (queued, in_flight, forwarded, "
       "delivered,\nrejected, expired, suspended, cancelled), with the signed "
       "receipts\nand the reasons."},
      {"inbox", Inbox, true,
       "inbox [--unread] [--kind K] [--from NODE] [--case REF] [--limit N]",
       R"(Received messages, newest first (* = not acknowledged).

  --unread        only those not acknowledged (kontor ack)
  --kind K        only this kind
  --from NODE     only from this node
  --case REF      only this case (ignoring upper/lower case)
  --limit N       at most N (default 1000)
  --oldest-first  oldest first)"},
      {"show", Show, true,
       "show MSGID [--from ORIGIN] [--save-attachments DIR]",
       R"(A message, decrypted and rendered for its kind: received (signature
verified), or this node's copy of one sent. Reading it is audited.

  --from ORIGIN           the origin, if two nodes used the same id
  --save-attachments DIR  verify each attachment chunk by chunk and save it
                          in DIR (never overwriting))"},
      {"template", Template, false,
       "template KIND [--case REF] [--in-reply-to ID]",
       "An annotated example of KIND (protobuf JSON with // comments) for\n"
       "`kontor send --payload-json`. Needs no node."},
      {"thread", Thread, true, "thread CASE | thread --message ID",
       "A case's messages, sent and received, oldest first, with their "
       "state;\nerased ones are marked. The case reference ignores "
       "upper/lower case."},
      {"ack", Ack, true, "ack MSGID [--from ORIGIN]",
       "Marks a received message as handled (audited)."},
      {"watch", Watch, true, "watch [--since SEQ] | watch --sent [--since SEQ]",
       R"(Streams inbox messages as they arrive (--sent: what happens to the
messages sent from this node: delivered, rejected, expired, suspended,
cancelled, forwarded). With --since, those after SEQ first (--since 0:
all). Resumes by itself when the node restarts.)"},
      {"peers", Peers, true, "peers",
       "Connectivity, backoff, queue depth and oldest queued message per "
       "peer,\nand certificate and CRL expiry (with warnings)."},
      {"outbox", Outbox, true, "outbox [--state S] [--limit N]",
       "Deliveries of messages sent from this node (default: queued and in\n"
       "flight); S: queued, in_flight, delivered, rejected, expired, "
       "cancelled,\nsuspended. Others' messages: admins only."},
      {"cancel", Cancel, true, "cancel MSGID",
       "Cancels the deliveries of a message not made yet."},
      {"retry", Retry, true, "retry MSGID",
       "Queues suspended deliveries again, and queued ones at once."},
      {"audit", Audit, true, "audit verify [--local] | audit tail [--limit N]",
       R"(verify: recomputes the hash-chained audit log and checks it against
the node's signed heads and the heads its peers hold in receipts (--local:
not those). tail: the newest records (default 20). Admins only.)"},
      {"purge", Purge, true, "purge [--dry-run]",
       "Removes message content past its retention (config `retention`),\n"
       "keeping metadata and evidence; --dry-run lists what would go. "
       "Admins\nonly."},
      {"export", Export, true, "export MSGID --out DIR",
       R"(Evidence of a message sent or received: the signed message, the
receipts, certificates and CRLs, and a README.md (and verify.sh) of the
openssl commands that check them without Kontor. DIR must not exist yet.
An erased message exports what remains (receipts, digests, the signed
erasure confirmations).)"},
  };
  return kCommands;
}

int Main(int argc, char** argv) {
  Options o;
  if (const char* env = getenv("KONTOR_NODE")) o.node = env;
  bool help = false;
  int i = 1;
  for (; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    };
    if (a == "--help" || a == "-h" || a == "help") {
      help = true;
    } else if (a == "--version" || a == "-V") {
      printf("kontor %s\n", KONTOR_VERSION);
      return kOk;
    } else if (a == "--json") {
      o.json = true;
    } else if (a == "--node") {
      if (!value(&o.node)) return Fail(kUsage, "--node needs a value");
    } else if (a == "--cert") {
      if (!value(&o.cert)) return Fail(kUsage, "--cert needs a value");
    } else if (a == "--key") {
      if (!value(&o.key)) return Fail(kUsage, "--key needs a value");
    } else if (a == "--ca") {
      if (!value(&o.ca)) return Fail(kUsage, "--ca needs a value");
    } else if (a.rfind("--", 0) == 0) {
      return Fail(kUsage, absl::StrCat("unknown option ", a, " (see --help)"));
    } else {
      o.command = a;
      ++i;
      break;
    }
  }
  // Global options may also follow the command.
  for (; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--json") {
      o.json = true;
    } else if (a == "--node" && i + 1 < argc) {
      o.node = argv[++i];
    } else if (a == "--cert" && i + 1 < argc) {
      o.cert = argv[++i];
    } else if (a == "--key" && i + 1 < argc) {
      o.key = argv[++i];
    } else if (a == "--ca" && i + 1 < argc) {
      o.ca = argv[++i];
    } else if (a == "--help" || a == "-h") {
      help = true;
    } else {
      o.args.push_back(a);
    }
  }
  const Command* command = nullptr;
  for (const Command& c : Commands()) {
    if (o.command == c.name) command = &c;
  }
  if (help) {
    if (command != nullptr) {
      PrintCommandHelp(*command);
    } else {
      PrintUsage(stdout);
    }
    return kOk;
  }
  if (o.command.empty()) {
    PrintUsage(stderr);
    return kUsage;
  }
  if (command == nullptr) {
    return Fail(kUsage,
                absl::StrCat("unknown command '", o.command, "' (see --help)"));
  }
  if (!command->needs_node) return command->run(o, nullptr);
  if (o.node.empty()) {
    return Fail(kUsage, "no node: set KONTOR_NODE or pass --node");
  }
  std::string error;
  auto stub = Connect(o, &error);
  if (!stub) return Fail(kUsage, error);
  return command->run(o, stub.get());
}

}  // namespace cli
}  // namespace kontor

int main(int argc, char** argv) { return kontor::cli::Main(argc, argv); }
