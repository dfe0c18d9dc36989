// The typed message kinds of DESIGN.md §6 inside the Payload: validation and
// normalization before sealing, JSON templates for `kontor template KIND`,
// JSON parsing in the user's terms, and a readable rendering for
// `kontor show`. Plain protobuf only (no gRPC).
#ifndef KONTOR_DAEMON_KINDS_KINDS_H_
#define KONTOR_DAEMON_KINDS_KINDS_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kontor/v1/envelope.pb.h"

namespace kontor::kinds {

// An earlier message this node holds (sent by it, or received), for checks
// like "referral.response must answer a referral".
struct KnownMessage {
  std::string kind;
  std::string origin;  // node id of its author
  std::string case_ref;
};
using Lookup =
    std::function<std::optional<KnownMessage>(const std::string& message_id)>;

struct Context {
  int priority = 0;    // kontor::v1::Priority value of the submission
  int64_t now_ms = 0;  // wall clock, UTC ms (injected; tests pass a fixed time)
  Lookup lookup;       // may be empty: then lookups find nothing
};

// Validates and normalizes `p` in place (before it is sealed). On failure:
// absl::InvalidArgumentError whose message lists every problem found (at most
// 8), joined by "; ", each as "FIELD: what is expected", FIELD being the path
// as it appears in the template JSON ("markings.handling",
// "intel_request.persons[1].category", "in_reply_to").
absl::Status ValidatePayload(const Context& ctx, kontor::v1::Payload* p);

// True if the payload names an identifiable person (any Person anywhere in
// its content with family_name, given_names, date_of_birth or identifiers).
bool Identified(const kontor::v1::Payload& p);

// Most messages one erase.notice may name.
inline constexpr size_t kMaxEraseTargets = 256;

// The messages an erase order tells every recipient to erase (DESIGN.md
// §7): erase.notice with action "erase" (its refers_to), or consent.update
// with status "withdrawn" (its referral_id). Empty for anything else.
// Only valid message ids, each once, at most kMaxEraseTargets (a peer's
// payload is not trusted). `reason` (optional) gets a fixed description
// (never the notice's own text, which is content).
std::vector<std::string> EraseTargets(const kontor::v1::Payload& p,
                                      std::string* reason = nullptr);

// The name of the Payload content field of `kind` ("referral.consult" ->
// "referral_consult"); "" for "note" and unknown kinds.
std::string ContentField(absl::string_view kind);

// A filled-in JSON example of `kind` with "//" comment lines explaining each
// field, which ParsePayloadJson accepts and ValidatePayload passes. Dates are
// relative to `now_ms`. `case_ref` and `in_reply_to` are used when non-empty
// (`in_reply_to` also for referral_id and refers_to), else example values.
// InvalidArgumentError listing the kinds for an unknown kind.
struct TemplateOptions {
  std::string case_ref;
  std::string in_reply_to;
  int64_t now_ms = 0;
};
absl::StatusOr<std::string> TemplateJson(absl::string_view kind,
                                         const TemplateOptions& opts);

// Parses the protobuf JSON form of a Payload after removing lines whose first
// non-blank characters are "//". Field names may be snake_case or
// lowerCamelCase; unknown fields are errors. Errors are in the user's terms
// (`unknown field "refferal"`, `field "referral.person": expected an object`,
// `not valid JSON near line N: ...`). Rejects "attachments" and "padding".
absl::Status ParsePayloadJson(absl::string_view text, kontor::v1::Payload* out);

// The payload as pretty-printed protobuf JSON with snake_case names, for
// `kontor show --json`: attachment keys are removed, everything else kept.
std::string PayloadJson(const kontor::v1::Payload& p);

// A readable multi-line rendering of the markings and the content section,
// for `kontor show`. Control characters and bidi overrides in the (foreign)
// text are escaped. Every line ends with '\n'; "" when there is nothing.
std::string RenderText(const kontor::v1::Payload& p);

// `text` safe for a terminal: printable UTF-8 kept; control characters,
// invalid bytes and bidi controls escaped ("\x1b", "\u202e").
std::string EscapeText(absl::string_view text);

// True if `text` is well-formed UTF-8 (what protobuf requires of strings).
bool IsValidUtf8(absl::string_view text);

}  // namespace kontor::kinds

#endif  // KONTOR_DAEMON_KINDS_KINDS_H_
