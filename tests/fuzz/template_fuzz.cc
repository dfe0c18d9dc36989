// Templates (`kontor template KIND [--case C] [--in-reply-to ID]`):
// kinds::TemplateJson with a fuzzed kind, case reference, in-reply-to and
// time, then read back as the user would send it.
//
// Input: kind, case_ref and in_reply_to separated by '\n', then anything
// (its bytes move the clock by up to ~3 years).
// Invariants: a template is made exactly for the kinds there are; every
// template parses (ParsePayloadJson) when the strings given are UTF-8, and
// passes ValidatePayload at its own time when only the kind is given.
#include <cstdint>
#include <string>

#include "absl/strings/str_split.h"
#include "daemon/common/kinds.h"
#include "tests/fuzz/payload_checks.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  kontor::fuzz::InitFuzzing();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using kontor::fuzz::Require;
  const std::string input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> parts =
      absl::StrSplit(input, absl::MaxSplits('\n', 3));
  parts.resize(4);
  int64_t offset = 0;
  for (unsigned char c : parts[3]) offset = (offset * 31 + c) % (1LL << 36);
  kontor::kinds::TemplateOptions opts;
  opts.case_ref = parts[1];
  opts.in_reply_to = parts[2];
  opts.now_ms = 1767225600000 + offset;  // 2026-01-01 + up to ~2 years

  auto json = kontor::kinds::TemplateJson(parts[0], opts);
  Require(json.ok() == kontor::IsMessageKind(parts[0]),
          "TemplateJson and the list of kinds disagree");
  if (!json.ok()) return 0;
  kontor::v1::Payload p;
  const absl::Status parsed = kontor::kinds::ParsePayloadJson(*json, &p);
  if (kontor::kinds::IsValidUtf8(opts.case_ref) &&
      kontor::kinds::IsValidUtf8(opts.in_reply_to)) {
    Require(parsed.ok(), "a template does not parse");
  }
  if (!parsed.ok()) return 0;
  Require(p.kind() == parts[0], "a template of another kind");
  if (opts.case_ref.empty() && opts.in_reply_to.empty()) {
    // As tests/kinds/kinds_test.cc: a reply answers a message it fits.
    kontor::kinds::Context ctx;
    ctx.now_ms = opts.now_ms;
    ctx.priority = kontor::v1::ROUTINE;
    const std::string referenced =
        parts[0] == "intel.response" ? "intel.request" : "referral";
    const std::string case_ref = p.case_ref();
    ctx.lookup = [referenced, case_ref](const std::string&) {
      return std::optional<kontor::kinds::KnownMessage>(
          kontor::kinds::KnownMessage{referenced, "lv", case_ref});
    };
    kontor::v1::Payload copy = p;
    absl::Status valid = kontor::kinds::ValidatePayload(ctx, &copy);
    if (!valid.ok()) {
      // Some kinds need a higher priority (alerts): try the others.
      for (int prio : {kontor::v1::URGENT, kontor::v1::FLASH}) {
        copy = p;
        ctx.priority = prio;
        valid = kontor::kinds::ValidatePayload(ctx, &copy);
        if (valid.ok()) break;
      }
    }
    Require(valid.ok(), "a template does not validate");
  }
  return 0;
}
