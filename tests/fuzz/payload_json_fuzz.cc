// Payload JSON as the user writes it for `kontor send --payload-json`
// (templates from `kontor template KIND`, "//" comment lines included):
// kinds::ParsePayloadJson, then ValidatePayload, RenderText, PayloadJson and
// the CLI's JSON output of what was read; EscapeText and IsValidUtf8 of the
// raw text.
//
// Input: the JSON text. Invariants: IsValidUtf8 agrees with a reference
// UTF-8 check; EscapeText leaves nothing a terminal would act on; see
// payload_checks.h for the rest.
#include <cstdint>
#include <string>

#include "tests/fuzz/payload_checks.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  kontor::fuzz::InitFuzzing();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using kontor::fuzz::Require;
  const std::string text(reinterpret_cast<const char*>(data), size);
  Require(
      kontor::kinds::IsValidUtf8(text) == kontor::fuzz::WellFormedUtf8(text),
      "IsValidUtf8 disagrees with the reference");
  Require(kontor::fuzz::SafeForTerminal(kontor::kinds::EscapeText(text),
                                        /*newlines=*/false),
          "EscapeText leaves control or bidi characters");
  kontor::v1::Payload p;
  const absl::Status s = kontor::kinds::ParsePayloadJson(text, &p);
  if (!s.ok()) {
    Require(!s.message().empty(), "an error without a message");
    return 0;
  }
  kontor::fuzz::CheckPayload(p, 1 + static_cast<int>(size % 3));
  return 0;
}
