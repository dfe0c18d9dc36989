// The routing block (Envelope.routing: hop_count, trace, deliver_to), which
// is not signed and which each relay rewrites, as the receiver reads it:
// Receiver::Receive of real envelopes (sealed and signed by the harness, so
// every check up to the routing decision passes) with a mutated routing
// block, from a mutated peer, under mutated routes; relaying and custody
// included. Also the Routes queries on their own.
//
// Input: kontor.fuzz.RoutingInput. The store is shared by many inputs
// (fuzz_support.h: TestNode), each with message ids of its own.
// Invariants: one receipt per envelope, each signed by fi and naming the
// envelope; an envelope answered ACCEPTED or FORWARDED is answered with the
// same bytes when it comes again.
#include <algorithm>
#include <cstdint>
#include <map>

#include "absl/strings/str_cat.h"
#include "daemon/common/ids.h"
#include "daemon/envelope/receipt.h"
#include "tests/fuzz/fuzz_support.h"

namespace kontor::fuzz {
namespace {

constexpr int kMaxItems = 8;

void Run(const RoutingInput& in) {
  const World& w = GetWorld();
  const Routes routes = MakeRoutes(in.routes());
  for (int i = 0; i < in.routes().queries_size() && i < 16; ++i) {
    const auto& q = in.routes().queries(i);
    routes.NextHop(q.destination());
    routes.DestinationsVia(q.origin());
    routes.IngressAllowed(q.origin(), q.destination());
    routes.RelayAllowed(q.origin(), q.destination());
  }

  TestNode& node = TestNode::Shared();
  // The receipts are signed by fi, whose certificate is valid for a year.
  node.Prepare(in.routes(),
               std::clamp<int64_t>(in.clock_offset_ms(), -1800 * 1000,
                                   300LL * 86400 * 1000),
               0);
  std::vector<v1::Envelope> envs;
  std::map<Node, std::vector<size_t>> by_origin;
  for (int i = 0; i < in.items_size() && i < kMaxItems; ++i) {
    const RoutingInput::Item& item = in.items(i);
    if (item.duplicate() && !envs.empty()) {
      envs.push_back(envs[item.same_id_as() % envs.size()]);
      continue;
    }
    v1::Header h;
    h.set_message_id(
        node.Id(100 + (item.same_id_as() != 0 ? item.same_id_as() % kMaxItems
                                              : static_cast<uint32_t>(i))));
    const Node origin = item.origin() == XX ? EE : item.origin();
    h.set_origin(w.id(origin));
    for (int r = 0; r < item.recipients_size() && r < 4; ++r) {
      const Node to = item.recipients(r) == XX ? LV : item.recipients(r);
      h.add_recipients(w.id(to));
    }
    if (h.recipients().empty()) h.add_recipients("lv");
    h.set_priority(v1::ROUTINE);
    h.set_created_unix_ms(AddSat(w.now_ms, item.created_offset_ms()));
    h.set_expires_unix_ms(
        AddSat(h.created_unix_ms(),
               item.lifetime_ms() == 0 ? 3600 * 1000 : item.lifetime_ms()));
    v1::Payload payload = item.payload();
    if (payload.kind().empty()) payload.set_kind("note");
    Sealer sealer(w.id(origin), w.signers[World::Index(origin)], &w.directory);
    auto env = sealer.Seal(h, payload);
    if (!env.ok()) continue;
    by_origin[origin].push_back(envs.size());
    envs.push_back(std::move(*env));
  }
  // One outer signature per origin's batch, then the unsigned routing.
  for (const auto& [origin, indexes] : by_origin) {
    std::vector<v1::Envelope*> batch;
    for (size_t k : indexes) batch.push_back(&envs[k]);
    Sealer(w.id(origin), w.signers[World::Index(origin)], &w.directory)
        .SignOuter(batch)
        .IgnoreError();
  }
  for (size_t k = 0, i = 0;
       k < envs.size() && i < static_cast<size_t>(in.items_size()); ++i, ++k) {
    *envs[k].mutable_routing() = in.items(static_cast<int>(i)).routing();
  }
  if (envs.empty()) return;

  const std::string peer = in.peer().empty() ? "ee" : in.peer();
  auto first = node.receiver->Receive(peer, envs);
  if (!first.ok()) {
    Note(first.status().ToString());
    return;
  }
  Require(first->size() == envs.size(), "not one receipt per envelope");
  std::vector<v1::ReceiptBody> bodies(envs.size());
  for (size_t k = 0; k < envs.size(); ++k) {
    v1::Receipt receipt;
    Require(receipt.ParseFromString((*first)[k]) &&
                bodies[k].ParseFromString(receipt.body()),
            "a receipt does not parse");
    Require(bodies[k].recipient() == "fi", "a receipt not by fi");
    Note(absl::StrCat("envelope ", k, ": ",
                      v1::Verdict_Name(bodies[k].verdict()), " ",
                      bodies[k].reason()));
    v1::Header h;
    h.ParseFromString(envs[k].header());
    auto verified =
        VerifyReceipt(receipt, w.directory, "fi", h.origin(), h.message_id(),
                      OuterDigest(envs[k], h.suite_id()));
    Require(verified.ok(), "a receipt does not verify for its envelope");
  }
  auto again = node.receiver->Receive(peer, envs);
  if (!again.ok()) return;
  for (size_t k = 0; k < envs.size(); ++k) {
    if (bodies[k].verdict() == v1::ACCEPTED ||
        bodies[k].verdict() == v1::FORWARDED) {
      Require((*again)[k] == (*first)[k],
              "an accepted envelope got another receipt the second time");
    }
  }
}

}  // namespace
}  // namespace kontor::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  kontor::fuzz::InitFuzzing();
  kontor::fuzz::GetWorld();
  return 0;
}

KONTOR_FUZZ_PROTO_INPUT(kontor::fuzz::RoutingInput)

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kontor::fuzz::RoutingInput in;
  if (!kontor::fuzz::ParseInput(data, size, &in)) return -1;
  kontor::fuzz::Run(in);
  return 0;
}
