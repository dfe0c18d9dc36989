// Checks shared by the payload targets: what is done with a Payload that
// came from a peer or from a user's JSON file.
#ifndef KONTOR_TESTS_FUZZ_PAYLOAD_CHECKS_H_
#define KONTOR_TESTS_FUZZ_PAYLOAD_CHECKS_H_

#include <string>

#include "client/json.h"
#include "daemon/common/ids.h"
#include "daemon/kinds/kinds.h"
#include "google/protobuf/util/message_differencer.h"
#include "tests/fuzz/fuzz_support.h"

namespace kontor::fuzz {

// A Context whose lookup knows MessageIdFor(1) (a referral from ee) and
// MessageIdFor(2) (an intel.request from lv).
inline kinds::Context PayloadContext(int priority) {
  kinds::Context ctx;
  ctx.priority = priority;
  ctx.now_ms = 1798761600000;  // 2027-01-01
  ctx.lookup = [](const std::string& id) -> std::optional<kinds::KnownMessage> {
    if (id == MessageIdFor(1)) {
      return kinds::KnownMessage{"referral", "ee", "EE-TRM-2026-0042"};
    }
    if (id == MessageIdFor(2)) {
      return kinds::KnownMessage{"intel.request", "lv", "LV-2026-7"};
    }
    return std::nullopt;
  };
  return ctx;
}

// Renders `p` every way Kontor shows it and checks the output is safe for
// a terminal; validates a copy; and checks that a valid payload without
// attachments and padding reads back from its JSON unchanged.
inline void CheckPayload(const v1::Payload& p, int priority) {
  const std::string text = kinds::RenderText(p);
  Require(SafeForTerminal(text, /*newlines=*/true),
          "RenderText leaves control or bidi characters");
  Require(text.empty() || text.back() == '\n', "RenderText without a newline");
  const std::string json = kinds::PayloadJson(p);
  Require(WellFormedUtf8(json), "PayloadJson is not UTF-8");
  kontor::ToJson(kontor::ToJsonValue(p), true);
  kontor::ToJson(kontor::ToJsonValue(p), false);
  std::string reason;
  for (const std::string& t : kinds::EraseTargets(p, &reason)) {
    Require(IsValidMessageId(t), "an erase target is not a message id");
  }
  kinds::Identified(p);
  kinds::ContentField(p.kind());

  v1::Payload copy = p;
  const absl::Status valid =
      kinds::ValidatePayload(PayloadContext(priority), &copy);
  if (!valid.ok()) {
    Require(valid.code() == absl::StatusCode::kInvalidArgument &&
                !valid.message().empty(),
            "ValidatePayload failed without saying why");
    return;
  }
  if (copy.attachments_size() > 0 || !copy.padding().empty()) return;
  v1::Payload back;
  const absl::Status reread =
      kinds::ParsePayloadJson(kinds::PayloadJson(copy), &back);
  Require(reread.ok(), "a valid payload's JSON does not parse");
  Require(google::protobuf::util::MessageDifferencer::Equals(copy, back),
          "a valid payload's JSON reads back as another payload");
}

}  // namespace kontor::fuzz

#endif  // KONTOR_TESTS_FUZZ_PAYLOAD_CHECKS_H_
