#ifndef KONTOR_DAEMON_POLICY_POLICY_H_
#define KONTOR_DAEMON_POLICY_POLICY_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace kontor {

// Who may send, see and do what (DESIGN.md §1, §3): the rules of local users
// and their roles, written once for every front end (the gRPC local API, the
// console). Plain functions of their arguments; no I/O.
//
// Local users: an operator certificate from the operator CA names the user
// and one role (api/operator_auth.h); the unix socket is local
// administration.
enum class Role { kCoordinator, kLiaison, kSystem, kAdmin };

struct Caller {
  std::string id;  // "user:<id>", or "local-admin" on the unix socket
  Role role = Role::kAdmin;
};

absl::string_view RoleName(Role role);
std::optional<Role> ParseRole(absl::string_view name);

// Which kinds a role works with: it may send them and read them.
//   coordinator: referrals (TRM) and notes;
//   liaison:     intelligence, incidents, sitreps, alerts and notes;
//   system:      every kind (national systems syncing unattended);
//   admin:       every kind.
// restriction.update and erase.notice belong to both domains.
bool RoleMayUseKind(Role role, absl::string_view kind);
// Only liaison officers, systems and admins send flash.
bool RoleMaySendFlash(Role role);
// Seeing other users' sent messages and the whole outbox, cancel/retry of
// others' messages, the audit log, purge.
bool RoleIsAdmin(Role role);
// The kinds of RoleMayUseKind, for error messages.
std::vector<std::string> KindsOfRole(Role role);

// What decides who may see a message this node holds.
struct MessageView {
  bool sent = false;      // sent from this node (else received)
  std::string submitter;  // the local user who sent it (sent only)
  std::string kind;
};

// The one rule of visibility, used by every call that names or lists
// messages: whether `caller` may learn anything about the message (its
// content, its metadata, that it exists at all). Admins see everything;
// others see the messages they sent, and received messages of the kinds
// their role works with. A message a caller may not see is answered
// exactly as an id this node does not know, by every call and every error.
bool MaySee(const Caller& caller, const MessageView& m);

}  // namespace kontor

#endif  // KONTOR_DAEMON_POLICY_POLICY_H_
