#ifndef KONTOR_DAEMON_COMMON_KINDS_H_
#define KONTOR_DAEMON_COMMON_KINDS_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace kontor {

// The message kinds of DESIGN.md §6 ("note", "referral", ...).
const std::vector<std::string>& MessageKinds();
bool IsMessageKind(absl::string_view kind);

}  // namespace kontor

#endif  // KONTOR_DAEMON_COMMON_KINDS_H_
