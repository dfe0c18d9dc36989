// Payloads as a peer sends them (Payload bytes inside a signed, decrypted
// envelope: anything the sender's software put there): what the receiver
// and `kontor show` do with one (EraseTargets, the kind checks, RenderText,
// PayloadJson, the CLI's JSON), and ValidatePayload.
//
// Input: a serialized kontor.v1.Payload (structure-aware mutation).
// Invariants: payload_checks.h.
#include <cstdint>

#include "tests/fuzz/payload_checks.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  kontor::fuzz::InitFuzzing();
  return 0;
}

KONTOR_FUZZ_PROTO_INPUT(kontor::v1::Payload)

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kontor::v1::Payload p;
  if (!kontor::fuzz::ParseInput(data, size, &p)) return -1;
  kontor::fuzz::CheckPayload(p, 1 + static_cast<int>(size % 3));
  return 0;
}
