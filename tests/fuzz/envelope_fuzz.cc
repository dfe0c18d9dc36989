// Envelopes as a peer sends them, opened as the receiver does: OuterDigest,
// Opener::ParseHeader, CheckTimes, VerifyOuter, Open (CMS decryption and the
// inner signature, with fi's real keys), then what is done with an opened
// payload (EraseTargets, RenderText, PayloadJson).
//
// Input: kontor.fuzz.EnvelopeInput. Its fixups (a header message, a seal
// made with real keys, a re-made outer signature) let mutated headers,
// inner contents and payloads get past the signatures.
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "daemon/common/ids.h"
#include "daemon/envelope/envelope.h"
#include "daemon/kinds/kinds.h"
#include "tests/fuzz/fuzz_support.h"

namespace kontor::fuzz {
namespace {

struct OpenerUnderTest {
  FakeClock clock{GetWorld().now_ms};
  Opener opener;
  OpenerUnderTest()
      : opener("fi",
               // fi's key, and one that is not among any recipients.
               {GetWorld().decryption[FI][0], GetWorld().decryption[XX][0]},
               &GetWorld().directory, &clock, 300000, 1 << 20) {}
};

void Run(const EnvelopeInput& in) {
  static OpenerUnderTest* r = new OpenerUnderTest();
  const World& w = GetWorld();
  r->clock.SetMs(AddSat(w.now_ms, in.clock_offset_ms()));
  const v1::Envelope env = BuildEnvelope(in);

  v1::Header partial;
  partial.ParseFromString(env.header());
  const std::string digest = OuterDigest(env, partial.suite_id());
  Require(digest.size() == 32, "OuterDigest is not a SHA-256");

  Refusal refusal;
  auto header = r->opener.ParseHeader(env, &refusal, in.recipient());
  if (!header.ok()) {
    Note(absl::StrCat("ParseHeader: ", refusal.reason));
    Require(refusal.verdict == v1::REFUSED && refusal.code != v1::REFUSAL_NONE,
            "ParseHeader failed without a permanent refusal code");
    return;
  }
  Require(IsValidMessageId(header->message_id()) &&
              IsValidNodeId(header->origin()) &&
              IsAllowedSuite(header->suite_id()),
          "ParseHeader passed a bad id, origin or suite");
  Refusal times;
  r->opener.CheckTimes(*header, &times).IgnoreError();

  VerifiedRoots verified;
  Refusal outer_refusal;
  const absl::Status outer =
      r->opener.VerifyOuter(env, *header, &outer_refusal, &verified);
  Require(outer.ok() == outer_refusal.outer_verified,
          "VerifyOuter and outer_verified disagree");
  Refusal open_refusal;
  auto opened = r->opener.Open(env, *header, &open_refusal, &verified);
  if (!opened.ok()) {
    Note(absl::StrCat("Open: ", open_refusal.reason));
    Require(open_refusal.code != v1::REFUSAL_NONE,
            "Open failed without a refusal code");
    return;
  }
  Require(outer.ok(), "Open passed an envelope whose outer signature fails");
  Require(opened->outer_digest == digest, "Open's digest differs");
  Require(opened->inner.message_id() == header->message_id() &&
              opened->inner.origin() == header->origin(),
          "Open passed inner content of another message");

  Note(absl::StrCat("opened, kind ", opened->payload.kind()));
  // What the receiver and `kontor show` do with a payload from a peer.
  std::string reason;
  const auto targets = kinds::EraseTargets(opened->payload, &reason);
  Require(targets.size() <= kinds::kMaxEraseTargets, "too many erase targets");
  for (const std::string& t : targets) {
    Require(IsValidMessageId(t), "an erase target is not a message id");
  }
  kinds::RenderText(opened->payload);
  kinds::PayloadJson(opened->payload);
  kinds::Identified(opened->payload);
}

}  // namespace
}  // namespace kontor::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  kontor::fuzz::InitFuzzing();
  kontor::fuzz::GetWorld();
  return 0;
}

KONTOR_FUZZ_PROTO_INPUT(kontor::fuzz::EnvelopeInput)

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kontor::fuzz::EnvelopeInput in;
  if (!kontor::fuzz::ParseInput(data, size, &in)) return -1;
  kontor::fuzz::Run(in);
  return 0;
}
