#ifndef KONTOR_DAEMON_COMMON_STATUS_MACROS_H_
#define KONTOR_DAEMON_COMMON_STATUS_MACROS_H_

// Early returns on absl::Status, for code written as a sequence of named
// stages (app/submit.cc, inbox/receiver.cc, outbox/outbox.cc).

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// Returns `expr` (an absl::Status) if it is not OK.
#define KONTOR_RETURN_IF_ERROR(expr)   \
  do {                                 \
    absl::Status _status = (expr);     \
    if (!_status.ok()) return _status; \
  } while (false)

// `lhs = *expr` for an OK absl::StatusOr `expr`; else returns its status.
#define KONTOR_ASSIGN_OR_RETURN(lhs, expr) \
  KONTOR_ASSIGN_OR_RETURN_IMPL(KONTOR_CONCAT(_status_or_, __LINE__), lhs, expr)
#define KONTOR_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(*tmp)
#define KONTOR_CONCAT(a, b) KONTOR_CONCAT_IMPL(a, b)
#define KONTOR_CONCAT_IMPL(a, b) a##b

#endif  // KONTOR_DAEMON_COMMON_STATUS_MACROS_H_
