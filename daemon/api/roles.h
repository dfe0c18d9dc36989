#ifndef KONTOR_DAEMON_API_ROLES_H_
#define KONTOR_DAEMON_API_ROLES_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "daemon/crypto/certificate.h"

namespace kontor {

// Local users (DESIGN.md §3): an operator certificate from the operator CA
// names the user (URI SAN urn:kontor:user:<id>) and one role
// (urn:kontor:role:<role>). The unix socket is local administration.
enum class Role { kCoordinator, kLiaison, kSystem, kAdmin };

struct Caller {
  std::string id;  // "user:<id>", or "local-admin" on the unix socket
  Role role = Role::kAdmin;
};

absl::string_view RoleName(Role role);
std::optional<Role> ParseRole(absl::string_view name);

// The user of an operator certificate (already verified against the
// operator CA). A certificate that names a node is never a local user.
absl::StatusOr<Caller> OperatorFromCertificate(const Certificate& cert);

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

}  // namespace kontor

#endif  // KONTOR_DAEMON_API_ROLES_H_
