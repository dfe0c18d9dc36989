#ifndef KONTOR_DAEMON_COMMON_CRASH_POINT_H_
#define KONTOR_DAEMON_COMMON_CRASH_POINT_H_

#include "absl/strings/string_view.h"

namespace kontor {

// Named crash points for fault tests (DESIGN.md §5). When the environment
// variable KONTOR_CRASH_AT is "NAME" or "NAME:N", the process kills itself
// with SIGKILL the first (or N-th) time the point NAME is reached. Costs one
// relaxed atomic load when the variable is not set.
//
// Points: submit.after_commit, receive.after_inbox_commit,
// receive.before_receipt_send, deliver.after_send,
// deliver.before_receipt_commit, deliver.after_receipt_commit,
// relay.after_custody_commit, return.after_settle.
void CrashPoint(absl::string_view name);

}  // namespace kontor

#endif  // KONTOR_DAEMON_COMMON_CRASH_POINT_H_
